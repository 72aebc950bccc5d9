"""Reading classroom cameras with OpenCV (FFmpeg backend): open a stream with bounded open and read timeouts, take a
short burst of frames, release it; URLs split into the stream shown to people and the credentials kept encrypted.

A pull opens the stream, reads a few frames and closes it: a camera is looked at every few minutes, and holding
thousands of decoders open between looks would cost far more than opening one again. RTSP goes over TCP (classroom
cameras behind NAT and lossy links drop UDP), HTTP MJPEG and HLS as FFmpeg reads them, a file (tests, a recorded
class) from a position that moves with the clock, as a live camera's picture does.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import numpy as np
from numpy.typing import NDArray

# FFmpeg's own messages can quote the URL it opens (with its user and password): keep them quiet. RTSP over TCP.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
os.environ.setdefault("OPENCV_FFMPEG_CAPTURE_OPTIONS", "rtsp_transport;tcp")

import cv2  # noqa: E402 - after the environment FFmpeg reads at its first use

KINDS = ("rtsp", "http", "hls", "file")
SCHEMES = {"rtsp": ("rtsp", "rtsps"), "http": ("http", "https"), "hls": ("http", "https"), "file": ("", "file")}
GREY_SIZE = (64, 36)  # the downscaled grey frame the health rules compare (width, height)

Frame = NDArray[np.uint8]


class StreamUrlError(ValueError):
    """A stream URL that does not fit its kind (message in zh-CN, for the API's 422)."""


def split_credentials(url: str, kind: str) -> tuple[str, str, str]:
    """(the URL without user and password, user, password); checks the scheme fits the kind."""
    parts = urlsplit(url.strip())
    if kind not in KINDS:
        raise StreamUrlError(f"未知的视频流类型 {kind}（可选：{'、'.join(KINDS)}）")
    if parts.scheme.lower() not in SCHEMES[kind]:
        raise StreamUrlError(f"{kind} 类型的视频流地址须以 {' 或 '.join(s + '://' for s in SCHEMES[kind] if s)} 开头")
    if kind == "file":
        return (parts.path if parts.scheme else url.strip()), "", ""
    if not parts.hostname:
        raise StreamUrlError("视频流地址缺少主机名")
    user, password = unquote(parts.username or ""), unquote(parts.password or "")
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    netloc = host + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, "")), user, password


def with_credentials(url: str, username: str, password: str) -> str:
    """The URL to open: the stream's URL with its user and password put back (quoted)."""
    if not username and not password:
        return url
    parts = urlsplit(url)
    userinfo = quote(username, safe="") + (":" + quote(password, safe="") if password else "")
    return urlunsplit((parts.scheme, f"{userinfo}@{parts.netloc}", parts.path, parts.query, parts.fragment))


@dataclass
class Burst:
    """What one pull read: the decoded frames (None where a read failed), the error if the stream gave nothing,
    and how long it took."""

    frames: list[Frame | None] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0


def grab_burst(url: str, kind: str, count: int, open_timeout_s: float, read_timeout_s: float) -> Burst:
    """Open the stream (bounded by the timeouts), read `count` frames, release it. Never raises for a stream that
    fails: the error is in the answer (without the URL, which may hold credentials)."""
    started = time.monotonic()
    params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, int(open_timeout_s * 1000),
              cv2.CAP_PROP_READ_TIMEOUT_MSEC, int(read_timeout_s * 1000)]
    burst = Burst()
    cap = cv2.VideoCapture(url, cv2.CAP_FFMPEG, params)
    try:
        if not cap.isOpened():
            burst.error = "无法连接视频流（连接失败或超时）"
            return burst
        if kind == "file":  # a recorded class plays on like a live camera: where the clock says
            length_ms = 1000.0 * cap.get(cv2.CAP_PROP_FRAME_COUNT) / max(cap.get(cv2.CAP_PROP_FPS) or 25.0, 1.0)
            if length_ms > 0:
                cap.set(cv2.CAP_PROP_POS_MSEC, (time.time() * 1000.0) % length_ms)
        for _ in range(count):
            ok, frame = cap.read()
            burst.frames.append(np.asarray(frame, dtype=np.uint8) if ok and frame is not None and frame.size
                                else None)
            if not ok and all(f is None for f in burst.frames[-2:]) and len(burst.frames) >= 2:
                break  # the stream ended or stalled: reading on would only wait out more timeouts
        if not any(f is not None for f in burst.frames):
            burst.error = "已连接但读不到画面（视频流中断或超时）"
        return burst
    except cv2.error as exc:  # a decoder failure is the camera's problem, not the puller's
        burst.error = f"视频解码失败：{type(exc).__name__}"
        return burst
    finally:
        cap.release()
        burst.seconds = time.monotonic() - started


def to_grey(frame: Frame) -> Frame:
    """The downscaled greyscale copy the health rules judge and compare."""
    grey = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY) if frame.ndim == 3 else frame
    return np.asarray(cv2.resize(grey, GREY_SIZE, interpolation=cv2.INTER_AREA), dtype=np.uint8)


def encode_jpeg(frame: Frame, quality: int = 90) -> bytes:
    ok, data = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return bytes(data.tobytes())
