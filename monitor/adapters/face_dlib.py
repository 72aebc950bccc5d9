"""The in-process face engine: detect faces small with face_recognition (dlib HOG), measure them, and embed them
with the model its manifest names (dlib's encoder or an aligned-crop network, `face_embedders`)."""

from __future__ import annotations

import io
import os
import threading
import warnings

import imagehash
import numpy as np
from PIL import Image, ImageFile

from monitor.adapters.face_embedders import create_embedder
from monitor.adapters.face_models import FaceModel, load_face_model
from monitor.adapters.face_scan import PLANS, FaceFound, FaceScan, Purpose
from monitor.adapters.photo_decode import UnreadablePhoto, count_few_colours, decode_upright_rgb, read_exif_facts
from monitor.decisions.faces import FEW_COLOURS, contender_order, measure_face_quality, measure_filled_share

with warnings.catch_warnings():
    # face_recognition_models still imports pkg_resources, which warns on import.
    warnings.simplefilter("ignore", UserWarning)
    import face_recognition

# face_recognition turns on LOAD_TRUNCATED_IMAGES globally; uploads are checked whole, so turn it back off.
ImageFile.LOAD_TRUNCATED_IMAGES = False


def _detect(image: np.ndarray, upsample: int) -> list[tuple[tuple[int, int, int, int], float]]:
    """HOG face boxes (top, right, bottom, left) clipped to the image, with their detection scores."""
    h, w = image.shape[:2]
    rects, scores, _ = face_recognition.api.face_detector.run(image, upsample, 0.0)
    return [((max(r.top(), 0), min(r.right(), w), min(r.bottom(), h), max(r.left(), 0)), float(sc))
            for r, sc in zip(rects, scores, strict=True)]


def _turn(array: np.ndarray, quarters: int) -> np.ndarray:
    """`array` turned counter-clockwise by `quarters` right angles, as a fresh C-ordered copy: dlib checks every
    stride, and numpy's view of a one-pixel strip turned 270 degrees keeps a negative stride on its size-1 axis."""
    return np.rot90(array, quarters).copy()


def _resize(array: np.ndarray, factor: float) -> np.ndarray:
    h, w = array.shape[:2]
    size = (max(1, round(w / factor)), max(1, round(h / factor)))  # a 1600x1 strip must not shrink to nothing
    return np.asarray(Image.fromarray(array).resize(size, Image.Resampling.BILINEAR))


class FaceEngine:
    """Face detection and measurement with face_recognition (dlib HOG), embedding with the manifest's model,
    in this process."""

    processes = 1

    def __init__(self, model: FaceModel | None = None) -> None:
        self.model = model or load_face_model()
        self.model_version = self.model.model_version
        self.metric = self.model.metric
        self._embedder = create_embedder(self.model)
        self._lock = threading.Lock()

    def scan(self, data: bytes, purpose: Purpose = "selfie") -> FaceScan:
        """Find, encode and measure every face in the photo `data` (JPEG/PNG/WebP bytes)."""
        plan = PLANS[purpose]
        try:
            img, scale, opened = decode_upright_rgb(data, plan.decode_px)
        except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as exc:
            raise UnreadablePhoto(f"{type(exc).__name__}: {str(exc)[:160]}") from None
        h, w = img.shape[:2]
        factor = plan.detection_factor(h, w)
        small = _resize(img, factor) if factor > 1 else img
        turned_deg = 0
        with self._lock:
            found = _detect(small, plan.upsample)
            if not found and plan.retry_upsample is not None:
                found = _detect(small, plan.retry_upsample)
            for quarters in (1, 3, 2) if plan.turns and not found else ():
                found = _detect(_turn(small, quarters), plan.upsample)
                if found:  # judged as turned upright (counter-clockwise by `turned_deg` degrees)
                    img = _turn(img, quarters)
                    small = _turn(small, quarters)
                    h, w = img.shape[:2]
                    turned_deg = 90 * quarters
                    break
            keep = contender_order([min(b - t, r - lft) for (t, r, b, lft), _ in found], [sc for _, sc in found])
            boxes = [
                (max(0, round(t * factor)), min(w, round(r * factor)), min(h, round(b * factor)),
                 max(0, round(lft * factor)))
                for (t, r, b, lft), _ in (found[i] for i in keep)
            ]
            scores = [found[i][1] for i in keep]
            encodings = self._embedder.embed(img, boxes)
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
        exif_time, exif_gps, exif_notes = read_exif_facts(opened)
        return FaceScan(
            colours=count_few_colours(opened, FEW_COLOURS), filled_share=measure_filled_share(grey),
            faces=faces, width=round(w * scale), height=round(h * scale),
            phash=str(imagehash.phash(Image.fromarray(small))), exif_time=exif_time, exif_gps=exif_gps,
            decode_scale=scale, extra={"pid": float(os.getpid()), "turned_deg": float(turned_deg)},
            background_faces=len(found) - len(keep),
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
