"""The dlib adapter: decode a photo upright, detect faces on a reduced copy, encode at full detail."""

from __future__ import annotations

import io
import threading
import warnings
from dataclasses import dataclass

import dlib

with warnings.catch_warnings():
    # face_recognition_models still imports pkg_resources, which warns on import.
    warnings.simplefilter("ignore", UserWarning)
    import face_recognition
import numpy as np
from PIL import Image, ImageFile, ImageOps

from monitor.faces import Box

# face_recognition turns on LOAD_TRUNCATED_IMAGES globally; uploads are checked whole, so turn it back off.
ImageFile.LOAD_TRUNCATED_IMAGES = False

MODEL_VERSION = f"face_recognition-1.3.0/dlib-{dlib.__version__}/hog/resnet-5pt"


@dataclass(frozen=True)
class FaceScan:
    """Faces found in one photo: boxes in upright-photo pixels and one 128-d encoding per box."""

    boxes: list[Box]
    encodings: list[list[float]]
    width: int
    height: int


def decode_upright_rgb(data: bytes, max_side_px: int) -> tuple[np.ndarray, float]:
    """Decode `data`, apply the EXIF orientation, convert to RGB and shrink to at most `max_side_px`.

    Returns the array and the scale from the returned array to the upright original (>= 1).
    """
    image = Image.open(io.BytesIO(data))
    full_w, full_h = image.size
    if image.format == "JPEG":
        # Let libjpeg decode at 1/2, 1/4 or 1/8 when that still leaves max_side_px.
        image.draft("RGB", (max_side_px, max_side_px))
    image = ImageOps.exif_transpose(image)
    if image.mode != "RGB":
        if image.mode in ("RGBA", "LA", "P"):
            image = image.convert("RGBA")
            background = Image.new("RGBA", image.size, (255, 255, 255, 255))
            image = Image.alpha_composite(background, image)
        image = image.convert("RGB")
    longest = max(image.size)
    if longest > max_side_px:
        image.thumbnail((max_side_px, max_side_px), Image.Resampling.BILINEAR)
    upright_long = max(full_w, full_h)
    return np.asarray(image), upright_long / max(image.size)


class FaceEngine:
    """Thread-safe face detection and encoding with face_recognition (dlib HOG + ResNet)."""

    model_version = MODEL_VERSION

    def __init__(self, detect_max_side_px: int = 1024, encode_max_side_px: int = 2048) -> None:
        self.detect_max_side_px = detect_max_side_px
        self.encode_max_side_px = encode_max_side_px
        self._lock = threading.Lock()

    def scan(self, data: bytes, upsample: int = 1) -> FaceScan:
        """Find and encode every face in the photo `data` (JPEG/PNG/WebP bytes)."""
        encode_img, encode_scale = decode_upright_rgb(data, self.encode_max_side_px)
        h, w = encode_img.shape[:2]
        factor = max(h, w) / self.detect_max_side_px
        if factor > 1:
            small = np.asarray(
                Image.fromarray(encode_img).resize(
                    (round(w / factor), round(h / factor)), Image.Resampling.BILINEAR
                )
            )
        else:
            small, factor = encode_img, 1.0
        with self._lock:
            small_boxes = face_recognition.face_locations(small, number_of_times_to_upsample=upsample)
            encode_boxes = [
                (
                    max(0, round(t * factor)),
                    min(w, round(r * factor)),
                    min(h, round(b * factor)),
                    max(0, round(lft * factor)),
                )
                for (t, r, b, lft) in small_boxes
            ]
            encodings = face_recognition.face_encodings(encode_img, encode_boxes, num_jitters=1)
        boxes = [tuple(round(v * encode_scale) for v in box) for box in encode_boxes]
        return FaceScan(
            boxes=boxes,  # type: ignore[arg-type]
            encodings=[[float(x) for x in enc] for enc in encodings],
            width=round(w * encode_scale),
            height=round(h * encode_scale),
        )
