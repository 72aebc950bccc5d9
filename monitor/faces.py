"""Face decisions as pure functions: enrolment acceptance and check-in matching against templates."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

# (top, right, bottom, left) in pixels of the original (EXIF-upright) photo.
Box = tuple[int, int, int, int]


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


def explain_enrolment_problem(boxes: Sequence[Box], min_face_px: int) -> str | None:
    """Why a photo cannot be an enrolment photo (zh-CN), or None if it shows one large-enough face."""
    if not boxes:
        return "照片中未检测到人脸"
    if len(boxes) > 1:
        return f"照片中检测到 {len(boxes)} 张人脸，登记照片只能有一人"
    side = box_side_px(boxes[0])
    if side < min_face_px:
        return f"人脸过小（{side} 像素，至少需要 {min_face_px} 像素）"
    return None


def match_face(encoding: Sequence[float], templates: Sequence[Sequence[float]], threshold: float) -> FaceMatch:
    """Compare one face encoding with every enrolled template; the smallest Euclidean distance decides."""
    if not templates:
        raise ValueError("no enrolled templates to compare with")
    known = np.asarray(templates, dtype=np.float64)
    distances = np.linalg.norm(known - np.asarray(encoding, dtype=np.float64), axis=1)
    best = int(np.argmin(distances))
    distance = float(distances[best])
    return FaceMatch(distance=distance, threshold=threshold, matched=distance <= threshold, template_index=best)
