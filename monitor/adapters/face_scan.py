"""What a face scan asks for and finds: the scan plan of each purpose, the faces found and the photo's facts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from monitor.decisions.faces import Box, PhotoShape

Purpose = Literal["selfie", "enrolment", "classroom", "frame"]


@dataclass(frozen=True)
class ScanPlan:
    """How hard to look: decode size, detection size and HOG upsampling (pixels are long sides)."""

    decode_px: int
    detect_px: int
    upsample: int
    retry_upsample: int | None
    landmarks: bool = False
    turns: bool = False  # when nothing is found, look at the picture turned a quarter, three quarters, a half

    def detection_factor(self, height_px: int, width_px: int) -> float:
        """How much to shrink a decoded picture for detection (1.0: not at all): its longer side to `detect_px`,
        but its shorter side never below half of that. A face spans a strip's short side: a 4000x800 photo brought
        to 400x80 left its 223 px face 22 px, under what HOG can see (FACE_MISSING on a trainee who was there)."""
        return max(1.0, min(max(height_px, width_px) / self.detect_px,
                            min(height_px, width_px) / (self.detect_px / 2)))


PLANS: dict[str, ScanPlan] = {
    # A selfie's face fills a good part of the frame: detect small and fast, look harder only if nothing is found.
    # A phone that writes its pixels sideways without an EXIF orientation (some WebView cameras) sends a face lying
    # down, which HOG does not see: a selfie or an enrolment photo in which nothing is found is looked at turned.
    "selfie": ScanPlan(decode_px=1000, detect_px=400, upsample=0, retry_upsample=1, turns=True),
    "enrolment": ScanPlan(decode_px=1600, detect_px=1024, upsample=1, retry_upsample=None, turns=True),
    # A classroom shot holds small faces: keep detail and upsample. A phone or camera held sideways without an EXIF
    # orientation shows a room of faces lying down, 0 seen: a false HEADCOUNT_GAP unless it is looked at turned.
    "classroom": ScanPlan(decode_px=2400, detect_px=1600, upsample=1, retry_upsample=2, turns=True),
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
    colours: int | None = None  # distinct colours of the decoded picture when at most FEW_COLOURS, else None
    filled_share: float = 0.0  # share of the picture a decoder filled in (a file cut short): measure_filled_share

    @property
    def shape(self) -> PhotoShape:
        """The picture apart from its faces, as the rules judge it."""
        return PhotoShape(min(self.width, self.height), self.colours, self.filled_share)

    @property
    def boxes(self) -> list[Box]:
        return [f.box for f in self.faces]

    @property
    def encodings(self) -> list[list[float]]:
        return [f.encoding for f in self.faces]

