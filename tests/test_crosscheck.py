"""Cross-checks against the registers (issue 20 items 2-3, clause 八/九): each rule on plain facts, then a province in
small — registers imported through the API as the departments deliver them — where the commit alone raises exactly
the wrong, false and double claims planted, a rerun raises nothing twice, a corrected extract resolves what it no
longer shows, the ledger carries each trainee's results, payment is refused while a cross-check alert is open, and
the payment list states the cross-check date and the register periods it relied on."""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlalchemy import select

from models.domain import AnomalyCode, Role
from models.tables import Anomaly, AuditEntry, ClassPayment, CrossCheckRun
from monitor.adapters.tokens import issue_token
from monitor.decisions.crosscheck import (
    ClassTerm,
    CrossCheckLimits,
    EmploymentRate,
    EnrolmentFacts,
    Insured,
    PoolEntry,
    TeacherFacts,
    VoucherRow,
    employed_after,
    employment_shortfall,
    judge_enrolment,
    judge_teacher,
    provincial_median,
)
from monitor.decisions.dispatch import ClassPlace
from monitor.decisions.draws import Candidate, risk_weight
from monitor.demo.world import make_id_number
from tests.helpers import auth, local_today

LIMITS = CrossCheckLimits()
KUNMING = (25.04, 102.71)
TERM = ClassTerm(1, date(2026, 11, 2), date(2026, 11, 27), "4-03-02-01", "中式烹调师", 4, KUNMING, "530102")
ALL = frozenset({"insurance", "employment", "certificates", "teachers", "vouchers"})
MANGSHI = (24.43, 98.58)  # 德宏州芒市, ~420 km from Kunming


def codes(found: list[Any]) -> list[str]:
    return sorted(f.finding.code.value for f in found)


# -- the rules on plain facts ------------------------------------------------------------------------------------
def test_an_unemployed_trainee_insured_as_an_employee_during_the_class_is_contradicted() -> None:
    row = Insured("昆明某餐饮公司", "530102", "2026-09", "2026-12", "城镇职工", KUNMING)
    found = judge_enrolment(EnrolmentFacts(TERM, "unemployed", None, ALL, insured=[row]), LIMITS)
    assert codes(found) == ["CATEGORY_CONTRADICTED"]
    assert "昆明某餐饮公司" in found[0].finding.message and found[0].finding.evidence["employers"] == ["昆明某餐饮公司"]
    # the same row for a declared employee is no contradiction; residents' insurance is no employment
    assert judge_enrolment(EnrolmentFacts(TERM, "employee", None, ALL, insured=[row]), LIMITS) == []
    residents = Insured("", "530102", "2026-01", "2026-12", "城乡居民", KUNMING)
    assert judge_enrolment(EnrolmentFacts(TERM, "rural", None, ALL, insured=[residents]), LIMITS) == []
    # insurance that ended before the class is no contradiction either
    before = Insured("昆明某餐饮公司", "530102", "2025-01", "2026-10", None, KUNMING)
    assert judge_enrolment(EnrolmentFacts(TERM, "unemployed", None, ALL, insured=[before]), LIMITS) == []
    # without the insurance register nothing can be said
    assert judge_enrolment(EnrolmentFacts(TERM, "unemployed", None, ALL - {"insurance"}, insured=[row]), LIMITS) == []


def test_insured_far_from_the_venue_or_outside_the_province_is_employed_elsewhere() -> None:
    far = Insured("德宏某公司", "533103", "2026-11", "2026-11", None, MANGSHI)
    found = judge_enrolment(EnrolmentFacts(TERM, "employee", None, ALL, insured=[far]), LIMITS)
    assert codes(found) == ["EMPLOYED_ELSEWHERE"]
    assert 350 < found[0].finding.evidence["insured"][0]["distance_km"] < 500
    assert found[0].finding.thresholds == {"crosscheck_far_km": 100.0}
    outside = Insured("深圳某公司", "440305", "2026-11", "2026-11", None, None)
    assert "云南省外" in judge_enrolment(EnrolmentFacts(TERM, None, None, ALL, insured=[outside]), LIMITS)[0] \
        .finding.message
    near = Insured("呈贡某公司", "530114", "2026-11", "2026-11", None, (24.89, 102.82))
    assert judge_enrolment(EnrolmentFacts(TERM, None, None, ALL, insured=[near]), LIMITS) == []
    assert codes(judge_enrolment(EnrolmentFacts(TERM, "rural", None, ALL, insured=[far]), LIMITS)) == [
        "CATEGORY_CONTRADICTED", "EMPLOYED_ELSEWHERE"]


def test_a_certificate_or_a_paid_class_of_the_same_occupation_and_level_within_the_window_is_a_repeat() -> None:
    from monitor.decisions.crosscheck import Certificate, EarlierClass

    same = Certificate("4-03-02-01", 4, "C-1", TERM.start - timedelta(days=100))
    other_level = Certificate("4-03-02-01", 3, "C-2", TERM.start - timedelta(days=100))
    too_old = Certificate("4-03-02-01", 4, "C-3", TERM.start - timedelta(days=400))
    after = Certificate("4-03-02-01", 4, "C-4", TERM.end + timedelta(days=10))
    found = judge_enrolment(EnrolmentFacts(TERM, None, None, ALL, certificates=[same, other_level, too_old, after]),
                            LIMITS)
    assert codes(found) == ["REPEAT_SUBSIDY"]
    assert [c["certificate_no"] for c in found[0].finding.evidence["certificates"]] == ["C-1"]
    assert judge_enrolment(EnrolmentFacts(TERM, None, None, ALL, certificates=[other_level, too_old, after]),
                           LIMITS) == []
    paid = EarlierClass(9, "KM-2026-009", "4-03-02-01", 4, date(2026, 6, 1), date(2026, 6, 30))
    found = judge_enrolment(EnrolmentFacts(TERM, None, None, ALL, earlier=[paid]), LIMITS)
    assert codes(found) == ["REPEAT_SUBSIDY"] and "KM-2026-009" in found[0].finding.message
    shorter = CrossCheckLimits(repeat_window_days=90)
    assert judge_enrolment(EnrolmentFacts(TERM, None, None, ALL, earlier=[paid]), shorter) == []


def test_a_voucher_not_issued_to_the_trainee_used_before_or_for_another_occupation_is_invalid() -> None:
    ok = VoucherRow(True, "4-03-02-01", "已发放", date(2026, 10, 1), None)
    assert judge_enrolment(EnrolmentFacts(TERM, None, "YN-1", ALL, vouchers=[ok]), LIMITS) == []
    assert judge_enrolment(EnrolmentFacts(TERM, None, "YN-1", ALL, vouchers=[
        VoucherRow(True, "4-03-02-01", "已使用", date(2026, 10, 1), date(2026, 11, 3))]), LIMITS) == []  # this class
    cases = {
        "不是发给本学员": VoucherRow(False, "4-03-02-01", "已发放", date(2026, 10, 1), None),
        "已于 2026-08-01 使用": VoucherRow(True, "4-03-02-01", "已使用", date(2026, 7, 1), date(2026, 8, 1)),
        "与本班 4-03-02-01 不符": VoucherRow(True, "6-01-01-01", "已发放", date(2026, 10, 1), None),
        "作废": VoucherRow(True, "4-03-02-01", "已作废", date(2026, 10, 1), None),
    }
    for words, row in cases.items():
        found = judge_enrolment(EnrolmentFacts(TERM, None, "YN-1", ALL, vouchers=[row]), LIMITS)
        assert codes(found) == ["VOUCHER_INVALID"] and words in found[0].finding.message, (words, found)
    missing = judge_enrolment(EnrolmentFacts(TERM, None, "YN-404", ALL, vouchers=[]), LIMITS)
    assert "无此券" in missing[0].finding.message
    assert judge_enrolment(EnrolmentFacts(TERM, None, "YN-404", ALL - {"vouchers"}), LIMITS) == []


def test_a_teacher_outside_the_pool_or_without_a_passed_recent_check_is_flagged() -> None:
    def judge(pool: list[PoolEntry]) -> list[str]:
        return codes(judge_teacher(TeacherFacts(TERM, 7, "李老师", "理论", ALL, pool), LIMITS))

    assert judge([]) == ["TEACHER_NOT_IN_POOL"]
    assert judge([PoolEntry("高级技师", "合格", 2026)]) == []
    assert judge([PoolEntry("高级技师", "合格", 2025)]) == []  # the year before the class still counts
    assert judge([PoolEntry("高级技师", "合格", 2024)]) == ["TEACHER_CHECK_FAILED"]  # expired
    failed_last = [PoolEntry("高级技师", "合格", 2025), PoolEntry("高级技师", "不合格", 2026)]
    assert judge(failed_last) == ["TEACHER_CHECK_FAILED"]
    assert judge_teacher(TeacherFacts(TERM, 7, "李老师", "理论", ALL - {"teachers"}, []), LIMITS) == []


def test_post_training_employment_against_the_median_weighs_the_draw() -> None:
    end = date(2026, 3, 31)
    assert employed_after(end, [Insured("某公司", "530102", "2026-05", "2026-12", None, None)])
    assert not employed_after(end, [Insured("某公司", "530102", "2026-11", "2026-12", None, None)])  # month 8
    assert not employed_after(end, [Insured("", "530102", "2026-04", "2026-12", "城乡居民", None)])
    rates = [EmploymentRate(1, 20, 16), EmploymentRate(2, 20, 12), EmploymentRate(3, 20, 4), EmploymentRate(4, 3, 0)]
    median = provincial_median(rates, LIMITS)
    assert median == pytest.approx(0.6)  # institution 4 has too few to count
    assert employment_shortfall(rates[0], median, LIMITS) == 0.0
    assert employment_shortfall(rates[2], median, LIMITS) == pytest.approx((0.6 - 0.2) / 0.6, abs=1e-4)
    assert employment_shortfall(rates[3], median, LIMITS) == 0.0
    place = ClassPlace("530102", 3)
    low = Candidate(1, place, 0, 0, employment_shortfall(rates[2], median, LIMITS))
    assert low.weight == pytest.approx(1 + 2 * 0.6667, abs=1e-3) and Candidate(2, place, 0, 0).weight == 1.0
    assert risk_weight(2, 1) == Candidate(3, place, 2, 1).weight  # draws before it replay unchanged


# -- a province in small, through the API ------------------------------------------------------------------------
OCCUPATION = "4-03-02-01"


@dataclass
class Province:
    client: TestClient
    admin: str
    operator: str
    auditor: str
    ids: dict[str, str] = field(default_factory=dict)  # person → ID number
    trainee: dict[str, int] = field(default_factory=dict)
    teacher: dict[str, int] = field(default_factory=dict)
    class_id: int = 0
    start: date = date.today()
    end: date = date.today()

    def post(self, path: str, expect: int = 201, token: str | None = None, **kwargs: Any) -> Any:
        r = self.client.post(path, headers=auth(token or self.admin), **kwargs)
        assert r.status_code == expect, (path, r.status_code, r.text)
        return r.json()

    def register(self, source: str, period: str, header: list[str], rows: list[list[str]]) -> dict[str, Any]:
        data = "\r\n".join(",".join(r) for r in [header, *rows]).encode("gb18030") + b"\r\n"
        preview = self.post("/api/v1/registers/imports", params={"source": source, "period": period},
                            files={"file": (f"{source}.csv", data, "text/csv")})
        assert preview["rows_refused"] == 0, preview["errors"]
        return self.post("/api/v1/registers/commits", expect=200, json={"import_id": preview["id"]})

    def anomalies(self) -> list[tuple[str, str | None, str]]:
        names = {v: k for k, v in self.trainee.items()}
        with self.client.app.state.db.session() as session:
            rows = session.scalars(select(Anomaly).where(Anomaly.class_id == self.class_id,
                                                         Anomaly.subject_kind == "crosscheck")).all()
            return sorted((a.rule, names.get(a.trainee_id) if a.trainee_id else None, a.state) for a in rows)


def build_province(client: TestClient, ended: bool) -> Province:
    with client.app.state.db.session() as session:
        p = Province(client, issue_token(session, Role.ADMIN, "省中心管理员"),
                     issue_token(session, Role.OPERATOR, "值班员"), issue_token(session, Role.AUDITOR, "财务审核"))
    today = local_today()
    p.start, p.end = (today - timedelta(days=20), today - timedelta(days=1)) if ended else \
        (today - timedelta(days=2), today + timedelta(days=10))
    occupation = p.post("/api/v1/occupations", json={"code": OCCUPATION, "name": "中式烹调师"})
    inst = p.post("/api/v1/institutions", json={"name": "昆明五华职业培训学校", "licence_no": "KM-001",
                                                "region_code": "530102"})
    venue = p.post("/api/v1/venues", json={"institution_id": inst["id"], "name": "五华校区", "region_code": "530102",
                                           "fence": {"shape": "circle", "center": {"lat": KUNMING[0],
                                                                                   "lon": KUNMING[1]},
                                                     "radius_m": 150}})
    for k, who in enumerate(("pooled", "failed")):
        p.ids[who] = make_id_number("530102", date(1980, 5, 1 + k), 200 + k)
        p.teacher[who] = p.post("/api/v1/teachers", json={"id_number": p.ids[who], "name": f"教师{k}"})["id"]
    people = ("contradicted", "far", "residents", "certified", "borrower", "holder", "clean")
    for k, who in enumerate(people):
        p.ids[who] = make_id_number("530102", date(1995, 3, 1 + k), 300 + k)
        p.trainee[who] = p.post("/api/v1/trainees", json={"id_number": p.ids[who], "name": f"学员{k}"})["id"]
    declarations = [
        {"trainee_id": p.trainee["contradicted"], "category": "unemployed"},
        {"trainee_id": p.trainee["far"], "category": "rural"},
        {"trainee_id": p.trainee["residents"], "category": "rural"},
        {"trainee_id": p.trainee["borrower"], "category": "unemployed", "voucher_no": "YN2026000002"},
        {"trainee_id": p.trainee["holder"], "category": "unemployed", "voucher_no": "YN2026000003"},
    ]
    c = p.post("/api/v1/classes", json={
        "code": "KM-2026-101", "name": "中式烹调师（四级）培训班", "institution_id": inst["id"],
        "venue_id": venue["id"],
        "occupation_id": occupation["id"], "start_date": p.start.isoformat(), "end_date": p.end.isoformat(),
        "theory_teacher_id": p.teacher["pooled"], "practical_teacher_id": p.teacher["failed"], "level": 4,
        "sessions": [{"name": "上午", "start": "08:30", "end": "11:30"}],
        "trainee_ids": [p.trainee[w] for w in people], "declarations": declarations})
    assert c["level"] == 4 and len(c["declarations"]) == 5
    p.class_id = c["id"]
    return p


def months(p: Province) -> str:
    return f"{p.start:%Y-%m}~{p.end:%Y-%m}"


def import_registers(p: Province, period: str = "2026-11", contradicted: bool = True) -> None:
    insured = [[p.ids["far"], "德宏州芒市某公司", "533103", months(p), "城镇职工"],
               [p.ids["residents"], "五华区社保中心（个人缴费）", "530102", months(p), "城乡居民"]]
    if contradicted:
        insured.append([p.ids["contradicted"], "昆明某餐饮公司", "530102", months(p), "城镇职工"])
    p.register("insurance", period, ["身份证号码", "单位名称", "参保地行政区划代码", "缴费月份", "参保身份"], insured)
    p.register("certificates", period, ["身份证号码", "职业编码", "等级", "证书编号", "发证日期"], [
        [p.ids["certified"], OCCUPATION, "四级", "Y000053010001", (p.start - timedelta(days=120)).isoformat()],
        [p.ids["clean"], OCCUPATION, "三级", "Y000053010002", (p.start - timedelta(days=120)).isoformat()]])
    p.register("teachers", period, ["身份证号码", "资质", "年审结果", "年审年度"], [
        [p.ids["pooled"], "高级技师", "合格", str(p.start.year)],
        [p.ids["failed"], "技师", "不合格", str(p.start.year)]])
    p.register("vouchers", period, ["培训券编号", "持券人身份证号码", "职业编码", "状态", "发放日期"], [
        ["YN2026000002", p.ids["holder"], OCCUPATION, "已发放", (p.start - timedelta(days=30)).isoformat()],
        ["YN2026000003", p.ids["holder"], OCCUPATION, "已发放", (p.start - timedelta(days=30)).isoformat()]])


EXPECTED = [("CATEGORY_CONTRADICTED", "contradicted", "open"), ("CATEGORY_CONTRADICTED", "far", "open"),
            ("EMPLOYED_ELSEWHERE", "far", "open"), ("REPEAT_SUBSIDY", "certified", "open"),
            ("TEACHER_CHECK_FAILED", None, "open"), ("VOUCHER_INVALID", "borrower", "open")]


@pytest.fixture
def province(client_factory: Callable[..., TestClient]) -> Province:
    return build_province(client_factory(), ended=True)


def test_committing_the_registers_raises_exactly_the_planted_claims_once(province: Province) -> None:
    p = province
    import_registers(p)  # each commit cross-checks the classes after answering
    assert p.anomalies() == EXPECTED
    again = p.post("/api/v1/crosschecks", expect=200, json={})
    assert again["raised"] == 0 and again["findings"] == len(EXPECTED) and again["trainees"] == 7
    assert set(again["registers"]) == {"insurance", "certificates", "teachers", "vouchers"}
    assert p.anomalies() == EXPECTED
    with p.client.app.state.db.session() as session:
        far = session.scalar(select(Anomaly).where(Anomaly.rule == "EMPLOYED_ELSEWHERE"))
        assert far is not None and far.evidence["register"] == "insurance" and far.evidence["register_period"] == \
            "2026-11" and "533103" in far.message
        run = session.scalars(select(CrossCheckRun).where(CrossCheckRun.class_id == p.class_id)).all()[-1]
        assert run.imports["insurance"]["period"] == "2026-11" and len(run.imports["insurance"]["sha256"]) == 64
        assert session.scalar(select(AuditEntry.id).where(AuditEntry.action == "crosscheck_runs.insert"))


def test_a_corrected_extract_resolves_what_it_no_longer_shows(province: Province) -> None:
    p = province
    import_registers(p)
    p.register("insurance", "2026-12", ["身份证号码", "单位名称", "参保地行政区划代码", "缴费月份", "参保身份"], [
        [p.ids["far"], "德宏州芒市某公司", "533103", months(p), "城镇职工"]])
    found = p.anomalies()
    assert ("CATEGORY_CONTRADICTED", "contradicted", "resolved") in found
    assert ("CATEGORY_CONTRADICTED", "far", "open") in found and ("EMPLOYED_ELSEWHERE", "far", "open") in found
    with p.client.app.state.db.session() as session:
        gone = session.scalar(select(Anomaly).where(Anomaly.rule == "CATEGORY_CONTRADICTED",
                                                    Anomaly.trainee_id == p.trainee["contradicted"]))
        assert gone is not None and "2026-12" in (gone.resolved_note or "")


def test_the_class_results_per_trainee_for_the_evidence_view(province: Province) -> None:
    p = province
    import_registers(p)
    r = p.client.get(f"/api/v1/classes/{p.class_id}/crosscheck", params={"trainee_id": p.trainee["far"]},
                     headers=auth(p.operator))
    assert r.status_code == 200, r.text
    body = r.json()
    assert [t["trainee_id"] for t in body["trainees"]] == [p.trainee["far"]]
    assert sorted(f["rule"] for f in body["trainees"][0]["findings"]) == ["CATEGORY_CONTRADICTED",
                                                                        "EMPLOYED_ELSEWHERE"]
    assert all(f["state_text"] == "待核查" for f in body["trainees"][0]["findings"])
    assert [f["rule"] for f in body["teachers"]] == ["TEACHER_CHECK_FAILED"] and body["ran_at"]
    with p.client.app.state.db.session() as session:
        site = issue_token(session, Role.SITE, "站点", institution_id=1)
    assert p.client.get(f"/api/v1/classes/{p.class_id}/crosscheck", headers=auth(site)).status_code == 403
    today = p.client.get("/api/v1/crosschecks/today", headers=auth(p.operator)).json()
    assert len(today["prefectures"]) == 16 and today["prefectures"][0]["code"] == "530100"
    assert today["prefectures"][0]["alerts"] == 5 and today["total"] == 5  # one alert per rule and class


def close_all(p: Province, confirmed: set[str]) -> None:
    """The operator dismisses the alerts found to be false alarms; the others end as confirmed violations (as the
    dispatch wing leaves them after a visit or phone check, tested in tests/test_dispatch.py)."""
    from models.tables import Alert

    with p.client.app.state.db.session() as session:
        alerts = [(a.id, a.rule) for a in session.scalars(select(Alert).where(Alert.class_id == p.class_id))]
    for alert_id, rule in alerts:
        if rule not in confirmed:
            p.post(f"/api/v1/alerts/{alert_id}/dismiss", expect=200, token=p.operator,
                   json={"note": "经核实登记数据有误，已由社保部门更正"})
    with p.client.app.state.db.session() as session:
        for alert in session.scalars(select(Alert).where(Alert.class_id == p.class_id, Alert.rule.in_(confirmed))):
            alert.state, alert.outcome = "closed", "violation_confirmed"


def test_payment_waits_for_the_cross_check_alerts_and_the_list_states_what_it_relied_on(province: Province) -> None:
    p = province
    refused = p.client.post(f"/api/v1/classes/{p.class_id}/payment", json={}, headers=auth(p.admin))
    assert refused.status_code == 409 and refused.json()["code"] == "CROSSCHECK_MISSING"
    import_registers(p)
    ledger = p.client.get(f"/api/v1/classes/{p.class_id}/ledger", headers=auth(p.auditor)).json()
    rows = {r["trainee_id"]: r for r in ledger["rows"]}
    far = rows[p.trainee["far"]]
    assert not far["eligible"] and "待核查" in far["crosscheck_text"] and "登记数据比对异常待核查" in far["reason"]
    assert rows[p.trainee["clean"]]["crosscheck_text"] == "通过"
    assert ledger["crosscheck"]["registers"]["insurance"]["period"] == "2026-11"
    refused = p.client.post(f"/api/v1/classes/{p.class_id}/payment", json={}, headers=auth(p.admin))
    assert refused.status_code == 409 and refused.json()["code"] == "CROSSCHECK_OPEN", refused.text
    assert "人员类别不符" in refused.json()["message"]
    confirmed = {"CATEGORY_CONTRADICTED", "VOUCHER_INVALID"}
    close_all(p, confirmed)
    ledger = p.client.get(f"/api/v1/classes/{p.class_id}/ledger", headers=auth(p.auditor)).json()
    rows = {r["trainee_id"]: r for r in ledger["rows"]}
    assert "已确认" in rows[p.trainee["far"]]["crosscheck_text"] and rows[p.trainee["far"]]["eligible_text"] == "不符合"
    assert "登记数据比对确认违规" in rows[p.trainee["far"]]["reason"]
    assert rows[p.trainee["certified"]]["crosscheck_text"].startswith("通过")  # dismissed as a false alarm
    assert p.client.post(f"/api/v1/classes/{p.class_id}/payment", json={}, headers=auth(p.operator)).status_code == 403
    paid = p.post(f"/api/v1/classes/{p.class_id}/payment", json={"note": "第一批"})
    assert paid["register_periods"] == {"certificates": "2026-11", "insurance": "2026-11", "teachers": "2026-11",
                                        "vouchers": "2026-11"}
    excluded = {p.trainee[w] for w in ("contradicted", "far", "borrower")}
    # nobody attended in this test, so nobody is eligible for attendance either: the decision lists whom it pays
    assert set(paid["eligible_trainee_ids"]).isdisjoint(excluded)
    again = p.client.post(f"/api/v1/classes/{p.class_id}/payment", json={}, headers=auth(p.admin))
    assert again.status_code == 409 and again.json()["code"] == "ALREADY_PAYABLE"
    r = p.client.get(f"/api/v1/classes/{p.class_id}/payment-list.xlsx", headers=auth(p.auditor))
    assert r.status_code == 200
    sheet = load_workbook(io.BytesIO(r.content)).active
    assert sheet is not None
    lines = {str(row[0]): str(row[1]) for row in sheet.iter_rows(values_only=True) if row and row[0] and row[1]}
    assert lines["登记数据比对时间"].endswith(f"比对记录 {paid['crosscheck_run_id']}")
    periods = lines["所依据的登记数据期间"]
    assert "社会保险参保数据 2026-11" in periods and "就业失业登记 未导入" in periods
    assert lines["台账摘要（SHA-256）"] == paid["ledger_sha256"]
    with p.client.app.state.db.session() as session:
        assert session.scalar(select(AuditEntry.id).where(AuditEntry.action == "class_payments.insert"))
        assert session.scalar(select(ClassPayment.class_id)) == p.class_id


def test_a_class_in_session_cannot_be_marked_payable(client_factory: Callable[..., TestClient]) -> None:
    p = build_province(client_factory(), ended=False)
    import_registers(p)
    refused = p.client.post(f"/api/v1/classes/{p.class_id}/payment", json={}, headers=auth(p.admin))
    assert refused.status_code == 409 and refused.json()["code"] == "CLASS_NOT_ENDED"


def test_a_declaration_must_name_a_trainee_of_the_roster(province: Province) -> None:
    p = province
    r = p.client.post(f"/api/v1/classes/{p.class_id}/roster", headers=auth(p.admin), json={
        "trainee_ids": [p.trainee["clean"]], "declarations": [{"trainee_id": p.trainee["far"], "category": "rural"}]})
    assert r.status_code == 422 and "不在花名册" in r.text
    r = p.client.post(f"/api/v1/classes/{p.class_id}/roster", headers=auth(p.admin), json={
        "trainee_ids": [p.trainee["clean"]], "declarations": [{"trainee_id": p.trainee["clean"], "category": "x"}]})
    assert r.status_code == 422
    r = p.client.post(f"/api/v1/classes/{p.class_id}/roster", headers=auth(p.admin), json={
        "trainee_ids": [p.trainee["clean"]],
        "declarations": [{"trainee_id": p.trainee["clean"], "category": "unemployed", "voucher_no": "YN2026000009"}]})
    assert r.status_code == 200
    assert {"trainee_id": p.trainee["clean"], "category": "unemployed", "voucher_no": "YN2026000009"} in \
        r.json()["declarations"]
    assert AnomalyCode.VOUCHER_INVALID.value == "VOUCHER_INVALID"


def test_the_same_claims_and_payment_refusal_on_postgresql(client_factory: Callable[..., TestClient],
                                                           postgres_url: str) -> None:
    p = build_province(client_factory(database_url=postgres_url), ended=True)
    import_registers(p)
    assert p.anomalies() == EXPECTED
    assert p.post("/api/v1/crosschecks", expect=200, json={})["raised"] == 0
    refused = p.client.post(f"/api/v1/classes/{p.class_id}/payment", json={}, headers=auth(p.admin))
    assert refused.status_code == 409 and refused.json()["code"] == "CROSSCHECK_OPEN"


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_migration_0025_goes_down_and_up(backend: str, tmp_path: Any, request: pytest.FixtureRequest) -> None:
    from pathlib import Path

    from alembic import command
    from alembic.config import Config
    from sqlalchemy import inspect

    from monitor.adapters.storage import Database

    url = request.getfixturevalue("postgres_url") if backend == "postgresql" else f"sqlite:///{tmp_path}/m.sqlite3"
    db = Database(url)
    db.migrate()
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).resolve().parent.parent / "monitor" / "migrations"))
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0024")
        assert not db.engine.dialect.has_table(conn, "class_payments")
        assert "category" not in {c["name"] for c in inspect(conn).get_columns("roster")}
        command.upgrade(cfg, "head")
        assert db.engine.dialect.has_table(conn, "crosscheck_runs")
        assert "level" in {c["name"] for c in inspect(conn).get_columns("classes")}
    db.dispose()
