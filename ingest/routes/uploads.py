"""What the upload routes share: who may upload, repeated form parts, the idempotency key, the capture time, the
answer (wait briefly for the verdict, else 202 with where to ask), and reading one upload back."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from fastapi import Depends, Request, Response, UploadFile
from sqlalchemy.exc import DBAPIError, PendingRollbackError
from starlette.concurrency import run_in_threadpool

from ingest.acceptance import find_upload, load_verdict
from ingest.adapters.images import AcceptedImage, inspect_image
from ingest.checks.validation import check_capture_time, idempotency_key_of, parse_client_time
from ingest.context import IngestContext
from models.clock import utc_now
from models.domain import ROLE_NAMES, Role
from models.errors import ApiError
from models.scope import Scope, ensure_in_class, refuse_missing
from models.tables import CheckIn, Snapshot

log = logging.getLogger(__name__)


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


def check_idempotency_key(key: str | None) -> str | None:
    if key is None:
        return None
    valid = idempotency_key_of(key)
    if valid is None:
        raise ApiError(422, "INVALID_IDEMPOTENCY_KEY", "Idempotency-Key 须为 1 到 100 个可见字符")
    return valid


async def read_upload(ctx: IngestContext, idempotency_key: str | None, captured_at: str,
                      photo: UploadFile) -> tuple[str | None, datetime, datetime, bytes]:
    """What every upload checks after the caller's role: the key, the capture time; and the photo's bytes."""
    key = check_idempotency_key(idempotency_key)
    now = utc_now()
    captured = parse_client_time(captured_at)
    check_capture_time(captured, now, ctx.limits.max_future_skew_s, ctx.limits.max_capture_age_s)
    return key, now, captured, await photo.read()


async def respond(ctx: IngestContext, model: type[CheckIn] | type[Snapshot], topic: str, subject_id: int, created: bool,
                  body: dict[str, Any], response: Response) -> dict[str, Any]:
    if body["status"] == "pending" and ctx.limits.verdict_wait_s > 0:
        await ctx.wait_for_verdict(topic, subject_id, ctx.limits.verdict_wait_s)
        try:
            body = await run_in_threadpool(load_verdict, ctx, model, subject_id)
        except (DBAPIError, PendingRollbackError):  # stored and committed: never answered as an error; the phone
            # asks its status URL later (a connection cut mid-read may surface as either)
            log.warning("verdict of %s %s unreadable after acceptance; answered pending", model.__tablename__,
                        subject_id)
    body["duplicate"] = not created
    response.status_code = 202 if body["status"] == "pending" else (201 if created else 200)
    return body


def get_upload(ctx: IngestContext, model: type[CheckIn] | type[Snapshot], subject_id: int,
               scope: Scope) -> dict[str, Any]:
    what = "签到记录" if model is CheckIn else "课堂抓拍"
    with ctx.db.session() as session:
        subject = find_upload(session, model, subject_id)
        if subject is None:
            raise refuse_missing("NOT_FOUND", what, subject_id)
        ensure_in_class(session, scope, subject.class_id, "NOT_FOUND", what, subject_id)
    return load_verdict(ctx, model, subject_id)
