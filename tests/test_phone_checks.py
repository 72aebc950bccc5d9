"""Phone spot checks (clause 十四): at least 5 trainees drawn at random from those signed in today, reproducible from
the recorded seed, each call recorded, not done (and the alert not closed as checked) with fewer than 5 reached."""

from __future__ import annotations

import hashlib
from datetime import date

from hypothesis import given
from hypothesis import strategies as st

from models.tables import CheckIn, Evidence
from monitor.decisions.phone_check import Call, draw_trainees, judge_phone_check
from monitor.demo.world import make_id_number
from tests.crew import NOW, Crew
from tests.helpers import VENUE, auth
from tests.test_inspections import file_form


def sign_in_verified(crew: Crew, how_many: int) -> list[int]:
    """`how_many` more trainees on the class's roster, each with a verified sign-in today (rows written as the
    worker would leave them: the face pipeline is tested elsewhere)."""
    w = crew.world
    ids = []
    for k in range(how_many):
        r = crew.client.post("/api/v1/trainees", headers=auth(w.admin), json={
            "id_number": make_id_number("530102", date(1990, 1, 1 + k), 300 + k), "name": f"学员{k}",
            "phone": f"1370000{k:04d}"})
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
    r = crew.client.post(f"/api/v1/classes/{w.class_id}/roster", headers=auth(w.admin), json={"trainee_ids": ids})
    assert r.status_code in (200, 201), r.text
    with crew.client.app.state.db.session() as s:
        for trainee_id in ids + [w.obama_id]:
            sha = hashlib.sha256(f"sign-in {trainee_id}".encode()).hexdigest()
            s.add(Evidence(sha256=sha, size_bytes=1, media_type="image/jpeg", width=1, height=1, created_at=NOW))
            s.flush()
            s.add(CheckIn(trainee_id=trainee_id, class_id=w.class_id, institution_id=w.ids["institution"],
                          kind="sign_in", captured_at=NOW, received_at=NOW, lat=VENUE[0], lon=VENUE[1],
                          accuracy_m=10, device_id=f"d{trainee_id}", photo_sha256=sha, status="passed"))
    return ids


def accepted_alert(crew: Crew) -> int:
    alert_id = crew.alert_id()
    crew.clock().run(NOW)
    assert crew.post(f"/api/v1/alerts/{alert_id}/accept", "county_a").status_code == 200
    return alert_id


def test_five_reached_make_a_phone_check_and_let_the_alert_close(crew: Crew) -> None:
    signed = sign_in_verified(crew, 6)
    alert_id = accepted_alert(crew)
    started = crew.post(f"/api/v1/alerts/{alert_id}/phone-checks", "county_a")
    assert started.status_code == 201, started.text
    check = started.json()
    drawn = [t["trainee_id"] for t in check["trainees"]]
    assert len(drawn) == 7 and set(drawn) == set(signed) | {crew.world.obama_id}  # 8 asked, 7 signed in
    assert all(t["phone"] for t in check["trainees"] if t["trainee_id"] in signed)  # tap-to-call numbers
    assert "*" in check["trainees"][0]["id_number_masked"]
    assert drawn == draw_trainees(drawn, 8, check["seed"])  # the recorded seed gives the same draw
    assert crew.detail(alert_id).json()["state"] == "phoning"
    assert crew.detail(alert_id).json()["phone_check_ids"] == [check["id"]]
    again = crew.post(f"/api/v1/alerts/{alert_id}/phone-checks", "county_a")  # no redraw until the list suits
    assert again.status_code == 200 and again.json()["id"] == check["id"] and again.json()["seed"] == check["seed"]
    # The operator sees the check, not the numbers.
    seen = crew.client.get(f"/api/v1/phone-checks/{check['id']}", headers=auth(crew.world.operator)).json()
    assert all(t["phone"] is None for t in seen["trainees"])
    base = f"/api/v1/phone-checks/{check['id']}"
    outsider = crew.post(f"{base}/calls", "county_a", {"trainee_id": crew.world.stranger_id, "reached": True,
                                                       "duration_s": 30})
    assert outsider.status_code == 422 and outsider.json()["code"] == "NOT_DRAWN"
    assert crew.post(f"{base}/calls", "prefecture", {"trainee_id": drawn[0], "reached": True,
                                                     "duration_s": 30}).status_code == 403
    crew.post(f"{base}/calls", "county_a", {"trainee_id": drawn[0], "reached": False, "duration_s": 0})
    for trainee_id in drawn[1:5]:
        r = crew.post(f"{base}/calls", "county_a", {"trainee_id": trainee_id, "reached": True, "present": True,
                                                    "answers": "在教室上课，今天讲刀工", "duration_s": 95})
        assert r.status_code == 201, r.text
    early = crew.post(f"{base}/complete", "county_a")
    assert early.status_code == 409 and early.json()["code"] == "TOO_FEW_REACHED"
    assert "还需接通 1 人" in early.json()["message"]
    closing = crew.post(f"/api/v1/alerts/{alert_id}/close", "county_a",
                        {"outcome": "false_alarm", "note": "电话核实在班"})
    assert closing.status_code == 409 and closing.json()["code"] == "PHONE_CHECK_NOT_DONE"
    crew.post(f"{base}/calls", "county_a", {"trainee_id": drawn[5], "reached": True, "present": False,
                                            "answers": "今天请假没去", "duration_s": 40})
    done = crew.post(f"{base}/complete", "county_a")
    assert done.status_code == 200, done.text
    assert (done.json()["state"], done.json()["reached"], done.json()["confirmed_present"]) == ("done", 5, 4)
    assert crew.post(f"{base}/calls", "county_a", {"trainee_id": drawn[6], "reached": True,
                                                   "duration_s": 9}).status_code == 409
    # A form of the same alert counting fewer present than the phone check confirmed: flagged on both.
    form = file_form(crew, alert_id=alert_id, headcount_present=2)
    assert form.status_code == 201, form.text
    assert form.json()["contradictions"] == [f"电话抽查 {check['id']} 中有 4 名学员确认在班，而检查表 "
                                             f"{form.json()['id']} 记录实到仅 2 人，两者矛盾，须核实"]
    assert crew.detail(alert_id).json()["contradictions"] == form.json()["contradictions"]
    closed = crew.post(f"/api/v1/alerts/{alert_id}/close", "county_a",
                       {"outcome": "violation_confirmed", "note": "1 名学员电话确认未到班"})
    assert closed.status_code == 200 and closed.json()["state"] == "closed"


def test_a_class_with_fewer_than_five_signed_in_cannot_finish_a_phone_check(crew: Crew) -> None:
    sign_in_verified(crew, 2)
    alert_id = accepted_alert(crew)
    check = crew.post(f"/api/v1/alerts/{alert_id}/phone-checks", "county_a").json()
    assert len(check["trainees"]) == 3
    for t in check["trainees"]:
        crew.post(f"/api/v1/phone-checks/{check['id']}/calls", "county_a",
                  {"trainee_id": t["trainee_id"], "reached": True, "present": True, "duration_s": 60})
    refused = crew.post(f"/api/v1/phone-checks/{check['id']}/complete", "county_a")
    assert refused.status_code == 409 and "不足 5 人" in refused.json()["message"]
    # It can still be closed, honestly, as not verifiable.
    closed = crew.post(f"/api/v1/alerts/{alert_id}/close", "county_a",
                       {"outcome": "could_not_verify", "note": "签到人数不足，改日现场核查"})
    assert closed.status_code == 200 and closed.json()["outcome"] == "could_not_verify"
    ended = crew.client.get(f"/api/v1/phone-checks/{check['id']}", headers=auth(crew.world.operator)).json()
    assert ended["state"] == "abandoned"  # nothing is left open once its alert is closed


def test_nobody_signed_in_means_no_phone_check(crew: Crew) -> None:
    alert_id = accepted_alert(crew)
    r = crew.post(f"/api/v1/alerts/{alert_id}/phone-checks", "county_a")
    assert r.status_code == 409 and r.json()["code"] == "NOBODY_SIGNED_IN"


@given(st.sets(st.integers(1, 10_000), max_size=80), st.integers(5, 12), st.text(min_size=1, max_size=32))
def test_a_draw_is_a_reproducible_random_subset(signed_in: set[int], how_many: int, seed: str) -> None:
    drawn = draw_trainees(sorted(signed_in), how_many, seed)
    assert drawn == draw_trainees(list(reversed(sorted(signed_in))), how_many, seed)
    assert len(drawn) == min(how_many, len(signed_in)) and len(set(drawn)) == len(drawn)
    assert set(drawn) <= signed_in


def test_only_the_latest_call_to_each_drawn_trainee_counts() -> None:
    drawn = [1, 2, 3, 4, 5, 6]
    calls = [Call(1, False, None), Call(1, True, True), Call(2, True, True), Call(3, True, False),
             Call(4, True, True), Call(5, True, None), Call(9, True, True)]
    verdict = judge_phone_check(drawn, calls, 5)
    assert (verdict.done, verdict.reached, verdict.confirmed_present) == (True, 5, 3)
    assert not judge_phone_check(drawn, calls[:-2], 5).done
    assert judge_phone_check(drawn, calls[:-2] + [Call(5, False, None)], 5).reached == 4
