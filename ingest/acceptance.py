"""Durable acceptance of an upload: the checks that need the database, then the evidence file, the upload row and
its outbox message in one short write transaction, then the bus. Core statements, prepared once: this runs for
every sign-in of the morning peak."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, bindparam, exists, insert, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session, aliased

from ingest.adapters.evidence import EvidenceStore
from ingest.adapters.images import AcceptedImage, inspect_image
from ingest.context import IngestContext
from ingest.outbox import hand_to_bus, outbox_message
from models.audit import append_audit, row_detail
from models.clock import minutes_of
from models.domain import CheckKind
from models.errors import ApiError
from models.tables import (
    CheckIn,
    ClassSession,
    Evidence,
    FaceTemplate,
    RosterEntry,
    Snapshot,
    TrainingClass,
    Verification,
)
from models.terms import SubjectKind, UploadStatus

log = logging.getLogger(__name__)

Upload = CheckIn | Snapshot


def pick_session(local_hhmm: str, sessions: list[Any]) -> Any:
    """The session whose window holds the local time, else the one whose window is nearest."""
    if not sessions:
        return None
    now = minutes_of(local_hhmm)

    def gap(s: Any) -> int:
        start, end = minutes_of(s.start_local), minutes_of(s.end_local)
        return 0 if start <= now <= end else min(abs(now - start), abs(now - end))

    return min(sessions, key=gap)


def verdict_body(subject: CheckIn | Snapshot, verification: Verification | None) -> dict[str, Any]:
    """What a site sees for one upload: status, a zh-CN message saying exactly why, and where to poll."""
    kind = "check-ins" if isinstance(subject, CheckIn) else "snapshots"
    body: dict[str, Any] = {
        "id": subject.id,
        "status": subject.status,
        "status_url": f"/api/v1/{kind}/{subject.id}",
        "photo_sha256": subject.photo_sha256,
        "reasons": [],
    }
    if isinstance(subject, CheckIn):
        action = "签到" if subject.kind == CheckKind.SIGN_IN.value else "签退"
        body["kind"] = subject.kind
    else:
        action = "课堂抓拍"
    if verification is None:
        body["message"] = f"{action}已受理，正在核验"
        return body
    body["reasons"] = verification.reasons
    body["notes"] = (verification.measured or {}).get("exif_notes") or []  # unreadable photo parts, ignored
    body["verification_id"] = verification.id
    body["face_distance"] = verification.face_distance
    limits = verification.thresholds or {}
    body["face_engine"] = limits.get("face_engine") or verification.model_version.split("@")[0]
    body["face_model_sha256"] = limits.get("face_model_sha256")
    body["face_threshold"] = limits.get("face_match")
    body["face_mismatch_threshold"] = limits.get("face_mismatch")
    body["fence_result"] = verification.fence_result
    if subject.status == UploadStatus.REVIEW:
        review = (verification.measured or {}).get("review") or {}
        body["message"] = f"{action}已受理，待人工复核：{review.get('message', '')}".rstrip("：")
    elif subject.status == UploadStatus.PASSED and not verification.passed:  # a person cleared what it found
        body["message"] = (f"{action}有效：自动核验未通过（" + "；".join(r["message"] for r in verification.reasons)
                           + "），经监控中心核实为误报，按有效记录计")
    elif subject.status == UploadStatus.PASSED:
        body["message"] = (f"{action}成功" if isinstance(subject, CheckIn)
                           else f"{action}已核验（{verification.face_count} 张人脸）")
    else:
        body["message"] = f"{action}未通过：" + "；".join(r["message"] for r in verification.reasons)
    return body


@dataclass(frozen=True)
class ClassFacts:
    """What acceptance needs to know of a class (read in one statement)."""

    id: int
    institution_id: int
    start_date: date
    end_date: date
    liveness_required: bool


def _check_class(facts: ClassFacts | None, class_id: int, institution_id: int, today: date) -> ClassFacts:
    if facts is None or facts.institution_id != institution_id:
        # Another institution's class answers exactly as a missing one: no oracle of which classes exist.
        raise ApiError(404, "UNKNOWN_CLASS", f"班次 {class_id} 不存在")
    if not facts.start_date <= today <= facts.end_date:
        raise ApiError(
            422, "CLASS_NOT_IN_PROGRESS", f"该班次培训期为 {facts.start_date} 至 {facts.end_date}，今天不在培训期内"
        )
    return facts


CLASS_COLUMNS = (TrainingClass.id, TrainingClass.institution_id, TrainingClass.start_date, TrainingClass.end_date,
                 TrainingClass.liveness_required)
# The statements every upload runs, built once: building a statement and its cache key cost more than
# executing it (the values are bound parameters).
CLASS_FACTS = select(*CLASS_COLUMNS).where(TrainingClass.id == bindparam("class_id"))
_SITE_CLASS = aliased(TrainingClass)
ROSTER_FACTS = select(
    *CLASS_COLUMNS,
    # known to the site: on a roster of one of its institution's classes. Another institution's trainee reads as
    # unknown, so that a site cannot tell which trainee ids exist elsewhere (422 NOT_ON_ROSTER said so before).
    exists().where(RosterEntry.trainee_id == bindparam("trainee_id"), RosterEntry.class_id == _SITE_CLASS.id,
                   _SITE_CLASS.institution_id == TrainingClass.institution_id).label("known"),
    exists().where(RosterEntry.class_id == bindparam("class_id"),
                   RosterEntry.trainee_id == bindparam("trainee_id")).label("rostered"),
    exists().where(FaceTemplate.person_kind == "trainee",
                   FaceTemplate.person_id == bindparam("trainee_id")).label("enrolled"),
).where(TrainingClass.id == bindparam("class_id"))
SEEN_PHOTO = select(exists().where(CheckIn.photo_sha256 == bindparam("sha256"))
                    | exists().where(Snapshot.photo_sha256 == bindparam("sha256")))
INSERT_UNLESS_PRESENT: dict[str, Any] = {  # the evidence row, unless the photo is there already (an enrolment photo)
    name: dialect.insert(Evidence).on_conflict_do_nothing(index_elements=["sha256"])
    for name, dialect in (("sqlite", sqlite), ("postgresql", postgresql))}
EVIDENCE_KNOWN = select(exists().where(Evidence.sha256 == bindparam("sha256")))
CLASS_WINDOWS = select(ClassSession.id, ClassSession.start_local, ClassSession.end_local).where(
    ClassSession.class_id == bindparam("class_id"))
RETRY_REPEATS: dict[type[CheckIn] | type[Snapshot], tuple[str, ...]] = {
    CheckIn: ("class_id", "trainee_id", "kind"), Snapshot: ("class_id", "camera_id")}
"""What a retry under the same Idempotency-Key must repeat besides the photo: one trainee's sign-in answered as
another's sign-out (same key, same photo) told the phone it was stored while nothing of it was."""
PRIOR_UPLOAD = {model: select(model.id, model.photo_sha256, *(getattr(model, c) for c in RETRY_REPEATS[model])).where(
    model.institution_id == bindparam("institution_id"), model.idempotency_key == bindparam("key"))
    for model in (CheckIn, Snapshot)}


def class_in_scope(session: Session | Connection, class_id: int, institution_id: int, today: date) -> ClassFacts:
    row = session.execute(CLASS_FACTS, {"class_id": class_id}).first()
    return _check_class(ClassFacts(*row[:5]) if row else None, class_id, institution_id, today)


def check_rostered(session: Session | Connection, class_id: int, trainee_id: int, institution_id: int,
                   today: date) -> ClassFacts:
    """The class, if it is the site's, running today, and the trainee is on its roster with a face enrolled
    (one statement: this runs for every upload of the morning peak)."""
    row = session.execute(ROSTER_FACTS, {"class_id": class_id, "trainee_id": trainee_id}).first()
    facts = _check_class(ClassFacts(*row[:5]) if row else None, class_id, institution_id, today)
    assert row is not None
    if not row.known:
        raise ApiError(404, "UNKNOWN_TRAINEE", f"学员 {trainee_id} 不存在")
    if not row.rostered:
        raise ApiError(422, "NOT_ON_ROSTER", "该学员不在本班次花名册中")
    if not row.enrolled:
        raise ApiError(422, "NOT_ENROLLED", "该学员尚未登记人脸照片，无法核验")
    return facts


def claim_photo(writing: Connection, sha256: str) -> None:
    """Serialise uploads of the same photo for the rest of the transaction, whichever table takes it (a check-in and
    a snapshot have no unique key in common): PostgreSQL takes a transaction lock on the digest; SQLite's writers
    are one at a time already (BEGIN IMMEDIATE)."""
    if writing.dialect.name == "postgresql":
        writing.execute(PHOTO_LOCK, {"sha256": sha256})


PHOTO_LOCK = text("SELECT pg_advisory_xact_lock(hashtextextended(:sha256, 0))")


def _refuse_replayed_photo(session: Session | Connection, sha256: str) -> None:
    if session.scalar(SEEN_PHOTO, {"sha256": sha256}):
        raise ApiError(409, "PHOTO_REPLAYED", "该照片此前已上传过，不能重复使用，请现场重新拍摄")


class _Accepted(Exception):
    """Raised inside an idempotent retry to leave the transaction with the first upload's id."""

    def __init__(self, subject_id: int) -> None:
        self.subject_id = subject_id


def _find_previous(
    session: Session | Connection, model: type[CheckIn] | type[Snapshot], institution_id: int, key: str | None,
    sha256: str, repeats: Mapping[str, Any]
) -> int | None:
    """The id of an earlier upload with the same Idempotency-Key; 409 if that key carried another photo, or the same
    photo for another trainee, kind, class or camera (`repeats`: this request's values of `RETRY_REPEATS`)."""
    if key is None:
        return None
    prior = session.execute(PRIOR_UPLOAD[model], {"institution_id": institution_id, "key": key}).first()
    if prior is None:
        return None
    if prior.photo_sha256 != sha256:
        raise ApiError(409, "IDEMPOTENCY_KEY_REUSED", "该 Idempotency-Key 已用于另一张照片的上传")
    differ = [name for name, value in repeats.items() if prior._mapping[name] != value]
    if differ:
        raise ApiError(409, "IDEMPOTENCY_KEY_REUSED",
                       f"该 Idempotency-Key 已用于另一次上传（{'、'.join(differ)} 不同）：重试须与首次上传完全一致，"
                       "新的上传请使用新的键", fields=differ)
    return int(prior.id)


def store_evidence(session: Session | Connection, evidence: EvidenceStore, image: AcceptedImage, now: datetime) -> None:
    """Write the evidence file (fsynced) and its row, once per distinct content."""
    evidence.put(image.sha256, image.data)
    insert_evidence_row(session, image, now)


def insert_evidence_row(session: Session | Connection, image: AcceptedImage, now: datetime) -> None:
    """The evidence row of a photo whose file is stored, unless one is there already (an enrolment photo)."""
    values = {"sha256": image.sha256, "size_bytes": len(image.data), "media_type": image.media_type,
              "width": image.width, "height": image.height, "created_at": now}
    dialect = (session.dialect if isinstance(session, Connection) else session.get_bind().dialect).name
    if dialect in INSERT_UNLESS_PRESENT:  # one statement: the photo may already be there (an enrolment photo)
        session.execute(INSERT_UNLESS_PRESENT[dialect], values)
    elif not session.scalar(EVIDENCE_KNOWN, {"sha256": image.sha256}):
        session.execute(insert(Evidence).values(values))


def insert_row(session: Session | Connection, row: Any) -> int:
    """INSERT a transient mapped object's columns with one Core statement and give it its new id.

    The unit of work (add, flush) costs several times more than the statement on the upload path, where
    nothing else in the transaction needs the object tracked."""
    table = type(row).__table__
    values = {}
    for column in table.columns:
        value = getattr(row, column.key)
        if column.key == "id" or (value is None and (column.default is not None or column.server_default)):
            continue
        values[column.key] = value
    statement = _INSERT_RETURNING_ID.get(table.name)
    if statement is None:
        statement = _INSERT_RETURNING_ID[table.name] = insert(table).returning(table.c.id)
    row.id = session.execute(statement, values).scalar_one()
    return int(row.id)


_INSERT_RETURNING_ID: dict[str, Any] = {}  # per table, built once: its values are bound per call


def _store(session: Connection, image: AcceptedImage, row: CheckIn | Snapshot, topic: str) -> tuple[int, int]:
    """Write the evidence row (its file is stored), the upload row and its outbox message; returns their ids."""
    insert_evidence_row(session, image, row.received_at)
    subject_id = insert_row(session, row)
    append_audit(session, f"{row.__tablename__}.insert", row.__tablename__, subject_id, row_detail(row))
    # Recorded as published with this commit (the API hands it to the bus right after); should that fail, the
    # relay sends it again once `redeliver_after_seconds` pass without a verdict. One transaction per upload.
    outbox_id = insert_row(session, outbox_message(topic, subject_id, row.received_at, published=True))
    return subject_id, outbox_id


def _accept(ctx: IngestContext, model: type[CheckIn] | type[Snapshot], institution_id: int, key: str | None,
            image: AcceptedImage, build: Callable[[Connection], CheckIn | Snapshot], topic: str,
            after: Callable[[Connection, int], None] | None = None, repeats: Mapping[str, Any] | None = None
            ) -> tuple[int, CheckIn | Snapshot | None]:
    """Run one acceptance transaction; returns (id, the new row or None when an earlier upload with the same key
    is returned). Races on unique keys resolve to 409 or the prior id."""
    repeats = repeats or {}
    try:
        with ctx.db.connection() as reading:  # Core statements only: no unit of work on the upload path
            prior = _find_previous(reading, model, institution_id, key, image.sha256, repeats)
            if prior is not None:
                raise _Accepted(prior)
            row = build(reading)
            _refuse_replayed_photo(reading, image.sha256)
        ctx.evidence.put(image.sha256, image.data)  # the file, fsynced, before a row names it
        with ctx.db.writing() as writing:  # a race with another upload ends on a unique key: handled below
            claim_photo(writing, image.sha256)  # the same bytes as a check-in and a snapshot at once: one wins
            prior = _find_previous(writing, model, institution_id, key, image.sha256, repeats)
            if prior is not None:  # the same request again, committed meanwhile
                raise _Accepted(prior)
            _refuse_replayed_photo(writing, image.sha256)
            subject_id, _outbox_id = _store(writing, image, row, topic)
            if after is not None:
                after(writing, subject_id)
            return subject_id, row
    except _Accepted as done:
        return done.subject_id, None
    except DBAPIError as exc:
        if isinstance(exc, IntegrityError):
            log.info("acceptance raced with another upload", exc_info=True)
        else:  # the connection failed, perhaps while committing: if the upload was stored, it is answered as such
            log.warning("acceptance interrupted by the database (%s); looking for the upload", type(exc).__name__)
            try:
                with ctx.db.connection() as reading:
                    prior = _find_previous(reading, model, institution_id, key, image.sha256, repeats)
            except DBAPIError:
                raise exc from None  # still unreachable: 503, and the phone retries with the same key
            if prior is None:
                raise
            return prior, None
        with ctx.db.session() as session:
            prior = _find_previous(session, model, institution_id, key, image.sha256, repeats)
        if prior is not None:
            return prior, None
        raise ApiError(409, "PHOTO_REPLAYED", "该照片此前已上传过，不能重复使用，请现场重新拍摄") from None


def pending_body(model: type[CheckIn] | type[Snapshot], subject_id: int, photo_sha256: str) -> dict[str, Any]:
    """What is known of a stored upload whose verdict cannot be read now: its id, pending, where to ask."""
    kind = "check-ins" if model is CheckIn else "snapshots"
    return {"id": subject_id, "status": "pending", "status_url": f"/api/v1/{kind}/{subject_id}",
            "photo_sha256": photo_sha256, "reasons": [], "message": "已受理，核验结果稍后可查"}


def find_upload(session: Session, model: type[CheckIn] | type[Snapshot], subject_id: int) -> CheckIn | Snapshot | None:
    """The check-in or snapshot with this id."""
    return session.get(CheckIn, subject_id) if model is CheckIn else session.get(Snapshot, subject_id)


def load_verdict(ctx: IngestContext, model: type[CheckIn] | type[Snapshot], subject_id: int) -> dict[str, Any]:
    with ctx.db.session() as session:
        subject = find_upload(session, model, subject_id)
        assert subject is not None
        verification = session.scalar(
            select(Verification).where(
                Verification.subject_kind == (SubjectKind.CHECKIN if model is CheckIn else SubjectKind.SNAPSHOT),
                Verification.subject_id == subject_id,
            )
        )
        return verdict_body(subject, verification)


def accept_and_queue(ctx: IngestContext, model: type[CheckIn] | type[Snapshot], institution_id: int, key: str | None,
                     photo: bytes, build: Callable[[Connection, AcceptedImage], CheckIn | Snapshot], topic: str,
                     frames: Sequence[bytes] = (),
                     after: Callable[[Connection, int, list[AcceptedImage]], None] | None = None,
                     repeats: Mapping[str, Any] | None = None) -> tuple[int, bool, dict[str, Any]]:
    """Check the photos, store the upload, hand it to the bus and say its status: one trip to a worker thread
    (hashing and header parsing included, off the event loop). `repeats`: the request's values of
    `RETRY_REPEATS`, which an upload under the same Idempotency-Key must repeat."""
    image = inspect_image(photo, ctx.limits.max_pixels)
    burst = [inspect_image(frame, ctx.limits.max_pixels) for frame in frames]
    subject_id, row = _accept(ctx, model, institution_id, key, image, lambda session: build(session, image),
                              topic, (lambda session, sid: after(session, sid, burst)) if after else None,
                              repeats)
    if row is None:
        try:
            return subject_id, False, load_verdict(ctx, model, subject_id)
        except DBAPIError:  # it is stored: answer it pending (202 with its status URL), never as an error
            log.warning("verdict of %s %s unreadable; answered pending", model.__tablename__, subject_id)
            return subject_id, False, pending_body(model, subject_id, image.sha256)
    hand_to_bus(ctx, topic, subject_id)
    return subject_id, True, verdict_body(row, None)  # just stored: pending, nothing to read back
