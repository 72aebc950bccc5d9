"""The policy rules: table-driven for each rule (fires / does not fire, boundaries), and a simulated class week."""

import hashlib
import random
from collections.abc import Callable
from datetime import date, datetime, time, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from models.clock import SHANGHAI, utc_now
from models.domain import AnomalyCode, Severity
from models.tables import (
    Alert,
    Anomaly,
    CheckIn,
    ClassSession,
    Event,
    Evidence,
    RuleSubject,
    Snapshot,
    TrainingClass,
    Verification,
)
from monitor.decisions.attendance import AttendanceTally, scheduled_slots, tally_attendance, trainee_attendance
from monitor.decisions.rules import (
    ClassFacts,
    Schedule,
    judge_class_audit,
    judge_double_enrolment,
    judge_low_attendance,
    judge_session_time,
    judge_silence,
    judge_slot_attendance,
    judge_two_places,
)
from monitor.decisions.verdicts import Finding
from monitor.services.alerts import NewAnomaly, add_anomalies
from monitor.services.clock import PolicyClock, resolve_attendance
from monitor.services.clock_facts import attendance_tallies, claim_subject, claim_subjects, marks_of
from monitor.services.events import class_context
from tests.helpers import VENUE, World, auth, confirmed_violation

D = date(2026, 11, 23)


def local(hhmm: str, day: date = D) -> datetime:
    return datetime.combine(day, time.fromisoformat(hhmm), SHANGHAI)


@pytest.mark.parametrize(("kind", "hhmm", "fires"), [
    ("sign_in", "08:00", False), ("sign_in", "07:59", True), ("sign_in", "12:00", False), ("sign_in", "12:01", True),
    ("sign_out", "08:29", True), ("sign_out", "12:30", False), ("sign_out", "12:31", True),
])
def test_outside_session(kind: str, hhmm: str, fires: bool) -> None:
    assert bool(judge_session_time(kind, local(hhmm), "08:30", "12:00", 30)) is fires


@pytest.mark.parametrize(("signed_in", "signed_out", "rule"), [
    (False, False, "NO_SHOW"), (True, False, "MISSING_SIGNOUT"), (True, True, None), (False, True, "NO_SHOW"),
])
def test_slot_attendance(signed_in: bool, signed_out: bool, rule: str | None) -> None:
    found = judge_slot_attendance(signed_in, signed_out, "上午", D)
    assert [f.code.value for f in found] == ([rule] if rule else [])


@pytest.mark.parametrize(("last", "now", "fires"), [
    (None, "09:00", True), (None, "08:59", False), ("08:40", "09:09", False), ("08:40", "09:10", True),
])
def test_class_silent(last: str | None, now: str, fires: bool) -> None:
    assert bool(judge_silence(local(last) if last else None, local("08:30"), local(now), 30)) is fires


@pytest.mark.parametrize(("rate", "scheduled", "fires"), [
    (0.8, 10, False), (0.79, 10, True), (0.0, 1, False), (0.5, 2, True), (None, 0, False),
])
def test_low_attendance_boundary(rate: float | None, scheduled: int, fires: bool) -> None:
    assert bool(judge_low_attendance(rate, scheduled, 0.8, 2)) is fires


def facts(**kw) -> ClassFacts:
    base = {"institution_name": "甲校", "institution_blacklisted": False,
            "teachers": [(1, "张老师", "1" * 18, False), (2, "李老师", "2" * 18, False)],
            "occupation_name": "电工", "occupation_ok": (True, True, True)}
    base.update(kw)
    return ClassFacts(**base)


@pytest.mark.parametrize(("kw", "rules"), [
    ({}, []),
    ({"institution_blacklisted": True}, ["BLACKLISTED"]),
    ({"teachers": [(1, "张老师", "1" * 18, True), (2, "李老师", "2" * 18, False)]}, ["BLACKLISTED"]),
    ({"occupation_ok": (True, False, True)}, ["CLASS_NOT_ALLOWED"]),
    ({"teachers": [(1, "张老师", "1" * 18, False), (2, "张老师", "1" * 18, False)]}, ["SAME_TEACHER_BOTH"]),
])
def test_class_audit(kw: dict, rules: list[str]) -> None:
    assert [f.code.value for f in judge_class_audit(facts(**kw))] == rules


@pytest.mark.parametrize(("other", "fires"), [
    (Schedule(2, D, D + timedelta(days=4), [("09:00", "10:00")]), True),
    (Schedule(2, D, D + timedelta(days=4), [("12:00", "14:00")]), False),  # touching windows do not overlap
    (Schedule(2, D + timedelta(days=5), D + timedelta(days=9), [("08:30", "12:00")]), False),
])
def test_double_enrolment(other: Schedule, fires: bool) -> None:
    mine = Schedule(1, D, D + timedelta(days=4), [("08:30", "12:00"), ("14:00", "17:30")])
    assert bool(judge_double_enrolment(mine, [other])) is fires


@pytest.mark.parametrize(("distance", "minutes", "fires"), [(5000, 10, True), (500, 10, False), (5000, 31, False)])
def test_two_places_at_once(distance: float, minutes: float, fires: bool) -> None:
    assert bool(judge_two_places(distance, minutes, 2, 7, max_minutes=30, min_distance_m=1000)) is fires


# -- a class week, driven by the clock -----------------------------------------------------------------
def add_checkin(world: World, trainee_id: int, kind: str, at: datetime, session_id: int | None,
                status: str = "passed") -> CheckIn:
    with world.client.app.state.db.session() as s:
        sha = hashlib.sha256(f"{trainee_id}{kind}{at}".encode()).hexdigest()
        s.add(Evidence(sha256=sha, size_bytes=1, media_type="image/jpeg", width=1, height=1, created_at=at))
        s.flush()
        row = CheckIn(trainee_id=trainee_id, class_id=world.class_id, institution_id=world.ids["institution"],
                      session_id=session_id, kind=kind, captured_at=at, received_at=at, lat=VENUE[0], lon=VENUE[1],
                      accuracy_m=10, device_id=f"d{trainee_id}", mock_location=False, photo_sha256=sha,
                      status=status)
        s.add(row)
        s.flush()
        s.add(Verification(subject_kind="checkin", subject_id=row.id, passed=True, face_count=1, face_distance=0.3,
                           fence_result="inside", fence_distance_m=-100, measured={}, thresholds={},
                           model_version="test", reasons=[], created_at=at))
        return row


def set_two_sessions(world: World, first: date, last: date) -> tuple[int, int]:
    """The world's class runs from `first` to `last` with two sessions a day (08:30–12:00, 14:00–17:30): their ids."""
    with world.client.app.state.db.session() as s:
        cls = s.get(TrainingClass, world.class_id)
        cls.start_date, cls.end_date = first, last
        for cs in s.scalars(select(ClassSession).where(ClassSession.class_id == world.class_id)):
            s.delete(cs)
        s.flush()
        am = ClassSession(class_id=world.class_id, name="上午", start_local="08:30", end_local="12:00")
        pm = ClassSession(class_id=world.class_id, name="下午", start_local="14:00", end_local="17:30")
        s.add_all([am, pm])
        s.flush()
        return am.id, pm.id


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_the_databases_attendance_count_is_the_session_by_session_one(
        backend: str, client_factory: Callable[..., TestClient], request: pytest.FixtureRequest) -> None:
    """LOW_ATTENDANCE counts a term in the database (55 s → 8 s at 3,000 classes × 60 trainees × 3 days): on random
    check-ins (passed, awaiting review or failed; at any hour of the Shanghai day, whose midnight is 16:00 UTC; before
    the class's first day, after today, or with no session) its counts are the ledger's session-by-session ones."""
    url = request.getfixturevalue("postgres_url") if backend == "postgresql" else None
    world = World.build(client_factory(database_url=url) if url else client_factory())
    today = utc_now().astimezone(SHANGHAI).date()
    first = today - timedelta(days=5)
    am_id, pm_id = set_two_sessions(world, first, today + timedelta(days=3))
    rng = random.Random(21)
    trainees = [world.obama_id, world.biden_id]
    for n in range(160):
        day = first + timedelta(days=rng.randint(-1, 6))
        at = datetime.combine(day, time(rng.choice([0, 7, 8, 11, 15, 23]), rng.randint(0, 59), 0, n), SHANGHAI)
        add_checkin(world, rng.choice(trainees), rng.choice(["sign_in", "sign_out"]), at,
                    rng.choice([am_id, pm_id, am_id, pm_id, None]),
                    rng.choice(["passed", "passed", "review", "failed"]))
    db = world.client.app.state.db
    with db.session() as s:
        counted = attendance_tallies(s, [world.class_id], today)
        marks = marks_of(s, world.class_id, datetime.combine(first, time(0), SHANGHAI))
    spans = [(am_id, "上午", "08:30", "12:00"), (pm_id, "下午", "14:00", "17:30")]
    slots = scheduled_slots(first, today + timedelta(days=3), spans, datetime.combine(today, time(18), SHANGHAI))
    assert len(slots) == 12
    tallies = []
    for trainee in trainees:
        by_session = tally_attendance(trainee_attendance(slots, marks[trainee], 0.8))
        tallies.append(by_session)
        assert AttendanceTally(len(slots), *counted.get((world.class_id, trainee), (0, 0))) == by_session, trainee
    assert all(t.attended > 0 and t.pending > 0 for t in tallies)  # the random check-ins reached both counts


def test_a_class_week(world: World) -> None:
    """Mon–Fri, two sessions a day. Obama misses Wednesday afternoon and Thursday morning's sign-out: below
    80 % on Thursday evening, exactly 80 % (eligible) by Friday. Biden stops coming after Tuesday (40 %)."""
    db = world.client.app.state.db
    today = utc_now().astimezone(SHANGHAI).date()
    days = [today - timedelta(days=7 - i) for i in range(5)]
    am_id, pm_id = set_two_sessions(world, days[0], days[-1])
    sessions = {"上午": (am_id, "08:30", "12:00"), "下午": (pm_id, "14:00", "17:30")}
    clock = PolicyClock(world.client.app.state.settings, db)
    for n, day in enumerate(days):
        for name, (sid, start, end) in sessions.items():
            for trainee in (world.obama_id, world.biden_id):
                if trainee == world.biden_id and n >= 2:
                    continue
                if trainee == world.obama_id and (n, name) == (2, "下午"):
                    continue
                add_checkin(world, trainee, "sign_in", local(start, day) + timedelta(minutes=3), sid)
                if not (trainee == world.obama_id and (n, name) == (3, "上午")):
                    add_checkin(world, trainee, "sign_out", local(end, day) - timedelta(minutes=3), sid)
            if n == 0 and name == "上午":
                with db.session() as s:  # a classroom snapshot keeps Monday morning from being silent
                    sha = hashlib.sha256(b"snap").hexdigest()
                    s.add(Evidence(sha256=sha, size_bytes=1, media_type="image/jpeg", width=1, height=1,
                                   created_at=local("09:20", day)))
                    s.flush()
                    s.add(Snapshot(class_id=world.class_id, institution_id=world.ids["institution"], camera_id="c",
                                   captured_at=local("09:20", day), received_at=local("09:20", day),
                                   photo_sha256=sha, status="passed"))
        if n in (0, 4):
            clock.run(local("09:30", day))
        clock.run(local("12:20", day))
        clock.run(local("17:50", day))
        clock.run(local("17:50", day))  # running twice fires nothing twice

    with db.session() as s:
        found = [(a.rule, a.trainee_id) for a in s.scalars(select(Anomaly).order_by(Anomaly.id))]
    obama = sorted(r for r, t in found if t == world.obama_id)
    biden = sorted(r for r, t in found if t == world.biden_id)
    assert obama == ["LOW_ATTENDANCE", "MISSING_SIGNOUT", "NO_SHOW"]  # Thursday evening 6/8 = 75 %
    assert biden == ["LOW_ATTENDANCE"] * 3 + ["NO_SHOW"] * 6  # Wed, Thu, Fri evenings; six sessions missed
    silent = [r for r, t in found if r == "CLASS_SILENT"]
    assert silent == ["CLASS_SILENT"]  # Friday 09:30 (Monday had a snapshot at 09:20)

    ledger = world.client.get(f"/api/v1/classes/{world.class_id}/ledger", headers=auth(world.admin)).json()
    rows = {r["trainee_id"]: r for r in ledger["rows"]}
    assert (rows[world.obama_id]["rate"], rows[world.obama_id]["eligible"]) == (0.8, True)
    assert (rows[world.biden_id]["rate"], rows[world.biden_id]["eligible"]) == (0.4, False)

    with db.session() as s:  # Wednesday afternoon: both missing, grouped into one alert with a count
        wednesday = s.scalars(select(Alert).where(Alert.rule == "NO_SHOW")).all()
        assert max(a.count for a in wednesday) >= 2
    alerts = world.client.get("/api/v1/alerts?limit=100", headers=auth(world.operator)).json()
    grouped = [a for a in alerts if a["rule"] == "NO_SHOW" and a["count"] >= 2]
    assert grouped and len(grouped[0]["anomalies"]) == grouped[0]["count"]
    # A late sign-in for Friday afternoon clears Biden's NO_SHOW for it, with a note.
    late = add_checkin(world, world.biden_id, "sign_in", local("16:00", days[-1]), sessions["下午"][0])
    with db.session() as s:
        resolve_attendance(s, s.get(CheckIn, late.id))
    with db.session() as s:
        resolved = s.scalars(select(Anomaly).where(Anomaly.state == "resolved")).all()
        assert len(resolved) == 1 and resolved[0].rule == "NO_SHOW" and "补签到" in resolved[0].resolved_note


def test_class_audit_and_double_enrolment_on_the_clock(world: World) -> None:
    clock = PolicyClock(world.client.app.state.settings, world.client.app.state.db)
    now = utc_now()
    assert clock.audit_classes(now.astimezone(SHANGHAI)) == 0
    world.client.put(f"/api/v1/institutions/{world.ids['institution']}/blacklist",
                     json={"blacklisted": True, "reason": "骗取补贴", "alert_ids": [confirmed_violation(world)]},
                     headers=auth(world.admin))
    world.client.post(f"/api/v1/classes/{world.other_class_id}/roster", json={"trainee_ids": [world.biden_id]},
                      headers=auth(world.admin))
    assert clock.audit_classes(now.astimezone(SHANGHAI)) == 2
    assert clock.audit_classes(now.astimezone(SHANGHAI)) == 0
    with world.client.app.state.db.session() as s:
        rules = sorted(a.rule for a in s.scalars(select(Anomaly)))
    assert rules == ["BLACKLISTED", "DOUBLE_ENROLMENT"]


def test_a_batch_of_findings_is_stored_once_each_in_one_alert_and_a_key_claimed_meanwhile_is_left_out(
        world: World) -> None:
    """The clock records a batch at once (keys claimed in one insert, anomalies and their alert in a few): a key
    another worker claimed in between is refused by the unique key and left out, the rest are claimed; anomalies of
    one rule and class share one alert that counts them from its insert, each event carrying its running count."""
    db = world.client.app.state.db
    with db.session() as other:
        assert claim_subject(other, "TEST:taken") is not None  # another worker, committed first
    with db.session() as s:
        context = class_context(s, s.get(TrainingClass, world.class_id))
        ids = claim_subjects(s, ["TEST:a", "TEST:taken", "TEST:b", "TEST:a"])
        assert sorted(ids) == ["TEST:a", "TEST:b"]
        assert claim_subjects(s, ["TEST:b"]) == {}  # claimed now: asked again, the fallback refuses it
        finding = Finding(AnomalyCode.NO_SHOW, Severity.MEDIUM, "未签到")
        stored = add_anomalies(s, [NewAnomaly(context, finding, "clock", ids[key], {"trainee_id": world.obama_id},
                                              {"rule_key": key}, {}) for key in ("TEST:a", "TEST:b")])
        alert_ids = {a.alert_id for a in stored}
    with db.session() as s:
        [alert] = [s.get(Alert, alert_id) for alert_id in alert_ids]
        assert (alert.count, alert.open_count, alert.institution_id) == (2, 2, world.ids["institution"])
        events = s.scalars(select(Event).where(Event.kind == "anomaly").order_by(Event.id)).all()
        assert [e.payload["alert_count"] for e in events][-2:] == [1, 2]
        assert s.scalar(select(func.count()).select_from(RuleSubject).where(RuleSubject.key.like("TEST:%"))) == 3
    with db.session() as s:  # the next batch joins the same alert (still open, within its window)
        more = add_anomalies(s, [NewAnomaly(context, finding, "clock", 999, {"trainee_id": world.biden_id}, {}, {})])
        assert {a.alert_id for a in more} == alert_ids
        assert s.get(Alert, more[0].alert_id).count == 3
