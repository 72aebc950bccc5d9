"""Face decisions as pure functions: enrolment acceptance and check-in matching against templates."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

# How an embedding model's vectors are compared: Euclidean distance (dlib, 0 to ~1.2) or cosine distance
# (1 - cosine similarity, 0 to 2; ArcFace-type models). Every threshold is in its model's metric.
Metric = Literal["euclidean", "cosine"]

# (top, right, bottom, left) in pixels of the original (EXIF-upright) photo.
Box = tuple[int, int, int, int]


@dataclass(frozen=True)
class FaceQuality:
    """Measures of one face crop: shorter box side (px), sharpness (Laplacian variance), brightness (0-255)."""

    side_px: int
    sharpness: float
    brightness: float
    cut_off: bool


@dataclass(frozen=True)
class QualityThresholds:
    min_side_px: int
    min_sharpness: float
    min_brightness: float


def measure_face_quality(grey: np.ndarray, box: Box, border_px: int = 2) -> FaceQuality:
    """Measure the face in `box` of a greyscale image: sharpness on the crop resized to 112 px."""
    top, right, bottom, left = box
    h, w = grey.shape[:2]
    crop = grey[max(top, 0):max(bottom, top + 1), max(left, 0):max(right, left + 1)].astype(np.float64)
    if crop.size == 0:
        return FaceQuality(side_px=0, sharpness=0.0, brightness=0.0, cut_off=True)
    # Nearest-neighbour resample to a fixed size so that sharpness does not depend on the face's size.
    ys = np.linspace(0, crop.shape[0] - 1, 112).round().astype(int)
    xs = np.linspace(0, crop.shape[1] - 1, 112).round().astype(int)
    fixed = crop[np.ix_(ys, xs)]
    lap = 4 * fixed[1:-1, 1:-1] - fixed[:-2, 1:-1] - fixed[2:, 1:-1] - fixed[1:-1, :-2] - fixed[1:-1, 2:]
    cut = top <= border_px or left <= border_px or bottom >= h - border_px or right >= w - border_px
    return FaceQuality(side_px=box_side_px(box), sharpness=float(lap.var()), brightness=float(crop.mean()),
                       cut_off=bool(cut))


FEW_COLOURS = 16
"""A picture of at most this many distinct colours is not a camera photo (a black-and-white dithered or palette
image): sensor noise alone gives a photo thousands. Counted on the decoded picture (`PhotoShape.colours`)."""

DECODER_FILL_GREY = 128
"""What libjpeg paints for the blocks of a baseline JPEG whose data ends early (all coefficients zero: Y, Cb and Cr
at 128): a file cut short with an end-of-image marker appended decodes without error, its lower part mid-grey."""

CUT_SHORT_MIN_SHARE = 0.05
"""The share of a picture's height (or width, for a photo turned by its EXIF orientation) in whole lines of exactly
DECODER_FILL_GREY from one edge at which the file is judged cut short. A camera's noise never leaves a whole line
of one value; a picture that is that grey everywhere is judged as a blank, not as a cut."""


@dataclass(frozen=True)
class PhotoShape:
    """What a picture is apart from its faces: its shorter side as stored (pixels); its number of distinct colours
    when at most FEW_COLOURS (None: more, as any photo); the share (0-1) of it that a decoder filled in."""

    short_side_px: int
    colours: int | None = None
    filled_share: float = 0.0


def measure_filled_share(grey: np.ndarray) -> float:
    """The largest share (0-1) of `grey`'s height or width covered, from one edge, by whole lines of exactly
    DECODER_FILL_GREY; 0.0 for a picture that is that grey everywhere (nothing there says it was cut)."""
    if grey.size == 0:
        return 0.0
    fill = grey == DECODER_FILL_GREY
    rows, cols = fill.all(axis=1), fill.all(axis=0)
    if rows.all():
        return 0.0

    def run(lines: np.ndarray) -> int:
        """How many lines from the start are fill."""
        other = np.flatnonzero(~lines)
        return int(other[0]) if other.size else len(lines)

    h, w = grey.shape[:2]
    return float(max(run(rows[::-1]) / h, run(rows) / h, run(cols[::-1]) / w, run(cols) / w))


def explain_photo_defect(photo: PhotoShape, faces: int) -> tuple[str, dict[str, float], dict[str, float]] | None:
    """Why a picture itself cannot be judged by face (zh-CN), with what was measured and its limit; None if it can.

    A picture cut short says nothing of who was there when no face is left in it (a face in its intact part is
    judged as any face). A picture of a few colours is judged only when it shows a face: its face is no camera's
    (a blank frame of one colour is FACE_MISSING, not this)."""
    if faces == 0 and photo.filled_share >= CUT_SHORT_MIN_SHARE:
        return (f"照片不完整：约 {photo.filled_share:.0%} 的画面为解码填充的灰色（文件在拍摄或上传中被截断），"
                "无法判断画面中是否有人，请重新拍摄上传",
                {"filled_share": round(photo.filled_share, 3)}, {"cut_short_min_share": CUT_SHORT_MIN_SHARE})
    if faces > 0 and photo.colours is not None:
        return (f"照片只有 {photo.colours} 种颜色（黑白二值或调色板图像），不是相机拍摄的照片，无法比对人脸，"
                "请用手机相机直接拍摄", {"colours": float(photo.colours)}, {"min_colours": float(FEW_COLOURS + 1)})
    return None


def explain_poor_quality(q: FaceQuality, t: QualityThresholds) -> tuple[str, dict[str, float], dict[str, float]] | None:
    """Why a face cannot be judged (zh-CN), with the measured value and threshold; None if it can."""
    if q.side_px < t.min_side_px:
        return (f"人脸过小（{q.side_px} 像素，至少 {t.min_side_px} 像素）",
                {"face_side_px": q.side_px}, {"min_face_side_px": t.min_side_px})
    if q.cut_off:
        return ("人脸不完整（被画面边缘截断）", {"cut_off": 1.0}, {"cut_off": 0.0})
    if q.brightness < t.min_brightness:
        return (f"光线过暗（亮度 {q.brightness:.0f}，至少 {t.min_brightness:.0f}）",
                {"brightness": round(q.brightness, 1)}, {"min_brightness": t.min_brightness})
    if q.sharpness < t.min_sharpness:
        return (f"照片模糊（清晰度 {q.sharpness:.0f}，至少 {t.min_sharpness:.0f}）",
                {"sharpness": round(q.sharpness, 1)}, {"min_sharpness": t.min_sharpness})
    return None


@dataclass(frozen=True)
class FaceMatch:
    """The best distance of a check-in face to a trainee's templates, and the verdict at a threshold."""

    distance: float
    threshold: float
    matched: bool
    template_index: int


def box_side_px(box: Box) -> int:
    """The shorter side of a face box, in pixels."""
    top, right, bottom, left = box
    return min(bottom - top, right - left)


def contender_order(sides_px: Sequence[int], scores: Sequence[float], min_ratio: float = 0.5,
                    scored_ratio: float = 0.35, strong_score: float = 1.0) -> list[int]:
    """Indices of the faces that are real contenders for "the person in the photo", largest first.

    The largest face always counts. Another face counts when its shorter side is at least `min_ratio`
    of the largest's, or at least `scored_ratio` of it with a HOG detection score of `strong_score` or
    more; a small face in the background (a poster, a box, a passer-by far behind) does not.
    """
    if not sides_px:
        return []
    order = sorted(range(len(sides_px)), key=lambda i: (-sides_px[i], -scores[i]))
    largest = sides_px[order[0]]
    return [i for k, i in enumerate(order) if k == 0 or sides_px[i] >= min_ratio * largest
            or (sides_px[i] >= scored_ratio * largest and scores[i] >= strong_score)]


def explain_enrolment_problem(boxes: Sequence[Box], min_face_px: int) -> str | None:
    """Why a photo cannot be an enrolment photo (zh-CN), or None if it shows one large-enough face.

    `boxes` are the contending faces (see `contender_order`), largest first.
    """
    if not boxes:
        return "照片中未检测到人脸"
    if len(boxes) > 1:
        return f"照片中检测到 {len(boxes)} 张人脸，登记照片只能有一人"
    side = box_side_px(boxes[0])
    if side < min_face_px:
        return f"人脸过小（{side} 像素，至少需要 {min_face_px} 像素）"
    return None


@dataclass(frozen=True)
class Neighbour:
    """The other person of a class whose evidence lies nearest to a check-in face (model's metric).

    `distance` is the median distance to that person's evidence (enrolled templates and today's passed
    check-ins), robust to one look-alike photo; `nearest` is the smallest of them.
    """

    person_id: int
    distance: float
    nearest: float
    evidence_count: int
    checkin_ids: tuple[int, ...] = ()


Vector = Sequence[float] | np.ndarray


def face_distances(probe: Vector, known: Sequence[Vector] | np.ndarray, metric: Metric) -> np.ndarray:
    """Distances from one encoding to each of `known`, in the model's metric (see `Metric`)."""
    p = np.asarray(probe, dtype=np.float64)
    k = np.asarray(known, dtype=np.float64).reshape(-1, p.shape[0])
    if metric == "euclidean":
        out: np.ndarray = np.linalg.norm(k - p, axis=1)
        return out
    if metric == "cosine":
        norms = np.linalg.norm(k, axis=1) * np.linalg.norm(p)
        cos = (k @ p) / np.where(norms > 0, norms, 1.0)
        out = np.clip(1.0 - cos, 0.0, 2.0)
        return out
    raise ValueError(f"unknown face metric {metric!r}")


def face_distance(a: Vector, b: Vector, metric: Metric) -> float:
    """The distance between two encodings in the model's metric."""
    return float(face_distances(a, [b], metric)[0])


def rank_other_people(encoding: Sequence[float],
                      evidence: Mapping[int, Sequence[tuple[Sequence[float], int | None]]],
                      metric: Metric) -> list[Neighbour]:
    """Every other person with evidence, nearest first by median distance to `encoding`.

    `evidence` maps a person id to (encoding, check-in id or None for an enrolled template) pairs.
    """
    ranked = []
    for person_id, items in evidence.items():
        if not items:
            continue
        distances = face_distances(encoding, [e for e, _ in items], metric)
        ranked.append(Neighbour(person_id=person_id, distance=float(np.median(distances)),
                                nearest=float(distances.min()), evidence_count=len(items),
                                checkin_ids=tuple(c for _, c in items if c is not None)))
    return sorted(ranked, key=lambda n: (n.distance, n.nearest))


def match_face(encoding: Sequence[float], templates: Sequence[Sequence[float]], threshold: float,
               metric: Metric) -> FaceMatch:
    """Compare one face encoding with every enrolled template; the smallest distance (model's metric) decides."""
    if not templates:
        raise ValueError("no enrolled templates to compare with")
    distances = face_distances(encoding, templates, metric)
    best = int(np.argmin(distances))
    distance = float(distances[best])
    return FaceMatch(distance=distance, threshold=threshold, matched=distance <= threshold, template_index=best)
