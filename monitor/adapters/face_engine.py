"""The face engine the center uses: in this process (`face_dlib`) or in worker processes (`face_pool`).

A scan decodes a photo upright and reduced (`photo_decode`), detects faces small, encodes and measures
them, and reports what it found (`face_scan`).
"""

from __future__ import annotations

from monitor.adapters.face_dlib import FaceEngine
from monitor.adapters.face_models import FaceModel
from monitor.adapters.face_pool import ProcessFaceEngine


def create_face_engine(processes: int, model: FaceModel | None = None) -> FaceEngine | ProcessFaceEngine:
    """Face work with `model` (the default manifest when None) in `processes` worker processes; 0 runs it in the
    calling process (tests, tools)."""
    return FaceEngine(model) if processes == 0 else ProcessFaceEngine(processes if processes > 0 else None, model)
