"""The live feed: one reader of the events table wakes on new events, encodes each once, and every
WebSocket client sends from a shared ring at its own pace (a slow client never holds up another)."""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import logging
import time
from collections import defaultdict
from typing import Any

import anyio
from fastapi import WebSocket
from sqlalchemy import func, select
from starlette.concurrency import run_in_threadpool

from models.scope import Scope
from models.tables import Event
from monitor.adapters.storage import Database
from web.client_stream import ClientStream, Recheck
from web.events import LiveEvent, encode_event

log = logging.getLogger(__name__)


class EventHub:
    """The single reader of `events` for this process, and the fan-out to its WebSocket clients.

    The reader wakes when `notify()` is called (after a commit that wrote events, in this process or,
    through the bus, in another) and at the latest every `fallback_poll_s`. Ids are delivered in
    order; with PostgreSQL a lower id can commit after a higher one, so the reader waits up to
    `gap_grace_s` for a missing id before it moves past it. The last `ring_size` events are kept
    encoded in memory; a client further behind reads pages from the database, and one more than
    `max_backlog` events behind is told to reset (reload its state) instead of replaying them.
    """

    def __init__(self, db: Database, *, ring_size: int = 5_000, replay_page: int = 200, max_backlog: int = 2_000,
                 fallback_poll_s: float = 1.0, gap_grace_s: float = 3.0, send_timeout_s: float = 10.0,
                 ping_s: float = 20.0, recheck_s: float = 10.0) -> None:
        self.db = db
        self.ring_size = ring_size
        self.replay_page = replay_page
        self.max_backlog = max_backlog
        self.fallback_poll_s = fallback_poll_s
        self.gap_grace_s = gap_grace_s
        self.send_timeout_s = send_timeout_s
        self.ping_s = ping_s  # an idle client gets a ping this often, so that it can tell a dead link from quiet
        self.recheck_s = recheck_s  # a client's token is looked up again this often (revoked, expired, recused)
        self.last_id = 0
        self._floor = 0  # events after this id and up to last_id are in the ring
        self._gap_since: float | None = None
        self._ids: list[int] = []
        self._ring: list[LiveEvent] = []
        self._changed = asyncio.Event()
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiters: dict[tuple[str, int], list[asyncio.Future[None]]] = defaultdict(list)
        self._task: asyncio.Task[None] | None = None
        self.clients = 0
        self.dropped_slow = 0

    # -- the reader ------------------------------------------------------------------------
    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._changed = asyncio.Event()
        self.last_id = self._floor = await run_in_threadpool(self._max_id)
        self._task = asyncio.create_task(self._run(), name="event-hub")

    async def stop(self) -> None:
        """Stop the reader. Only a task of this loop is awaited: when one app object is served from two loops (a
        test client and a real server over the same app), the other loop's reader is cancelled from its own loop."""
        task, self._task = self._task, None
        if task is not None and not task.done():
            if task.get_loop() is asyncio.get_running_loop():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            elif not task.get_loop().is_closed():
                task.get_loop().call_soon_threadsafe(task.cancel)
        self._loop = None

    def notify(self) -> None:
        """New events were committed: wake the reader (safe from any thread)."""
        loop, wake = self._loop, self._wake
        if loop is None or wake is None or loop.is_closed():
            return
        try:
            loop.call_soon_threadsafe(wake.set)
        except RuntimeError:  # the loop closed between the check and the call
            pass

    def _max_id(self) -> int:
        with self.db.session() as session:
            return int(session.scalar(select(func.max(Event.id))) or 0)

    def fetch_after(self, after: int, limit: int = 500, upto: int | None = None,
                    scope: Scope | None = None) -> list[LiveEvent]:
        """Stored events after id `after` (up to `upto`), oldest first, that `scope` may see."""
        with self.db.session() as session:
            query = select(Event).where(Event.id > after).order_by(Event.id).limit(limit)
            if upto is not None:
                query = query.where(Event.id <= upto)
            if scope is not None:
                query = query.where(scope.event_clause(Event.region_code, Event.institution_id, Event.staff_id))
            return [encode_event(e) for e in session.scalars(query)]

    def fetch_latest(self, limit: int, upto: int, scope: Scope | None = None) -> list[LiveEvent]:
        with self.db.session() as session:
            query = select(Event).where(Event.id <= upto).order_by(Event.id.desc()).limit(limit)
            if scope is not None:
                query = query.where(scope.event_clause(Event.region_code, Event.institution_id, Event.staff_id))
            return [encode_event(e) for e in reversed(list(session.scalars(query)))]

    def take_contiguous(self, events: list[Any], now: float) -> list[Any]:
        """The prefix of `events` with no id gap after last_id (a gap older than the grace is skipped)."""
        out: list[Any] = []
        expected = self.last_id + 1
        for event in events:
            event_id = event.id if isinstance(event, LiveEvent) else event["id"]
            if event_id != expected:
                if self._gap_since is None:
                    self._gap_since = now
                if now - self._gap_since < self.gap_grace_s:
                    break
            self._gap_since = None
            out.append(event)
            expected = event_id + 1
        return out

    async def _run(self) -> None:
        assert self._wake is not None
        delay = 0.0
        while True:
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await self._wake.wait()
            self._wake.clear()
            try:
                delay = await self._read_new()
            except Exception:  # noqa: BLE001 - keep the feed alive through a database hiccup
                log.exception("event hub read failed")
                delay = self.fallback_poll_s

    async def _read_new(self) -> float:
        """Read and publish every new contiguous event; returns how long to sleep before looking again."""
        while True:
            events = await run_in_threadpool(self.fetch_after, self.last_id, 500)
            ready = self.take_contiguous(events, time.monotonic())
            if ready:
                self._publish(ready)
            if len(ready) < len(events):
                return 0.05  # an id gap: look again soon, it may commit any moment
            if len(events) < 500:
                return self.fallback_poll_s

    def _publish(self, events: list[LiveEvent]) -> None:
        for event in events:
            self._ids.append(event.id)
            self._ring.append(event)
            if event.verdict_of is not None:
                for future in self._waiters.pop(event.verdict_of, []):
                    if not future.done():
                        future.set_result(None)
        self.last_id = events[-1].id
        if len(self._ring) > 2 * self.ring_size:
            drop = len(self._ring) - self.ring_size
            self._floor = self._ids[drop - 1]
            del self._ring[:drop]
            del self._ids[:drop]
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    # -- verdict waiters ---------------------------------------------------------------------
    async def wait_for_verdict(self, subject_kind: str, subject_id: int, timeout_s: float) -> None:
        """Return when the verdict event for the subject is seen, or after `timeout_s`."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        key = (subject_kind, subject_id)
        self._waiters[key].append(future)
        try:
            with anyio.move_on_after(timeout_s):
                await future
        finally:
            waiters = self._waiters.get(key)
            if waiters and future in waiters:
                waiters.remove(future)
                if not waiters:
                    self._waiters.pop(key, None)

    # -- the clients ---------------------------------------------------------------------------
    def ring_after(self, cursor: int) -> list[LiveEvent] | None:
        """Events after `cursor` held in memory, or None when some of them have left the ring."""
        if cursor < self._floor:
            return None
        return self._ring[bisect.bisect_right(self._ids, cursor):]

    @property
    def floor(self) -> int:
        """Events after this id (and up to `last_id`) are in the ring."""
        return self._floor

    async def wait_for_change(self) -> None:
        """Return when new events have been published."""
        await self._changed.wait()

    async def stream(self, websocket: WebSocket, scope: Scope, since: int | None, recheck: Recheck | None = None
                     ) -> None:
        """Send the client what it missed since `since` (bounded), then every new event in its scope (as `recheck`
        says it is now, while the token lasts)."""
        await ClientStream(self, websocket, scope, recheck).run(since)
