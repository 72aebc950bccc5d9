"""`Idempotency-Key` on every creating POST (issue 21 item 1): the first submission with a key runs and its created
answer (201) is kept; a repeat with the same key and the same request gets that first answer back (the first record,
never a second one); the same key with another request is a 422; a repeat while the first still runs is a 409 that
says so. Uploads (check-ins, snapshots) keep their own key handling, which also covers a stored upload whose answer
was lost; secrets (tokens, sign-in links) are never kept, so those routes answer each request afresh."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ingest.checks.validation import idempotency_key_of
from models.clock import utc_now
from models.tables import IdempotentRequest
from monitor.adapters.storage import Database

log = logging.getLogger(__name__)

OWN_KEYS = ("/api/v1/check-ins", "/api/v1/snapshots")  # the upload routes handle their keys themselves
SECRETS = ("/api/v1/tokens", "/sign-in-links")  # answers holding a secret are never stored
STALE_AFTER = timedelta(minutes=5)  # a run that never finished (its process died) no longer blocks its key
KEEP_FOR = timedelta(days=1)


def applies(method: str, path: str) -> bool:
    """Whether a request is a creating POST this middleware answers idempotently."""
    return method == "POST" and path.startswith("/api/v1/") and path not in OWN_KEYS \
        and not any(path.endswith(s) for s in SECRETS)


def check_key(raw: bytes) -> str | None:
    """The key, or None when it is not 1 to 100 visible characters (the uploads' own rule)."""
    try:
        return idempotency_key_of(raw.decode("utf-8"))
    except UnicodeDecodeError:
        return None


def request_digest(path: str, content_type: bytes, body: bytes) -> str:
    """SHA-256 of what the request says: its path, media type and body, a multipart body with its boundary (random
    per sending) replaced by a fixed one, so the same form sent again hashes the same."""
    media, _, params = content_type.partition(b";")
    if media.strip().lower() == b"multipart/form-data":
        for param in params.split(b";"):
            name, _, value = param.strip().partition(b"=")
            if name.lower() == b"boundary" and value:
                body = body.replace(value.strip(b'"'), b"BOUNDARY")
    return hashlib.sha256(path.encode() + b"\n" + media.strip().lower() + b"\n" + body).hexdigest()


def error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> list[Message]:
    body = json.dumps({"code": code, "message": message}, ensure_ascii=False).encode()
    head = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    head += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    return [{"type": "http.response.start", "status": status, "headers": head},
            {"type": "http.response.body", "body": body}]


class IdempotentPosts:
    """ASGI middleware: see the module's docstring. The database comes from `app.state.db` at request time."""

    def __init__(self, app: ASGIApp, database: Callable[[Scope], Database] | None = None) -> None:
        self.app = app
        self.database = database or (lambda scope: scope["app"].state.db)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not applies(scope["method"], scope["path"]):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers", []))
        raw_key = headers.get(b"idempotency-key")
        if raw_key is None:
            await self.app(scope, receive, send)
            return
        key = check_key(raw_key)
        if key is None:
            for m in error(422, "INVALID_IDEMPOTENCY_KEY", "Idempotency-Key 须为 1 到 100 个可见字符"):
                await send(m)
            return
        chunks: list[bytes] = []
        while True:  # the body (already bounded by BodySizeLimit, outside this middleware)
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        digest = request_digest(scope["path"], headers.get(b"content-type", b""), body)
        caller = hashlib.sha256(headers.get(b"authorization", b"")).hexdigest()
        db = self.database(scope)
        try:
            claimed, prior = await run_in_threadpool(claim, db, caller, scope["path"], key, digest)
        except DBAPIError:
            for m in error(503, "DATABASE_UNAVAILABLE", "数据库暂时不可用，请稍后重试", {"Retry-After": "5"}):
                await send(m)
            return
        if not claimed:
            for m in replay_or_refuse(prior, digest):
                await send(m)
            return
        sent = False

        async def once() -> Message:
            nonlocal sent
            if sent:
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        started: dict[str, Any] = {}
        answer: list[bytes] = []

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                started.update(status=message["status"], headers=message.get("headers", []))
            elif message["type"] == "http.response.body":
                answer.append(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, once, capture)
        finally:
            status = int(started.get("status", 500))
            media = dict(started.get("headers", [])).get(b"content-type", b"application/json").decode()
            try:
                await run_in_threadpool(settle, db, caller, scope["path"], key, status, media, b"".join(answer))
            except DBAPIError:
                log.warning("idempotent answer of %s not kept", scope["path"])


def claim(db: Database, caller: str, path: str, key: str, request_sha256: str
          ) -> tuple[bool, IdempotentRequest | None]:
    """(True, None) when this request may run (its key claimed now); else (False, the earlier request)."""
    now = utc_now()
    with db.session() as session:
        prior = session.scalar(select(IdempotentRequest).where(
            IdempotentRequest.caller_sha256 == caller, IdempotentRequest.path == path, IdempotentRequest.key == key))
        if prior is not None and prior.state == "running" and prior.created_at < now - STALE_AFTER:
            session.delete(prior)  # its process died mid-run: the key is free again
            session.flush()
            prior = None
        if prior is not None:
            session.expunge(prior)
            return False, prior
        try:
            with session.begin_nested():
                session.add(IdempotentRequest(caller_sha256=caller, path=path, key=key, request_sha256=request_sha256,
                                              state="running", created_at=now))
                session.flush()
        except IntegrityError:
            prior = session.scalar(select(IdempotentRequest).where(
                IdempotentRequest.caller_sha256 == caller, IdempotentRequest.path == path,
                IdempotentRequest.key == key))
            if prior is not None:
                session.expunge(prior)
            return False, prior
        session.execute(delete(IdempotentRequest).where(IdempotentRequest.created_at < now - KEEP_FOR))
        return True, None


def settle(db: Database, caller: str, path: str, key: str, status: int, media_type: str, body: bytes) -> None:
    """Keep a created answer (201) for repeats; any other outcome frees the key (the request may be made again)."""
    where = (IdempotentRequest.caller_sha256 == caller, IdempotentRequest.path == path, IdempotentRequest.key == key,
             IdempotentRequest.state == "running")
    with db.session() as session:
        if status == 201:
            session.execute(update(IdempotentRequest).where(*where).values(
                state="done", status=status, media_type=media_type, body=body))
        else:
            session.execute(delete(IdempotentRequest).where(*where))


def replay(prior: IdempotentRequest | None) -> list[Message]:
    """The answer to a repeat: the first answer, or why there is none to give."""
    if prior is None:
        return error(409, "IDEMPOTENCY_KEY_IN_PROGRESS", "使用该 Idempotency-Key 的请求正在处理，请稍后重试",
                     {"Retry-After": "2"})
    if prior.state != "done" or prior.body is None:
        return error(409, "IDEMPOTENCY_KEY_IN_PROGRESS", "使用该 Idempotency-Key 的请求正在处理，请稍后重试",
                     {"Retry-After": "2"})
    return [{"type": "http.response.start", "status": int(prior.status or 201), "headers": [
        (b"content-type", (prior.media_type or "application/json").encode()),
        (b"content-length", str(len(prior.body)).encode()), (b"idempotent-replayed", b"true")]},
        {"type": "http.response.body", "body": prior.body}]


def replay_or_refuse(prior: IdempotentRequest | None, request_sha256: str) -> list[Message]:
    """A repeat with another request under the same key is refused; the same request gets the first answer."""
    if prior is not None and prior.request_sha256 != request_sha256:
        return error(422, "IDEMPOTENCY_KEY_REUSED", "该 Idempotency-Key 已用于另一份不同的提交，请换用新的 Key")
    return replay(prior)
