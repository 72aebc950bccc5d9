"""An institution disputing a finding: it reads what was found against its classes (the figures, its own photos,
the filed forms' digests, the blacklist decisions) and nothing of another institution's; it objects (异议) to an
alert closed against it; a second person of the center decides (never the closer nor anyone who acted on it); an
upheld objection reopens the alert; two decisions at once make one; all of it in the audit chain."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from models.clock import SHANGHAI
from models.domain import AnomalyCode
from models.tables import AuditEntry, FaceTemplate, Objection, Trainee
from monitor.decisions.alert_lifecycle import AlertState, Outcome, Refusal
from monitor.decisions.objections import (
    ObjectionState,
    Person,
    decide_deadline,
    judge_decider,
    judge_objectable,
    judge_reason,
    site_figures,
    site_message,
    timer_text,
)
from tests.crew import Crew
from tests.helpers import World, auth, confirmed_violation, face, issue_token_via_api
from tests.test_inspections import file_form

REASON = "该学员当天全程在班，有课堂签到表和教室监控录像为证，请复核"
NOTE = "复核签到照片和课堂录像，学员确系本人且全程在班，原结论依据不足"


# -- the pure decisions -------------------------------------------------------------------------------------------
def code(refusal: Refusal | None) -> str | None:
    return refusal.code if refusal is not None else None


def test_only_a_finding_against_the_institution_may_be_objected_to_once_per_closing() -> None:
    closed, confirmed, unsure = AlertState.CLOSED, Outcome.VIOLATION_CONFIRMED, Outcome.COULD_NOT_VERIFY
    assert judge_objectable(closed, confirmed, []) is None
    assert judge_objectable(closed, unsure, []) is None
    assert code(judge_objectable(AlertState.DISPATCHED, None, [])) == "ALERT_NOT_CLOSED"
    for state in (AlertState.DISPATCHED, AlertState.ACCEPTED, AlertState.ON_SITE, AlertState.PHONING):
        refusal = judge_objectable(state, None, [])  # never which step the inspection is at (明察暗访)
        assert refusal is not None and refusal.message == judge_objectable(AlertState.OPEN, None, []).message
    assert code(judge_objectable(AlertState.RESOLVED, None, [])) == "ALERT_NOT_CLOSED"
    refusal = judge_objectable(closed, Outcome.FALSE_ALARM, [])
    assert refusal is not None and refusal.code == "OUTCOME_NOT_OBJECTABLE" and "误报" in refusal.message
    assert code(judge_objectable(closed, confirmed, [ObjectionState.SUBMITTED])) == "OBJECTION_OPEN"
    assert code(judge_objectable(closed, confirmed, [ObjectionState.REJECTED])) == "OBJECTION_DECIDED"


def test_a_reason_of_substance_counts_letters_and_digits_only() -> None:
    assert judge_reason(REASON) is None
    assert judge_reason("不服！" * 10) is not None  # 20 characters, but only 2 distinct letters among 30
    assert judge_reason("结论有误，请复核。。。。。。。。。。。。。。。。。。。。。。") is not None  # punctuation
    assert judge_reason("学员当天在场有签到表和录像为证请复核谢谢") is None  # exactly 20


def test_the_decider_is_neither_the_closer_nor_anyone_who_acted() -> None:
    closer, dispatcher = Person("值班员乙"), Person("抽查员0", 7)
    assert judge_decider(Person("值班员甲"), closer, [dispatcher, closer]) is None
    assert code(judge_decider(Person("值班员乙"), closer, [closer])) == "DECIDER_CLOSED_ALERT"
    assert code(judge_decider(Person("抽查员0"), closer, [dispatcher])) == "DECIDER_ACTED_ON_ALERT"
    # The same inspector behind another token name is still the same person.
    assert code(judge_decider(Person("另一令牌", 7), closer, [dispatcher])) == "DECIDER_ACTED_ON_ALERT"
    assert judge_decider(Person("值班员甲"), None, []) is None
    # Another token named as the same person reads the same (outside tester: a leading space got through).
    for alias in (" 值班员乙", "值班员 乙", "值班员乙（夜班）", "值班员乙(夜班)", "值班员乙\u3000",
                  # invisible characters, other brackets, an addition after a dash (outside tester: all got through)
                  "值班员乙\u200b", "值\u200b班员乙", "值班员乙\u2060", "值班员乙\ufeff", "值班员乙\u00ad",
                  "值班员乙【夜班】", "值班员乙[夜班]", "值班员乙〔夜班〕", "值班员乙-夜班", "值班员乙—夜班",
                  "值班员乙：二号台", "值班员乙（夜班", "值班员乙。"):
        assert code(judge_decider(Person(alias), closer, [closer])) == "DECIDER_CLOSED_ALERT", alias
    for other in ("值班员乙丙", "值班员甲", "阿卜杜·艾力"):  # other people stay other people
        assert judge_decider(Person(other), Person("阿卜杜·热合曼") if "阿" in other else closer, []) is None, other


def test_the_deadline_counts_calendar_days_in_beijing_and_the_timer_says_how_long() -> None:
    # 23:30 on 1 March in Beijing (15:30 UTC): ten days after that day ends at midnight beginning 12 March.
    submitted = datetime(2026, 3, 1, 15, 30, tzinfo=UTC)
    due = decide_deadline(submitted, 10)
    assert due == datetime(2026, 3, 12, 0, 0, tzinfo=SHANGHAI)
    assert decide_deadline(datetime(2026, 3, 1, 16, 30, tzinfo=UTC), 10) == datetime(2026, 3, 13, tzinfo=SHANGHAI)
    assert timer_text(ObjectionState.SUBMITTED, due, due - timedelta(days=2)) == (False, "剩余 2 天")
    assert timer_text(ObjectionState.SUBMITTED, due, due + timedelta(hours=3)) == (True, "已超期 3 小时")
    assert timer_text(ObjectionState.REJECTED, due, due + timedelta(days=3)) == (False, "已决定")


def test_an_institution_reads_the_figures_but_no_other_record_or_person() -> None:
    figures = site_figures({"face_distance": 0.71, "template_index": 0, "nearest_other_trainee_id": 9,
                            "other_class_ids": [4], "device_checkin_ids": [1, 2], "distinct_trainees": 3,
                            "fence_result": "outside", "employer": "某公司", "photo_sha256": "ab" * 32,
                            "insured": [{"employer": "某公司"}]})
    assert figures == {"face_distance": 0.71, "template_index": 0, "distinct_trainees": 3, "fence_result": "outside"}
    # an unkeyed hash of another's record (its class ids can be guessed back), the gallery's size, another
    # record's state and outcome: never (outside tester)
    assert site_figures({"rule_key": "XC:REPEAT_SUBSIDY:1:t5:896eb73fdb4de4cff6f2", "gallery_size": 120_000,
                         "state": "accepted", "outcome": "review", "face_distance": 0.3}) == {"face_distance": 0.3}
    assert "班次 12" not in site_message(AnomalyCode.DOUBLE_ENROLMENT.value, "该学员同时在班次 12 的花名册中")
    assert site_message(AnomalyCode.FACE_MISMATCH.value, "人脸与登记照片不符") == "人脸与登记照片不符"
    for rule in (AnomalyCode.EMPLOYED_ELSEWHERE, AnomalyCode.CATEGORY_CONTRADICTED):  # another register's data
        assert "某某科技有限公司" not in site_message(rule.value, "培训期间在某某科技有限公司（五华区）参保")


# -- through the API -----------------------------------------------------------------------------------------------
def closed_by_inspector(crew: Crew, outcome: str = "violation_confirmed") -> tuple[int, int]:
    """An alert of institution 0's class paged by the system, accepted by the county inspector, inspected on site
    (a form found a problem) and closed by that inspector; returns (alert id, form id)."""
    alert_id = crew.alert_id()
    crew.clock().run(crew.now)
    assert crew.post(f"/api/v1/alerts/{alert_id}/accept", "county_a").status_code == 200
    form = file_form(crew, alert_id=alert_id)
    assert form.status_code == 201, form.text
    closed = crew.post(f"/api/v1/alerts/{alert_id}/close", "county_a",
                       {"outcome": outcome, "note": "现场登记 3 人实到 1 人，签到照片非本人"})
    assert closed.status_code == 200, closed.text
    return alert_id, int(form.json()["id"])


def findings(crew: Crew, token: str) -> Any:
    r = crew.client.get("/api/v1/site/findings", headers=auth(token))
    assert r.status_code == 200, r.text
    return r


def test_the_site_reads_its_findings_with_their_proof_and_nothing_of_another_institution(crew: Crew) -> None:
    w, client = crew.world, crew.client
    # Another institution's finding (Dali): a stranger's face for its trainee.
    foreign = w.checkin(face("people/kit_harington/john2.jpeg"), token=w.other_site, trainee_id=w.stranger_id,
                        class_id=w.other_class_id)
    assert foreign.json()["status"] == "failed", foreign.text
    r = client.get("/api/v1/alerts", headers=auth(w.operator)).json()
    foreign_alert = next(a["id"] for a in r if a["class_id"] == w.other_class_id)
    # While the alert is worked, the site learns nothing of the dispatch (明察暗访): only that it is in progress.
    own = w.checkin(face("people/kit_harington/john1.jpeg"))
    assert own.json()["status"] == "failed"
    crew.clock().run(crew.now)
    early = findings(crew, w.site).json()
    assert [a["state"] for a in early["alerts"]] == ["in_progress"]
    assert "已派发" not in findings(crew, w.site).text and "dispatched" not in findings(crew, w.site).text
    own_alert = early["alerts"][0]["alert_id"]
    assert crew.post(f"/api/v1/alerts/{own_alert}/accept", "county_a").status_code == 200
    form = file_form(crew, alert_id=own_alert)
    assert form.status_code == 201, form.text
    closing_note = "现场登记 3 人实到 1 人，签到照片非本人"
    assert crew.post(f"/api/v1/alerts/{own_alert}/close", "county_a",
                     {"outcome": "violation_confirmed", "note": closing_note}).status_code == 200

    answer = findings(crew, w.site)
    body = answer.json()
    assert body["institution"]["name"] == "测试培训学校0" and body["total"] == 1
    (alert,) = body["alerts"]
    assert (alert["alert_id"], alert["rule"], alert["rule_name"]) == (own_alert, "FACE_MISMATCH", "人脸不符")
    assert (alert["state"], alert["outcome"], alert["outcome_name"]) == ("closed", "violation_confirmed", "确认违规")
    assert alert["closing_note"] == closing_note and alert["objectable"] is True
    assert alert["closed_at"].endswith("+08:00") and alert["last_at"].endswith("+08:00")
    (anomaly,) = alert["anomalies"]
    with client.app.state.db.session() as s:
        obama = s.get(Trainee, w.obama_id)
        assert obama is not None
        id_number = obama.id_number
        enrolled = set(s.scalars(select(FaceTemplate.photo_sha256)))
    assert anomaly["trainee_name"] == "欧建国" and anomaly["class_name"] == "测试班0"
    assert anomaly["id_number_masked"] != id_number and "*" in anomaly["id_number_masked"]
    assert anomaly["id_number_masked"][:3] == id_number[:3] and id_number not in answer.text
    assert anomaly["measured"]["face_distance"] > anomaly["thresholds"]["face_mismatch_threshold"]
    assert anomaly["model_version"] and anomaly["at"].endswith("+08:00")
    assert anomaly["photo_sha256"] == own.json()["photo_sha256"]
    assert client.get(anomaly["photo_url"], headers=auth(w.site)).status_code == 200  # its own upload
    assert not [sha for sha in enrolled if sha in answer.text]  # never an enrolment photo
    (filed,) = alert["inspections"]
    assert set(filed) == {"id", "kind", "kind_name", "inspected_at", "findings", "record_sha256", "verify_url"}
    assert filed["id"] == form.json()["id"] and filed["findings"] == "在场学员少于签到人数，疑似代签"
    assert filed["record_sha256"] == form.json()["record_sha256"]
    assert client.get(filed["verify_url"]).status_code == 200  # the public check of the form, by its digest
    # No inspector's phone or name, nothing of Dali's institution.
    for secret in ("1390000000", "抽查员", "测试培训学校1", "测试班1", "罗晓燕", foreign.json()["photo_sha256"]):
        assert secret not in answer.text, secret
    # Dali's site sees only its own, and nothing of institution 0's; another's ids are missing to it.
    theirs = findings(crew, w.other_site)
    assert foreign_alert in [a["alert_id"] for a in theirs.json()["alerts"]]
    assert {a["class_id"] for a in theirs.json()["alerts"]} == {w.other_class_id}
    for secret in ("欧建国", "测试班0", "测试培训学校0", own.json()["photo_sha256"]):
        assert secret not in theirs.text, secret
    refused = client.post("/api/v1/objections", headers=auth(w.other_site),
                          json={"alert_id": own_alert, "reason": REASON})
    assert refused.status_code == 404 and refused.json()["code"] == "UNKNOWN_ALERT"
    mine = client.post("/api/v1/objections", headers=auth(w.site), json={"alert_id": own_alert, "reason": REASON})
    assert mine.status_code == 201, mine.text
    assert client.get(f"/api/v1/objections/{mine.json()['id']}", headers=auth(w.other_site)).status_code == 404
    assert client.get("/api/v1/objections", headers=auth(w.other_site)).json() == []
    # Inspectors neither read nor decide objections; sites never read the center's alerts.
    assert client.get("/api/v1/objections", headers=auth(crew.tokens["county_a"])).status_code == 403
    assert client.get("/api/v1/site/findings", headers=auth(w.operator)).status_code == 403
    assert client.get(f"/api/v1/alerts/{own_alert}", headers=auth(w.site)).status_code == 403


def test_blacklist_decisions_about_the_institution_reach_it_with_their_evidence(crew: Crew) -> None:
    w, client = crew.world, crew.client
    alert_id, form_id = closed_by_inspector(crew)
    r = client.put(f"/api/v1/institutions/{w.ids['institution']}/blacklist", headers=auth(w.admin),
                   json={"blacklisted": True, "reason": "现场核查确认代签", "alert_ids": [alert_id],
                         "inspection_ids": [form_id]})
    assert r.status_code == 200, r.text
    body = findings(crew, w.site).json()
    assert body["institution"]["blacklisted"] is True
    (decision,) = body["blacklist"]
    assert (decision["subject_kind"], decision["subject_name"], decision["reason"]) == (
        "institution", "测试培训学校0", "现场核查确认代签")
    assert decision["alert_ids"] == [alert_id] and decision["inspection_ids"] == [form_id]
    assert decision["decided_at"].endswith("+08:00")
    assert findings(crew, w.other_site).json()["blacklist"] == []


def audit_of(client: TestClient, kind: str, subject: object) -> list[tuple[str, str, dict[str, Any]]]:
    with client.app.state.db.session() as s:
        return [(e.action, e.actor, e.detail) for e in s.scalars(select(AuditEntry).where(
            AuditEntry.subject_kind == kind, AuditEntry.subject_id == str(subject)).order_by(AuditEntry.id))]


def test_an_objection_submitted_refused_twice_decided_by_a_second_person_and_upheld_reopens(crew: Crew) -> None:
    w, client = crew.world, crew.client
    site = auth(w.site)
    alert_id = crew.alert_id()
    early = client.post("/api/v1/objections", headers=site, json={"alert_id": alert_id, "reason": REASON})
    assert early.status_code == 409 and early.json()["code"] == "ALERT_NOT_CLOSED", early.text
    # The operator sends it by hand (so has acted on it); the county inspector accepts and closes it.
    assert crew.post(f"/api/v1/alerts/{alert_id}/dispatch", "operator",
                     {"staff_id": crew.staff["county_a"]}).status_code == 200
    assert crew.post(f"/api/v1/alerts/{alert_id}/accept", "county_a").status_code == 200
    assert crew.post(f"/api/v1/alerts/{alert_id}/close", "county_a", {
        "outcome": "could_not_verify", "note": "多次致电机构负责人无人接听，现场大门紧锁"}).status_code == 200

    vague = client.post("/api/v1/objections", headers=site, json={"alert_id": alert_id, "reason": "结论不对，不服！"})
    assert vague.status_code == 422 and vague.json()["code"] == "REASON_REQUIRED"
    key = {**site, "Idempotency-Key": "objection-1"}
    first = client.post("/api/v1/objections", headers=key, json={"alert_id": alert_id, "reason": REASON})
    assert first.status_code == 201, first.text
    objection = first.json()
    assert (objection["state"], objection["state_name"], objection["alert_outcome"]) == (
        "submitted", "待决定", "could_not_verify")
    assert objection["submitted_by"] == "站点0" and objection["overdue"] is False
    assert objection["timer"].startswith("剩余") and objection["decide_by"].endswith("T00:00:00+08:00")
    due = datetime.fromisoformat(objection["decide_by"])
    assert timedelta(days=10) < due - datetime.now(UTC) <= timedelta(days=11)
    again = client.post("/api/v1/objections", headers=key, json={"alert_id": alert_id, "reason": REASON})
    assert again.status_code == 201 and again.json()["id"] == objection["id"]  # the first answer, not a second
    assert again.headers.get("idempotent-replayed") == "true"
    twice = client.post("/api/v1/objections", headers=site, json={"alert_id": alert_id, "reason": REASON + "。"})
    assert twice.status_code == 409 and twice.json()["code"] == "OBJECTION_OPEN"
    with client.app.state.db.session() as s:
        assert s.scalar(select(func.count()).select_from(Objection)) == 1
    url = f"/api/v1/objections/{objection['id']}/decide"
    # The operator's list shows it; the inspector who closed it cannot decide (not their role), and the operator who
    # sent it may not either.
    listed = client.get("/api/v1/objections?state=submitted", headers=auth(w.operator)).json()
    assert [o["id"] for o in listed] == [objection["id"]]
    assert crew.post(url, "county_a", {"decision": "upheld", "note": NOTE}).status_code == 403
    acted = crew.post(url, "operator", {"decision": "upheld", "note": NOTE})
    assert acted.status_code == 403 and acted.json()["code"] == "DECIDER_ACTED_ON_ALERT", acted.text
    assert "另一名" in acted.json()["message"]
    short = crew.post(url, "admin", {"decision": "upheld", "note": "同意"})
    assert short.status_code == 422 and short.json()["code"] == "NOTE_REQUIRED"
    upheld = crew.post(url, "admin", {"decision": "upheld", "note": NOTE})
    assert upheld.status_code == 200, upheld.text
    assert (upheld.json()["state"], upheld.json()["reopened"], upheld.json()["decided_by"]) == (
        "upheld", True, "测试管理员")
    twice = crew.post(url, "admin", {"decision": "rejected", "note": NOTE}).json()
    assert twice["code"] == "OBJECTION_DECIDED" and "（北京时间）作出决定（异议成立）" in twice["message"], twice
    assert not re.search(r"\d{2}:\d{2}:\d{2}", twice["message"]), twice  # a time as read, not ISO with microseconds

    detail = crew.detail(alert_id).json()
    assert (detail["state"], detail["outcome"]) == ("open", None)  # back at the center, to be re-examined
    step = detail["transitions"][-1]
    assert (step["action"], step["from_state"], step["to_state"], step["actor"]) == (
        "reopen", "closed", "open", "测试管理员")
    assert f"编号 {objection['id']}" in step["note"] and NOTE in step["note"]
    # The site sees its objection upheld (the center, not a person, decided) and the alert in progress again.
    seen = findings(crew, w.site).json()["alerts"][0]
    assert seen["state"] == "in_progress" and seen["objections"][0]["state"] == "upheld"
    assert seen["objections"][0]["decided_by"] == "监控中心"
    # The chain: the objection's insert by the site and its decision by the admin, and the reopening.
    chain = audit_of(client, "objections", objection["id"])
    assert [(a, who) for a, who, _ in chain] == [("objections.insert", "站点0"), ("objections.update", "测试管理员")]
    assert chain[1][2]["state"] == "upheld" and chain[1][2]["decision_note"] == NOTE
    reopened = audit_of(client, "alert_transitions", step["id"])
    assert reopened and reopened[0][0] == "alert_transitions.insert" and reopened[0][1] == "测试管理员"


def test_the_closer_may_not_decide_and_a_rejected_finding_stands(crew: Crew) -> None:
    w, client = crew.world, crew.client
    closer = issue_token_via_api(client, w.admin, "operator", "值班员乙")
    alert_id = crew.alert_id()
    crew.clock().run(crew.now)
    assert crew.post(f"/api/v1/alerts/{alert_id}/accept", "county_a").status_code == 200
    closed = client.post(f"/api/v1/alerts/{alert_id}/close", headers=auth(closer), json={
        "outcome": "violation_confirmed", "note": "比对签到照片与登记照片，3 名学员系同一人代签，证据见告警照片"})
    assert closed.status_code == 200, closed.text
    objection = client.post("/api/v1/objections", headers=auth(w.site), json={"alert_id": alert_id, "reason": REASON})
    assert objection.status_code == 201, objection.text
    url = f"/api/v1/objections/{objection.json()['id']}/decide"
    own = client.post(url, headers=auth(closer), json={"decision": "upheld", "note": NOTE})
    assert own.status_code == 403 and own.json()["code"] == "DECIDER_CLOSED_ALERT", own.text
    rejected = client.post(url, headers=auth(w.operator), json={"decision": "rejected", "note": NOTE})
    assert rejected.status_code == 200 and rejected.json()["state"] == "rejected", rejected.text
    assert rejected.json()["reopened"] is False
    detail = crew.detail(alert_id).json()
    assert (detail["state"], detail["outcome"]) == ("closed", "violation_confirmed")
    assert [t["action"] for t in detail["transitions"]][-1] == "close"
    again = client.post("/api/v1/objections", headers=auth(w.site), json={"alert_id": alert_id, "reason": REASON})
    assert again.status_code == 409 and again.json()["code"] == "OBJECTION_DECIDED"


def test_a_false_alarm_needs_no_objection_and_an_undecided_one_turns_overdue(crew: Crew) -> None:
    w, client = crew.world, crew.client
    alert_id = crew.alert_id()
    dismissed = crew.post(f"/api/v1/alerts/{alert_id}/dismiss", "operator", {"note": "系统误报，照片光线问题"})
    assert dismissed.status_code == 200
    refused = client.post("/api/v1/objections", headers=auth(w.site), json={"alert_id": alert_id, "reason": REASON})
    assert refused.status_code == 409 and refused.json()["code"] == "OUTCOME_NOT_OBJECTABLE"
    assert "误报" in refused.json()["message"]
    confirmed = confirmed_violation(w)
    made = client.post("/api/v1/objections", headers=auth(w.site), json={"alert_id": confirmed, "reason": REASON})
    assert made.status_code == 201, made.text
    with client.app.state.db.session() as s:
        row = s.get(Objection, made.json()["id"])
        assert row is not None
        row.decide_by = datetime.now(UTC) - timedelta(hours=3)
    late = client.get(f"/api/v1/objections/{row.id}", headers=auth(w.operator)).json()
    assert late["overdue"] is True and late["timer"].startswith("已超期"), late
    assert [o["id"] for o in client.get("/api/v1/objections?overdue=true", headers=auth(w.operator)).json()] == [
        row.id]
    assert client.get("/api/v1/objections?overdue=false", headers=auth(w.operator)).json() == []


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_two_decisions_at_once_make_exactly_one(client_factory: Callable[..., TestClient], backend: str,
                                                request: pytest.FixtureRequest) -> None:
    """Two operators decide one objection at the same moment, one upholding and one rejecting: one decides, the other
    is told it is decided; the alert is reopened at most once and the chain holds one decision (on SQLite too, where
    FOR UPDATE does nothing)."""
    url = request.getfixturevalue("postgres_url") if backend == "postgresql" else ""
    client = client_factory(database_url=url, dispatch_interval_seconds=3600)
    world = World.build(client)
    alert_id = confirmed_violation(world)
    made = client.post("/api/v1/objections", headers=auth(world.site), json={"alert_id": alert_id, "reason": REASON})
    assert made.status_code == 201, made.text
    objection_id = made.json()["id"]
    deciders = {"upheld": world.operator, "rejected": issue_token_via_api(client, world.admin, "operator", "值班员乙")}
    barrier = threading.Barrier(2)
    answers: dict[str, int] = {}

    def decide(decision: str) -> None:
        barrier.wait()
        answers[decision] = client.post(f"/api/v1/objections/{objection_id}/decide", headers=auth(deciders[decision]),
                                        json={"decision": decision, "note": NOTE}).status_code

    threads = [threading.Thread(target=decide, args=(d,)) for d in deciders]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(answers.values()) == [200, 409], answers
    winner = next(d for d, status in answers.items() if status == 200)
    final = client.get(f"/api/v1/objections/{objection_id}", headers=auth(world.admin)).json()
    assert final["state"] == winner
    chain = audit_of(client, "objections", objection_id)
    assert [a for a, _, _ in chain] == ["objections.insert", "objections.update"]
    detail = client.get(f"/api/v1/alerts/{alert_id}", headers=auth(world.admin)).json()
    assert [t["action"] for t in detail["transitions"]] == (["reopen"] if winner == "upheld" else [])
    assert detail["state"] == ("open" if winner == "upheld" else "closed")


def test_an_upheld_objection_reopens_only_the_finding_it_disputed_and_shows_the_site_no_step(crew: Crew) -> None:
    """Outside tester: an objection to an earlier closing, upheld after the alert had been reopened and closed again,
    reopened the new finding; after an upheld objection the site watched the alert go accepted, on site, closed
    through its objection; the center was not told a blacklisting rested on the overturned finding."""
    w, client = crew.world, crew.client
    site = auth(w.site)
    alert_id, _form = closed_by_inspector(crew)
    first = client.post("/api/v1/objections", headers=site, json={"alert_id": alert_id, "reason": REASON})
    assert first.status_code == 201, first.text
    banned = client.put(f"/api/v1/institutions/{w.ids['institution']}/blacklist", headers=auth(w.admin),
                        json={"blacklisted": True, "reason": "代签", "alert_ids": [alert_id]})
    assert banned.status_code == 200, banned.text
    seen = client.get(f"/api/v1/objections/{first.json()['id']}", headers=auth(w.operator)).json()
    assert seen["blacklist_decision_ids"] == [banned.json()["id"]]  # the center sees what rests on it
    mine = client.get(f"/api/v1/objections/{first.json()['id']}", headers=site).json()
    assert mine["blacklist_decision_ids"] == []
    # Reopened by hand and closed again (a new finding), then the old objection is upheld: nothing reopens.
    other = issue_token_via_api(client, w.admin, "operator", "值班员丙")
    assert client.post(f"/api/v1/alerts/{alert_id}/reopen", headers=auth(other),
                       json={"note": "复核：需再次现场核查"}).status_code == 200
    crew.clock().run(crew.now)
    if crew.detail(alert_id).json()["state"] == "dispatched":
        assert crew.post(f"/api/v1/alerts/{alert_id}/accept", "county_a").status_code == 200
    else:
        assert crew.post(f"/api/v1/alerts/{alert_id}/dispatch", "admin",
                         {"staff_id": crew.staff["county_a"]}).status_code == 200
        assert crew.post(f"/api/v1/alerts/{alert_id}/accept", "county_a").status_code == 200
    form = file_form(crew, alert_id=alert_id)
    assert form.status_code == 201, form.text
    assert crew.post(f"/api/v1/alerts/{alert_id}/close", "county_a", {
        "outcome": "violation_confirmed", "note": "再次到场，登记 3 人实到 1 人"}).status_code == 200
    decider = issue_token_via_api(client, w.admin, "operator", "值班员丁")
    upheld = client.post(f"/api/v1/objections/{first.json()['id']}/decide", headers=auth(decider),
                         json={"decision": "upheld", "note": NOTE})
    assert upheld.status_code == 200 and upheld.json()["reopened"] is False, upheld.text
    assert crew.detail(alert_id).json()["state"] == "closed"  # the second finding stands until disputed itself
    # While an alert is worked again, the site reads only 处理中 through its objections too.
    second = client.post("/api/v1/objections", headers=site, json={"alert_id": alert_id, "reason": REASON})
    assert second.status_code == 201, second.text
    assert client.post(f"/api/v1/objections/{second.json()['id']}/decide", headers=auth(decider),
                       json={"decision": "upheld", "note": NOTE}).json()["reopened"] is True
    crew.clock().run(crew.now)
    for read in (client.get(f"/api/v1/objections/{second.json()['id']}", headers=site).json(),
                 *client.get("/api/v1/objections", headers=site).json()):
        assert read["alert_state"] in ("in_progress", "closed"), read


def test_a_reason_said_over_and_over_is_no_reason() -> None:
    """Outside probe: five letters repeated passed as a reason of substance. A text made of one piece repeated, or of
    too few distinct characters, is refused; real reasons pass."""
    from monitor.decisions.alert_lifecycle import smallest_period, substantive
    from monitor.decisions.objections import judge_decision_note, judge_reason

    for vague in ("abcdeabcdeabcdeabcde", "学员在场学员在场学员在场学员在场学员在场",
                  "不服不服不服不服不服不服不服不服不服不服", "一二三四五六七一二三四五六七一二三四五六七",
                  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"):
        assert judge_reason(vague) is not None, vague
        assert judge_decision_note(vague) is not None, vague
    assert judge_reason(REASON) is None
    assert judge_reason("The trainee was present all day; the attendance sheet and CCTV show it.") is None
    assert judge_decision_note("机构提交的教室监控录像显示该学员全天在场，签到照片不符系光线所致") is None
    assert substantive("多次致电机构负责人无人接听", 10)  # a could-not-verify reason of ten-odd characters
    assert [smallest_period(list(t)) for t in ("", "a", "abab", "ababa", "abcd")] == [0, 1, 2, 2, 4]


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_the_objectable_list_holds_every_alert_the_site_may_object_to_whichever_page_it_is_on(
        client_factory: Callable[..., TestClient], backend: str, request: pytest.FixtureRequest) -> None:
    """`GET /site/findings?objectable=true` (the site page's objection form) lists exactly the alerts whose findings
    say `objectable`, however many newer ones push them off the first page: closed against the institution, and
    not objected to for this closing (a reopened and closed-again alert may be objected to again). On SQLite and
    PostgreSQL (the rule is written in SQL for the list, in Python for each alert)."""
    from models.tables import Alert, AlertTransition
    from tests.helpers import insert_alert

    url = request.getfixturevalue("postgres_url") if backend == "postgresql" else ""
    world = World.build(client_factory(database_url=url))
    client, site = world.client, auth(world.site)

    def close(alert_id: int, outcome: str = "violation_confirmed") -> None:
        now = datetime.now(UTC)
        with client.app.state.db.session() as s:
            s.add(AlertTransition(alert_id=alert_id, action="close", from_state="accepted", to_state="closed",
                                  actor="抽查员甲", actor_role="inspector", outcome=outcome,
                                  note="现场登记 3 人实到 1 人，签到照片非学员本人", created_at=now))
            alert = s.get(Alert, alert_id)
            assert alert is not None
            alert.state, alert.outcome, alert.updated_at = "closed", outcome, now

    def listed(**query: object) -> tuple[int, dict[int, bool]]:
        r = client.get("/api/v1/site/findings", headers=site, params={"per_page": 100, **query})
        assert r.status_code == 200, r.text
        return r.json()["total"], {a["alert_id"]: a["objectable"] for a in r.json()["alerts"]}

    no_closing = confirmed_violation(world)  # closed with no closing transition recorded
    unsure = insert_alert(world, "FACE_MISMATCH", state="closed", outcome="could_not_verify")
    cleared = insert_alert(world, "FACE_MISMATCH", state="closed", outcome="false_alarm")
    objected = insert_alert(world, "FACE_MISMATCH")
    close(objected)
    made = client.post("/api/v1/objections", headers=site, json={"alert_id": objected, "reason": REASON})
    assert made.status_code == 201, made.text
    for _ in range(12):  # newer open alerts: the objectable ones are on the second page of ten
        insert_alert(world)
    first_page = client.get("/api/v1/site/findings", headers=site, params={"per_page": 10}).json()
    assert not {no_closing, unsure} & {a["alert_id"] for a in first_page["alerts"]}
    total, every = listed()
    assert total == 16 and every[cleared] is False and every[objected] is False
    count, objectable = listed(objectable="true")
    assert set(objectable) == {i for i, ok in every.items() if ok} == {no_closing, unsure} and count == 2
    assert all(objectable.values())
    close(objected)  # reopened and closed again: a new finding, which may be objected to
    assert set(listed(objectable="true")[1]) == {no_closing, unsure, objected} == {
        i for i, ok in listed()[1].items() if ok}


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_finding_lists_its_newest_anomalies_and_counts_them_all(
        client_factory: Callable[..., TestClient], backend: str, request: pytest.FixtureRequest) -> None:
    """An alert that took a camera's anomalies all day holds hundreds: the site's findings list its newest
    `MAX_ANOMALIES_PER_ALERT` (newest first) and the number in all, alert by alert, whatever the others hold. On
    SQLite and PostgreSQL (the cut is a window function)."""
    from models.tables import Anomaly
    from monitor.services.objections import MAX_ANOMALIES_PER_ALERT
    from tests.helpers import insert_alert

    url = request.getfixturevalue("postgres_url") if backend == "postgresql" else ""
    world = World.build(client_factory(database_url=url))
    busy, quiet, empty = (insert_alert(world, "FACE_MISMATCH", state="closed", outcome="violation_confirmed")
                          for _ in range(3))
    start = datetime.now(UTC) - timedelta(hours=8)
    made: dict[int, list[int]] = {busy: [], quiet: []}
    with world.client.app.state.db.session() as s:
        half = MAX_ANOMALIES_PER_ALERT // 2
        owners = [busy] * half + [quiet] + [busy] * (MAX_ANOMALIES_PER_ALERT + 3 - half) + [quiet]  # ids interleave
        for n, alert_id in enumerate(owners):
            anomaly = Anomaly(rule="FACE_MISMATCH", severity="high", class_id=world.class_id, trainee_id=None,
                              subject_kind="frame", subject_id=n + 1, region_code="530100",
                              message=f"第 {n} 条", evidence={}, thresholds={}, state="open",
                              created_at=start + timedelta(minutes=n), alert_id=alert_id)
            s.add(anomaly)
            s.flush()
            made[alert_id].append(anomaly.id)
    r = world.client.get("/api/v1/site/findings", headers=auth(world.site), params={"per_page": 100})
    assert r.status_code == 200, r.text
    listed = {a["alert_id"]: a for a in r.json()["alerts"]}
    assert listed[busy]["anomalies_total"] == MAX_ANOMALIES_PER_ALERT + 3
    assert [a["id"] for a in listed[busy]["anomalies"]] == made[busy][::-1][:MAX_ANOMALIES_PER_ALERT]
    assert listed[quiet]["anomalies_total"] == 2
    assert [a["id"] for a in listed[quiet]["anomalies"]] == made[quiet][::-1]
    assert (listed[empty]["anomalies_total"], listed[empty]["anomalies"]) == (0, [])
