"""An online-study heartbeat's verification: the trainee's face, then the day's verified study against the cap."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from models.clock import SHANGHAI, utc_now
from models.tables import (
    FaceTemplate,
    OnlineHeartbeat,
    OnlineSession,
    ReviewItem,
    TrainingClass,
    Verification,
)
from models.terms import SubjectKind, UploadStatus
from monitor.adapters.face_scan import FaceScan
from monitor.decisions.faces import FaceMatch, match_face
from monitor.decisions.online import judge_online_day
from monitor.decisions.verdicts import HEARTBEAT_ALERTED, Finding, Review, judge_heartbeat, judge_replay
from monitor.services.alerts import NewAnomaly, add_anomalies
from monitor.services.checkins import exif_time_utc, quality_of
from monitor.services.clock import claim_subject
from monitor.services.context import WorkerContext
from monitor.services.events import class_context, people_of
from monitor.services.ledger import online_day
from monitor.services.photo_hashes import reserve_photo_hash
from monitor.services.recorder import Verdict, add_verdict, mark_processed

log = logging.getLogger(__name__)


def heartbeat_measured(scan: FaceScan, match: FaceMatch | None, findings: list[Finding],
                       review: Review | None) -> dict[str, Any]:
    """What a heartbeat's verification records besides its columns: the photo, the face and why (for a dispute)."""
    face = scan.faces[0] if len(scan.faces) == 1 else None
    return {
        "face_count": len(scan.faces),
        "face_distance": round(match.distance, 4) if match else None,
        "template_index": match.template_index if match else None,
        "face_quality": {"side_px": face.side_px, "sharpness": round(face.sharpness, 1),
                         "brightness": round(face.brightness, 1), "cut_off": face.cut_off} if face else None,
        "image_size": [scan.width, scan.height],
        "photo_colours": scan.colours,
        "filled_share": round(scan.filled_share, 3),
        "phash": scan.phash,
        "scanned_by_pid": scan.extra.get("pid"),
        "turned_deg": scan.extra.get("turned_deg") or None,
        **{k: v for f in findings for k, v in f.evidence.items()},
        "review": {"code": review.code, "message": review.message} if review else None,
    }


def verify_heartbeat(ctx: WorkerContext, beat_id: int) -> None:
    """Verify one heartbeat's face (a doubtful one goes to review); fire ONLINE_OVER_8H (once a trainee-day) when the
    day's study exceeds the cap."""
    settings = ctx.settings
    with ctx.db.session() as session:
        beat = session.get(OnlineHeartbeat, beat_id)
        if beat is None or beat.status != UploadStatus.PENDING:
            mark_processed(session, SubjectKind.HEARTBEAT, beat_id)
            return
        online = session.get(OnlineSession, beat.session_id)
        assert online is not None
        templates = [tp.encoding for tp in session.scalars(select(FaceTemplate).where(
            FaceTemplate.person_kind == "trainee", FaceTemplate.person_id == online.trainee_id,
            FaceTemplate.model_version == ctx.engine.model_version))]
        photo_sha, received_at = beat.photo_sha256, beat.received_at
    t = ctx.thresholds
    scan = ctx.engine.scan(ctx.evidence.get(photo_sha), "selfie")
    face = scan.faces[0] if len(scan.faces) == 1 else None
    match = match_face(face.encoding, templates, t.face_match, t.metric) if face is not None and templates else None
    # Its pHash is kept for later check-ins to be compared with, but a heartbeat is not judged a near copy itself:
    # a fixed webcam's honest frames minutes apart are near copies by pHash (a 40 px shift of the whole picture stays
    # within the 10-bit limit), so only a stale EXIF time (a file from disk) makes it a replay.
    reserve_photo_hash(ctx.db, photo_sha, scan.phash, SubjectKind.HEARTBEAT, beat_id)
    replay = judge_replay([], exif_time_utc(scan.exif_time), received_at, None, None, t)
    status, reasons, review = judge_heartbeat(len(scan.faces), quality_of(face), match, t, scan.shape, replay)
    verification = Verification(
        subject_kind=SubjectKind.HEARTBEAT, subject_id=beat_id, passed=status is UploadStatus.PASSED,
        face_count=len(scan.faces), face_distance=match.distance if match else None, fence_result=None,
        fence_distance_m=None, measured=heartbeat_measured(scan, match, reasons, review),
        thresholds=ctx.thresholds.as_dict(), model_version=ctx.engine.model_version,
        reasons=[x.as_reason() for x in reasons], needs_review=review is not None,
        face_encoding=face.encoding if face else None, created_at=utc_now())
    try:
        with ctx.db.session() as session:
            beat = session.get(OnlineHeartbeat, beat_id)
            assert beat is not None
            if beat.status != UploadStatus.PENDING:
                return
            beat.status, beat.face_distance = status, match.distance if match else None
            session.add(verification)
            cls = session.get(TrainingClass, online.class_id)
            assert cls is not None
            if review is not None:
                session.add(ReviewItem(
                    subject_kind=SubjectKind.HEARTBEAT, subject_id=beat_id, class_id=cls.id,
                    trainee_id=online.trainee_id, reason_code=review.code, message=review.message,
                    measured=review.measured | {"online_session_id": online.id}, thresholds=review.thresholds,
                    state="open", created_at=utc_now()))
            context = class_context(session, cls)
            people = people_of(session, online.trainee_id)
            session.flush()
            add_anomalies(session, [NewAnomaly(context, finding, SubjectKind.HEARTBEAT, beat_id, people,
                                               {"online_session_id": online.id, "photo_sha256": photo_sha}, {})
                                    for finding in reasons if finding.code in HEARTBEAT_ALERTED])
            day = online.started_at.astimezone(SHANGHAI).date()  # study counts for the day its session began
            study = online_day(session, online.trainee_id, day, settings.online_max_gap_minutes,
                               settings.online_daily_cap_minutes, utc_now())
            findings = judge_online_day(study, settings.online_daily_cap_minutes)
            if findings and (subject_id := claim_subject(session, f"ONLINE:{online.trainee_id}:{day}")):
                add_anomalies(session, [NewAnomaly(context, finding, SubjectKind.CLOCK, subject_id, people,
                                                   {"online_session_id": online.id, "photo_sha256": photo_sha}, {})
                                        for finding in findings])
            add_verdict(session, context, Verdict(SubjectKind.HEARTBEAT, beat_id, status, "heartbeat",
                                                  verification.reasons, utc_now(), people,
                                                  {"photo_sha256": photo_sha}))
            mark_processed(session, SubjectKind.HEARTBEAT, beat_id)
    except IntegrityError:
        log.info("heartbeat %s was verified concurrently", beat_id)
