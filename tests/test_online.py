"""Online study: minutes vouched for by face heartbeats, failed checks not counted, the 8-hour boundary."""

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from models.clock import SHANGHAI
from models.tables import Anomaly, Evidence, OnlineHeartbeat, OnlineSession, OutboxMessage
from monitor.decisions.online import (
    Beat,
    counted_in_order,
    daily_study,
    judge_online_day,
    verified_minutes,
    vouched_at,
)
from tests.helpers import World, auth, face, heartbeat_dated

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
        r = heartbeat_dated(world.client, world.site, session["id"], photo, start + timedelta(minutes=minute))
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
    # A retry racing its first sending (outside tester: 7 of 64 were told PHOTO_REPLAYED of their own photo).
    racing = world.client.post("/api/v1/online/sessions", json={"class_id": world.class_id,
                                                                "trainee_id": world.biden_id},
                               headers=auth(world.site)).json()
    barrier = threading.Barrier(6)
    answers: list[Any] = []

    def send() -> None:
        barrier.wait()
        answers.append(world.client.post(
            f"/api/v1/online/sessions/{racing['id']}/heartbeats",
            data={"captured_at": (datetime.fromisoformat(racing["started_at"]) + timedelta(seconds=20)).isoformat()},
            files={"photo": ("h.jpg", face("people/biden/biden2.jpg"), "image/jpeg")},
            headers={**auth(world.site), "Idempotency-Key": "hb-race"}))

    threads = [threading.Thread(target=send) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert {r.status_code for r in answers} == {202}, [r.text for r in answers]
    assert len({r.json()["id"] for r in answers}) == 1 and sum(not r.json()["duplicate"] for r in answers) == 1
    with world.client.app.state.db.session() as s:
        assert len(s.scalars(select(OutboxMessage).where(OutboxMessage.topic == "heartbeat")).all()) == 2  # one each


def test_counted_in_order_gives_the_day_s_first_minutes() -> None:
    assert counted_in_order([300, 120, 90], cap_min=480) == [300, 120, 60]
    assert counted_in_order([500, 30], cap_min=480) == [480, 0]
    assert counted_in_order([], cap_min=480) == []


def test_heartbeats_vouch_only_for_time_lived_within_their_session() -> None:
    """A heartbeat dated after the session's end vouches for nothing; one dated ahead of its arrival counts from its
    arrival (outside tester: a 0.2 s session earned 4.9 minutes with one heartbeat dated 295 s ahead)."""
    received = at(0.2 / 60)
    assert vouched_at(at(295 / 60), received) == received
    assert verified_minutes(T0, received, [Beat(vouched_at(at(295 / 60), received), True)], max_gap_min=15) < 0.01
    assert verified_minutes(T0, at(10), [Beat(at(5), True), Beat(at(12), True)], max_gap_min=15) == 10


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_what_a_cheating_or_unlucky_study_platform_sends_is_refused(
        database: str, request: pytest.FixtureRequest, client_factory: Callable[..., TestClient]) -> None:
    """Outside tester's findings on online study: a burst of heartbeats dated 15 minutes apart claimed two hours in
    one second; a session silent for hours still took heartbeats; simultaneous starts opened two sessions; the
    trainee's enrolment photo, sent unchanged, passed as a heartbeat. On both databases."""
    url = request.getfixturevalue("postgres_url") if database == "postgresql" else None
    world = World.build(client_factory(database_url=url) if url else client_factory())

    def start() -> Any:
        return world.client.post("/api/v1/online/sessions", json={"class_id": world.class_id,
                                                                 "trainee_id": world.obama_id},
                                 headers=auth(world.site))

    def beat(session_id: int, captured: datetime, photo: str = "people/obama/obama2.jpg") -> Any:
        return world.client.post(f"/api/v1/online/sessions/{session_id}/heartbeats",
                                 data={"captured_at": captured.isoformat()},
                                 files={"photo": ("h.jpg", face(photo), "image/jpeg")}, headers=auth(world.site))

    barrier = threading.Barrier(6)
    answers: list[Any] = []

    def racing_start() -> None:
        barrier.wait()
        answers.append(start())

    threads = [threading.Thread(target=racing_start) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.status_code for r in answers) == [201] + [409] * 5, [r.text for r in answers]
    assert {r.json()["code"] for r in answers if r.status_code == 409} == {"TOO_MANY_OPEN"}
    session_id = next(r.json()["id"] for r in answers if r.status_code == 201)
    now = datetime.now(UTC)
    with world.client.app.state.db.session() as s:
        s.get(OnlineSession, session_id).started_at = now - timedelta(minutes=10)
    late = beat(session_id, now - timedelta(minutes=8))  # within the session, sent 8 minutes after it was taken
    assert late.status_code == 422 and late.json()["code"] == "HEARTBEAT_TOO_LATE", late.text
    copied = beat(session_id, now, "people/obama/obama.jpg")  # the bytes of the enrolment photo
    assert copied.status_code == 409 and copied.json()["code"] == "PHOTO_REPLAYED", copied.text
    assert "人脸登记照片" in copied.json()["message"]
    with world.client.app.state.db.session() as s:  # left open, silent for two hours
        s.get(OnlineSession, session_id).started_at = now - timedelta(hours=2)
    silent = beat(session_id, now)
    assert silent.status_code == 409 and silent.json()["code"] == "ONLINE_SESSION_ENDED", silent.text
    assert "没有学习抽拍" in silent.json()["message"]
    shown = world.client.get(f"/api/v1/online/sessions/{session_id}", headers=auth(world.site)).json()
    assert shown["ended_at"] is not None and datetime.fromisoformat(shown["ended_at"]) < now - timedelta(hours=1)
    assert shown["heartbeats"] == []
    abandoned = start()  # the abandoned session no longer blocks a new one
    assert abandoned.status_code == 201, abandoned.text
    # Ended by the platform after 33 silent minutes: it ends at its last heartbeat, not now (outside tester: the
    # stretch after the last heartbeat, 15 minutes nobody studied, was credited).
    again = abandoned.json()["id"]
    last_beat = now - timedelta(minutes=33)
    assert heartbeat_dated(world.client, world.site, again, "people/obama/obama1.jpg", last_beat).status_code == 201
    with world.client.app.state.db.session() as s:
        s.get(OnlineSession, again).started_at = now - timedelta(minutes=45)
    ended = world.client.post(f"/api/v1/online/sessions/{again}/end", headers=auth(world.site)).json()
    assert datetime.fromisoformat(ended["ended_at"]) == last_beat, ended


def test_a_class_s_minutes_are_its_own_and_the_cap_is_the_trainee_s_day(
        client_factory: Callable[..., TestClient]) -> None:
    """Outside tester: a trainee on two classes' rosters studied 4.8 minutes in one, and both classes' reports
    listed 4.8 minutes (subsidised hours paid twice). Each class now lists its own; the 8-hour cap is the
    person's day, its first minutes counted in the order studied."""
    world = World.build(client_factory(online_max_gap_minutes=60, online_daily_cap_minutes=90))
    rostered = world.client.post(f"/api/v1/classes/{world.other_class_id}/roster", headers=auth(world.admin),
                                 json={"trainee_ids": [world.obama_id]})
    assert rostered.status_code == 200, rostered.text
    today = datetime.now(UTC).astimezone(SHANGHAI).date()
    day_start = datetime.combine(today, datetime.min.time(), SHANGHAI).astimezone(UTC) + timedelta(hours=9)
    with world.client.app.state.db.session() as s:
        for class_id, begin in ((world.other_class_id, 0), (world.class_id, 120)):  # 60 min elsewhere, then here
            row = OnlineSession(class_id=class_id, trainee_id=world.obama_id, institution_id=1,
                                started_at=day_start + timedelta(minutes=begin),
                                ended_at=day_start + timedelta(minutes=begin + 60))
            s.add(row)
            s.flush()
            s.add(Evidence(sha256=f"{class_id:064d}", size_bytes=1, media_type="image/jpeg", width=1, height=1,
                           created_at=day_start))
            s.add(OnlineHeartbeat(session_id=row.id, captured_at=row.started_at + timedelta(minutes=30),
                                  received_at=row.started_at + timedelta(minutes=30), photo_sha256=f"{class_id:064d}",
                                  status="passed"))
    report = world.client.get(f"/api/v1/online/minutes?class_id={world.class_id}&day={today}",
                              headers=auth(world.admin)).json()
    row = next(x for x in report["rows"] if x["trainee_id"] == world.obama_id)
    assert (row["verified_minutes"], row["counted_minutes"], row["day_verified_minutes"]) == (60, 30, 120), row
    assert row["over_cap"] is True
    other = world.client.get(f"/api/v1/online/minutes?class_id={world.other_class_id}&day={today}",
                             headers=auth(world.admin)).json()
    row = next(x for x in other["rows"] if x["trainee_id"] == world.obama_id)
    assert (row["verified_minutes"], row["counted_minutes"], row["day_verified_minutes"]) == (60, 60, 120), row
