"""One WebSocket client of the live feed: what it missed, then every new event in its scope, at its own pace."""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

import anyio
from fastapi import WebSocket
from starlette.concurrency import run_in_threadpool

from models.scope import Scope, capabilities_of
from web.events import LiveEvent

PING = json.dumps({"type": "ping"})
FRESH_EVENTS = 50  # what a client without `since` (or after a reset) receives first


class ClientTooSlow(Exception):
    """A client that could not take one message within the send timeout: it is dropped."""


class AccessEnded(Exception):
    """The client's token was revoked or expired while it was connected: the stream stops."""


# Looks the client's token up again: its scope now (a recusal declared since changes it), or None once it is revoked,
# expired or unknown.
Recheck = Callable[[], Awaitable[Scope | None]]


class EventSource(Protocol):
    """What a client stream reads from the hub (web/hub.py `EventHub`): named here, so that this module does not
    import the hub that imports it."""

    send_timeout_s: float
    ping_s: float
    recheck_s: float
    last_id: int
    max_backlog: int
    replay_page: int

    @property
    def floor(self) -> int: ...

    def ring_after(self, cursor: int) -> list[LiveEvent] | None: ...

    def fetch_after(self, after: int, limit: int = 500, upto: int | None = None,
                    scope: Scope | None = None) -> list[LiveEvent]: ...

    def fetch_latest(self, limit: int, upto: int, scope: Scope | None = None) -> list[LiveEvent]: ...

    async def wait_for_change(self) -> None: ...


class ClientStream:
    """Sends one client the hub's events: from the shared ring, or in pages from the database when behind it. The
    token is looked up again every `hub.recheck_s` seconds (`recheck`): a revoked or expired one ends the stream, a
    changed scope (a recusal) applies from then on."""

    def __init__(self, hub: EventSource, websocket: WebSocket, scope: Scope, recheck: Recheck | None = None) -> None:
        self.hub = hub
        self.websocket = websocket
        self.scope = scope
        self.recheck = recheck
        self.checked_at = time.monotonic()

    async def check_access(self) -> None:
        """Look the token up again when `recheck_s` has passed since the last look; AccessEnded once it is gone."""
        if self.recheck is None or time.monotonic() - self.checked_at < self.hub.recheck_s:
            return
        scope = await self.recheck()
        if scope is None:
            raise AccessEnded
        self.scope, self.checked_at = scope, time.monotonic()

    async def send_text(self, text: str) -> None:
        """Send one message, or raise ClientTooSlow when the client does not take it within the send timeout."""
        try:
            with anyio.fail_after(self.hub.send_timeout_s):
                await self.websocket.send_text(text)
        except TimeoutError:
            raise ClientTooSlow from None

    async def send_fresh(self, upto: int) -> None:
        """The latest `FRESH_EVENTS` events in the client's scope up to `upto`."""
        await self.check_access()
        for event in await run_in_threadpool(self.hub.fetch_latest, FRESH_EVENTS, upto, self.scope):
            await self.send_text(event.text)

    async def run(self, since: int | None) -> None:
        """Send the client what it missed since `since` (bounded), then every new event in its scope."""
        hub = self.hub
        upto = hub.last_id
        await self.send_text(json.dumps({"type": "hello", "last_id": upto, "role": self.scope.role.value,
                                         "may": capabilities_of(self.scope.role), "ping_s": hub.ping_s}))
        if since is None or since > upto:
            await self.send_fresh(upto)
            cursor = upto
        else:
            cursor = since
        while True:
            await self.check_access()  # before anything more is sent: at most `recheck_s` late
            batch = hub.ring_after(cursor)
            if batch is None:  # behind the ring: a page from the database, or a reset when too far behind
                if hub.last_id - cursor > hub.max_backlog:
                    upto = hub.last_id
                    await self.send_text(json.dumps({
                        "type": "reset", "last_id": upto, "message": "错过的实时事件过多，请重新加载当前状态"}))
                    await self.send_fresh(upto)
                    cursor = upto
                    continue
                floor = hub.floor
                page = await run_in_threadpool(hub.fetch_after, cursor, hub.replay_page, floor, self.scope)
                for event in page:
                    await self.send_text(event.text)
                cursor = page[-1].id if len(page) == hub.replay_page else floor
                continue
            if not batch:
                with anyio.move_on_after(hub.ping_s) as quiet:
                    await hub.wait_for_change()
                if quiet.cancelled_caught:  # nothing for a while: say so, so the client knows the link is alive
                    await self.send_text(PING)
                continue
            for event in batch:
                if self.scope.allows_event(event.region_code, event.institution_id, event.staff_id):
                    await self.send_text(event.text)
            cursor = batch[-1].id
