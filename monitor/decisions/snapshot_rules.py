"""A classroom snapshot's rules as a pipeline: the facts they need and the declared list of rules."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from monitor.decisions.classroom import judge_headcount
from monitor.decisions.verdicts import Finding, Thresholds, judge_replay, judge_snapshot_faces, merge_findings


@dataclass(frozen=True)
class SnapshotFacts:
    """What the snapshot shows and what the database knew when it was judged."""

    snapshot_id: int
    class_id: int
    received_at: datetime  # UTC
    face_count: int
    signed_in: int  # trainees present (signed in, not yet out) today
    near_copies: Sequence[tuple[str, int, int]]  # earlier photos: (kind, id, Hamming bits)
    exif_time: datetime | None  # UTC


SnapshotRule = Callable[[SnapshotFacts, Thresholds], list[Finding]]


def check_anyone_seen(f: SnapshotFacts, t: Thresholds) -> list[Finding]:
    """FACE_MISSING: nobody in the classroom."""
    return judge_snapshot_faces(f.face_count)


def check_headcount(f: SnapshotFacts, t: Thresholds) -> list[Finding]:
    """HEADCOUNT_GAP."""
    return judge_headcount(f.face_count, f.signed_in, t.headcount_min_ratio, t.headcount_min_signed_in)


def check_snapshot_replay(f: SnapshotFacts, t: Thresholds) -> list[Finding]:
    """PHOTO_REPLAY (a snapshot carries no GPS of its own)."""
    return judge_replay(f.near_copies, f.exif_time, f.received_at, None, None, t)


SNAPSHOT_RULES: tuple[SnapshotRule, ...] = (check_anyone_seen, check_headcount, check_snapshot_replay)


def judge_snapshot(facts: SnapshotFacts, t: Thresholds, rules: Sequence[SnapshotRule] = SNAPSHOT_RULES
                   ) -> list[Finding]:
    """Run every rule in order; one finding per code."""
    return merge_findings([finding for rule in rules for finding in rule(facts, t)])
