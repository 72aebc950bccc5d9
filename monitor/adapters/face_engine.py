"""The dlib adapter: decode a photo upright and reduced, detect faces small, encode, measure, in worker processes."""

from __future__ import annotations

import io
import logging
import multiprocessing
import os
import threading
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Literal

import dlib
import imagehash
import numpy as np
from PIL import ExifTags, Image, ImageFile, ImageOps

from monitor.decisions.exif import read_exif_gps, read_exif_time
from monitor.decisions.faces import Box, contender_order, measure_face_quality

with warnings.catch_warnings():
    # face_recognition_models still imports pkg_resources, which warns on import.
    warnings.simplefilter("ignore", UserWarning)
    import face_recognition

# face_recognition turns on LOAD_TRUNCATED_IMAGES globally; uploads are checked whole, so turn it back off.
ImageFile.LOAD_TRUNCATED_IMAGES = False

log = logging.getLogger(__name__)

MODEL_VERSION = f"face_recognition-1.3.0/dlib-{dlib.__version__}/hog/resnet-5pt"

Purpose = Literal["selfie", "enrolment", "classroom", "frame"]


@dataclass(frozen=True)
class ScanPlan:
    """How hard to look: decode size, detection size and HOG upsampling (pixels are long sides)."""

    decode_px: int
    detect_px: int
    upsample: int
    retry_upsample: int | None
    landmarks: bool = False


PLANS: dict[str, ScanPlan] = {
    # A selfie's face fills a good part of the frame: detect small and fast, look harder only if nothing is found.
    "selfie": ScanPlan(decode_px=1000, detect_px=400, upsample=0, retry_upsample=1),
    "enrolment": ScanPlan(decode_px=1600, detect_px=1024, upsample=1, retry_upsample=None),
    # A classroom shot holds small faces: keep detail and upsample.
    "classroom": ScanPlan(decode_px=2400, detect_px=1600, upsample=1, retry_upsample=2),
    # Liveness burst frames: 68-point landmarks needed.
    "frame": ScanPlan(decode_px=1000, detect_px=400, upsample=0, retry_upsample=1, landmarks=True),
}


@dataclass(frozen=True)
class FaceFound:
    """One face: box in upright-original pixels, encoding, quality measures, optional 68 landmarks."""

    box: Box
    encoding: list[float]
    side_px: int
    sharpness: float
    brightness: float
    cut_off: bool
    landmarks: dict[str, list[tuple[float, float]]] | None = None
    detection_score: float = 0.0


@dataclass(frozen=True)
class FaceScan:
    """What one photo shows: faces, size, perceptual hash and the EXIF capture time and GPS."""

    faces: list[FaceFound]  # the contending faces, largest first (see monitor.decisions.faces.contender_order)
    width: int
    height: int
    phash: str
    exif_time: str | None = None  # naive local time as written by the camera, ISO 8601
    exif_gps: tuple[float, float] | None = None
    decode_scale: float = 1.0
    extra: dict[str, float] = field(default_factory=dict)
    background_faces: int = 0  # small faces found but not counted (posters, people far behind)
    exif_notes: list[str] = field(default_factory=list)  # EXIF parts that were unreadable or impossible, ignored

    @property
    def boxes(self) -> list[Box]:
        return [f.box for f in self.faces]

    @property
    def encodings(self) -> list[list[float]]:
        return [f.encoding for f in self.faces]


def _exif_facts(image: Image.Image) -> tuple[str | None, tuple[float, float] | None, list[str]]:
    """DateTimeOriginal and the GPS position from a photo's EXIF, and notes on what was unreadable and ignored."""
    notes: list[str] = []
    try:
        exif = image.getexif()
    except Exception:  # noqa: BLE001 - broken EXIF is absent evidence, noted
        return None, None, ["EXIF 信息损坏，已忽略"]
    try:
        raw = exif.get_ifd(ExifTags.IFD.Exif).get(ExifTags.Base.DateTimeOriginal) or exif.get(ExifTags.Base.DateTime)
    except Exception:  # noqa: BLE001
        raw, notes = None, ["EXIF 拍摄时间无法读取，已忽略"]
    when, note = read_exif_time(raw)
    notes += [note] if note else []
    gps = None
    try:
        info = exif.get_ifd(ExifTags.IFD.GPSInfo)
    except Exception:  # noqa: BLE001
        info, notes = {}, [*notes, "EXIF 定位信息无法读取，已忽略"]
    if info and 2 in info and 4 in info:
        gps, note = read_exif_gps(info[2], info.get(1), info[4], info.get(3))
        notes += [note] if note else []
    return when, gps, notes


def to_8bit_grey(image: Image.Image) -> Image.Image:
    """A 16-bit (or 32-bit) greyscale image scaled to 8 bits; converting it directly would clip it to white."""
    values = np.asarray(image, dtype=np.float64)
    top = float(values.max()) if values.size else 0.0
    if top > 255:
        values = values * (255.0 / (65535.0 if top <= 65535 else top))
    return Image.fromarray(np.clip(values, 0, 255).astype(np.uint8), "L")


class UnreadablePhoto(Exception):
    """The stored photo cannot be decoded: no retry can change that (the upload ends as VERIFICATION_FAILED)."""


def decode_upright_rgb(data: bytes, max_side_px: int) -> tuple[np.ndarray, float, Image.Image]:
    """Decode `data` reduced (JPEG draft), apply the EXIF orientation, composite alpha on white, RGB.

    Returns the array, the scale from it to the upright original (>= 1), and the opened image (for EXIF).
    """
    opened = Image.open(io.BytesIO(data))
    w, h = opened.size
    full_long = max(w, h)
    image = opened
    if image.format == "JPEG" and full_long > max_side_px:
        # libjpeg decodes at 1/2, 1/4 or 1/8 directly: ask for the size that keeps max_side_px on the long side.
        image.draft("RGB", (max(1, w * max_side_px // full_long), max(1, h * max_side_px // full_long)))
    image = ImageOps.exif_transpose(image)
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        image = to_8bit_grey(image)
    if image.mode != "RGB":
        if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
            rgba = image.convert("RGBA")
            image = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
        image = image.convert("RGB")
    if max(image.size) > max_side_px:
        image.thumbnail((max_side_px, max_side_px), Image.Resampling.BILINEAR)
    return np.asarray(image), full_long / max(image.size), opened


def _detect(image: np.ndarray, upsample: int) -> list[tuple[tuple[int, int, int, int], float]]:
    """HOG face boxes (top, right, bottom, left) clipped to the image, with their detection scores."""
    h, w = image.shape[:2]
    rects, scores, _ = face_recognition.api.face_detector.run(image, upsample, 0.0)
    return [((max(r.top(), 0), min(r.right(), w), min(r.bottom(), h), max(r.left(), 0)), float(sc))
            for r, sc in zip(rects, scores, strict=True)]


def _resize(array: np.ndarray, factor: float) -> np.ndarray:
    h, w = array.shape[:2]
    size = (max(1, round(w / factor)), max(1, round(h / factor)))  # a 1600x1 strip must not shrink to nothing
    return np.asarray(Image.fromarray(array).resize(size, Image.Resampling.BILINEAR))


class FaceEngine:
    """Face detection, encoding and measurement with face_recognition (dlib HOG + ResNet), in this process."""

    model_version = MODEL_VERSION
    processes = 1

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def scan(self, data: bytes, purpose: Purpose = "selfie") -> FaceScan:
        """Find, encode and measure every face in the photo `data` (JPEG/PNG/WebP bytes)."""
        plan = PLANS[purpose]
        try:
            img, scale, opened = decode_upright_rgb(data, plan.decode_px)
        except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as exc:
            raise UnreadablePhoto(f"{type(exc).__name__}: {str(exc)[:160]}") from None
        h, w = img.shape[:2]
        factor = max(h, w) / plan.detect_px
        small, factor = (_resize(img, factor), factor) if factor > 1 else (img, 1.0)
        with self._lock:
            found = _detect(small, plan.upsample)
            if not found and plan.retry_upsample is not None:
                found = _detect(small, plan.retry_upsample)
            keep = contender_order([min(b - t, r - lft) for (t, r, b, lft), _ in found], [sc for _, sc in found])
            boxes = [
                (max(0, round(t * factor)), min(w, round(r * factor)), min(h, round(b * factor)),
                 max(0, round(lft * factor)))
                for (t, r, b, lft), _ in (found[i] for i in keep)
            ]
            scores = [found[i][1] for i in keep]
            encodings = face_recognition.face_encodings(img, boxes, num_jitters=1) if boxes else []
            landmarks = face_recognition.face_landmarks(img, boxes, model="large") if plan.landmarks and boxes else None
        grey = np.asarray(Image.fromarray(img).convert("L"))
        faces = []
        for i, (box, enc) in enumerate(zip(boxes, encodings, strict=True)):
            quality = measure_face_quality(grey, box)
            marks = None
            if landmarks is not None:
                marks = {k: [(x * scale, y * scale) for x, y in v] for k, v in landmarks[i].items()}
            faces.append(FaceFound(
                box=tuple(round(v * scale) for v in box),  # type: ignore[arg-type]
                encoding=[float(x) for x in enc],
                side_px=round(quality.side_px * scale),
                sharpness=quality.sharpness,
                brightness=quality.brightness,
                cut_off=quality.cut_off,
                landmarks=marks,
                detection_score=round(scores[i], 3),
            ))
        exif_time, exif_gps, exif_notes = _exif_facts(opened)
        return FaceScan(
            faces=faces, width=round(w * scale), height=round(h * scale),
            phash=str(imagehash.phash(Image.fromarray(small))), exif_time=exif_time, exif_gps=exif_gps,
            decode_scale=scale, extra={"pid": float(os.getpid())}, background_faces=len(found) - len(keep),
            exif_notes=exif_notes,
        )

    def warm_up(self) -> None:
        """Load the models now rather than on the first upload."""
        self.scan(_WARM_UP_PNG, "selfie")

    def close(self) -> None:
        """Nothing to release in-process."""


def _blank_png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 64), (128, 128, 128)).save(out, "PNG")
    return out.getvalue()


_WARM_UP_PNG = _blank_png()
_CHILD_ENGINE: FaceEngine | None = None


def _exit_with_parent(parent_pid: int) -> None:
    """A face process must not outlive the process that started it (kill -9 of a worker leaves no orphans)."""
    while True:
        time.sleep(1.0)
        try:
            os.kill(parent_pid, 0)
        except ProcessLookupError:
            os._exit(0)
        except PermissionError:
            pass  # alive, owned by someone else: cannot be ours, but do not guess


def _init_child(parent_pid: int) -> None:
    global _CHILD_ENGINE  # noqa: PLW0603 - one engine per worker process
    threading.Thread(target=_exit_with_parent, args=(parent_pid,), name="parent-watch", daemon=True).start()
    _CHILD_ENGINE = FaceEngine()


def _warm_child() -> int:
    assert _CHILD_ENGINE is not None
    _CHILD_ENGINE.warm_up()
    return os.getpid()


def _scan_in_child(data: bytes, purpose: Purpose) -> FaceScan:
    assert _CHILD_ENGINE is not None
    return _CHILD_ENGINE.scan(data, purpose)


class ProcessFaceEngine:
    """The same engine in a pool of worker processes (one per core by default), so that face work
    never holds the API process's GIL; started on first use."""

    model_version = MODEL_VERSION

    def __init__(self, processes: int | None = None) -> None:
        self.processes = processes or os.cpu_count() or 1
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    def _executor(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                ctx = multiprocessing.get_context("forkserver")
                self._pool = ProcessPoolExecutor(self.processes, mp_context=ctx, initializer=_init_child,
                                                 initargs=(os.getpid(),))
            return self._pool

    def warm_up(self) -> None:
        """Start every face process and load its models now (in the background): near capacity, the first
        seconds' uploads would otherwise wait 20-30 s for the pool to start."""
        pool = self._executor()
        for _ in range(self.processes):
            pool.submit(_warm_child)

    def child_pids(self) -> list[int]:
        """The face processes' ids (for operations and tests)."""
        pool = self._pool
        return sorted(pool._processes) if pool is not None and pool._processes else []

    def scan(self, data: bytes, purpose: Purpose = "selfie") -> FaceScan:
        return self._executor().submit(_scan_in_child, data, purpose).result()

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.shutdown(wait=True, cancel_futures=True)
                self._pool = None


def create_face_engine(processes: int) -> FaceEngine | ProcessFaceEngine:
    """Face work in `processes` worker processes; 0 runs it in the calling process (tests, tools)."""
    return FaceEngine() if processes == 0 else ProcessFaceEngine(processes if processes > 0 else None)
