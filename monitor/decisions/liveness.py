"""Liveness as pure functions: eye aspect ratio, head yaw from 68-point landmarks, and the burst verdict."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from models.domain import LIVENESS_ACTIONS, AnomalyCode, Severity
from monitor.decisions.faces import face_distance
from monitor.decisions.verdicts import Finding, LivenessThresholds

ACTIONS = LIVENESS_ACTIONS
Landmarks = Mapping[str, Sequence[tuple[float, float]]]


def choose_action(rng: random.Random | None = None) -> str:
    """A random challenge action (cryptographic randomness by default)."""
    return (rng or random.SystemRandom()).choice(sorted(ACTIONS))


def eye_aspect_ratio(eye: Sequence[tuple[float, float]]) -> float:
    """Soukupová & Čech's EAR over the six points of one eye: about 0.3 open, under 0.2 closed."""
    p = np.asarray(eye, dtype=np.float64)
    return float((np.linalg.norm(p[1] - p[5]) + np.linalg.norm(p[2] - p[4])) / (2 * np.linalg.norm(p[0] - p[3])))


def yaw_ratio(marks: Landmarks) -> float:
    """Where the nose tip sits between the jaw's image-left (0) and image-right (1) ends; ~0.5 facing the camera.

    A trainee turning to their own left moves the nose toward the image's right: the ratio grows.
    """
    chin = np.asarray(marks["chin"], dtype=np.float64)
    nose = np.asarray(marks["nose_tip"], dtype=np.float64)
    left, right = chin[0][0], chin[16][0]
    return float((nose[:, 0].mean() - left) / (right - left)) if right != left else 0.5


@dataclass(frozen=True)
class FrameFacts:
    """One burst frame: how many faces, the face's encoding and landmarks, and the frame's pHash."""

    face_count: int
    encoding: Sequence[float] | None
    landmarks: Landmarks | None
    phash: str


@dataclass(frozen=True)
class ChallengeFacts:
    action: str
    trainee_id: int
    class_id: int
    expires_at: datetime
    used_by_other_checkin: bool


def _hamming(a: str, b: str) -> int:
    return bin(int(a, 16) ^ int(b, 16)).count("1")


def judge_liveness(challenge: ChallengeFacts, trainee_id: int, class_id: int, received_at: datetime,
                   frames: Sequence[FrameFacts], selfie_encoding: Sequence[float] | None,
                   replayed_frames: int, t: LivenessThresholds) -> tuple[list[Finding], dict[str, object]]:
    """LIVENESS_FAILED unless one face, the selfie's, performs the challenged action across the burst."""
    problems: list[str] = []
    measured: dict[str, object] = {"action": challenge.action, "frames": len(frames)}
    if challenge.trainee_id != trainee_id or challenge.class_id != class_id:
        problems.append("活体挑战不属于该学员或班次")
    if received_at > challenge.expires_at:
        problems.append("活体挑战已过期")
    if challenge.used_by_other_checkin:
        problems.append("活体挑战已被另一次签到使用")
    if replayed_frames:
        problems.append(f"连拍中有 {replayed_frames} 帧与此前的连拍重复")
    single = [f for f in frames if f.face_count == 1 and f.encoding is not None and f.landmarks is not None]
    marks = [f.landmarks for f in single if f.landmarks is not None]
    if len(single) != len(frames):
        problems.append("连拍中有画面未检出唯一人脸")
    if single:
        reference = selfie_encoding if selfie_encoding is not None else single[0].encoding
        assert reference is not None
        distances = [face_distance(f.encoding, reference, t.metric) for f in single if f.encoding is not None]
        measured["max_face_distance"] = round(max(distances), 4)
        if max(distances) > t.face_match:
            problems.append("连拍中的人脸与签到照片不是同一人")
        still = max((_hamming(a.phash, b.phash) for a in frames for b in frames), default=0)
        measured["max_frame_phash_distance"] = still
        if still <= t.still_max_phash_distance:
            problems.append("连拍画面静止（疑似单张照片）")
        if challenge.action == "blink":
            ears = [(eye_aspect_ratio(m["left_eye"]) + eye_aspect_ratio(m["right_eye"])) / 2 for m in marks]
            measured["ear_min"], measured["ear_max"] = round(min(ears), 3), round(max(ears), 3)
            drop = (max(ears) - min(ears)) / max(ears) if max(ears) > 0 else 0.0
            measured["ear_drop"] = round(drop, 3)
            if drop < t.blink_min_ear_drop:
                problems.append(f"未检测到眨眼（眼睛纵横比 {min(ears):.2f}–{max(ears):.2f}）")
        else:
            yaws = [yaw_ratio(m) for m in marks]
            change = (max(yaws) - yaws[0]) if challenge.action == "turn_left" else (yaws[0] - min(yaws))
            measured["yaw_first"], measured["yaw_change"] = round(yaws[0], 3), round(change, 3)
            if change < t.turn_min_yaw_change:
                problems.append(f"未检测到{ACTIONS[challenge.action][1:]}动作（偏转 {change:.2f}）")
    if not problems:
        return [], measured
    return [Finding(AnomalyCode.LIVENESS_FAILED, Severity.HIGH, "活体检测未通过：" + "；".join(problems),
                    {"liveness": measured, "problems": problems},
                    {"blink_min_ear_drop": t.blink_min_ear_drop, "turn_min_yaw_change": t.turn_min_yaw_change,
                     "still_max_phash_distance": t.still_max_phash_distance})], measured
