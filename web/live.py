"""The WebSocket `/api/v1/live`: the first message authenticates (token, `since`), then the hub streams."""

from __future__ import annotations

import contextlib
import json
import logging
from typing import TYPE_CHECKING

import anyio
from fastapi import APIRouter, WebSocket
from starlette.concurrency import run_in_threadpool
from starlette.websockets import WebSocketDisconnect, WebSocketState

from models.domain import MAX_UPLOAD_ID, Principal, Role
from models.scope import Scope
from monitor.adapters.storage import Database
from monitor.adapters.tokens import resolve_token
from web.client_stream import AccessEnded, ClientTooSlow

if TYPE_CHECKING:
    from web.hub import EventHub

log = logging.getLogger(__name__)

LIVE_ROLES = (Role.OPERATOR, Role.ADMIN, Role.INSPECTOR, Role.AUDITOR)

AUTH_TIMEOUT_S = 10.0


async def read_auth(websocket: WebSocket) -> tuple[str | None, int | None, str | None]:
    """The first message `{"type": "auth", "token": "mon_…", "since": N}`: (token, since, error code)."""
    try:
        with anyio.fail_after(AUTH_TIMEOUT_S):
            received = await websocket.receive()
    except TimeoutError:
        return None, None, "AUTH_REQUIRED"
    if received["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(received.get("code", 1000))
    raw = received.get("text")
    if not isinstance(raw, str):  # a binary frame (it raised KeyError, before any token was checked)
        return None, None, "AUTH_REQUIRED"
    try:
        message = json.loads(raw)
    except (ValueError, RecursionError):  # "[[[[…" 30,000 deep fits in a 64 KB frame
        return None, None, "AUTH_REQUIRED"
    if not isinstance(message, dict) or message.get("type") != "auth" or not isinstance(message.get("token"), str):
        return None, None, "AUTH_REQUIRED"
    since = message.get("since")
    if since is not None and (isinstance(since, bool) or not isinstance(since, int) or not 0 <= since <= MAX_UPLOAD_ID):
        return None, None, "INVALID_SINCE"
    return message["token"], since, None


ERRORS = {
    "AUTH_REQUIRED": (4401, "请在连接后 10 秒内以首条消息发送令牌：{\"type\": \"auth\", \"token\": \"mon_…\"}"),
    "AUTH_INVALID": (4401, "访问令牌无效、已过期或已被吊销"),
    "AUTH_ENDED": (4401, "访问令牌已过期或已被吊销：实时推送已停止，请重新登录"),
    "FORBIDDEN_ROLE": (4403, "当前身份无权订阅实时事件"),
    "INVALID_SINCE": (4400, "since 必须是 0 到 2^63-1 之间的整数（上次收到的事件编号）"),
    "TOKEN_IN_URL": (4400, "令牌不得放在地址中（会进入访问日志）：请在连接后以首条消息发送"),
}


async def refuse(websocket: WebSocket, code: str) -> None:
    close_code, message = ERRORS[code]
    with contextlib.suppress(Exception):
        await websocket.send_json({"type": "error", "code": code, "message": message})
        await websocket.close(code=close_code)


def build_live_router(hub: EventHub, db: Database) -> APIRouter:
    """The WebSocket `/api/v1/live`: the first message authenticates, then events stream."""
    router = APIRouter()

    def resolve(token: str) -> Principal | None:
        with db.session() as session:
            return resolve_token(session, token)

    @router.websocket("/api/v1/live")
    async def live(websocket: WebSocket) -> None:
        await websocket.accept()
        if "token" in websocket.query_params:
            await refuse(websocket, "TOKEN_IN_URL")
            return
        token, since, problem = await read_auth(websocket)
        principal = await run_in_threadpool(resolve, token) if token else None
        if problem is None and principal is None:
            problem = "AUTH_INVALID"
        if problem is None and principal is not None and principal.role not in LIVE_ROLES:
            problem = "FORBIDDEN_ROLE"
        if problem is not None or principal is None or token is None:
            await refuse(websocket, problem or "AUTH_INVALID")
            return
        slow = ended = False
        held: str = token

        async def recheck() -> Scope | None:
            now = await run_in_threadpool(resolve, held)
            return Scope.of(now) if now is not None and now.role in LIVE_ROLES else None

        async def stream(cancel: anyio.CancelScope) -> None:
            nonlocal slow, ended
            try:
                await hub.stream(websocket, Scope.of(principal), since, recheck)
            except ClientTooSlow:
                slow = True
            except AccessEnded:
                ended = True
            except WebSocketDisconnect:
                pass  # the client left while being sent something (closing right after `hello`): nothing to do
            finally:
                cancel.cancel()

        async def until_disconnect(cancel: anyio.CancelScope) -> None:
            while (await websocket.receive())["type"] != "websocket.disconnect":
                pass  # client messages carry nothing after auth
            cancel.cancel()

        # Two tasks per connection (not per message): one streams, one notices the client leaving.
        hub.clients += 1
        try:
            async with anyio.create_task_group() as group:
                group.start_soon(stream, group.cancel_scope)
                group.start_soon(until_disconnect, group.cancel_scope)
        finally:
            hub.clients -= 1
        if ended:
            await refuse(websocket, "AUTH_ENDED")
            return
        if slow:
            hub.dropped_slow += 1
            log.warning("live feed: dropped a client that took more than %.0f s to accept one message",
                        hub.send_timeout_s)
            if websocket.client_state is WebSocketState.CONNECTED:
                with contextlib.suppress(Exception):
                    await websocket.close(code=4408)

    return router
