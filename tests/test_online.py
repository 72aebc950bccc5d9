"""Online study: minutes vouched for by face heartbeats, failed checks not counted, the 8-hour boundary."""

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from models.clock import SHANGHAI
from models.tables import Anomaly, OnlineSession, OutboxMessage
from monitor.decisions.online import Beat, daily_study, judge_online_day, verified_minutes
from tests.helpers import World, auth, face

T0 = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def test_minutes_between_passed_heartbeats() -> None:
    beats = [Beat(at(5), True), Beat(at(12), True), Beat(at(20), False), Beat(at(26), True)]
    assert verified_minutes(T0, at(30), beats, max_gap_min=15) == 5 + 7 + 6 + 4  # the failed stretch is lost


def test_long_gaps_are_capped_and_open_sessions_stop_at_the_last_heartbeat() -> None:
    assert verified_minutes(T0, at(100), [Beat(at(40), True)], max_gap_min=15) == 15 + 15
    assert verified_minutes(T0, None, [Beat(at(10), True)], max_gap_min=15) == 10
    assert verified_minutes(T0, at(60), [], max_gap_min=15) == 0


@pytest.mark.parametrize(("minutes", "counted", "fires"), [(480, 480, False), (480.5, 480, True), (300, 300, False)])
def test_eight_hour_boundary(minutes: float, counted: float, fires: bool) -> None:
    day = daily_study([minutes / 2, minutes / 2], cap_min=480)
    assert day.counted_min == counted and bool(judge_online_day(day, cap_min=480)) is fires


def test_online_session_through_the_api(client_factory: Callable[..., TestClient]) -> None:
    world = World.build(client_factory(online_max_gap_minutes=15, online_daily_cap_minutes=10))
    r = world.client.post("/api/v1/online/sessions", json={"class_id": world.class_id,
                                                           "trainee_id": world.obama_id}, headers=auth(world.site))
    assert r.status_code == 201, r.text
    session = r.json()
    assert 60 <= session["next_heartbeat_in_s"] <= 600
    start = datetime.now(UTC) - timedelta(minutes=20)  # as if the session began 20 minutes ago
    with world.client.app.state.db.session() as s:
        s.get(OnlineSession, session["id"]).started_at = start
    beats = [("people/obama/obama2.jpg", 6), ("people/biden/biden2.jpg", 9), ("people/obama/obama1.jpg", 14)]
    for photo, minute in beats:
        r = world.client.post(f"/api/v1/online/sessions/{session['id']}/heartbeats",
                              data={"captured_at": (start + timedelta(minutes=minute)).isoformat()},
                              files={"photo": ("h.jpg", face(photo), "image/jpeg")}, headers=auth(world.site))
        assert r.status_code == 201, r.text
    statuses = [b["status"] for b in world.client.get(f"/api/v1/online/sessions/{session['id']}",
                                                       headers=auth(world.site)).json()["heartbeats"]]
    assert statuses == ["passed", "failed", "passed"]
    r = world.client.post(f"/api/v1/online/sessions/{session['id']}/end", headers=auth(world.site))
    assert r.status_code == 200
    day = start.astimezone(SHANGHAI).date()  # study counts for the day its session began (near midnight too)
    summary = world.client.get(f"/api/v1/online/minutes?class_id={world.class_id}&day={day}",
                               headers=auth(world.admin)).json()
    row = next(x for x in summary["rows"] if x["trainee_id"] == world.obama_id)
    assert row["verified_minutes"] >= 6 + 5  # the stretch ending at the failed heartbeat is not counted
    assert row["counted_minutes"] == 10 and row["over_cap"] is True
    with world.client.app.state.db.session() as s:
        beats = s.scalars(select(OutboxMessage).where(OutboxMessage.topic == "heartbeat")).all()
        assert len(beats) == 3 and all(m.published_at and m.processed_at for m in beats)  # sent once, done
        over = s.scalars(select(Anomaly).where(Anomaly.rule == "ONLINE_OVER_8H")).all()
        assert len(over) == 1 and over[0].trainee_id == world.obama_id


def test_a_heartbeat_taken_before_its_session_began_is_refused(client_factory: Callable[..., TestClient]) -> None:
    """Outside tester: a heartbeat `captured_at` three hours before its session started passed, and the wall's day
    timeline showed the check before the session. Before the start (beyond the clock skew allowed) is refused."""
    world = World.build(client_factory())
    session = world.client.post("/api/v1/online/sessions", json={"class_id": world.class_id,
                                                                 "trainee_id": world.obama_id},
                                headers=auth(world.site)).json()
    started = datetime.fromisoformat(session["started_at"])

    def beat(at: datetime) -> Any:
        return world.client.post(f"/api/v1/online/sessions/{session['id']}/heartbeats",
                                 data={"captured_at": at.isoformat()},
                                 files={"photo": ("h.jpg", face("people/obama/obama2.jpg"), "image/jpeg")},
                                 headers=auth(world.site))

    r = beat(started - timedelta(hours=3))
    assert r.status_code == 422 and r.json()["code"] == "CAPTURED_BEFORE_SESSION", r.text
    assert "早于本次线上学习会话的开始时间" in r.json()["message"]
    assert beat(started + timedelta(seconds=5)).status_code == 201


def test_a_heartbeat_retried_with_its_key_gets_the_first_heartbeat(client_factory: Callable[..., TestClient]) -> None:
    """A heartbeat answered 202 (its verdict still pending) whose answer the phone lost, sent again with the same
    Idempotency-Key, used to be refused 409 PHOTO_REPLAYED: its own photo was taken for a replay. The retry now gets
    the first heartbeat back (duplicate=true), even after the session has ended; the key with another photo is a 409,
    and the photo under a new key is still a replay."""
    world = World.build(client_factory(run_worker=False, verdict_wait_seconds=0))
    session = world.client.post("/api/v1/online/sessions", json={"class_id": world.class_id,
                                                                 "trainee_id": world.obama_id},
                                headers=auth(world.site)).json()
    started = datetime.fromisoformat(session["started_at"])

    def beat(key: str | None, photo: str) -> Any:
        return world.client.post(f"/api/v1/online/sessions/{session['id']}/heartbeats",
                                 data={"captured_at": (started + timedelta(seconds=30)).isoformat()},
                                 files={"photo": ("h.jpg", face(photo), "image/jpeg")},
                                 headers={**auth(world.site), **({"Idempotency-Key": key} if key else {})})

    first = beat("hb-1", "people/obama/obama2.jpg")
    assert first.status_code == 202 and first.json()["duplicate"] is False, first.text
    again = beat("hb-1", "people/obama/obama2.jpg")
    assert again.status_code == 202, again.text
    assert again.json()["id"] == first.json()["id"] and again.json()["duplicate"] is True
    other = beat("hb-1", "people/obama/obama1.jpg")
    assert other.status_code == 409 and other.json()["code"] == "IDEMPOTENCY_KEY_REUSED", other.text
    for key in ("hb-2", None):
        replayed = beat(key, "people/obama/obama2.jpg")
        assert replayed.status_code == 409 and replayed.json()["code"] == "PHOTO_REPLAYED", replayed.text
    ended = world.client.post(f"/api/v1/online/sessions/{session['id']}/end", headers=auth(world.site))
    assert ended.status_code == 200
    late = beat("hb-1", "people/obama/obama2.jpg")
    assert late.status_code == 202 and late.json()["id"] == first.json()["id"], late.text
    assert beat("hb-3", "people/obama/obama1.jpg").json()["code"] == "ONLINE_SESSION_ENDED"
    heartbeats = world.client.get(f"/api/v1/online/sessions/{session['id']}", headers=auth(world.site)).json()
    assert [b["id"] for b in heartbeats["heartbeats"]] == [first.json()["id"]]
    with world.client.app.state.db.session() as s:
        assert len(s.scalars(select(OutboxMessage).where(OutboxMessage.topic == "heartbeat")).all()) == 1
