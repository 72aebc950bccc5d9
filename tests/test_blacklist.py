"""The blacklist with evidence (clauses 九, 十九): decisions recorded with the alerts and inspections they rest on,
who decided and when; blacklisted institutions and teachers cannot open classes and running ones raise BLACKLISTED;
a teacher banned for fraud stays banned."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from models.clock import SHANGHAI
from models.tables import Anomaly
from monitor.services.clock import PolicyClock
from tests.crew import Crew
from tests.helpers import auth, insert_alert


def confirmed_alert(crew: Crew, alert_id: int | None = None) -> int:
    """An alert of the crew's class accepted by the county inspector and closed by the center as a confirmed
    violation, on its decision with a note of substance."""
    alert_id = alert_id or crew.alert_id()
    crew.clock().run(crew.now)
    assert crew.post(f"/api/v1/alerts/{alert_id}/accept", "county_a").status_code == 200
    closed = crew.post(f"/api/v1/alerts/{alert_id}/close", "operator", {
        "outcome": "violation_confirmed", "note": "比对签到照片与登记照片，3 名学员系同一人代签，证据见告警照片"})
    assert closed.status_code == 200, closed.text
    return alert_id


def test_a_blacklisting_stands_on_confirmed_evidence_of_that_institution(crew: Crew) -> None:
    w, client = crew.world, crew.client
    url = f"/api/v1/institutions/{w.ids['institution']}/blacklist"
    none = client.put(url, headers=auth(w.admin), json={"blacklisted": True, "reason": "群众举报"})
    assert none.status_code == 422 and none.json()["code"] == "EVIDENCE_REQUIRED"
    still_open = crew.alert_id()
    r = client.put(url, headers=auth(w.admin), json={"blacklisted": True, "reason": "代签", "alert_ids": [still_open]})
    assert r.status_code == 422 and r.json()["code"] == "EVIDENCE_NOT_CONFIRMED"
    other = client.put(f"/api/v1/institutions/{w.ids['institution'] + 1}/blacklist", headers=auth(w.admin),
                       json={"blacklisted": True, "reason": "代签", "alert_ids": [confirmed_alert(crew, still_open)]})
    assert other.status_code == 422 and other.json()["code"] == "EVIDENCE_NOT_OF_SUBJECT"
    lifted = client.put(url, headers=auth(w.admin), json={"blacklisted": False, "reason": "整改完毕"})
    assert lifted.status_code == 200  # lifting needs no evidence


def test_an_institution_is_blacklisted_on_evidence_and_its_running_class_alarms(crew: Crew) -> None:
    w, client = crew.world, crew.client
    alert_id = confirmed_alert(crew)
    r = client.put(f"/api/v1/institutions/{w.ids['institution']}/blacklist", headers=auth(w.admin),
                   json={"blacklisted": True, "reason": "现场核查确认代签", "alert_ids": [alert_id]})
    assert r.status_code == 200, r.text
    history = client.get("/api/v1/blacklist", headers=auth(w.operator)).json()
    assert [(d["subject_kind"], d["subject_id"], d["alert_ids"], d["decided_by"]) for d in history] == [
        ("institution", w.ids["institution"], [alert_id], "测试管理员")]
    clock = PolicyClock(client.app.state.settings, client.app.state.db)
    assert clock.audit_classes(datetime.now(UTC).astimezone(SHANGHAI)) >= 1
    with client.app.state.db.session() as s:
        rules = set(s.scalars(select(Anomaly.rule).where(Anomaly.class_id == w.class_id)))
    assert "BLACKLISTED" in rules
    unknown = client.put(f"/api/v1/institutions/{w.ids['institution']}/blacklist", headers=auth(w.admin),
                         json={"blacklisted": True, "reason": "再次确认", "inspection_ids": [999]})
    assert unknown.status_code == 422 and unknown.json()["code"] == "UNKNOWN_EVIDENCE"
    assert client.put(f"/api/v1/institutions/{w.ids['institution']}/blacklist", headers=auth(w.admin),
                      json={"blacklisted": True, "reason": ""}).json()["code"] == "REASON_REQUIRED"
    assert client.get("/api/v1/blacklist", headers=auth(w.site)).status_code == 403


def teacher_alert(crew: Crew) -> int:
    """An open TEACHER_MISMATCH alert of the crew's class (the classroom rule that names its teacher)."""
    return insert_alert(crew.world, "TEACHER_MISMATCH")


def test_a_teacher_banned_for_fraud_is_banned_for_life(crew: Crew) -> None:
    w, client = crew.world, crew.client
    teacher = w.ids["teachers"][0]
    url = f"/api/v1/teachers/{teacher}/blacklist"
    proxy = confirmed_alert(crew)  # trainees signed in for each other: the institution's doing, not the teacher's
    refused = client.put(url, headers=auth(w.admin), json={"blacklisted": True, "reason": "伪造考勤",
                                                           "for_fraud": True, "alert_ids": [proxy]})
    assert refused.status_code == 422 and refused.json()["code"] == "EVIDENCE_NOT_OF_SUBJECT", refused.text
    evidence = [confirmed_alert(crew, teacher_alert(crew))]  # the class this teacher teaches, about its teacher
    banned = client.put(url, headers=auth(w.admin), json={"blacklisted": True, "reason": "伪造考勤", "for_fraud": True,
                                                          "alert_ids": evidence})
    assert banned.status_code == 200 and banned.json()["blacklisted"] is True
    lifted = client.put(url, headers=auth(w.admin), json={"blacklisted": False, "reason": "申诉"})
    assert lifted.status_code == 409 and lifted.json()["code"] == "LIFETIME_BAN"
    again = client.put(url, headers=auth(w.admin), json={"blacklisted": True, "reason": "再次记录",
                                                         "alert_ids": evidence})
    assert again.status_code == 200
    history = client.get("/api/v1/blacklist?subject_kind=teacher", headers=auth(w.admin)).json()
    assert [d["lifetime"] for d in history] == [True, True]  # a later decision keeps the lifetime ban
    institution = client.put(f"/api/v1/institutions/{w.ids['institution']}/blacklist", headers=auth(w.admin),
                             json={"blacklisted": True, "reason": "x", "for_fraud": True})
    assert institution.status_code == 422 and institution.json()["code"] == "LIFETIME_FOR_TEACHERS"
