"""The live feed under load: a stalled client is dropped without holding up anyone, and a reconnect far in the
past replays a bounded backlog page by page (or is told to reset) instead of building it all in memory."""

from __future__ import annotations

import json
import socket
import threading
import time
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from websockets.sync.client import connect

from models.tables import Event
from monitor.app import create_app
from tests.helpers import World, face, live_feed, live_world
from web.hub import EventHub

PAD = "填" * 300  # about 1 KB of payload per event, as an anomaly with its evidence is


def write_events(app: Any, n: int, class_id: int, region: str = "530102") -> int:
    """Store n events in one transaction (the feed is woken by the commit); returns the last id."""
    now = datetime.now(UTC)
    with app.state.db.session() as s:
        s.add_all([Event(kind="anomaly", region_code=region, class_id=class_id, created_at=now,
                         payload={"n": i, "pad": PAD, "class_id": class_id}) for i in range(n)])
        s.flush()
        return int(s.query(Event.id).order_by(Event.id.desc()).limit(1).scalar() or 0)


def stalled_client(url: str, token: str) -> socket.socket:
    """A WebSocket client that authenticates and then never reads (a phone in a lift, a hostile script)."""
    host, port = url.removeprefix("http://").split(":")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((host, int(port)))
    sock.sendall((f"GET /api/v1/live HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    assert b" 101 " in sock.recv(1024)
    payload = json.dumps({"type": "auth", "token": token}).encode()
    mask = b"\x01\x02\x03\x04"
    frame = bytes([0x81, 0x80 | len(payload)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    sock.sendall(frame)
    return sock


def test_a_stalled_client_is_dropped_and_holds_up_nobody(settings_factory: Callable[..., Any]) -> None:
    app = create_app(settings_factory(live_send_timeout_seconds=2.0))
    with live_world(app) as world:
        url = str(world.client.base_url).rstrip("/")
        stalled = stalled_client(url, world.operator)
        time.sleep(0.5)
        write_events(app, 12_000, world.class_id)  # far more than any socket buffer holds
        with connect(url.replace("http", "ws") + "/api/v1/live", open_timeout=10) as healthy:
            healthy.send(json.dumps({"type": "auth", "token": world.operator}))
            assert json.loads(healthy.recv(timeout=10))["type"] == "hello"
            started = time.monotonic()
            r = world.checkin(face("people/kit_harington/john2.jpeg"))  # a stranger: FACE_MISMATCH
            took = time.monotonic() - started
            assert r.status_code == 201, r.text  # the verdict came back in time, not the 202 of a timeout
            assert took < 3.0, took
            deadline = time.monotonic() + 10
            seen = None
            while time.monotonic() < deadline and seen is None:
                event = json.loads(healthy.recv(timeout=10))
                if event.get("type") == "verdict" and event["data"].get("subject_id") == r.json()["id"]:
                    seen = time.monotonic() - started
            assert seen is not None and seen < 5.0
        deadline = time.monotonic() + 15
        while app.state.hub.dropped_slow == 0 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert app.state.hub.dropped_slow >= 1
        assert len(app.state.hub._ring) <= 2 * app.state.hub.ring_size
        stalled.close()


@pytest.fixture
def busy_feed(client_factory: Callable[..., TestClient]) -> tuple[World, int]:
    world = World.build(client_factory(live_max_backlog=2000, live_ring_events=500))
    last = write_events(world.client.app, 15_000, world.class_id)
    deadline = time.monotonic() + 30
    while world.client.app.state.hub.last_id < last and time.monotonic() < deadline:
        time.sleep(0.1)  # the feed has read them all, as it would have over an afternoon
    return world, last


def test_a_reconnect_from_long_ago_is_told_to_reset_and_costs_little(busy_feed: tuple[World, int]) -> None:
    world, last = busy_feed
    tracemalloc.start()
    try:
        with live_feed(world.client, world.operator, since=0) as ws:
            hello = ws.receive_json()
            reset = ws.receive_json()
            fresh = [ws.receive_json() for _ in range(50)]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert hello["type"] == "hello" and hello["last_id"] >= last
    assert reset["type"] == "reset" and "重新加载" in reset["message"]
    assert [e["id"] for e in fresh] == list(range(reset["last_id"] - 49, reset["last_id"] + 1))
    assert peak < 6 * 1024 * 1024, f"replay peaked at {peak / 1e6:.1f} MB"


def test_a_recent_reconnect_replays_page_by_page_in_order(busy_feed: tuple[World, int],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    world, last = busy_feed
    hub: EventHub = world.client.app.state.hub
    pages: list[int] = []
    real = hub.fetch_after

    def recording(after: int, limit: int = 500, upto: int | None = None, scope: Any = None) -> Any:
        got = real(after, limit, upto, scope)
        pages.append(len(got))
        return got

    monkeypatch.setattr(hub, "fetch_after", recording)
    since = last - 1500
    with live_feed(world.client, world.operator, since=since) as ws:
        assert ws.receive_json()["type"] == "hello"
        replayed = [ws.receive_json() for _ in range(1500)]
    assert [e["id"] for e in replayed] == list(range(since + 1, last + 1))
    assert len(pages) >= 5 and max(pages) <= 200  # the part older than the ring came from the database in pages


def test_health_answers_while_a_replay_runs(busy_feed: tuple[World, int]) -> None:
    world, last = busy_feed
    replayed: list[int] = []

    def replay() -> None:
        with live_feed(world.client, world.operator, since=last - 1500) as ws:
            assert ws.receive_json()["type"] == "hello"
            while not replayed or replayed[-1] < last:
                replayed.append(ws.receive_json()["id"])

    thread = threading.Thread(target=replay, daemon=True)
    thread.start()
    started = time.monotonic()
    r = world.client.get("/api/v1/health", headers={"Authorization": f"Bearer {world.operator}"})
    took = time.monotonic() - started
    thread.join(timeout=60)
    assert r.status_code == 200 and took < 2.0, took
    assert replayed and replayed[-1] >= last and replayed[0] == last - 1499
