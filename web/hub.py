"""The live feed: polls the events table once for all clients, fans out over WebSockets, wakes waiters."""


import asyncio
import contextlib
import logging
import time
from collections import defaultdict
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from sqlalchemy import func, select
from starlette.concurrency import run_in_threadpool

from models.domain import Principal, Role
from models.tables import Event
from monitor.auth import region_in_scope, resolve_token
from monitor.storage import Database

log = logging.getLogger(__name__)

LIVE_ROLES = (Role.OPERATOR, Role.ADMIN, Role.INSPECTOR, Role.AUDITOR)


def serialise_event(row: Event) -> dict[str, Any]:
    return {
        "id": row.id,
        "type": row.kind,
        "at": row.created_at.isoformat(),
        "region_code": row.region_code,
        "data": row.payload,
    }


class EventHub:
    """One poller over `events` (id > last seen) shared by every WebSocket and verdict waiter.

    Ids are delivered in order. With PostgreSQL a lower id can commit after a higher one; the hub
    waits up to `gap_grace_s` for a missing id before it moves past it.
    """

    def __init__(self, db: Database, poll_interval_s: float = 0.2, gap_grace_s: float = 3.0) -> None:
        self.db = db
        self.poll_interval_s = poll_interval_s
        self.gap_grace_s = gap_grace_s
        self.last_id = 0
        self._gap_since: float | None = None
        self._subscribers: dict[asyncio.Queue[dict[str, Any]], Principal] = {}
        self._waiters: dict[tuple[str, int], list[asyncio.Future[None]]] = defaultdict(list)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.last_id = await run_in_threadpool(self._max_id)
        self._task = asyncio.create_task(self._run(), name="event-hub")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def _max_id(self) -> int:
        with self.db.session() as session:
            return int(session.scalar(select(func.max(Event.id))) or 0)

    def fetch_after(self, after: int, limit: int = 500, upto: int | None = None) -> list[dict[str, Any]]:
        with self.db.session() as session:
            query = select(Event).where(Event.id > after).order_by(Event.id).limit(limit)
            if upto is not None:
                query = query.where(Event.id <= upto)
            return [serialise_event(e) for e in session.scalars(query)]

    def fetch_latest(self, limit: int, upto: int) -> list[dict[str, Any]]:
        with self.db.session() as session:
            rows = session.scalars(select(Event).where(Event.id <= upto).order_by(Event.id.desc()).limit(limit))
            return [serialise_event(e) for e in reversed(list(rows))]

    def take_contiguous(self, events: list[dict[str, Any]], now: float) -> list[dict[str, Any]]:
        """The prefix of `events` with no id gap after last_id (a gap older than the grace is skipped)."""
        out: list[dict[str, Any]] = []
        expected = self.last_id + 1
        for event in events:
            if event["id"] != expected:
                if self._gap_since is None:
                    self._gap_since = now
                if now - self._gap_since < self.gap_grace_s:
                    break
            self._gap_since = None
            out.append(event)
            expected = event["id"] + 1
        return out

    async def _run(self) -> None:
        while True:
            try:
                events = await run_in_threadpool(self.fetch_after, self.last_id)
                for event in self.take_contiguous(events, time.monotonic()):
                    self.last_id = event["id"]
                    self._dispatch(event)
            except Exception:  # noqa: BLE001 - keep the feed alive through a database hiccup
                log.exception("event hub poll failed")
            await asyncio.sleep(self.poll_interval_s)

    def _dispatch(self, event: dict[str, Any]) -> None:
        for queue, principal in list(self._subscribers.items()):
            if region_in_scope(principal, event.get("region_code") or ""):
                queue.put_nowait(event)
        if event["type"] == "verdict":
            key = (event["data"]["subject_kind"], int(event["data"]["subject_id"]))
            for future in self._waiters.pop(key, []):
                if not future.done():
                    future.set_result(None)

    async def wait_for_verdict(self, subject_kind: str, subject_id: int, timeout_s: float) -> None:
        """Return when the verdict event for the subject is seen, or after `timeout_s`."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        key = (subject_kind, subject_id)
        self._waiters[key].append(future)
        try:
            await asyncio.wait_for(future, timeout_s)
        except TimeoutError:
            pass
        finally:
            waiters = self._waiters.get(key)
            if waiters and future in waiters:
                waiters.remove(future)
                if not waiters:
                    self._waiters.pop(key, None)

    def subscribe(self, principal: Principal) -> asyncio.Queue[dict[str, Any]]:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=10_000)
        self._subscribers[queue] = principal
        return queue

    def unsubscribe(self, queue: asyncio.Queue[dict[str, Any]]) -> None:
        self._subscribers.pop(queue, None)


def build_live_router(hub: EventHub, db: Database) -> APIRouter:
    """The WebSocket `/api/v1/live?token=…&since=<last id>`."""
    router = APIRouter()

    def resolve(token: str) -> Principal | None:
        with db.session() as session:
            return resolve_token(session, token)

    @router.websocket("/api/v1/live")
    async def live(websocket: WebSocket, token: str = "", since: int | None = None) -> None:
        await websocket.accept()
        principal = await run_in_threadpool(resolve, token) if token else None
        if principal is None or principal.role not in LIVE_ROLES:
            code = "AUTH_REQUIRED" if not token else ("AUTH_INVALID" if principal is None else "FORBIDDEN_ROLE")
            await websocket.send_json({"type": "error", "code": code, "message": "访问令牌无效或无权订阅实时事件"})
            await websocket.close(code=4401 if code != "FORBIDDEN_ROLE" else 4403)
            return
        queue = hub.subscribe(principal)
        try:
            upto = hub.last_id
            if since is None:
                backlog = await run_in_threadpool(hub.fetch_latest, 50, upto)
            else:
                backlog = []
                cursor = since
                while True:
                    chunk = await run_in_threadpool(hub.fetch_after, cursor, 500, upto)
                    backlog += chunk
                    if len(chunk) < 500:
                        break
                    cursor = chunk[-1]["id"]
            await websocket.send_json({"type": "hello", "last_id": upto, "role": principal.role.value})
            sent = since or 0
            for event in backlog:
                if region_in_scope(principal, event.get("region_code") or ""):
                    await websocket.send_json(event)
                sent = max(sent, event["id"])
            sent = max(sent, upto)
            receiver = asyncio.create_task(websocket.receive_text())
            while True:
                getter = asyncio.create_task(queue.get())
                done, _ = await asyncio.wait({getter, receiver}, return_when=asyncio.FIRST_COMPLETED)
                if receiver in done:
                    getter.cancel()
                    receiver.result()  # raises WebSocketDisconnect when the client left
                    receiver = asyncio.create_task(websocket.receive_text())
                    continue
                event = getter.result()
                if event["id"] > sent:
                    await websocket.send_json(event)
                    sent = event["id"]
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            hub.unsubscribe(queue)

    return router
