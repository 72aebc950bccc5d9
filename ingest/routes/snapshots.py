"""Periodic classroom snapshots, accepted durably and verified by the worker; and their verdicts."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Header, Response, UploadFile
from sqlalchemy import Connection
from starlette.concurrency import run_in_threadpool

from ingest.acceptance import accept_and_queue, class_in_scope
from ingest.adapters.images import AcceptedImage
from ingest.adapters.multipart import InMemoryFormRoute
from ingest.checks.validation import check_text
from ingest.context import Ingest
from ingest.outbox import SNAPSHOT_TOPIC
from ingest.routes.uploads import get_upload, read_upload, respond, single_valued_parts, site_institution
from ingest.schemas import SnapshotUploadOut, SnapshotVerdictOut, upload_responses
from models.clock import SHANGHAI
from models.domain import MAX_RECORD_ID
from models.errors import ApiError, errors
from models.params import UploadIdPath
from models.scope import AnyCaller, SiteCaller
from models.tables import Snapshot
from models.terms import UploadStatus

router = APIRouter(prefix="/api/v1", tags=["ingest"], route_class=InMemoryFormRoute)


@router.post("/snapshots", summary="A periodic classroom snapshot",
             responses={**upload_responses(SnapshotUploadOut), **errors(404, 409)}, response_model=SnapshotUploadOut,
             response_model_exclude_unset=True)
async def post_snapshot(
    scope: SiteCaller,
    ctx: Ingest,
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
    if camera.lower().startswith("camera:"):  # reserved for the center's registered cameras (their frames' replay rule)
        raise ApiError(422, "RESERVED_CAMERA_ID", "摄像头编号不能以 camera: 开头（该前缀留给监控中心登记的摄像头）")
    key, now, captured, data = await read_upload(ctx, idempotency_key, captured_at, photo)

    def build(session: Connection, image: AcceptedImage) -> Snapshot:
        class_in_scope(session, class_id, institution_id, now.astimezone(SHANGHAI).date())
        return Snapshot(
            class_id=class_id, institution_id=institution_id, camera_id=camera, captured_at=captured,
            received_at=now, photo_sha256=image.sha256, idempotency_key=key, status=UploadStatus.PENDING,
        )

    subject_id, created, body = await run_in_threadpool(
        accept_and_queue, ctx, Snapshot, institution_id, key, data, build, SNAPSHOT_TOPIC, (), None,
        {"class_id": class_id, "camera_id": camera}
    )
    return await respond(ctx, Snapshot, SNAPSHOT_TOPIC, subject_id, created, body, response)


@router.get("/snapshots/{snapshot_id}", summary="The verdict of one snapshot", response_model=SnapshotVerdictOut,
            response_model_exclude_unset=True)
def get_snapshot(snapshot_id: UploadIdPath, scope: AnyCaller, ctx: Ingest) -> dict[str, Any]:
    return get_upload(ctx, Snapshot, snapshot_id, scope)
