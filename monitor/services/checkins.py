"""A check-in's verification: load every fact its rules need (all queries here), judge them with the declared
rules (monitor/decisions/checkin_rules.py), record the outcome (monitor/services/recorder.py)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models.clock import SHANGHAI, local_day_start, utc_now
from models.domain import FenceResult
from models.tables import (
    CheckIn,
    CheckInFrame,
    ClassSession,
    FaceTemplate,
    LivenessChallenge,
    RosterEntry,
    TrainingClass,
    Venue,
    Verification,
)
from models.terms import SubjectKind, UploadStatus
from monitor.adapters.face_scan import FaceFound, FaceScan
from monitor.decisions.checkin_rules import BurstFacts, CheckInFacts, ElsewhereCheckIn, Judgement, judge_checkin
from monitor.decisions.faces import FaceQuality, match_face, rank_other_people
from monitor.decisions.geodesy import circle_signed_distance_m, classify_fix, polygon_signed_distance_m
from monitor.decisions.liveness import ChallengeFacts, FrameFacts
from monitor.decisions.verdicts import PriorCheckIn
from monitor.services.context import WorkerContext
from monitor.services.photo_hashes import earlier_near_copies, reserve_photo_hash
from monitor.services.recorder import Outcome, already_verified, mark_processed, record_outcome

log = logging.getLogger(__name__)

CLASSMATE_RECENT_CHECKINS = 3  # a classmate's passed check-ins of the day kept as evidence of their face


@dataclass
class CheckInCase:
    """A loaded check-in: the facts for the rules, and what the record cites besides (scan, enrolled photo)."""

    facts: CheckInFacts
    checkin: CheckIn
    scan: FaceScan
    face: FaceFound | None
    enrolled_sha: str | None
    frame_hashes: list[tuple[str, str]]


def verify_checkin(ctx: WorkerContext, checkin_id: int) -> None:
    """Verify one check-in against every rule of the verification catalogue; idempotent."""
    case = load_checkin(ctx, checkin_id)
    if case is None:
        return
    judged = judge_checkin(case.facts, ctx.thresholds)
    record_outcome(ctx.db, checkin_outcome(ctx, case, judged))


# -- facts ---------------------------------------------------------------------------------------------------------
def load_checkin(ctx: WorkerContext, checkin_id: int) -> CheckInCase | None:
    """Every fact the check-in rules judge; None when the check-in is unknown or was verified already."""
    t = ctx.thresholds
    with ctx.db.session() as session:
        checkin = session.get(CheckIn, checkin_id)
        if checkin is None:
            log.warning("check-in %s not found; dropping message", checkin_id)
            return None
        if already_verified(session, SubjectKind.CHECKIN, checkin_id):
            mark_processed(session, SubjectKind.CHECKIN, checkin_id)
            return None
        templates = session.scalars(select(FaceTemplate).where(
            FaceTemplate.person_kind == "trainee", FaceTemplate.person_id == checkin.trainee_id,
            FaceTemplate.model_version == ctx.engine.model_version).order_by(FaceTemplate.id)).all()
        cls = session.get(TrainingClass, checkin.class_id)
        venue = session.get(Venue, cls.venue_id) if cls else None
        assert cls is not None and venue is not None
        challenge = session.get(LivenessChallenge, checkin.liveness_challenge_id) \
            if checkin.liveness_challenge_id else None
        window = session.get(ClassSession, checkin.session_id) if checkin.session_id else None
        frame_shas = list(session.scalars(select(CheckInFrame.sha256).where(CheckInFrame.checkin_id == checkin_id)
                                          .order_by(CheckInFrame.index)))
        session.expunge_all()
    fix = (checkin.lat, checkin.lon)
    scan = ctx.engine.scan(ctx.evidence.get(checkin.photo_sha256), "selfie")
    face = scan.faces[0] if len(scan.faces) == 1 else None
    match = match_face(face.encoding, [tp.encoding for tp in templates], t.face_match, t.metric) \
        if face and templates else None
    signed = venue_signed_distance_m(venue, *fix)
    fence = classify_fix(signed, checkin.accuracy_m)
    day_start = local_day_start(checkin.received_at)
    with ctx.db.session() as session:
        uncertain_today = count_uncertain_fixes(session, checkin.trainee_id, day_start) + (
            fence is FenceResult.UNCERTAIN)
        previous = prior_checkin_of_trainee(session, checkin)
        same_coords = same_coordinates_other_devices(session, checkin)
        classmates = classmates_evidence(session, checkin, day_start, ctx.engine.model_version) if match else {}
        elsewhere = checkin_elsewhere(session, checkin, timedelta(minutes=t.two_places_max_min))
        device_recent = device_checkins_since(
            session, checkin.device_id, checkin.received_at - timedelta(seconds=t.proxy_device_window_s), checkin.id)
    own_hash = reserve_photo_hash(ctx.db, checkin.photo_sha256, scan.phash, SubjectKind.CHECKIN, checkin.id)
    near_copies = earlier_near_copies(ctx.db, ctx.photo_index, own_hash, scan.phash, t.replay_phash_max_distance)
    frame_hashes, burst = load_burst(ctx, checkin, challenge, frame_shas, own_hash)
    facts = CheckInFacts(
        checkin_id=checkin.id, trainee_id=checkin.trainee_id, class_id=checkin.class_id, kind=checkin.kind,
        captured_at=checkin.captured_at, received_at=checkin.received_at, fix=fix, accuracy_m=checkin.accuracy_m,
        mock_location=checkin.mock_location, face_count=len(scan.faces), face_quality=quality_of(face),
        face_encoding=face.encoding if face else None, match=match,
        classmates=rank_other_people(face.encoding, classmates, t.metric) if face and match else [],
        fence=fence, fence_signed_m=signed, uncertain_fixes_today=uncertain_today, previous=previous,
        same_coordinates=same_coords, near_copies=near_copies,
        exif_time=exif_time_utc(scan.exif_time), exif_gps=scan.exif_gps, device_recent=device_recent,
        session_window=(window.start_local, window.end_local) if window else None, elsewhere=elsewhere, burst=burst,
        photo=scan.shape)
    enrolled_sha = templates[match.template_index].photo_sha256 if match else (
        templates[0].photo_sha256 if templates else None)
    return CheckInCase(facts, checkin, scan, face, enrolled_sha, frame_hashes)


def load_burst(ctx: WorkerContext, checkin: CheckIn, challenge: LivenessChallenge | None, frame_shas: list[str],
               own_hash: int) -> tuple[list[tuple[str, str]], BurstFacts | None]:
    """The liveness burst's frames scanned, with their (sha256, pHash), when the check-in answers a challenge; a
    frame is a replay when it nearly copies an earlier photo (not this check-in's own selfie, row `own_hash`)."""
    if challenge is None:
        return [], None
    scans = [ctx.engine.scan(ctx.evidence.get(sha), "frame") for sha in frame_shas]
    replayed = sum(1 for fs in scans if ctx.photo_index.find_near(
        fs.phash, ctx.thresholds.replay_phash_max_distance, before_id=own_hash))
    frames = [FrameFacts(face_count=len(fs.faces), encoding=fs.faces[0].encoding if len(fs.faces) == 1 else None,
                         landmarks=fs.faces[0].landmarks if len(fs.faces) == 1 else None, phash=fs.phash)
              for fs in scans]
    used_by_other = challenge.used_by_checkin_id not in (None, checkin.id)
    facts = ChallengeFacts(action=challenge.action, trainee_id=challenge.trainee_id, class_id=challenge.class_id,
                           expires_at=challenge.expires_at, used_by_other_checkin=used_by_other)
    return [(sha, fs.phash) for sha, fs in zip(frame_shas, scans, strict=True)], BurstFacts(facts, frames, replayed)


def venue_signed_distance_m(venue: Venue, lat: float, lon: float) -> float:
    """Metres from a WGS-84 fix to the venue fence's edge: negative inside."""
    if venue.shape == "circle":
        assert venue.radius_m is not None
        return circle_signed_distance_m((lat, lon), (venue.center_lat, venue.center_lon), venue.radius_m)
    assert venue.polygon is not None
    return polygon_signed_distance_m((lat, lon), venue.polygon)


def quality_of(face: FaceFound | None) -> FaceQuality | None:
    if face is None:
        return None
    return FaceQuality(side_px=face.side_px, sharpness=face.sharpness, brightness=face.brightness,
                       cut_off=face.cut_off)


def exif_time_utc(exif_time: str | None) -> datetime | None:
    """An EXIF capture time (camera local time, no zone) read as Asia/Shanghai; None when absent or impossible."""
    if not exif_time:
        return None
    try:
        return datetime.fromisoformat(exif_time).replace(tzinfo=SHANGHAI).astimezone(UTC)
    except (ValueError, OverflowError):
        return None


def _prior(c: CheckIn) -> PriorCheckIn:
    return PriorCheckIn(checkin_id=c.id, trainee_id=c.trainee_id, captured_at=c.captured_at, lat=c.lat,
                        lon=c.lon, device_id=c.device_id)


def count_uncertain_fixes(session: Session, trainee_id: int, since: datetime) -> int:
    return int(session.scalar(
        select(func.count()).select_from(Verification)
        .join(CheckIn, (Verification.subject_kind == SubjectKind.CHECKIN) & (Verification.subject_id == CheckIn.id))
        .where(CheckIn.trainee_id == trainee_id, CheckIn.received_at >= since,
               Verification.fence_result == FenceResult.UNCERTAIN.value)
    ) or 0)


def prior_checkin_of_trainee(session: Session, checkin: CheckIn) -> PriorCheckIn | None:
    prior = session.scalar(
        select(CheckIn).where(CheckIn.trainee_id == checkin.trainee_id, CheckIn.id != checkin.id,
                              CheckIn.captured_at <= checkin.captured_at)
        .order_by(CheckIn.captured_at.desc()).limit(1))
    return _prior(prior) if prior else None


def same_coordinates_other_devices(session: Session, checkin: CheckIn, limit: int = 20) -> list[int]:
    return list(session.scalars(
        select(CheckIn.id).where(CheckIn.lat == checkin.lat, CheckIn.lon == checkin.lon,
                                 CheckIn.device_id != checkin.device_id, CheckIn.id != checkin.id)
        .order_by(CheckIn.id.desc()).limit(limit)))


def classmates_evidence(session: Session, checkin: CheckIn, since: datetime, model_version: str
                        ) -> dict[int, list[tuple[list[float], int | None]]]:
    """Each other rostered trainee's face evidence: enrolled templates and their latest
    `CLASSMATE_RECENT_CHECKINS` check-ins passed since `since`, as vectors of the engine's model (`model_version`)
    only. Bounded per classmate, so a check-in late in the day costs what an early one does.

    Failed or doubtful check-ins are not evidence of whose face is whose.
    """
    evidence: dict[int, list[tuple[list[float], int | None]]] = {}
    roster = select(RosterEntry.trainee_id).where(RosterEntry.class_id == checkin.class_id,
                                                  RosterEntry.trainee_id != checkin.trainee_id)
    for person_id, encoding in session.execute(
            select(FaceTemplate.person_id, FaceTemplate.encoding)
            .where(FaceTemplate.person_kind == "trainee", FaceTemplate.person_id.in_(roster),
                   FaceTemplate.model_version == model_version)):
        evidence.setdefault(person_id, []).append((encoding, None))
    # Which check-ins first, without their vectors (a window over every passed check-in of the class today), then
    # the vectors of those few: a window carrying each row's 512 numbers read them all, late in a day thousands.
    recent = (
        select(CheckIn.id, CheckIn.trainee_id,
               func.row_number().over(partition_by=CheckIn.trainee_id, order_by=CheckIn.id.desc()).label("nth"))
        .join(Verification, (Verification.subject_kind == SubjectKind.CHECKIN)
              & (Verification.subject_id == CheckIn.id))
        .where(CheckIn.class_id == checkin.class_id, CheckIn.received_at >= since, CheckIn.id != checkin.id,
               CheckIn.trainee_id != checkin.trainee_id, CheckIn.status == UploadStatus.PASSED,
               Verification.face_encoding.is_not(None), Verification.model_version == model_version)
        .subquery())
    chosen = dict(session.execute(select(recent.c.id, recent.c.trainee_id)
                                  .where(recent.c.nth <= CLASSMATE_RECENT_CHECKINS)).all())
    for checkin_id, encoding in session.execute(
            select(Verification.subject_id, Verification.face_encoding)
            .where(Verification.subject_kind == SubjectKind.CHECKIN, Verification.subject_id.in_(list(chosen)),
                   Verification.model_version == model_version)
            .order_by(Verification.subject_id.desc())):
        if encoding:  # a check-in with no face vector (a group photo later counted valid): no evidence of a face;
            # rows written before the column stored SQL NULL hold JSON null, which `is_not(None)` lets through
            evidence.setdefault(chosen[checkin_id], []).append((encoding, checkin_id))
    return evidence


def checkin_elsewhere(session: Session, checkin: CheckIn, within: timedelta) -> ElsewhereCheckIn | None:
    """A verified check-in of the same trainee for another class captured within `within` of this one."""
    other = session.scalars(select(CheckIn).where(
        CheckIn.trainee_id == checkin.trainee_id, CheckIn.class_id != checkin.class_id,
        CheckIn.status == UploadStatus.PASSED,
        CheckIn.captured_at >= checkin.captured_at - within,
        CheckIn.captured_at <= checkin.captured_at + within).limit(1)).first()
    if other is None:
        return None
    return ElsewhereCheckIn(other.id, other.class_id, other.captured_at, other.lat, other.lon)


def device_checkins_since(session: Session, device_id: str, since: datetime, exclude_id: int) -> list[PriorCheckIn]:
    return [_prior(c) for c in session.scalars(
        select(CheckIn).where(CheckIn.device_id == device_id, CheckIn.received_at >= since,
                              CheckIn.id != exclude_id))]


# -- record --------------------------------------------------------------------------------------------------------
def face_measures(face: FaceFound) -> dict[str, Any]:
    return {"box": list(face.box), "side_px": face.side_px, "sharpness": round(face.sharpness, 1),
            "brightness": round(face.brightness, 1), "cut_off": face.cut_off,
            "detection_score": face.detection_score}


def checkin_outcome(ctx: WorkerContext, case: CheckInCase, judged: Judgement) -> Outcome:
    """What is stored of a judged check-in: the verification with every figure measured, and what events cite."""
    f, scan, review = case.facts, case.scan, judged.review
    match = f.match
    measured = {
        "face_count": len(scan.faces),
        "background_faces": scan.background_faces,
        "faces": [face_measures(face) for face in scan.faces],
        "face_distance": match.distance if match else None,
        "nearest_classmates": [{"trainee_id": o.person_id, "median_distance": round(o.distance, 4),
                                "min_distance": round(o.nearest, 4)} for o in f.classmates[:3]],
        "fence_signed_distance_m": round(f.fence_signed_m, 2),
        "accuracy_m": f.accuracy_m,
        "image_size": [scan.width, scan.height],
        "phash": scan.phash,
        "exif_time": scan.exif_time,
        "exif_gps": list(scan.exif_gps) if scan.exif_gps else None,
        "exif_notes": scan.exif_notes,
        "near_copies": len(f.near_copies),
        "scanned_by_pid": scan.extra.get("pid"),
        "turned_deg": scan.extra.get("turned_deg") or None,  # a photo sent sideways without EXIF, judged upright
        **judged.measured,
        "review": {"code": review.code, "message": review.message} if review else None,
    }
    verification = Verification(
        subject_kind=SubjectKind.CHECKIN, subject_id=f.checkin_id, passed=not judged.findings and review is None,
        face_count=len(scan.faces), face_distance=match.distance if match else None, fence_result=f.fence.value,
        fence_distance_m=f.fence_signed_m, measured=measured, thresholds=ctx.thresholds.as_dict(),
        model_version=ctx.engine.model_version, reasons=[x.as_reason() for x in judged.findings],
        needs_review=review is not None, face_encoding=case.face.encoding if case.face else None, created_at=utc_now())
    return Outcome(
        kind=SubjectKind.CHECKIN, subject_id=f.checkin_id, findings=judged.findings, review=review,
        verification=verification, photo=(case.checkin.photo_sha256, scan.phash), frames=case.frame_hashes,
        extra={"photo_sha256": case.checkin.photo_sha256, "enrolled_photo_sha256": case.enrolled_sha,
               "fix": {"lat": f.fix[0], "lon": f.fix[1], "accuracy_m": f.accuracy_m}, "fence_result": f.fence.value,
               "face": {"engine": ctx.thresholds.face_engine, "model_sha256": ctx.thresholds.face_model_sha256,
                        "metric": ctx.thresholds.metric, "threshold": ctx.thresholds.face_match,
                        "mismatch_threshold": ctx.thresholds.face_mismatch,
                        "distance": round(match.distance, 4) if match else None}})
