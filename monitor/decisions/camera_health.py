"""A classroom camera's frames and health, judged from plain values (issue 19): which frame of a burst is usable
(not a grey start-up frame, not a half-decoded one), whether the feed is frozen (the same picture pull after pull,
by the frames' difference, not their hashes: a re-encoded still differs in every byte), and CAMERA_OFFLINE /
FROZEN_FEED for a camera of a class in session. Pure functions: the adapter decodes and downscales."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from numpy.typing import NDArray

from models.domain import AnomalyCode, Severity
from monitor.decisions.verdicts import Finding

Grey = NDArray[np.uint8]  # a downscaled greyscale frame (the adapter makes it, e.g. 64 × 36)


@dataclass(frozen=True)
class CameraLimits:
    """The thresholds of the camera rules, recorded with every anomaly they raise."""

    min_std: float = 6.0  # a grey or black start-up frame has (almost) no contrast
    min_mean: float = 8.0  # all but black
    max_mean: float = 250.0  # all but white
    max_flat_share: float = 0.4  # more than this share of one grey level: a frame decoded only in part
    frozen_max_difference: float = 0.5  # mean absolute difference (grey levels 0-255) at or below which two pulls
    frozen_pulls: int = 3  # … show the same picture; this many in a row is a frozen feed
    offline_seconds: float = 300.0  # no usable frame for this long while the class is in session

    def as_dict(self) -> dict[str, Any]:
        return {"camera_min_std": self.min_std, "camera_min_mean": self.min_mean, "camera_max_mean": self.max_mean,
                "camera_max_flat_share": self.max_flat_share,
                "camera_frozen_max_difference": self.frozen_max_difference,
                "camera_frozen_pulls": self.frozen_pulls, "camera_offline_seconds": self.offline_seconds}


def frame_defect(grey: Grey | None, limits: CameraLimits) -> str | None:
    """Why a decoded frame cannot serve as evidence, or None when it can: not decoded, uniform (a grey or black
    start-up frame), too dark or too bright, or mostly one flat grey (a frame decoded only in part)."""
    if grey is None or grey.size == 0:
        return "undecodable"
    values = grey.astype(np.float64)
    if float(values.std()) < limits.min_std:
        return "uniform"
    mean = float(values.mean())
    if mean < limits.min_mean:
        return "dark"
    if mean > limits.max_mean:
        return "bright"
    counts = np.bincount(grey.ravel(), minlength=256)
    if float(counts.max()) / grey.size > limits.max_flat_share:
        return "flat"
    return None


def pick_frame(defects: Sequence[str | None]) -> int | None:
    """The index of the burst's frame to keep: the last usable one (past any grey or broken first frames)."""
    usable = [i for i, defect in enumerate(defects) if defect is None]
    return usable[-1] if usable else None


def frame_difference(a: Grey, b: Grey) -> float:
    """Mean absolute difference of two downscaled grey frames (grey levels); infinite when their sizes differ."""
    if a.shape != b.shape:
        return float("inf")
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


def is_same_picture(difference: float, limits: CameraLimits) -> bool:
    return difference <= limits.frozen_max_difference


def judge_frozen(same_pulls: int, difference: float | None, limits: CameraLimits) -> list[Finding]:
    """FROZEN_FEED: `same_pulls` consecutive pulls showed the previous pull's picture (a looped or paused stream)."""
    if same_pulls < limits.frozen_pulls:
        return []
    shown = "" if difference is None else f"（最近两次画面平均差异 {difference:.2f} 灰度级）"
    return [Finding(AnomalyCode.FROZEN_FEED, Severity.MEDIUM,
                    f"摄像头连续 {same_pulls} 次抓取的画面相同{shown}，画面可能被暂停或循环播放",
                    {"same_pulls": same_pulls, "difference": None if difference is None else round(difference, 3)},
                    {"camera_frozen_pulls": limits.frozen_pulls,
                     "camera_frozen_max_difference": limits.frozen_max_difference})]


def judge_offline(last_frame_at: datetime | None, watched_since: datetime, now: datetime, last_error: str | None,
                  limits: CameraLimits) -> list[Finding]:
    """CAMERA_OFFLINE: a camera of a class in session gave no usable frame for `offline_seconds`, counted from its
    last frame or, when it gave none, from when it was due (the session's start, or the camera's registration)."""
    since = max(last_frame_at, watched_since) if last_frame_at else watched_since
    quiet = (now - since).total_seconds()
    if quiet < limits.offline_seconds:
        return []
    why = f"（{last_error}）" if last_error else ""
    return [Finding(AnomalyCode.CAMERA_OFFLINE, Severity.MEDIUM,
                    f"上课中摄像头已 {quiet / 60:.0f} 分钟没有传回可用画面{why}",
                    {"quiet_seconds": round(quiet), "last_frame_at": last_frame_at.isoformat() if last_frame_at
                     else None, "last_error": last_error},
                    {"camera_offline_seconds": limits.offline_seconds})]


def backoff_seconds(failures: int, interval: float, maximum: float) -> float:
    """When to try a camera again after `failures` consecutive failed pulls: its interval at first, then doubling
    from a short retry (so a camera that comes back is seen soon) up to `maximum`."""
    if failures <= 0:
        return interval
    return float(min(maximum, interval, 2.0 ** (failures - 1)))
