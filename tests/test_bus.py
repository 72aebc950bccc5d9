"""The bus: in-process and Redis Streams (real redis-server), redelivery, and nothing accepted is lost."""

import threading
import time
from collections.abc import Callable
from typing import Any

import redis
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from ingest.adapters.evidence import EvidenceStore
from models.tables import Anomaly, Event, OutboxMessage, Verification
from monitor.adapters.bus import InProcessBus, RedisStreamsBus
from monitor.adapters.face_dlib import FaceEngine
from monitor.adapters.storage import Database
from monitor.services.worker import Worker
from tests.helpers import World, auth, face


def wait_until(predicate: Callable[[], bool], timeout_s: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def collect(bus, topic: str) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    bus.subscribe(topic, seen.append)
    bus.start()
    return seen


def test_in_process_bus_delivers_in_order() -> None:
    bus = InProcessBus()
    seen = collect(bus, "t")
    for i in range(20):
        bus.publish("t", {"n": i})
    assert wait_until(lambda: len(seen) == 20)
    assert [m["n"] for m in seen] == list(range(20))
    bus.stop()


def test_redis_streams_consumer_group_delivers_and_acknowledges(redis_url: str) -> None:
    bus = RedisStreamsBus(redis_url, consumer="c1", block_ms=100)
    seen = collect(bus, "t")
    for i in range(10):
        bus.publish("t", {"n": i})
    assert wait_until(lambda: len(seen) == 10)
    assert sorted(m["n"] for m in seen) == list(range(10))
    client = redis.Redis.from_url(redis_url)
    assert wait_until(lambda: client.xpending("monitor:t", "workers")["pending"] == 0)
    bus.close()


def test_two_consumers_share_the_stream(redis_url: str) -> None:
    seen: list[tuple[str, int]] = []
    lock = threading.Lock()
    buses = []
    for name in ("a", "b"):
        bus = RedisStreamsBus(redis_url, consumer=name, block_ms=50)

        def handler(m: dict[str, Any], name: str = name) -> None:
            time.sleep(0.01)
            with lock:
                seen.append((name, m["n"]))

        bus.subscribe("t", handler)
        bus.ensure_group("t")
        buses.append(bus)
    for bus in buses:
        bus.start()
    for i in range(60):
        buses[0].publish("t", {"n": i})
    assert wait_until(lambda: len(seen) == 60)
    assert sorted(n for _, n in seen) == list(range(60))  # each message exactly once
    assert {name for name, _ in seen} == {"a", "b"}
    for bus in buses:
        bus.close()


def test_message_of_a_dead_consumer_is_claimed_by_another(redis_url: str) -> None:
    dead = RedisStreamsBus(redis_url, consumer="dead")
    dead.ensure_group("t")
    dead.publish("t", {"n": 1})
    # The dead consumer read the message and died before acknowledging it.
    got = dead.client.xreadgroup("workers", "dead", {"monitor:t": ">"}, count=1)
    assert got and got[0][1][0][1]["data"] == '{"n": 1}'
    alive = RedisStreamsBus(redis_url, consumer="alive", claim_idle_ms=200, block_ms=50)
    seen: list[dict[str, Any]] = []
    time.sleep(0.3)
    assert alive.claim_stale("t", seen.append) == 1
    assert seen == [{"n": 1}]
    assert alive.client.xpending("monitor:t", "workers")["pending"] == 0


def test_poison_message_is_dead_lettered(redis_url: str) -> None:
    bus = RedisStreamsBus(redis_url, consumer="c", claim_idle_ms=0, max_deliveries=2)
    bus.ensure_group("t")
    bus.publish("t", {"n": 1})

    def explode(_m: dict[str, Any]) -> None:
        raise RuntimeError("boom")

    bus.client.xreadgroup("workers", "c", {"monitor:t": ">"}, count=1)  # delivery 1, fails
    for _ in range(3):
        bus.claim_stale("t", explode)
    assert bus.client.xpending("monitor:t", "workers")["pending"] == 0
    assert bus.client.xlen("monitor:dead") == 1


def test_check_in_verified_through_redis_streams(client_factory: Callable[..., TestClient], redis_url: str) -> None:
    client = client_factory(redis_url=redis_url)
    world = World.build(client)
    body = world.checkin(face("people/kit_harington/john2.jpeg")).json()
    assert [r["code"] for r in body["reasons"]] == ["FACE_MISMATCH"]
    r = redis.Redis.from_url(redis_url)
    assert r.xlen("monitor:checkin") == 1
    assert wait_until(lambda: r.xpending("monitor:checkin", "workers")["pending"] == 0)


def test_api_and_separate_worker_process_share_redis(
    client_factory: Callable[..., TestClient], redis_url: str, tmp_path
) -> None:
    client = client_factory(redis_url=redis_url, run_worker=False, verdict_wait_seconds=0)
    world = World.build(client)
    r = world.checkin(face("people/obama/obama2.jpg"))
    assert r.status_code == 202 and r.json()["status"] == "pending"  # no worker yet: accepted, not lost
    settings = client.app.state.settings
    worker = Worker(settings, Database(settings.sqlalchemy_url), RedisStreamsBus(redis_url, block_ms=50),
                    EvidenceStore(settings.evidence_dir), FaceEngine())
    worker.start()
    try:
        status_url = r.json()["status_url"]
        assert wait_until(lambda: client.get(status_url, headers=auth(world.site)).json()["status"] == "passed")
    finally:
        worker.stop()


def test_upload_survives_a_bus_outage(client_factory: Callable[..., TestClient]) -> None:
    client = client_factory(verdict_wait_seconds=0.5, redeliver_after_seconds=1)
    world = World.build(client)
    bus = client.app.state.bus
    real_queue = bus._queue  # noqa: SLF001 - inject the outage below the publish call
    outage = threading.Event()
    outage.set()

    def queue_or_outage(topic: str):
        if outage.is_set():
            raise ConnectionError("bus down")
        return real_queue(topic)

    bus._queue = queue_or_outage  # noqa: SLF001
    r = world.checkin(face("people/obama/obama2.jpg"))
    assert r.status_code == 202 and r.json()["status"] == "pending"
    assert world.stored()["outbox"] == 1
    time.sleep(1.5)  # the relay tries and fails meanwhile
    outage.clear()
    status_url = r.json()["status_url"]
    assert wait_until(lambda: client.get(status_url, headers=auth(world.site)).json()["status"] == "passed")


def test_message_lost_by_a_crashing_worker_is_redelivered(client_factory: Callable[..., TestClient]) -> None:
    client = client_factory(verdict_wait_seconds=0.5, redeliver_after_seconds=1)
    world = World.build(client)
    worker = client.app.state.worker
    real = worker.handle_checkin
    crashes = []

    def crash_once(message: dict[str, Any]) -> None:
        if not crashes:
            crashes.append(message)
            raise RuntimeError("worker died mid-message")
        real(message)

    worker.bus._handlers["checkin"] = crash_once  # noqa: SLF001 - simulate the crash inside the consumer
    worker.bus.stop()
    worker.bus.start()
    r = world.checkin(face("people/kit_harington/john2.jpeg"))
    assert r.json()["status"] == "pending"
    status_url = r.json()["status_url"]
    assert wait_until(lambda: client.get(status_url, headers=auth(world.site)).json()["status"] == "failed")
    assert len(crashes) == 1
    with client.app.state.db.session() as s:
        assert s.scalar(select(OutboxMessage.attempts)) >= 2
        assert s.scalar(select(func.count()).select_from(Anomaly)) == 1


def test_redelivered_message_changes_nothing(world: World) -> None:
    body = world.checkin(face("people/kit_harington/john2.jpeg")).json()
    db = world.client.app.state.db

    def snapshot() -> tuple[int, int, int]:
        with db.session() as s:
            return (s.scalar(select(func.count()).select_from(Verification)),
                    s.scalar(select(func.count()).select_from(Anomaly)),
                    s.scalar(select(func.count()).select_from(Event).where(Event.kind != "class_status")))

    before = snapshot()
    assert before == (1, 1, 2)
    worker = world.client.app.state.worker
    worker.handle_checkin({"checkin_id": body["id"]})
    worker.bus.publish("checkin", {"checkin_id": body["id"]})
    time.sleep(1.0)
    assert snapshot() == before


def test_health_and_the_wall_say_when_redis_does_not_answer(client_factory: Callable[..., TestClient],
                                                            redis_url: str) -> None:
    """An outside tester killed Redis and /health still said ok: an operator had no sign that the bus was down.
    Now health is degraded with bus_reachable false and the wall carries BUS_DOWN; with Redis up, neither."""
    from tests.conftest import free_port

    up = client_factory(redis_url=redis_url, run_worker=False)
    world = World.build(up)
    health = up.get("/api/v1/health", headers=auth(world.operator)).json()
    assert health["bus_reachable"] is True and health["status"] == "ok", health
    assert up.get("/api/v1/overview", headers=auth(world.operator)).json()["alarms"] == []
    down = client_factory(redis_url=f"redis://127.0.0.1:{free_port()}/0", run_worker=False)
    health = down.get("/api/v1/health", headers=auth(world.operator)).json()
    assert health["bus_reachable"] is False and health["status"] == "degraded", health
    alarms = down.get("/api/v1/overview", headers=auth(world.operator)).json()["alarms"]
    assert [a["code"] for a in alarms] == ["BUS_DOWN"] and "Redis" in alarms[0]["message"]
