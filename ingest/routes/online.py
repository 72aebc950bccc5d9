"""Online study for training sites' platforms: start a session, send face heartbeats at random moments, end it."""

import logging
import secrets
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Header, Response, UploadFile
from sqlalchemy import exists, func, select
from sqlalchemy.exc import DBAPIError, IntegrityError, PendingRollbackError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from ingest.acceptance import check_rostered, store_evidence
from ingest.adapters.images import inspect_image
from ingest.adapters.multipart import InMemoryFormRoute
from ingest.checks.limits import WINDOW_S, RecentCounts, refuse_over_limit
from ingest.context import Ingest, IngestContext
from ingest.outbox import HEARTBEAT_TOPIC, outbox_message, publish_outbox
from ingest.routes.uploads import read_upload, single_valued_parts, site_institution
from ingest.schemas import HeartbeatAcceptedOut, OnlineSessionOut, OnlineSessionStartedOut, upload_responses
from models.clock import SHANGHAI, utc_now
from models.domain import TraineeInClassIn
from models.errors import ApiError, errors
from models.params import UploadIdPath
from models.reasons import heartbeat_reasons
from models.scope import AnyCaller, Scope, SiteCaller, get_in_scope
from models.tables import Evidence, OnlineHeartbeat, OnlineSession
from models.terms import UploadStatus
from models.timefmt import format_duration_zh

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/v1/online", tags=["online study"], route_class=InMemoryFormRoute)


def next_heartbeat_s() -> int:
    """A random wait (60–600 s) before the next face photo, so that nobody can predict it."""
    return 60 + secrets.randbelow(541)


STALE_AFTER = timedelta(minutes=30)  # an open session with no heartbeat for this long was abandoned
MAX_LAG = timedelta(minutes=5)
"""A heartbeat is a live frame of a webcam: one captured longer than this before it arrived is refused (a burst of
heartbeats sent in one second, each dated 15 minutes after the last, claimed two hours of study)."""


def last_sign_of_life(session: Session, row: OnlineSession) -> datetime:
    """When the server last heard of the session: its latest heartbeat's arrival, or its start."""
    return session.scalar(select(func.max(OnlineHeartbeat.received_at))
                          .where(OnlineHeartbeat.session_id == row.id)) or row.started_at


def close_stale_sessions(session: Session, trainee_id: int, now: datetime) -> None:
    """End the trainee's open sessions that saw nothing for STALE_AFTER (the app crashed, the phone died),
    at their last sign of life, so that a new session can start."""
    for row in session.scalars(select(OnlineSession).where(OnlineSession.trainee_id == trainee_id,
                                                           OnlineSession.ended_at.is_(None))):
        last = last_sign_of_life(session, row)
        if now - last > STALE_AFTER:
            row.ended_at = last


def session_body(session: Session, s: OnlineSession) -> dict[str, Any]:
    """A session with each heartbeat's status and, once judged, why (its verification's reasons, zh-CN)."""
    beats = list(session.scalars(select(OnlineHeartbeat).where(OnlineHeartbeat.session_id == s.id)
                                 .order_by(OnlineHeartbeat.captured_at, OnlineHeartbeat.id)))
    reasons = heartbeat_reasons(session, beats)
    return {"id": s.id, "class_id": s.class_id, "trainee_id": s.trainee_id, "started_at": s.started_at.isoformat(),
            "ended_at": s.ended_at.isoformat() if s.ended_at else None,
            "heartbeats": [{"id": b.id, "captured_at": b.captured_at.isoformat(), "status": b.status,
                            "face_distance": b.face_distance, "reasons": reasons.get(b.id, [])} for b in beats]}


def visible_session(session: Session, session_id: int, scope: Scope) -> OnlineSession:
    return get_in_scope(session, scope, OnlineSession, session_id, "UNKNOWN_ONLINE_SESSION", "线上学习会话")

@router.post("/sessions", status_code=201, summary="Start an online study session", responses=errors(404, 409, 429),
             response_model=OnlineSessionStartedOut)
def start(body: TraineeInClassIn, scope: SiteCaller, ctx: Ingest) -> dict[str, Any]:
    institution_id = site_institution(scope)
    now = utc_now()
    with ctx.db.session() as session:
        check_rostered(session, body.class_id, body.trainee_id, institution_id, now.astimezone(SHANGHAI).date())
        close_stale_sessions(session, body.trainee_id, now)
        recent = select(func.count()).select_from(OnlineSession).where(
            OnlineSession.institution_id == institution_id, OnlineSession.started_at >= now - timedelta(
                seconds=WINDOW_S))
        counts = RecentCounts(
            device=int(session.scalar(recent.where(OnlineSession.device_id == body.device_id)) or 0)
            if body.device_id else 0,
            site=int(session.scalar(recent) or 0),
            open_for_trainee=int(session.scalar(select(func.count()).select_from(OnlineSession).where(
                OnlineSession.trainee_id == body.trainee_id, OnlineSession.ended_at.is_(None))) or 0))
        if refusal := refuse_over_limit("线上学习会话", counts, ctx.limits.online_limits):
            raise refusal
        row = OnlineSession(class_id=body.class_id, trainee_id=body.trainee_id, institution_id=institution_id,
                            started_at=now, device_id=body.device_id)
        try:
            with session.begin_nested():
                session.add(row)
                session.flush()
        except IntegrityError:  # a simultaneous start took the trainee's one open session (a unique index holds it)
            raise ApiError(409, "TOO_MANY_OPEN", "该学员已有 1 个未完成的线上学习会话，请先完成或等待其过期",
                           limit=1, scope="trainee") from None
        return {**session_body(session, row), "next_heartbeat_in_s": next_heartbeat_s()}

@router.post("/sessions/{session_id}/heartbeats", status_code=201, summary="A face photo during study",
             responses={**upload_responses(HeartbeatAcceptedOut, 202), **errors(409)},
             response_model=HeartbeatAcceptedOut)
async def heartbeat(session_id: UploadIdPath, scope: SiteCaller, ctx: Ingest, response: Response,
                    photo: Annotated[UploadFile, File()], captured_at: Annotated[str, Form()],
                    idempotency_key: Annotated[str | None, Header(description=(
                        "the same key and photo sent again (an answer lost) return the first heartbeat, "
                        "duplicate=true"))] = None,
                    _single: None = single_valued_parts()) -> dict[str, Any]:
    key, now, captured, data = await read_upload(ctx, idempotency_key, captured_at, photo)
    image = await run_in_threadpool(inspect_image, data, ctx.limits.max_pixels)

    def accept() -> tuple[int, bool] | None:
        """(the heartbeat's id, whether this request created it); None when the session was found abandoned."""
        try:
            with ctx.db.session() as session:
                row = visible_session(session, session_id, scope)
                if (prior := prior_heartbeat(session, session_id, key, image.sha256)) is not None:
                    return prior, False  # a retry: even once the session has ended, it gets its first heartbeat
                if row.ended_at is not None:
                    raise ApiError(409, "ONLINE_SESSION_ENDED", "该线上学习会话已结束")
                if now - (last := last_sign_of_life(session, row)) > STALE_AFTER:
                    row.ended_at = last  # abandoned: ended at its last sign of life, and stays ended (committed)
                    return None
                if captured < row.started_at - timedelta(seconds=ctx.limits.max_future_skew_s):
                    raise ApiError(422, "CAPTURED_BEFORE_SESSION", "抽拍时间早于本次线上学习会话的开始时间"
                                   f"（{row.started_at.astimezone(SHANGHAI):%H:%M:%S}，北京时间），请检查设备时间")
                if now - captured > MAX_LAG:
                    raise ApiError(422, "HEARTBEAT_TOO_LATE",
                                   f"学习抽拍须在拍摄后 {MAX_LAG.seconds // 60} 分钟内上传（本张拍摄于"
                                   f"{format_duration_zh((now - captured).total_seconds())}前），请重新拍摄")
                if session.scalar(select(exists().where(Evidence.sha256 == image.sha256))):
                    # the very bytes of a photo the center holds (an enrolment photo, a check-in, a heartbeat)
                    raise ApiError(409, "PHOTO_REPLAYED", "该照片此前已上传过（如人脸登记照片、签到照片或此前的"
                                   "学习抽拍），不能作为学习抽拍，请重新拍摄")
                store_evidence(session, ctx.evidence, image, now)
                beat = OnlineHeartbeat(session_id=session_id, captured_at=captured, received_at=now,
                                       photo_sha256=image.sha256, status=UploadStatus.PENDING, idempotency_key=key)
                session.add(beat)
                session.flush()
                session.add(outbox_message(HEARTBEAT_TOPIC, beat.id, now))
                return beat.id, True
        except (IntegrityError, ApiError) as exc:  # a simultaneous request took the photo or the key first
            if isinstance(exc, ApiError) and (exc.code != "PHOTO_REPLAYED" or key is None):
                raise
            with ctx.db.session() as session:  # read afresh: the same request under the same key (a retry racing
                # its first sending) stored the photo with its heartbeat, and gets that heartbeat back
                if (prior := prior_heartbeat(session, session_id, key, image.sha256)) is not None:
                    return prior, False
            if isinstance(exc, ApiError):
                raise
            raise ApiError(409, "PHOTO_REPLAYED", "该照片此前已上传过，不能重复使用") from None

    accepted = await run_in_threadpool(accept)
    if accepted is None:
        raise ApiError(409, "ONLINE_SESSION_ENDED", f"该线上学习会话已超过 {STALE_AFTER.seconds // 60} 分钟没有"
                       "学习抽拍，已于最后一次抽拍时结束，之后的学时不计：请重新开始学习会话")
    beat_id, created = accepted
    if created:
        await run_in_threadpool(publish_outbox, ctx, HEARTBEAT_TOPIC, beat_id)
    await ctx.wait_for_verdict("heartbeat", beat_id, ctx.limits.verdict_wait_s)
    try:
        status, reasons = await run_in_threadpool(heartbeat_verdict, ctx, beat_id)
    except (DBAPIError, PendingRollbackError):  # stored and committed: never answered as an error
        log.warning("verdict of heartbeat %s unreadable after acceptance; answered pending", beat_id)
        status, reasons = UploadStatus.PENDING, []
    response.status_code = 202 if status == UploadStatus.PENDING else (201 if created else 200)
    messages = {"passed": "人脸核验通过", "failed": "人脸核验未通过，本段学时不计", "pending": "已受理，正在核验",
                "review": "人脸待人工复核，确认后计入学时"}
    why = "；".join(r["message"] for r in reasons if status == UploadStatus.FAILED)
    return {"id": beat_id, "status": status, "message": f"{messages[status]}：{why}" if why else messages[status],
            "reasons": reasons, "duplicate": not created, "next_heartbeat_in_s": next_heartbeat_s()}


def prior_heartbeat(session: Session, session_id: int, key: str | None, sha256: str) -> int | None:
    """The heartbeat this session already has under `key`, if any; 409 if that key came with another photo."""
    if key is None:
        return None
    prior = session.execute(select(OnlineHeartbeat.id, OnlineHeartbeat.photo_sha256).where(
        OnlineHeartbeat.session_id == session_id, OnlineHeartbeat.idempotency_key == key)).first()
    if prior is None:
        return None
    if prior.photo_sha256 != sha256:
        raise ApiError(409, "IDEMPOTENCY_KEY_REUSED", "该 Idempotency-Key 已用于另一张照片的上传，新的抽拍请使用新的键")
    return int(prior.id)


def heartbeat_verdict(ctx: IngestContext, beat_id: int) -> tuple[str, list[dict[str, Any]]]:
    """A heartbeat's status now, with its reasons once judged."""
    with ctx.db.session() as session:
        beat = session.get(OnlineHeartbeat, beat_id)
        assert beat is not None
        return beat.status, heartbeat_reasons(session, [beat]).get(beat_id, [])

@router.post("/sessions/{session_id}/end", summary="End an online study session", response_model=OnlineSessionOut)
def end(session_id: UploadIdPath, scope: SiteCaller, ctx: Ingest) -> dict[str, Any]:
    with ctx.db.session() as session:
        row = visible_session(session, session_id, scope)
        if row.ended_at is None:  # one silent past STALE_AFTER ended at its last sign of life, not now (outside
            now = utc_now()  # tester: ending an abandoned session credited 15 minutes nobody studied)
            last = last_sign_of_life(session, row)
            row.ended_at = last if now - last > STALE_AFTER else now
        return session_body(session, row)

@router.get("/sessions/{session_id}", summary="An online session with its heartbeats",
            response_model=OnlineSessionOut)
def get_session(session_id: UploadIdPath, scope: AnyCaller, ctx: Ingest) -> dict[str, Any]:
    with ctx.db.session() as session:
        row = visible_session(session, session_id, scope)
        return session_body(session, row)
