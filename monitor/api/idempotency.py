"""`Idempotency-Key` on every creating POST (issue 21 item 1): the first submission with a key runs and its successful
answer (201, or 200 for a step such as closing an alert) is kept; a repeat with the same key and the same request gets
that first answer back (the first record, never a second one, never a refusal of a step already taken); the same key
with another request is a 422; a repeat while the first still runs is a 409 that says so. Uploads (check-ins,
snapshots, heartbeats) keep their own key handling, which also covers a stored upload whose answer was lost; secrets
(tokens, sign-in links) are never kept, so those routes answer each request afresh.

A request's key row turns `committed` in the same transaction as the request's first write (a hook on the engine's
commit, `mark_commits`): if the database fails after that commit and before the answer is kept, the key is never
freed and never run again. A repeat is told the submission was stored (409 IDEMPOTENT_REQUEST_STORED) instead of
making a second record; a key still `running` was never committed, so a stale one may run again safely."""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable
from contextvars import ContextVar
from datetime import timedelta
from typing import Any

from sqlalchemy import Connection, Engine, delete, event, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ingest.checks.validation import idempotency_key_of
from models.audit_chain import seal_holds, seal_record
from models.clock import utc_now
from models.domain import Principal
from models.errors import ApiError
from models.scope import TOKEN_FRESH_S
from models.tables import IdempotentRequest
from monitor.adapters.storage import Database

log = logging.getLogger(__name__)

OWN_KEYS = ("/api/v1/check-ins", "/api/v1/snapshots")  # the upload routes handle their keys themselves
OWN_KEY_PATHS = (("/api/v1/online/sessions/", "/heartbeats"),)  # (prefix, suffix) of uploads under a parent record
SECRETS = ("/api/v1/tokens", "/sign-in-links")  # answers holding a secret are never stored
STALE_AFTER = timedelta(minutes=5)  # a run that never finished (its process died) no longer blocks its key
KEEP_FOR = timedelta(days=1)
ANSWER_DUE = timedelta(seconds=60)  # a committed request not answered by then has lost its answer (its process died)

CLAIMED: ContextVar[tuple[str, str, str] | None] = ContextVar("idempotent_claim", default=None)
"""(caller, path, key) of the idempotent request this context runs, while its handler runs."""
READS = ("SELECT", "PRAGMA", "BEGIN", "SAVEPOINT", "RELEASE", "ROLLBACK", "SHOW", "SET ")
MARK_COMMITTED = {
    "sqlite": "UPDATE idempotent_requests SET state = 'committed' "
              "WHERE caller_sha256 = ? AND path = ? AND key = ? AND state = 'running'",
    "postgresql": "UPDATE idempotent_requests SET state = 'committed' "
                  "WHERE caller_sha256 = %s AND path = %s AND key = %s AND state = 'running'",
}


def mark_commits(engine: Engine) -> None:
    """Make every transaction that writes while an idempotent request runs also mark its key `committed`, inside
    the same commit (so the mark and the record land together or not at all, on SQLite and PostgreSQL)."""

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        conn.info.pop("idempotent_wrote", None)

    @event.listens_for(engine, "before_cursor_execute")
    def _note(conn: Connection, _cursor: Any, statement: str, *_args: Any) -> None:
        if CLAIMED.get() is not None and not statement.lstrip()[:9].upper().startswith(READS):
            conn.info["idempotent_wrote"] = True

    @event.listens_for(engine, "commit")
    def _commit(conn: Connection) -> None:
        claimed = CLAIMED.get()
        if claimed is None or not conn.info.pop("idempotent_wrote", False):
            return
        raw = conn.connection.dbapi_connection
        assert raw is not None
        cursor = raw.cursor()
        try:  # the DBAPI cursor: this runs inside the commit, before the database commits
            cursor.execute(MARK_COMMITTED[conn.dialect.name], claimed)
        finally:
            cursor.close()

    @event.listens_for(engine, "rollback")
    def _rollback(conn: Connection) -> None:
        if conn.invalidated:  # the connection was cut (database restarted): its mark goes with it, and touching
            return  # it now would raise over the error being handled (an upload stored was answered 500)
        conn.info.pop("idempotent_wrote", None)


def applies(method: str, path: str) -> bool:
    """Whether a request is a creating POST this middleware answers idempotently."""
    return method == "POST" and path.startswith("/api/v1/") and path not in OWN_KEYS \
        and not any(path.startswith(p) and path.endswith(s) for p, s in OWN_KEY_PATHS) \
        and not any(path.endswith(s) for s in SECRETS)


def check_key(raw: bytes) -> str | None:
    """The key, or None when it is not 1 to 100 visible characters (the uploads' own rule)."""
    try:
        return idempotency_key_of(raw.decode("utf-8"))
    except UnicodeDecodeError:
        return None


def request_digest(path: str, content_type: bytes, body: bytes) -> str:
    """SHA-256 of what the request says: its path, media type and body; a multipart body with its boundary (random
    per sending) replaced by a fixed one, and a JSON body by its content (keys sorted, no spacing), so the same form
    or the same object sent again, however laid out, hashes the same."""
    media, _, params = content_type.partition(b";")
    media = media.strip().lower()
    if media == b"multipart/form-data":
        for param in params.split(b";"):
            name, _, value = param.strip().partition(b"=")
            if name.lower() == b"boundary" and value:
                body = body.replace(value.strip(b'"'), b"BOUNDARY")
    elif media == b"application/json":
        try:
            body = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
        except (ValueError, RecursionError):
            pass  # not JSON: hashed as sent (the route will refuse it)
    return hashlib.sha256(path.encode() + b"\n" + media + b"\n" + body).hexdigest()


def caller_of(principal: Principal) -> str:
    """Whose keys a request uses: the token's id (however its header was spelt: `bearer`, `Bearer`, extra spaces),
    and the institutions its holder is recused from when there are any, so that a tie declared since the first
    answer was kept makes the repeat run afresh (and meet the route's scope) instead of being handed an answer about
    an institution it may no longer see."""
    caller = f"token={principal.token_id}"
    recused = sorted(principal.recused_institutions)
    if recused:
        caller += "\nrecused=" + ",".join(str(i) for i in recused)
    return hashlib.sha256(caller.encode()).hexdigest()


def error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> list[Message]:
    body = json.dumps({"code": code, "message": message}, ensure_ascii=False).encode()
    head = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    head += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    return [{"type": "http.response.start", "status": status, "headers": head},
            {"type": "http.response.body", "body": body}]


class IdempotentPosts:
    """ASGI middleware: see the module's docstring. The database comes from `app.state.db` at request time."""

    def __init__(self, app: ASGIApp, database: Callable[[Scope], Database] | None = None,
                 authenticate: Callable[[Scope], Callable[[Request], Principal]] | None = None) -> None:
        self.app = app
        self.database = database or (lambda scope: scope["app"].state.db)
        self.authenticate = authenticate or (lambda scope: scope["app"].state.authenticate)

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
        # The token is looked up now, after the body, before any kept answer is given: a token revoked or expired
        # since the first answer (a lost phone) gets a 401, as every other request of it does, not the answer again
        # (a bodiless POST, such as starting a phone check, passes TokenBeforeBody without a lookup).
        state = scope.get("state") or {}
        try:
            held = state.get("principal")
            if isinstance(held, Principal) and time.monotonic() - state.get("principal_at", 0.0) < TOKEN_FRESH_S:
                principal = held  # TokenBeforeBody looked it up a moment ago (the body came at once): no second read
            else:
                principal = await run_in_threadpool(self.authenticate(scope), Request(scope))
        except ApiError as exc:
            for m in error(exc.status, exc.code, exc.message, exc.headers):
                await send(m)
            return
        except DBAPIError:
            for m in error(503, "DATABASE_UNAVAILABLE", "数据库暂时不可用，请稍后重试", {"Retry-After": "5"}):
                await send(m)
            return
        scope.setdefault("state", {}).update(principal=principal, principal_at=time.monotonic())
        caller = caller_of(principal)
        db = self.database(scope)
        try:
            claimed, prior = await run_in_threadpool(claim, db, caller, scope["path"], key, digest)
        except DBAPIError:
            for m in error(503, "DATABASE_UNAVAILABLE", "数据库暂时不可用，请稍后重试", {"Retry-After": "5"}):
                await send(m)
            return
        if not claimed:
            for m in replay_or_refuse(prior, digest, db):
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
        outgoing: list[Message] = []

        async def capture(message: Message) -> None:
            # The answer is held until it is kept: a repeat sent the moment the first answer arrives then finds it
            # (it used to be told IDEMPOTENCY_KEY_IN_PROGRESS). POST answers are small JSON documents.
            if message["type"] == "http.response.start":
                started.update(status=message["status"], headers=message.get("headers", []))
            elif message["type"] == "http.response.body":
                answer.append(message.get("body", b""))
            outgoing.append(message)

        claim_token = CLAIMED.set((caller, scope["path"], key))
        try:
            await self.app(scope, once, capture)
        finally:
            CLAIMED.reset(claim_token)
            status = int(started.get("status", 500))
            media = dict(started.get("headers", [])).get(b"content-type", b"application/json").decode()
            try:
                await run_in_threadpool(settle, db, caller, scope["path"], key, digest, status, media,
                                        b"".join(answer))
            except DBAPIError:
                log.warning("idempotent answer of %s not kept", scope["path"])
        for message in outgoing:
            await send(message)


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


def answer_fields(caller: str, path: str, key: str, request_sha256: str, status: int, media_type: str,
                  body: bytes) -> list[Any]:
    """What a kept answer's seal covers: whose request, which, and the answer itself (its SHA-256)."""
    return [caller, path, key, request_sha256, status, media_type, hashlib.sha256(body).hexdigest()]


def answer_holds(db: Database, prior: IdempotentRequest) -> bool:
    """Whether a kept answer is the one the product kept: its seal holds (always, when there is no audit key)."""
    if db.audit_key is None:
        return True
    if not prior.seal or prior.status is None or prior.body is None:
        return False
    return seal_holds(prior.seal, db.audit_keys({prior.seal.rsplit(":", 1)[0]}), answer_fields(
        prior.caller_sha256, prior.path, prior.key, prior.request_sha256, prior.status, prior.media_type or "",
        prior.body))


def settle(db: Database, caller: str, path: str, key: str, request_sha256: str, status: int, media_type: str,
           body: bytes) -> None:
    """Keep a successful answer (2xx: a record created, a transition made, a request queued) for repeats; a step
    answered 200, such as closing an alert, repeated under its key is the same step, not a 409 for a step already
    taken. A server error after the request committed keeps the key as `lost` (stored, answer lost: never run
    again); any other outcome frees the key (the request may be made again)."""
    row = (IdempotentRequest.caller_sha256 == caller, IdempotentRequest.path == path, IdempotentRequest.key == key)
    state = IdempotentRequest.state
    with db.session() as session:
        if 200 <= status < 300:
            seal = seal_record(db.audit_key[0], db.audit_key[1], answer_fields(
                caller, path, key, request_sha256, status, media_type, body)) if db.audit_key is not None else None
            session.execute(update(IdempotentRequest).where(*row, state.in_(["running", "committed"])).values(
                state="done", status=status, media_type=media_type, body=body, seal=seal))
        elif status >= 500:
            session.execute(update(IdempotentRequest).where(*row, state == "committed").values(state="lost"))
            session.execute(delete(IdempotentRequest).where(*row, state == "running"))
        else:
            session.execute(delete(IdempotentRequest).where(*row, state.in_(["running", "committed"])))


def replay(prior: IdempotentRequest | None, db: Database) -> list[Message]:
    """The answer to a repeat: the first answer, or why there is none to give."""
    if prior is None:
        return error(409, "IDEMPOTENCY_KEY_IN_PROGRESS", "使用该 Idempotency-Key 的请求正在处理，请稍后重试",
                     {"Retry-After": "2"})
    if prior.state == "lost" or (prior.state == "committed" and prior.created_at < utc_now() - ANSWER_DUE):
        return error(409, "IDEMPOTENT_REQUEST_STORED",
                     "该提交此前已保存成功，但当时的应答未能送达（如数据库短暂中断）；请勿重复提交，刷新页面即可看到已保存的记录")
    if prior.state != "done" or prior.body is None:
        return error(409, "IDEMPOTENCY_KEY_IN_PROGRESS", "使用该 Idempotency-Key 的请求正在处理，请稍后重试",
                     {"Retry-After": "2"})
    if not answer_holds(db, prior):  # rewritten at the database: a forged decision is never handed out as ours
        log.error("kept answer of %s fails its seal: not replayed", prior.path)
        return error(409, "IDEMPOTENT_REQUEST_STORED",
                     "该提交此前已保存成功，但保存的应答未通过签名校验，不予重放；请勿重复提交，刷新页面即可看到已保存的记录")
    return [{"type": "http.response.start", "status": int(prior.status or 201), "headers": [
        (b"content-type", (prior.media_type or "application/json").encode()),
        (b"content-length", str(len(prior.body)).encode()), (b"idempotent-replayed", b"true")]},
        {"type": "http.response.body", "body": prior.body}]


def replay_or_refuse(prior: IdempotentRequest | None, request_sha256: str, db: Database) -> list[Message]:
    """A repeat with another request under the same key is refused; the same request gets the first answer."""
    if prior is not None and prior.request_sha256 != request_sha256:
        return error(422, "IDEMPOTENCY_KEY_REUSED", "该 Idempotency-Key 已用于另一份不同的提交，请换用新的 Key")
    return replay(prior, db)
