"""The face engine the center uses: in this process (`face_dlib`) or in worker processes (`face_pool`).

A scan decodes a photo upright and reduced (`photo_decode`), detects faces small, encodes and measures
them, and reports what it found (`face_scan`). The names callers use are importable from here.
"""

from __future__ import annotations

from monitor.adapters.face_dlib import FaceEngine
from monitor.adapters.face_pool import ProcessFaceEngine
from monitor.adapters.face_scan import MODEL_VERSION, PLANS, FaceFound, FaceScan, Purpose, ScanPlan
from monitor.adapters.photo_decode import UnreadablePhoto, decode_upright_rgb, to_8bit_grey

__all__ = [
    "MODEL_VERSION", "PLANS", "FaceEngine", "FaceFound", "FaceScan", "ProcessFaceEngine", "Purpose", "ScanPlan",
    "UnreadablePhoto", "create_face_engine", "decode_upright_rgb", "to_8bit_grey",
]


def create_face_engine(processes: int) -> FaceEngine | ProcessFaceEngine:
    """Face work in `processes` worker processes; 0 runs it in the calling process (tests, tools)."""
    return FaceEngine() if processes == 0 else ProcessFaceEngine(processes if processes > 0 else None)
