"""Verification rules for one upload as pure functions: face and fence findings with their evidence."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from models.domain import AnomalyCode, FenceResult, Severity
from monitor.faces import FaceMatch


@dataclass(frozen=True)
class Finding:
    """One rule that fired: code, severity, zh-CN explanation, measured evidence and thresholds."""

    code: AnomalyCode
    severity: Severity
    message: str
    evidence: dict[str, Any] = field(default_factory=dict)
    thresholds: dict[str, Any] = field(default_factory=dict)

    def as_reason(self) -> dict[str, Any]:
        return {"code": self.code.value, "message": self.message}


def judge_checkin_face(face_count: int, match: FaceMatch | None) -> list[Finding]:
    """FACE_MISSING, FACE_MULTIPLE or FACE_MISMATCH for a sign-in selfie; [] when it is the trainee."""
    if face_count == 0:
        return [Finding(AnomalyCode.FACE_MISSING, Severity.MEDIUM, "签到照片中未检测到人脸", {"face_count": 0})]
    if face_count > 1:
        return [
            Finding(
                AnomalyCode.FACE_MULTIPLE,
                Severity.MEDIUM,
                f"签到照片中检测到 {face_count} 张人脸，只能有学员本人",
                {"face_count": face_count},
            )
        ]
    if match is None:
        raise ValueError("one face found but no match computed")
    if match.matched:
        return []
    return [
        Finding(
            AnomalyCode.FACE_MISMATCH,
            Severity.HIGH,
            f"人脸与登记照片不符（相似距离 {match.distance:.2f}，阈值 {match.threshold:.2f}）",
            {"face_distance": round(match.distance, 4), "template_index": match.template_index},
            {"face_match_threshold": match.threshold},
        )
    ]


def judge_fence(result: FenceResult, signed_distance_m: float, accuracy_m: float) -> list[Finding]:
    """OUT_OF_FENCE when the fix's whole accuracy circle lies outside the venue; uncertain is not alarmed."""
    if result is not FenceResult.OUTSIDE:
        return []
    return [
        Finding(
            AnomalyCode.OUT_OF_FENCE,
            Severity.HIGH,
            f"定位位于培训场地围栏外约 {signed_distance_m:,.0f} 米（定位精度 {accuracy_m:.0f} 米）",
            {"outside_by_m": round(signed_distance_m, 1), "accuracy_m": accuracy_m},
        )
    ]


def judge_snapshot_faces(face_count: int) -> list[Finding]:
    """A classroom snapshot in which nobody can be seen."""
    if face_count > 0:
        return []
    return [Finding(AnomalyCode.FACE_MISSING, Severity.MEDIUM, "课堂抓拍中未检测到任何人脸", {"face_count": 0})]
