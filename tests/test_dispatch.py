"""Dispatch: alerts paged to an on-duty, non-recused inspector drawn at random, escalated when nobody accepts, worked
through their lifecycle with every step recorded; recused inspectors never see the alert."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from models.domain import Datum
from models.scope import Scope
from models.tables import Anomaly, Institution, Venue
from monitor.adapters.storage import Database
from monitor.adapters.tokens import resolve_token
from monitor.decisions.dispatch import ClassPlace, Inspector, Level, eligible, is_recused, next_page
from monitor.decisions.geodesy import convert_from_wgs84
from monitor.services.dispatch import DispatchClock
from tests.crew import Crew
from tests.helpers import VENUE, World, auth, face, far_fix, live_feed
from tests.test_phone_checks import sign_in_verified


def test_a_new_alert_goes_to_the_county_inspector_who_is_not_recused(crew: Crew) -> None:
    alert_id = crew.alert_id()
    assert crew.detail(alert_id).json()["state"] == "open"
    assert crew.clock().run(crew.now) == {"escalated": 0, "routed": 1}
    detail = crew.detail(alert_id).json()
    assert detail["state"] == "dispatched"
    assert [(p["staff_id"], p["level"], p["state"]) for p in detail["pages"]] == [
        (crew.staff["county_a"], "county", "paged")]
    step = detail["transitions"][-1]
    assert (step["action"], step["from_state"], step["to_state"], step["actor"]) == (
        "dispatch", "open", "dispatched", "调度系统")
    # The recused inspector does not see the alert at all; the one paged sees it among theirs.
    assert crew.detail(alert_id, "county_tied").status_code == 404
    tied_list = crew.client.get("/api/v1/alerts", headers=auth(crew.tokens["county_tied"])).json()
    assert alert_id not in {a["id"] for a in tied_list}
    mine = crew.client.get("/api/v1/my/alerts", headers=auth(crew.tokens["county_a"])).json()
    assert [a["id"] for a in mine] == [alert_id]
    assert crew.client.get("/api/v1/my/alerts", headers=auth(crew.tokens["county_tied"])).json() == []


def test_nobody_accepts_so_it_climbs_county_prefecture_province_then_returns(crew: Crew) -> None:
    alert_id = crew.alert_id()
    crew.clock().run(crew.now)
    # A fresh clock object each time: deadlines live in the database, so a restarted worker carries on.
    crew.clock(seed=1).run(crew.now + timedelta(minutes=11))
    crew.clock(seed=2).run(crew.now + timedelta(minutes=22))
    crew.clock(seed=3).run(crew.now + timedelta(minutes=33))
    detail = crew.detail(alert_id).json()
    assert [(p["staff_id"], p["level"], p["state"]) for p in detail["pages"]] == [
        (crew.staff["county_a"], "county", "expired"),
        (crew.staff["prefecture"], "prefecture", "expired"),
        (crew.staff["province"], "province", "expired")]
    assert detail["state"] == "open"
    assert [t["action"] for t in detail["transitions"]] == ["dispatch", "escalate", "escalate", "return"]
    assert "退回监控中心" in detail["transitions"][-1]["note"]
    assert crew.staff["county_tied"] not in {p["staff_id"] for p in detail["pages"]}
    assert crew.staff["elsewhere"] not in {p["staff_id"] for p in detail["pages"]}


def test_a_database_opened_anew_escalates_what_the_old_one_paged(crew: Crew) -> None:
    alert_id = crew.alert_id()
    crew.clock().run(crew.now)
    settings_ = crew.client.app.state.settings
    restarted = DispatchClock(settings_, Database(settings_.sqlalchemy_url), random.Random(5))
    assert restarted.run(crew.now + timedelta(minutes=5)) == {"escalated": 0, "routed": 0}  # not due yet
    assert restarted.run(crew.now + timedelta(minutes=10, seconds=1)) == {"escalated": 1, "routed": 0}
    assert crew.detail(alert_id).json()["pages"][-1]["staff_id"] == crew.staff["prefecture"]


def test_the_inspector_accepts_works_and_closes_with_an_outcome(crew: Crew) -> None:
    alert_id = crew.alert_id()
    crew.clock().run(crew.now)
    base = f"/api/v1/alerts/{alert_id}"
    assert crew.post(f"{base}/accept", "prefecture").json()["code"] == "NOT_PAGED"
    accepted = crew.post(f"{base}/accept", "county_a")
    assert accepted.status_code == 200 and accepted.json()["state"] == "accepted"
    assert accepted.json()["assignee_staff_id"] == crew.staff["county_a"]
    assert crew.post(f"{base}/arrive", "prefecture").status_code == 403  # not theirs: NOT_ASSIGNEE
    assert crew.post(f"{base}/phone", "county_a").json()["state"] == "phoning"
    assert crew.post(f"{base}/arrive", "county_a").json()["state"] == "on_site"
    no_outcome = crew.post(f"{base}/close", "county_a", {"note": "现场核实"})
    assert no_outcome.status_code == 422
    # An outcome carries its evidence: no phone check done and no form filed, so no confirmed violation; and
    # "could not verify" needs a reason of substance.
    bare = crew.post(f"{base}/close", "county_a", {"outcome": "violation_confirmed", "note": "学员本人不在场"})
    assert bare.status_code == 422 and bare.json()["code"] == "EVIDENCE_REQUIRED"
    vague = crew.post(f"{base}/close", "county_a", {"outcome": "could_not_verify", "note": "无法核实。。。"})
    assert vague.status_code == 422 and vague.json()["code"] == "REASON_REQUIRED"
    closed = crew.post(f"{base}/close", "county_a", {"outcome": "false_alarm", "note": "学员本人在场"})
    assert closed.status_code == 200, closed.text
    body = closed.json()
    assert (body["state"], body["outcome"]) == ("closed", "false_alarm")
    assert [t["action"] for t in body["transitions"]] == ["dispatch", "accept", "phone", "arrive", "close"]
    assert body["transitions"][-1]["actor"] == "抽查员0" and body["transitions"][-1]["note"] == "学员本人在场"
    with crew.world.client.app.state.db.session() as s:  # closing resolves the alert's anomalies
        states = [(a.state, a.resolved_note) for a in s.scalars(select(Anomaly).where(Anomaly.alert_id == alert_id))]
    assert states and all(state == "resolved" and "告警已办结（误报，抽查员0）" in (note or "")
                          for state, note in states)
    # An escalation deadline passing after acceptance changes nothing.
    assert crew.clock().run(crew.now + timedelta(hours=1)) == {"escalated": 0, "routed": 0}
    assert crew.post(f"{base}/reopen", "operator", {"note": ""}).status_code == 422
    reopened = crew.post(f"{base}/reopen", "operator", {"note": "复核发现需再次核查"})
    assert reopened.json()["state"] == "open" and reopened.json()["outcome"] is None


def test_operators_dispatch_by_hand_never_to_a_recused_inspector_and_dismiss_with_a_note(crew: Crew) -> None:
    alert_id = crew.alert_id()
    base = f"/api/v1/alerts/{alert_id}"
    refused = crew.post(f"{base}/dispatch", "operator", {"staff_id": crew.staff["county_tied"]})
    assert refused.status_code == 422 and refused.json()["code"] == "INSPECTOR_NOT_ELIGIBLE"
    assert crew.post(f"{base}/dispatch", "county_a", {}).status_code == 403  # inspectors do not dispatch
    sent = crew.post(f"{base}/dispatch", "operator", {"staff_id": crew.staff["prefecture"]})
    assert sent.status_code == 200, sent.text
    assert [p["staff_id"] for p in sent.json()["pages"]] == [crew.staff["prefecture"]]
    assert sent.json()["transitions"][-1]["actor"] == "值班员"
    assert crew.post(f"{base}/dismiss", "operator", {"note": "x"}).status_code == 422  # a note of substance
    dismissed = crew.post(f"{base}/dismiss", "operator", {"note": "系统误报，照片光线问题"})
    assert dismissed.json()["state"] == "closed" and dismissed.json()["outcome"] == "false_alarm"
    assert [p["state"] for p in dismissed.json()["pages"]] == ["withdrawn"]
    assert crew.post(f"{base}/accept", "prefecture").status_code == 409


def test_sites_never_learn_of_a_dispatch(crew: Crew) -> None:
    alert_id = crew.alert_id()
    crew.clock().run(crew.now)
    site = auth(crew.world.site)
    assert crew.client.get(f"/api/v1/alerts/{alert_id}", headers=site).status_code == 403
    assert crew.client.get("/api/v1/my/alerts", headers=site).status_code == 403
    assert crew.client.get("/api/v1/staff", headers=site).status_code == 403


# -- recusal as a property -----------------------------------------------------------------------------------------
COUNTIES = ("530102", "530103", "532901")


AT = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)  # a fixed moment for the pure rostering properties


@st.composite
def rosters(draw: st.DrawFn) -> tuple[list[Inspector], ClassPlace, int]:
    institutions = list(range(1, 6))
    people = []
    for staff_id in range(1, draw(st.integers(1, 25)) + 1):
        level = draw(st.sampled_from(list(Level)))
        region = {Level.COUNTY: draw(st.sampled_from(COUNTIES)), Level.PREFECTURE: draw(st.sampled_from(
            ("530100", "532900"))), Level.PROVINCE: "530000"}[level]
        on = draw(st.booleans())
        duty = ((AT - timedelta(hours=1), AT + timedelta(hours=1)),) if on else ()
        ties = frozenset(draw(st.sets(st.sampled_from(institutions), max_size=3)))
        people.append(Inspector(staff_id, level, region, duty, ties, draw(st.booleans()) or True))
    place = ClassPlace(draw(st.sampled_from(COUNTIES)), draw(st.sampled_from(institutions)))
    return people, place, draw(st.integers(0, 2**32))


@settings(max_examples=300, deadline=None)
@given(rosters())
def test_a_recused_inspector_is_never_paged_at_any_rung(case: tuple[list[Inspector], ClassPlace, int]) -> None:
    inspectors, place, seed = case
    rng, paged, rounds = random.Random(seed), frozenset[int](), {}
    for _ in range(8):  # climb the whole ladder
        pick = next_page(inspectors, place, AT, paged, rounds, 2, 3, rng)
        if pick.level is None:
            break
        by_id = {i.staff_id: i for i in inspectors}
        for staff_id in pick.staff_ids:
            assert not is_recused(by_id[staff_id], place.institution_id)
            assert by_id[staff_id] in eligible(inspectors, place, pick.level, AT)
        paged |= frozenset(pick.staff_ids)
        rounds[pick.level] = rounds.get(pick.level, 0) + 1
    tied = {i.staff_id for i in inspectors if place.institution_id in i.tied_institutions}
    assert not tied & paged


def test_the_page_is_pushed_to_its_inspector_and_nothing_of_the_class_to_the_recused_one(crew: Crew) -> None:
    alert_id = crew.alert_id()
    crew.clock().run(crew.now)
    with crew.client.app.state.db.session() as session:
        county_a = resolve_token(session, crew.tokens["county_a"])
    assert county_a is not None
    # Read up to the last event this inspector may see (the feed's last event overall may be another county's,
    # which never reaches them: waiting for it would wait forever).
    last_visible = crew.client.app.state.hub.fetch_after(0, limit=1000, scope=Scope.of(county_a))[-1].id
    with live_feed(crew.client, crew.tokens["county_a"], since=0) as ws:
        hello = ws.receive_json()
        assert hello["type"] == "hello"
        got = []
        while not got or got[-1]["id"] < last_visible:
            got.append(ws.receive_json())
    pages = [e for e in got if e["type"] == "page"]
    assert [(e["data"]["alert_id"], e["data"]["staff_id"]) for e in pages] == [(alert_id, crew.staff["county_a"])]
    assert any(e["type"] == "anomaly" for e in got)
    # What the recused inspector's feed would replay, and what it would pass live, from the same rows.
    hub = crew.client.app.state.hub
    with crew.client.app.state.db.session() as session:
        tied = resolve_token(session, crew.tokens["county_tied"])
        other = resolve_token(session, crew.tokens["prefecture"])
    assert tied is not None and other is not None
    tied_scope, other_scope = Scope.of(tied), Scope.of(other)
    everything = hub.fetch_after(0, limit=1000)
    assert everything and all(e.institution_id is not None or e.region_code == "" for e in everything)
    assert hub.fetch_after(0, limit=1000, scope=tied_scope) == [
        e for e in everything if e.institution_id != crew.world.ids["institution"]
        and tied_scope.allows_event(e.region_code, e.institution_id, e.staff_id)]
    assert not [e for e in everything if e.institution_id == crew.world.ids["institution"]
                and tied_scope.allows_event(e.region_code, e.institution_id, e.staff_id)]
    seen_by_other = hub.fetch_after(0, limit=1000, scope=other_scope)
    assert any(e.institution_id == crew.world.ids["institution"] for e in seen_by_other)
    assert not [e for e in seen_by_other if e.staff_id is not None]  # someone else's page


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_two_inspectors_accepting_one_alert_at_once(client_factory: Callable[..., TestClient], backend: str,
                                                    request: pytest.FixtureRequest) -> None:
    """A high-severity alert is paged to two inspectors; both tap 接单 at the same moment: one wins, the other is
    told it is taken, and the history has one acceptance (on SQLite too, where FOR UPDATE does nothing)."""
    url = request.getfixturevalue("postgres_url") if backend == "postgresql" else ""
    client = client_factory(database_url=url, dispatch_interval_seconds=3600, dispatch_high_parallel=2)
    now = datetime.now(UTC)
    world = World.build(client)
    tokens = {}
    for n in range(2):
        staff = client.post("/api/v1/staff", headers=auth(world.admin), json={
            "name": f"并发抽查员{n}", "phone": f"1391111000{n}", "level": "county", "region_code": "530102"}).json()
        client.post(f"/api/v1/staff/{staff['id']}/duty", headers=auth(world.admin), json={
            "starts_at": (now - timedelta(hours=1)).isoformat(), "ends_at": (now + timedelta(hours=2)).isoformat()})
        tokens[staff["id"]] = client.post("/api/v1/tokens", headers=auth(world.admin), json={
            "role": "inspector", "name": f"并发抽查员{n}", "staff_id": staff["id"]}).json()["token"]
    assert world.checkin(face("people/kit_harington/john1.jpeg")).json()["status"] == "failed"
    alert_id = client.get("/api/v1/alerts", headers=auth(world.operator)).json()[0]["id"]
    DispatchClock(client.app.state.settings, client.app.state.db, random.Random(1)).run(now)
    assert len(client.get(f"/api/v1/alerts/{alert_id}", headers=auth(world.operator)).json()["pages"]) == 2
    barrier = threading.Barrier(2)
    answers: dict[str, Any] = {}

    def accept(token: str) -> None:
        barrier.wait()
        answers[token] = client.post(f"/api/v1/alerts/{alert_id}/accept", headers=auth(token))

    threads = [threading.Thread(target=accept, args=(t,)) for t in tokens.values()]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.status_code for r in answers.values()) == [200, 409]
    [lost] = [r for r in answers.values() if r.status_code == 409]
    assert lost.json()["code"] == "ALREADY_TAKEN" and "其他抽查人员" in lost.json()["message"]
    # the winner's retry (its answer lost on the way) is answered as the first time, and changes nothing
    [winner] = [token for token, r in answers.items() if r.status_code == 200]
    again = client.post(f"/api/v1/alerts/{alert_id}/accept", headers=auth(winner))
    assert again.status_code == 200 and again.json()["state"] == "accepted", again.text
    detail = client.get(f"/api/v1/alerts/{alert_id}", headers=auth(world.operator)).json()
    assert [t["action"] for t in detail["transitions"]].count("accept") == 1
    assert sorted(p["state"] for p in detail["pages"]) == ["accepted", "withdrawn"]


def test_a_recused_inspector_sees_nothing_of_the_institution_and_a_tie_is_declared_once(crew: Crew) -> None:
    tied = auth(crew.tokens["county_tied"])
    institution = crew.world.ids["institution"]
    assert institution not in {i["id"] for i in crew.client.get("/api/v1/institutions", headers=tied).json()}
    assert all(v["institution_id"] != institution
               for v in crew.client.get("/api/v1/venues", headers=tied).json())
    other = auth(crew.tokens["county_a"])  # an inspector of the same county without the tie sees both
    assert institution in {i["id"] for i in crew.client.get("/api/v1/institutions", headers=other).json()}
    again = crew.client.post(f"/api/v1/staff/{crew.staff['county_tied']}/ties", headers=tied,
                             json={"institution_id": institution, "relation": "spouse"})
    assert again.status_code == 409 and again.json()["code"] == "TIE_ALREADY_DECLARED"


def test_a_tie_declared_during_a_task_hands_it_back_and_the_wall_counts_it(crew: Crew) -> None:
    alert_id = crew.alert_id()
    crew.clock().run(crew.now)
    base = f"/api/v1/alerts/{alert_id}"
    assert crew.post(f"{base}/accept", "county_a").status_code == 200
    sign_in_verified(crew, 3)
    check = crew.post(f"{base}/phone-checks", "county_a")
    assert check.status_code == 201, check.text
    tie = crew.post(f"/api/v1/staff/{crew.staff['county_a']}/ties", "county_a",
                    {"institution_id": crew.world.ids["institution"], "relation": "child"})
    assert tie.status_code == 201, tie.text
    detail = crew.detail(alert_id, "operator").json()
    assert (detail["state"], detail["assignee_staff_id"]) == ("open", None)
    step = detail["transitions"][-1]
    assert step["action"] == "return" and "回避" in step["note"] and step["from_state"] == "phoning"
    assert crew.client.get(f"/api/v1/phone-checks/{check.json()['id']}",
                           headers=auth(crew.world.operator)).json()["state"] == "abandoned"
    assert crew.detail(alert_id, "county_a").status_code == 404  # recused now: the alert does not exist for them
    counters = crew.client.get("/api/v1/overview", headers=auth(crew.world.operator)).json()["counters"]
    assert counters["alerts_returned"] == 1 and counters["alerts_by_state"]["open"] >= 1
    assert counters["alerts_active"] == sum(counters["alerts_by_state"].values())


def test_a_token_bound_only_to_regions_reads_but_does_not_work_alerts(crew: Crew) -> None:
    alert_id = crew.alert_id()
    crew.clock().run(crew.now)
    region_only = crew.client.post("/api/v1/tokens", headers=auth(crew.world.admin), json={
        "role": "inspector", "name": "区域值守", "region_codes": ["530102"]}).json()["token"]
    crew.tokens["region_only"] = region_only
    assert crew.detail(alert_id, "region_only").status_code == 200
    refused = crew.post(f"/api/v1/alerts/{alert_id}/accept", "region_only")
    assert refused.status_code == 403 and refused.json()["code"] == "STAFF_TOKEN_REQUIRED"


def test_could_not_verify_needs_a_reason_and_is_counted_per_inspector(crew: Crew) -> None:
    alert_id = crew.alert_id()
    crew.clock().run(crew.now)
    assert crew.post(f"/api/v1/alerts/{alert_id}/accept", "county_a").status_code == 200
    closed = crew.post(f"/api/v1/alerts/{alert_id}/close", "county_a",
                       {"outcome": "could_not_verify", "note": "机构大门紧锁，电话无人接听，负责人联系不上"})
    assert closed.status_code == 200, closed.text
    rows = crew.client.get("/api/v1/reports/inspectors?days=7", headers=auth(crew.world.operator)).json()
    assert rows == [{"staff_id": crew.staff["county_a"], "inspector": "抽查员0", "closed": 1, "violation_confirmed": 0,
                     "false_alarm": 0, "could_not_verify": 1, "could_not_verify_share": 1.0}]
    assert crew.client.get("/api/v1/reports/inspectors", headers=auth(crew.world.site)).status_code == 403


def test_arrival_carries_the_inspectors_fix_judged_against_the_fence(crew: Crew) -> None:
    """Inside the fence, outside it (marked, not refused: they may be at the door), in GCJ-02, or with no fix."""
    alert_id = crew.alert_id()
    crew.clock().run(crew.now)
    base = f"/api/v1/alerts/{alert_id}"
    assert crew.post(f"{base}/accept", "county_a").status_code == 200
    at = crew.now.isoformat()
    inside = crew.post(f"{base}/arrive", "county_a", {"fix": {"latitude": VENUE[0], "longitude": VENUE[1],
                                                              "accuracy_m": 12, "captured_at": at}})
    assert inside.status_code == 200, inside.text
    assert inside.json()["arrival"] == "inside"
    fix = inside.json()["transitions"][-1]["fix"]
    assert (fix["fence_result"], fix["accuracy_m"], fix["datum"]) == ("inside", 12, "WGS-84")
    assert crew.post(f"{base}/phone", "county_a").status_code == 200
    far = far_fix(3000)
    outside = crew.post(f"{base}/arrive", "county_a", {"fix": {**far, "accuracy_m": 20, "captured_at": at}})
    assert outside.status_code == 200 and outside.json()["state"] == "on_site"  # recorded, not refused
    assert outside.json()["arrival"] == "outside"
    assert outside.json()["transitions"][-1]["fix"]["fence_signed_distance_m"] > 2500
    crew.post(f"{base}/phone", "county_a")
    lat, lon = convert_from_wgs84(VENUE[0], VENUE[1], Datum.GCJ02)  # as a Chinese map app reports it
    gcj = crew.post(f"{base}/arrive", "county_a", {"fix": {"latitude": lat, "longitude": lon, "accuracy_m": 10,
                                                           "datum": "GCJ-02", "captured_at": at}})
    assert gcj.json()["arrival"] == "inside"  # converted before any comparison
    crew.post(f"{base}/phone", "county_a")
    bare = crew.post(f"{base}/arrive", "county_a")
    assert bare.status_code == 200 and bare.json()["arrival"] == "unproven"
    bad = crew.post(f"{base}/arrive", "county_a", {"fix": {"latitude": 0, "longitude": 0, "accuracy_m": 5,
                                                           "captured_at": at}})
    assert bad.status_code == 422
    abroad = crew.post(f"{base}/arrive", "county_a", {"fix": {"latitude": 40.71, "longitude": -74.0, "accuracy_m": 5,
                                                              "captured_at": at}})
    assert abroad.status_code == 422 and "不在中国境内" in abroad.json()["message"], abroad.text


def test_a_task_says_who_and_where_with_the_photos_to_recognise_them_by(crew: Crew) -> None:
    w = crew.world
    with crew.client.app.state.db.session() as s:
        s.get(Venue, w.ids["venue"]).address = "昆明市五华区职教路 12 号"
        s.get(Institution, w.ids["institution"]).contact_phone = "0871-65551234"
    alert_id = crew.alert_id()
    crew.clock().run(crew.now)
    detail = crew.detail(alert_id, "county_a").json()
    assert detail["venue"]["address"] == "昆明市五华区职教路 12 号" and detail["venue"]["name"] == "教学楼0"
    assert detail["institution_phone"] == "0871-65551234"
    [subject] = detail["subjects"]
    assert (subject["rule"], subject["trainee_id"], subject["trainee_name"]) == ("FACE_MISMATCH", w.obama_id, "欧建国")
    assert "*" in subject["id_number_masked"]
    # Both photos are served to the inspector paged, behind the same authorisation as every evidence photo.
    for sha in (subject["photo_sha256"], subject["enrolled_sha256"]):
        assert sha and crew.client.get(f"/api/v1/evidence/{sha}", headers=auth(crew.tokens["county_a"])).status_code \
            == 200
        assert crew.client.get(f"/api/v1/evidence/{sha}", headers=auth(crew.tokens["elsewhere"])).status_code == 404


def test_a_false_alarm_counts_the_sign_in_and_a_reopening_takes_it_back(crew: Crew) -> None:
    """Closed as a false alarm, the sign-in it was about counts (the site is told a person cleared it; the machine's
    verdict is kept); reopened, its anomaly waits again on the alert and the wall, and the sign-in fails again."""
    w = crew.world
    alert_id = crew.alert_id()
    db = crew.client.app.state.db
    with db.session() as s:
        anomaly = s.scalars(select(Anomaly).where(Anomaly.alert_id == alert_id)).one()
        checkin_id, anomaly_id = anomaly.subject_id, anomaly.id
    url = f"/api/v1/check-ins/{checkin_id}"
    assert crew.client.get(url, headers=auth(w.site)).json()["status"] == "failed"
    crew.clock().run(crew.now)
    base = f"/api/v1/alerts/{alert_id}"
    assert crew.post(f"{base}/accept", "county_a").status_code == 200
    closed = crew.post(f"{base}/close", "county_a", {"outcome": "false_alarm", "note": "到场核实：本人在班，照片逆光"})
    assert closed.status_code == 200, closed.text
    seen = crew.client.get(url, headers=auth(w.site)).json()
    assert seen["status"] == "passed" and "核实为误报" in seen["message"] and "人脸与登记照片不符" in seen["message"]
    assert [r["code"] for r in seen["reasons"]] == ["FACE_MISMATCH"]  # what the machine found, still shown
    reopened = crew.post(f"{base}/reopen", "operator", {"note": "复核发现照片确非本人，需再次核查"})
    assert reopened.status_code == 200 and reopened.json()["state"] == "open", reopened.text
    assert crew.client.get(url, headers=auth(w.site)).json()["status"] == "failed"
    with db.session() as s:
        anomaly = s.get(Anomaly, anomaly_id)
        assert anomaly is not None and (anomaly.state, anomaly.resolved_note) == ("open", None)
    detail = crew.detail(alert_id).json()
    assert detail["open_count"] == 1
    overview = crew.client.get("/api/v1/overview", headers=auth(w.operator)).json()
    assert overview["counters"]["anomalies_open"] == 1  # the wall counts it as waiting again
