"""Classroom rules as pure functions: who is in a snapshot, headcount against sign-ins, teacher presence."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from models.domain import AnomalyCode, Severity
from monitor.decisions.faces import Metric, Vector, face_distances
from monitor.decisions.verdicts import Finding


@dataclass(frozen=True)
class Candidate:
    """An enrolled face that may appear in a classroom: a trainee or a teacher, one template."""

    kind: str  # trainee | teacher
    person_id: int
    encoding: Vector


@dataclass(frozen=True)
class Identified:
    kind: str
    person_id: int
    distance: float


def identify_faces(encodings: Sequence[Sequence[float]], candidates: Sequence[Candidate],
                   threshold: float, metric: Metric) -> list[Identified | None]:
    """For each face the nearest candidate within `threshold`, else None (an unknown face)."""
    if not candidates or not encodings:
        return [None] * len(encodings)
    known = np.asarray([c.encoding for c in candidates], dtype=np.float64)
    out: list[Identified | None] = []
    for enc in encodings:
        distances = face_distances(enc, known, metric)
        best = int(np.argmin(distances))
        c = candidates[best]
        out.append(Identified(c.kind, c.person_id, float(distances[best])) if distances[best] <= threshold else None)
    return out


def judge_headcount(face_count: int, signed_in: int, min_ratio: float, min_signed_in: int) -> list[Finding]:
    """HEADCOUNT_GAP: the snapshot shows far fewer people than are signed in."""
    if signed_in < min_signed_in or face_count >= signed_in * min_ratio:
        return []
    return [Finding(AnomalyCode.HEADCOUNT_GAP, Severity.MEDIUM,
                    f"课堂抓拍仅见 {face_count} 人，而当前签到在课 {signed_in} 人",
                    {"face_count": face_count, "signed_in": signed_in},
                    {"headcount_min_ratio": min_ratio, "headcount_min_signed_in": min_signed_in})]


def judge_teachers(snapshots: int, class_teachers_seen: Sequence[int], other_teachers_seen: Sequence[int],
                   session_name: str) -> list[Finding]:
    """TEACHER_ABSENT / TEACHER_MISMATCH over all snapshots of one ended session (none: nothing to judge)."""
    if snapshots == 0 or class_teachers_seen:
        return []
    if other_teachers_seen:
        return [Finding(AnomalyCode.TEACHER_MISMATCH, Severity.HIGH,
                        f"{session_name}课时的 {snapshots} 张课堂抓拍中未见登记教师，却出现其他教师（编号 "
                        f"{', '.join(map(str, sorted(set(other_teachers_seen))))}）",
                        {"snapshots": snapshots, "other_teacher_ids": sorted(set(other_teachers_seen))})]
    return [Finding(AnomalyCode.TEACHER_ABSENT, Severity.HIGH,
                    f"{session_name}课时的 {snapshots} 张课堂抓拍中均未见登记的理论或实操教师",
                    {"snapshots": snapshots})]
