"""A trainee's sign-in or sign-out: the selfie with its GPS fix (and, answering a liveness challenge, its burst),
accepted durably and verified by the worker; and its verdict."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Header, Response, UploadFile
from sqlalchemy import Connection, insert, select, update
from starlette.concurrency import run_in_threadpool

from ingest.acceptance import CLASS_WINDOWS, accept_and_queue, check_rostered, pick_session, store_evidence
from ingest.adapters.images import AcceptedImage
from ingest.adapters.multipart import InMemoryFormRoute
from ingest.checks.validation import check_fix, check_text
from ingest.context import Ingest
from ingest.outbox import CHECKIN_TOPIC
from ingest.routes.uploads import get_upload, read_upload, respond, single_valued_parts, site_institution
from ingest.schemas import CheckInUploadOut, CheckInVerdictOut, upload_responses
from models.audit import append_audit
from models.clock import SHANGHAI
from models.domain import LIVENESS_MAX_FRAMES, LIVENESS_MIN_FRAMES, MAX_RECORD_ID, CheckKind
from models.errors import ApiError, errors
from models.params import UploadIdPath
from models.scope import AnyCaller, SiteCaller
from models.tables import CheckIn, CheckInFrame, LivenessChallenge
from models.terms import UploadStatus

router = APIRouter(prefix="/api/v1", tags=["ingest"], route_class=InMemoryFormRoute)


@router.post("/check-ins", summary="A trainee's sign-in or sign-out selfie with its GPS fix",
             responses={**upload_responses(CheckInUploadOut), **errors(404, 409)}, response_model=CheckInUploadOut,
             response_model_exclude_unset=True)
async def post_checkin(
    scope: SiteCaller,
    ctx: Ingest,
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
    key, now, captured, data = await read_upload(ctx, idempotency_key, captured_at, photo)
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
            mock_location=mock_location, photo_sha256=image.sha256, idempotency_key=key, status=UploadStatus.PENDING,
            liveness_challenge_id=challenge_id,
        )

    def store_burst(session: Connection, checkin_id: int, checked: list[AcceptedImage]) -> None:
        for index, frame in enumerate(checked):
            store_evidence(session, ctx.evidence, frame, now)
            values = {"checkin_id": checkin_id, "index": index, "sha256": frame.sha256}
            session.execute(insert(CheckInFrame).values(values))
            append_audit(session, "checkin_frames.insert", "checkin_frames", f"{checkin_id}/{index}", values)
        if challenge_id is not None:
            used = session.execute(update(LivenessChallenge).where(LivenessChallenge.id == challenge_id,
                                                                   LivenessChallenge.used_by_checkin_id.is_(None))
                                   .values(used_by_checkin_id=checkin_id))
            if used.rowcount == 1:  # a Core update: the chain records it here (models/audit_rows.py holds rows to it)
                append_audit(session, "liveness_challenges.update", "liveness_challenges", challenge_id,
                             {"used_by_checkin_id": checkin_id})

    subject_id, created, body = await run_in_threadpool(
        accept_and_queue, ctx, CheckIn, institution_id, key, data, build, CHECKIN_TOPIC, burst, store_burst,
        {"class_id": class_id, "trainee_id": trainee_id, "kind": kind.value}
    )
    return await respond(ctx, CheckIn, CHECKIN_TOPIC, subject_id, created, body, response)


@router.get("/check-ins/{checkin_id}", summary="The verdict of one check-in", response_model=CheckInVerdictOut,
            response_model_exclude_unset=True)
def get_checkin(checkin_id: UploadIdPath, scope: AnyCaller, ctx: Ingest) -> dict[str, Any]:
    return get_upload(ctx, CheckIn, checkin_id, scope)
