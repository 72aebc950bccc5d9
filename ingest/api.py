"""The training sites' HTTP API: check-ins and classroom snapshots, accepted durably, then verified."""


import logging
import secrets
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Annotated, Any, Protocol

from fastapi import APIRouter, Depends, File, Form, Header, Request, Response, UploadFile, params
from sqlalchemy import Connection, bindparam, exists, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from ingest.adapters.evidence import EvidenceStore
from ingest.adapters.images import AcceptedImage, inspect_image
from ingest.checks.limits import WINDOW_S, RateLimits, RecentCounts, refuse_over_limit
from ingest.checks.validation import check_capture_time, check_fix, check_text, parse_client_time
from models.clock import SHANGHAI, utc_now
from models.domain import (
    LIVENESS_ACTIONS,
    LIVENESS_MAX_FRAMES,
    LIVENESS_MIN_FRAMES,
    MAX_RECORD_ID,
    ROLE_NAMES,
    CheckKind,
    Role,
    TraineeInClassIn,
)
from models.errors import UPLOAD_RESPONSES, ApiError, errors
from models.params import UploadIdPath
from models.scope import Scope, ensure_in_class, refuse_missing
from models.tables import (
    CheckIn,
    CheckInFrame,
    ClassSession,
    Evidence,
    FaceTemplate,
    LivenessChallenge,
    OutboxMessage,
    RosterEntry,
    Snapshot,
    Trainee,
    TrainingClass,
    Verification,
)

log = logging.getLogger(__name__)

CHECKIN_TOPIC = "checkin"
SNAPSHOT_TOPIC = "snapshot"


class SessionSource(Protocol):
    def session(self) -> AbstractContextManager[Session]: ...

    def connection(self) -> AbstractContextManager[Connection]: ...

    def writing(self) -> AbstractContextManager[Connection]: ...


@dataclass(frozen=True)
class UploadLimits:
    max_pixels: int
    challenge_ttl_s: float
    max_future_skew_s: float
    max_capture_age_s: float
    max_accuracy_m: float
    verdict_wait_s: float
    challenge_limits: RateLimits
    online_limits: RateLimits


@dataclass
class IngestContext:
    """What the ingest edge needs from the composition root (it never imports the monitor)."""

    db: SessionSource
    evidence: EvidenceStore
    limits: UploadLimits
    publish: Callable[[str, dict[str, Any]], None]
    access: Callable[..., params.Depends]
    wait_for_verdict: Callable[[str, int, float], Awaitable[None]]


def pick_session(local_hhmm: str, sessions: list[Any]) -> Any:
    """The session whose window holds the local time, else the one whose window is nearest."""
    if not sessions:
        return None

    def minutes(hhmm: str) -> int:
        return int(hhmm[:2]) * 60 + int(hhmm[3:5])

    now = minutes(local_hhmm)

    def gap(s: Any) -> int:
        start, end = minutes(s.start_local), minutes(s.end_local)
        return 0 if start <= now <= end else min(abs(now - start), abs(now - end))

    return min(sessions, key=gap)


def verdict_body(subject: CheckIn | Snapshot, verification: Verification | None) -> dict[str, Any]:
    """What a site sees for one upload: status, a zh-CN message saying exactly why, and where to poll."""
    is_checkin = isinstance(subject, CheckIn)
    kind = "check-ins" if is_checkin else "snapshots"
    body: dict[str, Any] = {
        "id": subject.id,
        "status": subject.status,
        "status_url": f"/api/v1/{kind}/{subject.id}",
        "photo_sha256": subject.photo_sha256,
        "reasons": [],
    }
    if is_checkin:
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
    body["fence_result"] = verification.fence_result
    if subject.status == "review":
        review = (verification.measured or {}).get("review") or {}
        body["message"] = f"{action}已受理，待人工复核：{review.get('message', '')}".rstrip("：")
    elif subject.status == "passed":
        body["message"] = f"{action}成功" if is_checkin else f"{action}已核验（{verification.face_count} 张人脸）"
    else:
        body["message"] = f"{action}未通过：" + "；".join(r["message"] for r in verification.reasons)
    return body


async def read_image(upload: UploadFile, max_pixels: int) -> AcceptedImage:
    """Read one uploaded photo and check it off the event loop (hashing and header parsing are not free)."""
    return await run_in_threadpool(inspect_image, await upload.read(), max_pixels)


def single_valued_parts(*repeatable: str) -> Any:
    """A dependency refusing a multipart form that repeats a field (two `photo` parts would silently keep the last)."""

    async def refuse_repeats(request: Request) -> None:
        form = await request.form()
        repeated = sorted({k for k in form if k not in repeatable and len(form.getlist(k)) > 1})
        if repeated:
            raise ApiError(422, "REPEATED_FIELD", f"表单字段只能提供一次：{'、'.join(repeated)}")

    return Depends(refuse_repeats)


def site_institution(scope: Scope) -> int:
    """The institution a site's token is bound to (the only one it may upload for)."""
    if scope.role is not Role.SITE or scope.institution_id is None:
        raise ApiError(403, "FORBIDDEN_ROLE", f"只有培训机构令牌可以上传（当前身份：{ROLE_NAMES[scope.role]}）")
    return scope.institution_id


def _check_idempotency_key(key: str | None) -> str | None:
    if key is None:
        return None
    key = key.strip()
    if not key or len(key) > 100 or any(ord(c) < 32 or ord(c) == 127 for c in key):
        raise ApiError(422, "INVALID_IDEMPOTENCY_KEY", "Idempotency-Key 须为 1 到 100 个可见字符")
    return key


@dataclass(frozen=True)
class ClassFacts:
    """What acceptance needs to know of a class (read in one statement)."""

    id: int
    institution_id: int
    start_date: date
    end_date: date
    liveness_required: bool


def _check_class(facts: ClassFacts | None, class_id: int, institution_id: int, today: date) -> ClassFacts:
    if facts is None:
        raise ApiError(404, "UNKNOWN_CLASS", f"班次 {class_id} 不存在")
    if facts.institution_id != institution_id:
        raise ApiError(403, "CLASS_NOT_IN_SCOPE", "该班次不属于本培训机构，不能为其上传")
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
ROSTER_FACTS = select(
    *CLASS_COLUMNS,
    exists().where(Trainee.id == bindparam("trainee_id")).label("known"),
    exists().where(RosterEntry.class_id == bindparam("class_id"),
                   RosterEntry.trainee_id == bindparam("trainee_id")).label("rostered"),
    exists().where(FaceTemplate.person_kind == "trainee",
                   FaceTemplate.person_id == bindparam("trainee_id")).label("enrolled"),
).where(TrainingClass.id == bindparam("class_id"))
SEEN_PHOTO = select(exists().where(CheckIn.photo_sha256 == bindparam("sha256"))
                    | exists().where(Snapshot.photo_sha256 == bindparam("sha256")))
INSERT_UNLESS_PRESENT = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}
EVIDENCE_KNOWN = select(exists().where(Evidence.sha256 == bindparam("sha256")))
CLASS_WINDOWS = select(ClassSession.id, ClassSession.start_local, ClassSession.end_local).where(
    ClassSession.class_id == bindparam("class_id"))
PRIOR_UPLOAD = {model: select(model.id, model.photo_sha256).where(
    model.institution_id == bindparam("institution_id"), model.idempotency_key == bindparam("key"))
    for model in (CheckIn, Snapshot)}


def _class_in_scope(session: Session | Connection, class_id: int, institution_id: int, today: date) -> ClassFacts:
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


def _refuse_replayed_photo(session: Session | Connection, sha256: str) -> None:
    if session.scalar(SEEN_PHOTO, {"sha256": sha256}):
        raise ApiError(409, "PHOTO_REPLAYED", "该照片此前已上传过，不能重复使用，请现场重新拍摄")


class _Accepted(Exception):
    """Raised inside an idempotent retry to leave the transaction with the first upload's id."""

    def __init__(self, subject_id: int) -> None:
        self.subject_id = subject_id


def _find_previous(
    session: Session | Connection, model: type[CheckIn] | type[Snapshot], institution_id: int, key: str | None,
    sha256: str
) -> int | None:
    """The id of an earlier upload with the same Idempotency-Key; 409 if that key carried another photo."""
    if key is None:
        return None
    prior = session.execute(PRIOR_UPLOAD[model], {"institution_id": institution_id, "key": key}).first()
    if prior is None:
        return None
    if prior.photo_sha256 != sha256:
        raise ApiError(409, "IDEMPOTENCY_KEY_REUSED", "该 Idempotency-Key 已用于另一张照片的上传")
    return prior.id


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
        session.execute(INSERT_UNLESS_PRESENT[dialect](Evidence.__table__).values(values)
                        .on_conflict_do_nothing(index_elements=["sha256"]))
    elif not session.scalar(EVIDENCE_KNOWN, {"sha256": image.sha256}):
        session.execute(insert(Evidence.__table__).values(values))


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
    row.id = session.execute(insert(table).values(values).returning(table.c.id)).scalar_one()
    return int(row.id)


def _store(session: Connection, image: AcceptedImage, row: CheckIn | Snapshot, topic: str) -> tuple[int, int]:
    """Write the evidence row (its file is stored), the upload row and its outbox message; returns their ids."""
    insert_evidence_row(session, image, row.received_at)
    subject_id = insert_row(session, row)
    payload_key = "checkin_id" if topic == CHECKIN_TOPIC else "snapshot_id"
    # Recorded as published with this commit (the API hands it to the bus right after); should that fail, the
    # relay sends it again once `redeliver_after_seconds` pass without a verdict. One transaction per upload.
    outbox_id = insert_row(session, OutboxMessage(topic=topic, subject_id=subject_id, payload={payload_key: subject_id},
                                                  created_at=row.received_at, published_at=row.received_at,
                                                  attempts=1, failures=0))
    return subject_id, outbox_id


def _accept(ctx: IngestContext, model: type[CheckIn] | type[Snapshot], institution_id: int, key: str | None,
            image: AcceptedImage, build: Callable[[Connection], CheckIn | Snapshot], topic: str,
            after: Callable[[Connection, int], None] | None = None) -> tuple[int, CheckIn | Snapshot | None]:
    """Run one acceptance transaction; returns (id, the new row or None when an earlier upload with the same key
    is returned). Races on unique keys resolve to 409 or the prior id."""
    try:
        with ctx.db.connection() as reading:  # Core statements only: no unit of work on the upload path
            prior = _find_previous(reading, model, institution_id, key, image.sha256)
            if prior is not None:
                raise _Accepted(prior)
            row = build(reading)
            _refuse_replayed_photo(reading, image.sha256)
        ctx.evidence.put(image.sha256, image.data)  # the file, fsynced, before a row names it
        with ctx.db.writing() as writing:  # a race with another upload ends on a unique key: handled below
            subject_id, _outbox_id = _store(writing, image, row, topic)
            if after is not None:
                after(writing, subject_id)
            return subject_id, row
    except _Accepted as done:
        return done.subject_id, None
    except IntegrityError:
        log.info("acceptance raced with another upload", exc_info=True)
        with ctx.db.session() as session:
            prior = _find_previous(session, model, institution_id, key, image.sha256)
        if prior is not None:
            return prior, None
        raise ApiError(409, "PHOTO_REPLAYED", "该照片此前已上传过，不能重复使用，请现场重新拍摄") from None


def hand_to_bus(ctx: IngestContext, topic: str, subject_id: int) -> None:
    """Publish a just-committed upload (its outbox row already says so); if the bus fails, the relay sends it
    again from the outbox once `redeliver_after_seconds` pass without a verdict."""
    try:
        ctx.publish(topic, {"checkin_id" if topic == CHECKIN_TOPIC else "snapshot_id": subject_id})
    except Exception:  # noqa: BLE001 - the outbox keeps the message; the relay publishes it later
        log.warning("publish of %s %s failed; the outbox relay will retry", topic, subject_id, exc_info=True)


def publish_outbox(ctx: IngestContext, topic: str, subject_id: int) -> None:
    """Hand an accepted upload's outbox message to the bus now and mark it sent; if the bus fails, the relay
    publishes it later from the outbox."""
    with ctx.db.session() as session:
        for msg in session.scalars(
            select(OutboxMessage).where(OutboxMessage.topic == topic, OutboxMessage.subject_id == subject_id)
        ):
            try:
                ctx.publish(topic, msg.payload)
            except Exception:  # noqa: BLE001 - the outbox keeps the message; the relay publishes it later
                log.warning("publish of %s %s failed; the outbox relay will retry", topic, subject_id, exc_info=True)
                return
            msg.published_at = msg.published_at or utc_now()
            msg.attempts += 1


def _load_verdict(ctx: IngestContext, model: type[CheckIn] | type[Snapshot], subject_id: int) -> dict[str, Any]:
    with ctx.db.session() as session:
        subject = session.get(model, subject_id)
        assert subject is not None
        verification = session.scalar(
            select(Verification).where(
                Verification.subject_kind == ("checkin" if model is CheckIn else "snapshot"),
                Verification.subject_id == subject_id,
            )
        )
        return verdict_body(subject, verification)


def build_ingest_router(ctx: IngestContext) -> APIRouter:
    """The /api/v1 routes for training sites."""
    router = APIRouter(prefix="/api/v1", tags=["ingest"])
    site = Annotated[Scope, ctx.access(Role.SITE)]
    anyone = Annotated[Scope, ctx.access()]

    def accept_and_queue(model: type[CheckIn] | type[Snapshot], institution_id: int, key: str | None, photo: bytes,
                         build: Callable[[Connection, AcceptedImage], CheckIn | Snapshot], topic: str,
                         frames: Sequence[bytes] = (),
                         after: Callable[[Connection, int, list[AcceptedImage]], None] | None = None,
                         ) -> tuple[int, bool, dict[str, Any]]:
        """Check the photos, store the upload, hand it to the bus and say its status: one trip to a worker thread
        (hashing and header parsing included, off the event loop)."""
        image = inspect_image(photo, ctx.limits.max_pixels)
        burst = [inspect_image(frame, ctx.limits.max_pixels) for frame in frames]
        subject_id, row = _accept(ctx, model, institution_id, key, image, lambda session: build(session, image),
                                  topic, (lambda session, sid: after(session, sid, burst)) if after else None)
        if row is None:
            return subject_id, False, _load_verdict(ctx, model, subject_id)
        hand_to_bus(ctx, topic, subject_id)
        return subject_id, True, verdict_body(row, None)  # just stored: pending, nothing to read back

    async def respond(model: type[CheckIn] | type[Snapshot], topic: str, subject_id: int, created: bool,
                      body: dict[str, Any], response: Response) -> dict[str, Any]:
        if body["status"] == "pending" and ctx.limits.verdict_wait_s > 0:
            await ctx.wait_for_verdict(topic, subject_id, ctx.limits.verdict_wait_s)
            body = await run_in_threadpool(_load_verdict, ctx, model, subject_id)
        body["duplicate"] = not created
        response.status_code = 202 if body["status"] == "pending" else (201 if created else 200)
        return body

    async def read_upload(idempotency_key: str | None, captured_at: str,
                          photo: UploadFile) -> tuple[str | None, datetime, datetime, bytes]:
        """What every upload checks after the caller's role: the key, the capture time; and the photo's bytes."""
        key = _check_idempotency_key(idempotency_key)
        now = utc_now()
        captured = parse_client_time(captured_at)
        check_capture_time(captured, now, ctx.limits.max_future_skew_s, ctx.limits.max_capture_age_s)
        return key, now, captured, await photo.read()

    @router.post("/check-ins", summary="A trainee's sign-in or sign-out selfie with its GPS fix",
                 responses={**UPLOAD_RESPONSES, **errors(404, 409)})
    async def post_checkin(
        scope: site,
        response: Response,
        photo: Annotated[UploadFile, File(description="JPEG, PNG or WebP selfie")],
        trainee_id: Annotated[int, Form(ge=1, le=MAX_RECORD_ID)],
        class_id: Annotated[int, Form(ge=1, le=MAX_RECORD_ID)],
        kind: Annotated[CheckKind, Form(description="sign_in | sign_out")],
        captured_at: Annotated[str, Form(description="ISO 8601 capture time from the phone")],
        latitude: Annotated[float, Form()],
        longitude: Annotated[float, Form()],
        accuracy_m: Annotated[float, Form(description="GPS accuracy radius in metres")],
        device_id: Annotated[str, Form()],
        mock_location: Annotated[bool, Form()] = False,
        challenge_id: Annotated[str | None, Form(description="liveness challenge answered by `frames`",
                                                 pattern="^([0-9a-f]{32})?$")] = None,
        frames: Annotated[list[UploadFile] | None, File(description="3-8 burst frames for the challenge")] = None,
        idempotency_key: Annotated[str | None, Header()] = None,
        _single: None = single_valued_parts("frames"),
    ) -> dict[str, Any]:
        institution_id = site_institution(scope)
        check_fix(latitude, longitude, accuracy_m, ctx.limits.max_accuracy_m)
        device = check_text(device_id, "device_id", "设备编号", 100)
        frames, challenge_id = frames or [], challenge_id or None
        if challenge_id is None and frames:  # counts are checked before anything is decoded
            raise ApiError(422, "CHALLENGE_ID_REQUIRED", "上传连拍画面时须同时提供活体挑战编号（challenge_id）")
        if challenge_id is not None and not LIVENESS_MIN_FRAMES <= len(frames) <= LIVENESS_MAX_FRAMES:
            expected = f"{LIVENESS_MIN_FRAMES}–{LIVENESS_MAX_FRAMES}"
            raise ApiError(422, "INVALID_FRAME_COUNT", f"活体检测需上传 {expected} 张连拍画面（收到 {len(frames)} 张）")
        key, now, captured, data = await read_upload(idempotency_key, captured_at, photo)
        burst = [await frame.read() for frame in frames]

        def build(session: Connection, image: AcceptedImage) -> CheckIn:
            local = now.astimezone(SHANGHAI)
            cls = check_rostered(session, class_id, trainee_id, institution_id, local.date())
            if cls.liveness_required and challenge_id is None:
                raise ApiError(422, "LIVENESS_REQUIRED", "本班次签到须完成活体检测：请先获取活体挑战并上传连拍画面")
            if challenge_id is not None:
                owner = session.scalar(select(LivenessChallenge.institution_id).where(
                    LivenessChallenge.id == challenge_id))
                if owner != institution_id:
                    raise ApiError(422, "UNKNOWN_CHALLENGE", "活体挑战编号不存在")
            sessions = list(session.execute(CLASS_WINDOWS, {"class_id": class_id}))
            chosen = pick_session(captured.astimezone(SHANGHAI).strftime("%H:%M"), sessions)
            return CheckIn(
                trainee_id=trainee_id, class_id=class_id, institution_id=institution_id,
                session_id=chosen.id if chosen else None, kind=kind.value, captured_at=captured,
                received_at=now, lat=latitude, lon=longitude, accuracy_m=accuracy_m, device_id=device,
                mock_location=mock_location, photo_sha256=image.sha256, idempotency_key=key, status="pending",
                liveness_challenge_id=challenge_id,
            )

        def store_burst(session: Connection, checkin_id: int, checked: list[AcceptedImage]) -> None:
            for index, frame in enumerate(checked):
                store_evidence(session, ctx.evidence, frame, now)
                session.execute(insert(CheckInFrame.__table__).values(checkin_id=checkin_id, index=index,
                                                                      sha256=frame.sha256))
            if challenge_id is not None:
                session.execute(update(LivenessChallenge).where(LivenessChallenge.id == challenge_id,
                                                                LivenessChallenge.used_by_checkin_id.is_(None))
                                .values(used_by_checkin_id=checkin_id))

        subject_id, created, body = await run_in_threadpool(
            accept_and_queue, CheckIn, institution_id, key, data, build, CHECKIN_TOPIC, burst, store_burst
        )
        return await respond(CheckIn, CHECKIN_TOPIC, subject_id, created, body, response)

    @router.post("/liveness/challenges", status_code=201, summary="A random single-use liveness challenge",
                 responses=errors(404, 409, 429))
    def create_challenge(body: TraineeInClassIn, scope: site) -> dict[str, Any]:
        institution_id = site_institution(scope)
        now = utc_now()
        with ctx.db.session() as session:
            check_rostered(session, body.class_id, body.trainee_id, institution_id, now.astimezone(SHANGHAI).date())
            since = now - timedelta(seconds=WINDOW_S)
            recent = select(func.count()).select_from(LivenessChallenge).where(
                LivenessChallenge.institution_id == institution_id, LivenessChallenge.issued_at >= since)
            counts = RecentCounts(
                device=int(session.scalar(recent.where(LivenessChallenge.device_id == body.device_id)) or 0)
                if body.device_id else 0,
                site=int(session.scalar(recent) or 0),
                open_for_trainee=int(session.scalar(select(func.count()).select_from(LivenessChallenge).where(
                    LivenessChallenge.trainee_id == body.trainee_id, LivenessChallenge.expires_at > now,
                    LivenessChallenge.used_by_checkin_id.is_(None))) or 0))
            if refusal := refuse_over_limit("活体挑战", counts, ctx.limits.challenge_limits):
                raise refusal
            action = secrets.choice(sorted(LIVENESS_ACTIONS))
            challenge = LivenessChallenge(
                id=secrets.token_hex(16), institution_id=institution_id, class_id=body.class_id,
                trainee_id=body.trainee_id, action=action, issued_at=now, device_id=body.device_id,
                expires_at=now + timedelta(seconds=ctx.limits.challenge_ttl_s))
            session.add(challenge)
        return {"challenge_id": challenge.id, "action": action, "instruction": LIVENESS_ACTIONS[action],
                "expires_at": challenge.expires_at.isoformat(), "min_frames": LIVENESS_MIN_FRAMES,
                "max_frames": LIVENESS_MAX_FRAMES}

    @router.post("/snapshots", summary="A periodic classroom snapshot",
                 responses={**UPLOAD_RESPONSES, **errors(404, 409)})
    async def post_snapshot(
        scope: site,
        response: Response,
        photo: Annotated[UploadFile, File(description="JPEG, PNG or WebP classroom photo")],
        class_id: Annotated[int, Form(ge=1, le=MAX_RECORD_ID)],
        camera_id: Annotated[str, Form()],
        captured_at: Annotated[str, Form()],
        idempotency_key: Annotated[str | None, Header()] = None,
        _single: None = single_valued_parts(),
    ) -> dict[str, Any]:
        institution_id = site_institution(scope)
        camera = check_text(camera_id, "camera_id", "摄像头编号", 100)
        key, now, captured, data = await read_upload(idempotency_key, captured_at, photo)

        def build(session: Connection, image: AcceptedImage) -> Snapshot:
            _class_in_scope(session, class_id, institution_id, now.astimezone(SHANGHAI).date())
            return Snapshot(
                class_id=class_id, institution_id=institution_id, camera_id=camera, captured_at=captured,
                received_at=now, photo_sha256=image.sha256, idempotency_key=key, status="pending",
            )

        subject_id, created, body = await run_in_threadpool(
            accept_and_queue, Snapshot, institution_id, key, data, build, SNAPSHOT_TOPIC
        )
        return await respond(Snapshot, SNAPSHOT_TOPIC, subject_id, created, body, response)

    def _get(model: type[CheckIn] | type[Snapshot], subject_id: int, scope: Scope) -> dict[str, Any]:
        what = "签到记录" if model is CheckIn else "课堂抓拍"
        with ctx.db.session() as session:
            subject = session.get(model, subject_id)
            if subject is None:
                raise refuse_missing("NOT_FOUND", what, subject_id)
            ensure_in_class(session, scope, subject.class_id, "NOT_FOUND", what, subject_id)
        return _load_verdict(ctx, model, subject_id)

    @router.get("/check-ins/{checkin_id}", summary="The verdict of one check-in")
    def get_checkin(checkin_id: UploadIdPath, scope: anyone) -> dict[str, Any]:
        return _get(CheckIn, checkin_id, scope)

    @router.get("/snapshots/{snapshot_id}", summary="The verdict of one snapshot")
    def get_snapshot(snapshot_id: UploadIdPath, scope: anyone) -> dict[str, Any]:
        return _get(Snapshot, snapshot_id, scope)

    @router.get("/site/classes", summary="The site's classes running today, with sessions and roster")
    def site_classes(scope: site) -> list[dict[str, Any]]:
        institution_id = site_institution(scope)
        today = utc_now().astimezone(SHANGHAI).date()
        with ctx.db.session() as session:
            classes = session.scalars(
                select(TrainingClass).where(
                    TrainingClass.institution_id == institution_id,
                    TrainingClass.start_date <= today,
                    TrainingClass.end_date >= today,
                ).order_by(TrainingClass.id)
            ).all()
            out = []
            for cls in classes:
                trainees = session.execute(
                    select(Trainee.id, Trainee.name).join(RosterEntry, RosterEntry.trainee_id == Trainee.id)
                    .where(RosterEntry.class_id == cls.id).order_by(Trainee.id)
                ).all()
                sessions = session.scalars(select(ClassSession).where(ClassSession.class_id == cls.id)).all()
                out.append({
                    "id": cls.id, "code": cls.code, "name": cls.name,
                    "sessions": [{"name": s.name, "start": s.start_local, "end": s.end_local} for s in sessions],
                    "trainees": [{"id": t.id, "name": t.name} for t in trainees],
                })
            return out

    return router


def count_rows(session: Session) -> dict[str, int]:
    """Row counts of what an upload writes (the tests' "nothing was stored" check)."""
    return {
        name: int(session.scalar(select(func.count()).select_from(model)) or 0)
        for name, model in (("checkins", CheckIn), ("snapshots", Snapshot), ("evidence", Evidence),
                            ("outbox", OutboxMessage))
    }


def iter_pending_outbox(
    session: Session, created_before: datetime, older_than: datetime, limit: int = 200
) -> Iterator[OutboxMessage]:
    """Unprocessed outbox messages created before `created_before`, unpublished or last sent before `older_than`."""
    yield from session.scalars(
        select(OutboxMessage)
        .where(OutboxMessage.processed_at.is_(None))
        .where(OutboxMessage.created_at < created_before)
        .where((OutboxMessage.published_at.is_(None)) | (OutboxMessage.published_at < older_than))
        .order_by(OutboxMessage.id)
        .limit(limit)
    )
