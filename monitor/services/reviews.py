"""The review queue: every verdict the machine leaves to an operator (a check-in's or an online-study heartbeat's face
in the grey zone, a look-alike found at enrolment), oldest first with its service level, and the decisions on it.

Rules for an item still open when its session ends (README "Reviews at the session's end"): the check-in counts
neither for nor against the trainee. NO_SHOW and MISSING_SIGNOUT wait for the decision; attendance and valid hours
leave it out; the ledger shows the session as 待复核 and a trainee whose eligibility depends on it as 待复核 (not
payable). A heartbeat in review adds no online minutes until confirmed. Confirming counts it from then on (a late
NO_SHOW it contradicts is resolved); rejecting raises FACE_MISMATCH and lets the attendance rules fire.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Update, select, update
from sqlalchemy.orm import Session

from models.clock import utc_now
from models.domain import AnomalyCode, Principal, Severity
from models.errors import ApiError
from models.scope import Scope, ensure_in_class, refuse_missing
from models.tables import (
    Anomaly,
    CheckIn,
    FaceTemplate,
    OnlineHeartbeat,
    ReviewItem,
    Trainee,
    TrainingClass,
)
from models.terms import SubjectKind, UploadStatus
from monitor.adapters.face_tables import IdentityMatch
from monitor.decisions.verdicts import Finding
from monitor.services.alerts import add_anomaly, resolve_anomaly
from monitor.services.clock import resolve_attendance
from monitor.services.events import class_context, people_of
from monitor.services.identity import cited_person, match_message, raise_identity_anomaly
from monitor.services.recorder import Verdict, add_verdict

UPLOAD_KINDS = (SubjectKind.CHECKIN.value, SubjectKind.HEARTBEAT.value)


@dataclass(frozen=True)
class QueueQuery:
    state: str  # open | confirmed | rejected (identity: open | distinct | same_person, mapped)
    kind: str  # all | checkin | heartbeat | identity
    limit: int
    sla_minutes: float
    now: datetime


def _due(created_at: datetime, q: QueueQuery) -> tuple[str, bool, int]:
    due = created_at + timedelta(minutes=q.sla_minutes)
    return due.isoformat(), q.now > due, int((q.now - created_at).total_seconds() // 60)


def _reference_photo(session: Session, kind: str, person_id: int | None, measured: dict[str, Any]) -> str | None:
    """The enrolment photo the face was compared with (recorded with the review), else the person's first one."""
    if measured.get("enrolled_photo_sha256"):
        return str(measured["enrolled_photo_sha256"])
    if person_id is None:
        return None
    return session.scalar(select(FaceTemplate.photo_sha256).where(
        FaceTemplate.person_kind == kind, FaceTemplate.person_id == person_id).order_by(FaceTemplate.id).limit(1))


def upload_reviews(session: Session, scope: Scope, q: QueueQuery) -> list[dict[str, Any]]:
    """Check-in and heartbeat reviews within the caller's classes, oldest first."""
    kinds = UPLOAD_KINDS if q.kind == "all" else (q.kind,)
    rows = session.execute(
        select(ReviewItem, TrainingClass.name, Trainee.name)
        .join(TrainingClass, TrainingClass.id == ReviewItem.class_id)
        .outerjoin(Trainee, Trainee.id == ReviewItem.trainee_id)
        .where(ReviewItem.subject_kind.in_(kinds), ReviewItem.state == q.state, scope.of_classes(ReviewItem.class_id))
        .order_by(ReviewItem.created_at, ReviewItem.id).limit(q.limit)).all()
    checkins = {c.id: c for c in session.scalars(select(CheckIn).where(CheckIn.id.in_(
        [r.subject_id for r, _, _ in rows if r.subject_kind == SubjectKind.CHECKIN])))}
    beats = {b.id: b for b in session.scalars(select(OnlineHeartbeat).where(OnlineHeartbeat.id.in_(
        [r.subject_id for r, _, _ in rows if r.subject_kind == SubjectKind.HEARTBEAT])))}
    out = []
    for r, class_name, trainee_name in rows:
        upload: CheckIn | OnlineHeartbeat | None = (checkins if r.subject_kind == SubjectKind.CHECKIN
                                                     else beats).get(r.subject_id)
        if upload is None:
            continue
        due_at, overdue, age = _due(r.created_at, q)
        out.append({
            "id": r.id, "kind": r.subject_kind, "subject_id": r.subject_id,
            "checkin_id": r.subject_id if r.subject_kind == SubjectKind.CHECKIN else None,
            "class_id": r.class_id, "class_name": class_name, "trainee_id": r.trainee_id,
            "trainee_name": trainee_name, "reason_code": r.reason_code, "message": r.message,
            "measured": r.measured, "thresholds": r.thresholds, "state": r.state,
            "photo_sha256": upload.photo_sha256, "captured_at": upload.captured_at.isoformat(),
            "reference_photo_sha256": _reference_photo(session, "trainee", r.trainee_id, r.measured),
            "created_at": r.created_at.isoformat(), "due_at": due_at, "overdue": overdue and r.state == "open",
            "age_minutes": age, "decided_by": r.decided_by, "note": r.note,
        })
    return out


IDENTITY_STATES = {"open": None, "confirmed": "same_person", "rejected": "distinct"}


def identity_reviews(session: Session, scope: Scope, q: QueueQuery) -> list[dict[str, Any]]:
    """Look-alikes found at enrolment (province-wide callers only: people are not bound to one region)."""
    if not scope.unrestricted:
        return []
    wanted = IDENTITY_STATES.get(q.state)
    state_clause = ((IdentityMatch.outcome == "review") & IdentityMatch.review_state.is_(None) if wanted is None
                    else IdentityMatch.review_state == wanted)
    rows = session.scalars(select(IdentityMatch).where(state_clause)
                           .order_by(IdentityMatch.created_at, IdentityMatch.id).limit(q.limit)).all()
    out = []
    for m in rows:
        due_at, overdue, age = _due(m.created_at, q)
        person = cited_person(session, m.person_kind, m.person_id)
        out.append({
            "id": m.id, "kind": "identity", "subject_id": m.id, "checkin_id": None, "class_id": None,
            "class_name": None, "trainee_id": m.person_id if m.person_kind == "trainee" else None,
            "trainee_name": person.get("name"), "reason_code": "IDENTITY_LOOKALIKE",
            "message": match_message(session, m), "measured": m.measured | {"distance": m.distance},
            "thresholds": m.thresholds, "state": q.state, "photo_sha256": m.photo_sha256,
            "captured_at": m.created_at.isoformat(), "reference_photo_sha256": m.other_photo_sha256,
            "created_at": m.created_at.isoformat(), "due_at": due_at, "overdue": overdue and m.review_state is None,
            "age_minutes": age, "decided_by": m.reviewed_by, "note": m.review_note,
        })
    return out


def review_queue(session: Session, scope: Scope, q: QueueQuery) -> list[dict[str, Any]]:
    """The queue, oldest first across kinds, at most `q.limit` items."""
    items: list[dict[str, Any]] = []
    if q.kind in ("all", "checkin", "heartbeat"):
        items += upload_reviews(session, scope, q)
    if q.kind in ("all", "identity"):
        items += identity_reviews(session, scope, q)
    return sorted(items, key=lambda i: (i["created_at"], i["kind"], i["id"]))[:q.limit]


def claim(session: Session, statement: Update) -> bool:
    """One winner for a decision, on SQLite as on PostgreSQL: a conditional UPDATE of the still-open row. Of two
    deciders at once, the second's UPDATE waits for the first's commit and then matches no row. (The ORM change
    made afterwards is what the audit chain records.)"""
    result = session.execute(statement.execution_options(synchronize_session=False))
    return bool(getattr(result, "rowcount", 0))


def decide_upload_review(session: Session, scope: Scope, review_id: int, decision: str, note: str
                         ) -> dict[str, Any]:
    """Confirm the trainee, or reject as FACE_MISMATCH, for a check-in's or a heartbeat's review."""
    principal = scope.principal
    item = session.get(ReviewItem, review_id)
    if item is None or item.subject_kind not in UPLOAD_KINDS:
        raise refuse_missing("UNKNOWN_REVIEW", "复核事项", review_id)
    ensure_in_class(session, scope, item.class_id, "UNKNOWN_REVIEW", "复核事项", review_id)
    if item.state != "open" or not claim(session, update(ReviewItem).where(
            ReviewItem.id == item.id, ReviewItem.state == "open").values(state=decision)):
        session.refresh(item)
        raise ApiError(409, "REVIEW_ALREADY_DECIDED", f"该复核事项已由 {item.decided_by or '他人'} 处理")
    item.state, item.note = decision, note
    item.decided_by, item.decided_at = principal.name, utc_now()
    cls = session.get(TrainingClass, item.class_id)
    assert cls is not None
    context = class_context(session, cls)
    people = people_of(session, item.trainee_id)
    upload: CheckIn | OnlineHeartbeat | None = (
        session.get(CheckIn, item.subject_id) if item.subject_kind == SubjectKind.CHECKIN
        else session.get(OnlineHeartbeat, item.subject_id))
    assert upload is not None
    reasons = []
    if decision == "confirmed":
        upload.status = UploadStatus.PASSED if upload.status == UploadStatus.REVIEW else upload.status
        if isinstance(upload, CheckIn) and upload.status == UploadStatus.PASSED:
            session.flush()
            resolve_attendance(session, upload)
    else:
        upload.status = UploadStatus.FAILED
        what = "签到" if isinstance(upload, CheckIn) else "在线学习抽拍"
        finding = Finding(AnomalyCode.FACE_MISMATCH, Severity.HIGH,
                          f"人工复核认定{what}人脸与登记照片不符（{principal.name}：{note}）",
                          {**item.measured, "review_id": item.id, "decided_by": principal.name},
                          item.thresholds)
        add_anomaly(session, context, finding, item.subject_kind, upload.id, people,
                    {"photo_sha256": upload.photo_sha256}, item.thresholds)
        reasons.append(finding.as_reason())
    kind = upload.kind if isinstance(upload, CheckIn) else "heartbeat"
    add_verdict(session, context, Verdict(
        SubjectKind(item.subject_kind), upload.id, UploadStatus(upload.status), kind, reasons, utc_now(), people,
        {"review_id": item.id, "decided_by": principal.name, "photo_sha256": upload.photo_sha256}))
    return {"id": item.id, "kind": item.subject_kind, "state": item.state,
            "checkin_status": upload.status if isinstance(upload, CheckIn) else None,
            "subject_status": upload.status, "decided_by": item.decided_by}


def decide_identity_review(session: Session, principal: Principal, match_id: int, decision: str, note: str
                           ) -> dict[str, Any]:
    """An operator's finding on a look-alike: distinct people (its anomaly resolved), or the same person under two
    ID numbers (冒名/多领: raised as a high DUPLICATE_IDENTITY anomaly)."""
    match = session.get(IdentityMatch, match_id)
    if match is not None and match.review_state is not None:
        raise ApiError(409, "REVIEW_ALREADY_DECIDED", f"该查重记录已由 {match.reviewed_by} 复核")
    if match is None or match.outcome != "review":
        raise refuse_missing("UNKNOWN_IDENTITY_MATCH", "人脸查重记录", match_id)
    if not claim(session, update(IdentityMatch).where(IdentityMatch.id == match.id,
                                                      IdentityMatch.review_state.is_(None))
                 .values(review_state=decision)):
        raise ApiError(409, "REVIEW_ALREADY_DECIDED", "该查重记录已由他人复核")
    match.review_state, match.review_note = decision, note
    match.reviewed_by, match.reviewed_at = principal.name, utc_now()
    earlier = session.get(Anomaly, match.anomaly_id) if match.anomaly_id else None
    if decision == "distinct":
        if earlier is not None:
            resolve_anomaly(session, earlier, f"人工复核认定为不同人员（{principal.name}：{note}）")
    else:
        if earlier is not None:
            resolve_anomaly(session, earlier, f"人工复核认定为同一人，已升级为冒名/多领告警（{principal.name}）")
        match.outcome, match.state, match.anomaly_id = "duplicate", "refused", None
        match.reasons = [*match.reasons, "reviewed_same_person"]
        session.flush()
        raise_identity_anomaly(session, match, SubjectKind.IDENTITY_REVIEW)
    other = cited_person(session, match.other_kind, match.other_id)
    return {"id": match.id, "kind": "identity", "state": decision, "checkin_status": None,
            "subject_status": match.outcome, "decided_by": principal.name, "other": other}


def decide_many(session: Session, scope: Scope, review_ids: Sequence[int], decision: str, note: str
                ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The same decision on several upload reviews, each on its own; items already decided or out of scope are
    reported, not fatal."""
    done, skipped = [], []
    for review_id in review_ids:
        try:
            with session.begin_nested():
                done.append(decide_upload_review(session, scope, review_id, decision, note))
        except ApiError as exc:
            skipped.append({"id": review_id, "code": exc.code, "message": exc.message})
    return done, skipped


def overdue_reviews(session: Session, scope: Scope, sla_minutes: float, now: datetime | None = None) -> int:
    """Open upload reviews past their service level, within the caller's classes."""
    limit = (now or utc_now()) - timedelta(minutes=sla_minutes)
    return len(session.scalars(select(ReviewItem.id).where(
        ReviewItem.state == "open", ReviewItem.subject_kind.in_(UPLOAD_KINDS), ReviewItem.created_at < limit,
        scope.of_classes(ReviewItem.class_id))).all())
