"""The last step of every verification: the verdict, its anomalies, review item, photo hashes, its live event (one
typed constructor) and the upload's new status in one transaction; and the final status of an upload that cannot be
verified."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from models.clock import utc_now
from models.domain import AnomalyCode, Severity
from models.tables import (
    CheckIn,
    OnlineHeartbeat,
    OnlineSession,
    OutboxMessage,
    PhotoHash,
    ReviewItem,
    Snapshot,
    TrainingClass,
    Verification,
)
from models.terms import EventKind, SubjectKind, UploadStatus
from monitor.adapters.storage import Database
from monitor.decisions.verdicts import Finding, Review
from monitor.services.alerts import NewAnomaly, add_anomalies, add_anomaly
from monitor.services.clock import resolve_attendance
from monitor.services.events import add_event, class_context, people_of

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Verdict:
    """The `verdict` live event: an upload's final status, why, and whom it concerns."""

    subject_kind: SubjectKind
    subject_id: int
    status: UploadStatus
    kind: str  # sign_in | sign_out | snapshot | heartbeat
    reasons: list[dict[str, Any]]
    at: datetime
    people: dict[str, Any]  # trainee_id, trainee_name
    extra: dict[str, Any] = field(default_factory=dict)  # what the wall shows besides (photo, fix, counts…)


def add_verdict(session: Session, context: dict[str, Any], verdict: Verdict) -> None:
    """Report a verdict on the live feed (the wall screen and the uploading phone wait for it)."""
    add_event(session, EventKind.VERDICT, context, {
        "subject_kind": verdict.subject_kind.value, "subject_id": verdict.subject_id, "status": verdict.status.value,
        "kind": verdict.kind, "reasons": verdict.reasons, "at": verdict.at.isoformat(), **verdict.people,
        **verdict.extra,
    })


@dataclass
class Outcome:
    """A judged upload (check-in or snapshot), ready to be stored."""

    kind: SubjectKind
    subject_id: int
    findings: list[Finding]
    review: Review | None
    verification: Verification
    photo: tuple[str, str] | None  # (sha256, pHash) of the judged photo
    extra: dict[str, Any]  # cited by its anomalies and shown with its live event
    frames: Sequence[tuple[str, str]] = field(default_factory=tuple)  # liveness burst: (sha256, pHash)


def already_verified(session: Session, kind: SubjectKind, subject_id: int) -> bool:
    return session.scalar(select(Verification.id).where(
        Verification.subject_kind == kind, Verification.subject_id == subject_id)) is not None


def mark_processed(session: Session, topic: str, subject_id: int) -> None:
    """The outbox rows of the message are done: the relay never sends them again."""
    for msg in session.scalars(
        select(OutboxMessage).where(OutboxMessage.topic == topic, OutboxMessage.subject_id == subject_id)
    ):
        msg.processed_at = msg.processed_at or utc_now()


def get_upload(session: Session, kind: SubjectKind, subject_id: int) -> CheckIn | Snapshot | None:
    """The check-in or snapshot a verification is about."""
    if kind is SubjectKind.CHECKIN:
        return session.get(CheckIn, subject_id)
    return session.get(Snapshot, subject_id)


def status_of(findings: Sequence[Finding], review: Review | None) -> UploadStatus:
    """Failed on any finding, left to an operator on a review, passed otherwise."""
    return UploadStatus.FAILED if findings else (UploadStatus.REVIEW if review else UploadStatus.PASSED)


def record_outcome(db: Database, outcome: Outcome) -> None:
    """Store verification, photo hashes, anomalies, review item, the verdict event and the new status; idempotent."""
    kind, subject_id, verification = outcome.kind, outcome.subject_id, outcome.verification
    try:
        with db.session() as session:
            if already_verified(session, kind, subject_id):
                mark_processed(session, kind, subject_id)
                return
            stored = {(sha, hash_kind) for sha, hash_kind in session.execute(
                select(PhotoHash.sha256, PhotoHash.subject_kind).where(
                    PhotoHash.subject_id == subject_id, PhotoHash.subject_kind.in_([kind, SubjectKind.FRAME])))}
            session.add(verification)
            hashes = [(outcome.photo, kind)] if outcome.photo else []
            hashes += [(frame, SubjectKind.FRAME) for frame in outcome.frames]
            for (sha, phash), hash_kind in hashes:
                if (sha, hash_kind) in stored:  # the upload's own photo, reserved before the verdict
                    continue
                session.add(PhotoHash(sha256=sha, phash=phash, subject_kind=hash_kind, subject_id=subject_id,
                                      created_at=utc_now()))
            session.flush()
            subject = get_upload(session, kind, subject_id)
            assert subject is not None
            status = status_of(outcome.findings, outcome.review)
            subject.status = status
            if isinstance(subject, CheckIn) and status is UploadStatus.PASSED:
                resolve_attendance(session, subject)
            cls = session.get(TrainingClass, subject.class_id)
            assert cls is not None
            context = class_context(session, cls)
            trainee_id = subject.trainee_id if isinstance(subject, CheckIn) else None
            people = people_of(session, trainee_id)
            add_anomalies(session, [NewAnomaly(context, finding, kind, subject_id, people,
                                               {**outcome.extra, "verification_id": verification.id},
                                               verification.thresholds) for finding in outcome.findings])
            reasons = list(verification.reasons)
            if (review := outcome.review) is not None:
                session.add(ReviewItem(
                    subject_kind=kind, subject_id=subject_id, class_id=cls.id, trainee_id=trainee_id,
                    reason_code=review.code, message=review.message,
                    measured=review.measured | {k: outcome.extra[k] for k in ("enrolled_photo_sha256",)
                                                if outcome.extra.get(k)},
                    thresholds=review.thresholds, state="open", created_at=utc_now()))
                reasons.append({"code": review.code, "message": review.message})
            add_verdict(session, context, Verdict(
                kind, subject_id, status, subject.kind if isinstance(subject, CheckIn) else "snapshot", reasons,
                verification.created_at, people,
                {"face_count": verification.face_count, "verification_id": verification.id, **outcome.extra}))
            mark_processed(session, kind, subject_id)
    except IntegrityError:
        log.info("%s %s was verified concurrently; nothing to do", kind, subject_id)


def unverifiable(reason: str, limits: dict[str, Any]) -> Finding:
    """VERIFICATION_FAILED: the upload could not be verified; it needs a new photo or a person."""
    return Finding(AnomalyCode.VERIFICATION_FAILED, Severity.MEDIUM,
                   f"系统无法完成该上传的核验：{reason}；请重新拍摄上传，或由监控中心人工核实",
                   {"reason": reason}, limits)


def failed_verification(kind: SubjectKind, subject_id: int, finding: Finding, thresholds: dict[str, Any],
                        model_version: str) -> Verification:
    """The record of an upload the worker gave up on: nothing measured but why."""
    return Verification(
        subject_kind=kind, subject_id=subject_id, passed=False, face_count=None, face_distance=None,
        fence_result=None, fence_distance_m=None, measured={"verification_failed": finding.evidence["reason"]},
        thresholds=thresholds, model_version=model_version, reasons=[finding.as_reason()], created_at=utc_now())


def give_up_upload(db: Database, kind: SubjectKind, subject_id: int, finding: Finding, thresholds: dict[str, Any],
                   model_version: str) -> None:
    """Record a check-in or snapshot as failed with VERIFICATION_FAILED, so it never stays pending."""
    with db.session() as session:
        subject = get_upload(session, kind, subject_id)
        photo_sha = subject.photo_sha256 if subject is not None else None
        if photo_sha is None:
            mark_processed(session, kind, subject_id)
            return
    record_outcome(db, Outcome(
        kind=kind, subject_id=subject_id, findings=[finding], review=None,
        verification=failed_verification(kind, subject_id, finding, thresholds, model_version),
        photo=None, extra={"photo_sha256": photo_sha}))


def give_up_heartbeat(db: Database, beat_id: int, finding: Finding, thresholds: dict[str, Any],
                      model_version: str) -> None:
    """Record an online-study heartbeat as failed with VERIFICATION_FAILED."""
    with db.session() as session:
        beat = session.get(OnlineHeartbeat, beat_id)
        if beat is not None and beat.status == UploadStatus.PENDING:
            beat.status = UploadStatus.FAILED
            session.add(failed_verification(SubjectKind.HEARTBEAT, beat_id, finding, thresholds, model_version))
            online = session.get(OnlineSession, beat.session_id)
            cls = session.get(TrainingClass, online.class_id) if online else None
            if online is not None and cls is not None:
                context = class_context(session, cls)
                people = people_of(session, online.trainee_id)
                add_anomaly(session, context, finding, SubjectKind.HEARTBEAT, beat_id, people,
                            {"photo_sha256": beat.photo_sha256, "online_session_id": online.id}, {})
                add_verdict(session, context, Verdict(
                    SubjectKind.HEARTBEAT, beat_id, UploadStatus.FAILED, "heartbeat", [finding.as_reason()],
                    utc_now(), people, {"photo_sha256": beat.photo_sha256}))
        mark_processed(session, SubjectKind.HEARTBEAT, beat_id)
