"""A check-in's rules as a pipeline: the facts they need, the declared list of rules, and the verdict they make."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from models.clock import SHANGHAI
from models.domain import FenceResult
from monitor.decisions.faces import FaceMatch, FaceQuality, Neighbour, PhotoShape
from monitor.decisions.geodesy import distance_m
from monitor.decisions.liveness import ChallengeFacts, FrameFacts, judge_liveness
from monitor.decisions.rules import judge_session_time, judge_two_places
from monitor.decisions.verdicts import (
    Finding,
    PriorCheckIn,
    Review,
    Thresholds,
    judge_checkin_face,
    judge_fence,
    judge_gps,
    judge_proxy,
    judge_replay,
    merge_findings,
)


@dataclass(frozen=True)
class ElsewhereCheckIn:
    """A verified check-in of the same trainee for another class, close in time."""

    checkin_id: int
    class_id: int
    captured_at: datetime
    lat: float
    lon: float


@dataclass(frozen=True)
class BurstFacts:
    """The liveness burst sent with the check-in: the challenge it answers and what each frame shows."""

    challenge: ChallengeFacts
    frames: Sequence[FrameFacts]
    replayed_frames: int


@dataclass(frozen=True)
class CheckInFacts:
    """Everything the check-in rules judge: the upload, what the photo shows, and what the database knew."""

    checkin_id: int
    trainee_id: int
    class_id: int
    kind: str  # sign_in | sign_out
    captured_at: datetime  # UTC
    received_at: datetime  # UTC
    fix: tuple[float, float]  # WGS-84 latitude, longitude
    accuracy_m: float
    mock_location: bool
    face_count: int
    face_quality: FaceQuality | None
    face_encoding: Sequence[float] | None
    match: FaceMatch | None
    classmates: Sequence[Neighbour]  # the class's other trainees, nearest first
    fence: FenceResult
    fence_signed_m: float  # metres to the fence's edge, negative inside
    uncertain_fixes_today: int  # this one included
    previous: PriorCheckIn | None
    same_coordinates: Sequence[int]  # check-ins of other devices with exactly these coordinates
    near_copies: Sequence[tuple[str, int, int]]  # earlier photos: (kind, id, Hamming bits)
    exif_time: datetime | None  # UTC
    exif_gps: tuple[float, float] | None
    device_recent: Sequence[PriorCheckIn]
    session_window: tuple[str, str] | None  # HH:MM local start and end of the registered session
    elsewhere: ElsewhereCheckIn | None
    burst: BurstFacts | None
    photo: PhotoShape | None = None  # the picture apart from its faces: size, colours, a decoder's fill


@dataclass
class Judgement:
    """What one rule (or the whole pipeline) concluded: anomalies, a case for an operator, figures to record."""

    findings: list[Finding] = field(default_factory=list)
    review: Review | None = None
    measured: dict[str, Any] = field(default_factory=dict)


CheckInRule = Callable[[CheckInFacts, Thresholds], Judgement]


def check_face(f: CheckInFacts, t: Thresholds) -> Judgement:
    """FACE_MISSING / FACE_MULTIPLE / FACE_POOR / FACE_MISMATCH / PROXY_SIGNIN by face, or a review."""
    findings, review = judge_checkin_face(f.face_count, f.face_quality, f.match, t, f.classmates, f.photo)
    return Judgement(findings, review)


def check_fence(f: CheckInFacts, t: Thresholds) -> Judgement:
    """OUT_OF_FENCE."""
    return Judgement(judge_fence(f.fence, f.fence_signed_m, f.accuracy_m, f.uncertain_fixes_today, t))


def check_gps(f: CheckInFacts, t: Thresholds) -> Judgement:
    """GPS_IMPLAUSIBLE."""
    moved_m = distance_m(f.fix, (f.previous.lat, f.previous.lon)) if f.previous else None
    return Judgement(judge_gps(f.mock_location, f.accuracy_m, f.fix, f.captured_at, f.previous, moved_m,
                               f.same_coordinates, t))


def check_replay(f: CheckInFacts, t: Thresholds) -> Judgement:
    """PHOTO_REPLAY."""
    exif_gps_m = distance_m(f.exif_gps, f.fix) if f.exif_gps else None
    return Judgement(judge_replay(f.near_copies, f.exif_time, f.received_at, f.exif_gps, exif_gps_m, t))


def check_device(f: CheckInFacts, t: Thresholds) -> Judgement:
    """PROXY_SIGNIN by device."""
    return Judgement(judge_proxy(f.trainee_id, f.device_recent, t))


def check_session_time(f: CheckInFacts, t: Thresholds) -> Judgement:
    """OUTSIDE_SESSION."""
    if f.session_window is None:
        return Judgement()
    start, end = f.session_window
    return Judgement(judge_session_time(f.kind, f.captured_at.astimezone(SHANGHAI), start, end, t.session_grace_min))


def check_two_places(f: CheckInFacts, t: Thresholds) -> Judgement:
    """DOUBLE_ENROLMENT: two classes at two places at once."""
    e = f.elsewhere
    if e is None:
        return Judgement()
    return Judgement(judge_two_places(distance_m(f.fix, (e.lat, e.lon)),
                                      abs((f.captured_at - e.captured_at).total_seconds()) / 60, e.class_id,
                                      e.checkin_id, t.two_places_max_min, t.two_places_min_distance_m))


def check_liveness(f: CheckInFacts, t: Thresholds) -> Judgement:
    """LIVENESS_FAILED, when the check-in came with a burst."""
    if f.burst is None:
        return Judgement(measured={"liveness": None})
    findings, measured = judge_liveness(f.burst.challenge, f.trainee_id, f.class_id, f.received_at, f.burst.frames,
                                        f.face_encoding, f.burst.replayed_frames, t.liveness)
    return Judgement(findings, measured={"liveness": measured})


CHECKIN_RULES: tuple[CheckInRule, ...] = (
    check_face, check_fence, check_gps, check_replay, check_device, check_session_time, check_two_places,
    check_liveness,
)


def judge_checkin(facts: CheckInFacts, t: Thresholds, rules: Sequence[CheckInRule] = CHECKIN_RULES) -> Judgement:
    """Run every rule in order: their findings merged (one per code), the first review, all figures."""
    verdict = Judgement()
    for rule in rules:
        judged = rule(facts, t)
        verdict.findings += judged.findings
        verdict.review = verdict.review or judged.review
        verdict.measured |= judged.measured
    verdict.findings = merge_findings(verdict.findings)
    return verdict
