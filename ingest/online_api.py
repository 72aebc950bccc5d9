"""Online study for training sites' platforms: start a session, send face heartbeats at random moments, end it."""

import secrets
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Response, UploadFile
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from starlette.concurrency import run_in_threadpool

from ingest.api import IngestContext, _require_site, check_rostered, publish_outbox, store_evidence, utc_now
from ingest.images import inspect_image
from ingest.validation import SHANGHAI, check_capture_time, parse_client_time
from models.domain import Principal, Role, TraineeInClassIn
from models.errors import ApiError
from models.tables import OnlineHeartbeat, OnlineSession, OutboxMessage

HEARTBEAT_TOPIC = "heartbeat"


def next_heartbeat_s() -> int:
    """A random wait (60–600 s) before the next face photo, so that nobody can predict it."""
    return 60 + secrets.randbelow(541)


def session_body(s: OnlineSession, beats: list[OnlineHeartbeat]) -> dict[str, Any]:
    return {"id": s.id, "class_id": s.class_id, "trainee_id": s.trainee_id, "started_at": s.started_at.isoformat(),
            "ended_at": s.ended_at.isoformat() if s.ended_at else None,
            "heartbeats": [{"id": b.id, "captured_at": b.captured_at.isoformat(), "status": b.status,
                            "face_distance": b.face_distance} for b in beats]}


def build_online_router(ctx: IngestContext) -> APIRouter:
    router = APIRouter(prefix="/api/v1/online", tags=["online study"])
    authenticated = Annotated[Principal, Depends(ctx.authenticate)]

    def own_session(session, session_id: int, institution_id: int) -> OnlineSession:  # noqa: ANN001
        row = session.get(OnlineSession, session_id)
        if row is None or row.institution_id != institution_id:
            raise ApiError(404, "UNKNOWN_ONLINE_SESSION", f"线上学习会话 {session_id} 不存在")
        return row

    @router.post("/sessions", status_code=201, summary="Start an online study session")
    def start(body: TraineeInClassIn, principal: authenticated) -> dict[str, Any]:
        institution_id = _require_site(principal)
        now = utc_now()
        with ctx.db.session() as session:
            check_rostered(session, body.class_id, body.trainee_id, institution_id, now.astimezone(SHANGHAI).date())
            row = OnlineSession(class_id=body.class_id, trainee_id=body.trainee_id, institution_id=institution_id,
                                started_at=now)
            session.add(row)
            session.flush()
            return {**session_body(row, []), "next_heartbeat_in_s": next_heartbeat_s()}

    @router.post("/sessions/{session_id}/heartbeats", status_code=201, summary="A face photo during study")
    async def heartbeat(session_id: int, principal: authenticated, response: Response,
                        photo: Annotated[UploadFile, File()], captured_at: Annotated[str, Form()]) -> dict[str, Any]:
        institution_id = _require_site(principal)
        now = utc_now()
        captured = parse_client_time(captured_at)
        check_capture_time(captured, now, ctx.limits.max_future_skew_s, ctx.limits.max_capture_age_s)
        image = inspect_image(await photo.read(), ctx.limits.max_pixels)

        def accept() -> int:
            try:
                with ctx.db.session() as session:
                    row = own_session(session, session_id, institution_id)
                    if row.ended_at is not None:
                        raise ApiError(409, "ONLINE_SESSION_ENDED", "该线上学习会话已结束")
                    if session.scalar(select(OnlineHeartbeat.id).where(OnlineHeartbeat.photo_sha256 == image.sha256)):
                        raise ApiError(409, "PHOTO_REPLAYED", "该照片此前已上传过，不能重复使用")
                    store_evidence(session, ctx.evidence, image, now)
                    beat = OnlineHeartbeat(session_id=session_id, captured_at=captured, received_at=now,
                                           photo_sha256=image.sha256, status="pending")
                    session.add(beat)
                    session.flush()
                    session.add(OutboxMessage(topic=HEARTBEAT_TOPIC, subject_id=beat.id,
                                              payload={"heartbeat_id": beat.id}, created_at=now))
                    return beat.id
            except IntegrityError:
                raise ApiError(409, "PHOTO_REPLAYED", "该照片此前已上传过，不能重复使用") from None

        beat_id = await run_in_threadpool(accept)
        await run_in_threadpool(publish_outbox, ctx, HEARTBEAT_TOPIC, beat_id)
        await ctx.wait_for_verdict("heartbeat", beat_id, ctx.limits.verdict_wait_s)
        with ctx.db.session() as session:
            beat = session.get(OnlineHeartbeat, beat_id)
            assert beat is not None
            status = beat.status
        response.status_code = 202 if status == "pending" else 201
        messages = {"passed": "人脸核验通过", "failed": "人脸核验未通过，本段学时不计", "pending": "已受理，正在核验"}
        return {"id": beat_id, "status": status, "message": messages[status], "next_heartbeat_in_s": next_heartbeat_s()}

    @router.post("/sessions/{session_id}/end", summary="End an online study session")
    def end(session_id: int, principal: authenticated) -> dict[str, Any]:
        institution_id = _require_site(principal)
        with ctx.db.session() as session:
            row = own_session(session, session_id, institution_id)
            row.ended_at = row.ended_at or utc_now()
            beats = list(session.scalars(select(OnlineHeartbeat).where(OnlineHeartbeat.session_id == session_id)
                                         .order_by(OnlineHeartbeat.captured_at)))
            return session_body(row, beats)

    @router.get("/sessions/{session_id}", summary="An online session with its heartbeats")
    def get_session(session_id: int, principal: authenticated) -> dict[str, Any]:
        with ctx.db.session() as session:
            row = session.get(OnlineSession, session_id)
            if row is None or (principal.role is Role.SITE and row.institution_id != principal.institution_id):
                raise ApiError(404, "UNKNOWN_ONLINE_SESSION", f"线上学习会话 {session_id} 不存在")
            beats = list(session.scalars(select(OnlineHeartbeat).where(OnlineHeartbeat.session_id == session_id)
                                         .order_by(OnlineHeartbeat.captured_at)))
            return session_body(row, beats)

    return router
