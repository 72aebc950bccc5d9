"""Cross-checks against the province's other registers (clause 八: 错领/冒领/多领; clause 九: the teacher pool): each
rule a pure function of one enrolment's or one teacher's facts, with its evidence, its basis (what makes the finding
itself, so the same finding is raised once) and its thresholds; and post-training employment per institution."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from statistics import median

from models.domain import AnomalyCode, Severity, TraineeCategory
from monitor.decisions.geodesy import distance_m
from monitor.decisions.verdicts import Finding

INSURANCE, EMPLOYMENT, CERTIFICATES, TEACHERS, VOUCHERS = "insurance", "employment", "certificates", "teachers", \
    "vouchers"
EMPLOYMENT_MONTHS = 6  # post-training employment counts insurance within this many months after the class ended


@dataclass(frozen=True)
class CrossCheckLimits:
    """The cross-checks' thresholds (settings), recorded with each finding."""

    repeat_window_days: int = 365  # the policy window for a second subsidy in the same occupation and level
    far_km: float = 100.0  # insured this far from the venue during the class: employed elsewhere
    passing_results: tuple[str, ...] = ("合格", "通过", "优秀", "良好", "称职")
    check_max_age_years: int = 1  # a teacher's last annual check may be from the class's year or the year before
    min_cohort: int = 10  # an institution's post-training employment rate needs this many completed trainees


@dataclass(frozen=True)
class ClassTerm:
    """What a cross-check needs of the class: its dates, occupation and level, and where its venue is (WGS-84)."""

    class_id: int
    start: date
    end: date
    occupation_code: str
    occupation_name: str
    level: int | None
    venue: tuple[float, float]
    venue_county: str

    @property
    def months(self) -> tuple[str, str]:
        return f"{self.start:%Y-%m}", f"{self.end:%Y-%m}"


@dataclass(frozen=True)
class Insured:
    """One social-insurance row of the person: employer, insured county, months, kind, and the county's centre
    (None when unknown: a county outside the province is far by definition)."""

    employer: str
    county_code: str
    month_from: str
    month_to: str
    kind: str | None
    place: tuple[float, float] | None


@dataclass(frozen=True)
class Certificate:
    occupation_code: str
    level: int
    certificate_no: str
    issued_on: date


@dataclass(frozen=True)
class EarlierClass:
    """Another class the trainee was paid a subsidy for (its payment list named them eligible)."""

    class_id: int
    code: str
    occupation_code: str
    level: int | None
    start: date
    end: date


@dataclass(frozen=True)
class VoucherRow:
    """A row of the voucher register with the declared voucher number; `holder_matches`: issued to this trainee."""

    holder_matches: bool
    occupation_code: str
    state: str
    issued_on: date
    used_on: date | None


@dataclass(frozen=True)
class EnrolmentFacts:
    """One trainee on one class's roster, with the register rows that name the trainee."""

    cls: ClassTerm
    category: str | None
    voucher_no: str | None
    sources: frozenset[str]  # the registers with a committed extract (a rule needs its register)
    insured: Sequence[Insured] = ()
    certificates: Sequence[Certificate] = ()
    earlier: Sequence[EarlierClass] = ()
    vouchers: Sequence[VoucherRow] = ()


@dataclass(frozen=True)
class PoolEntry:
    qualifications: str
    check_result: str
    check_year: int


@dataclass(frozen=True)
class TeacherFacts:
    """One teacher of one class (theory and/or practical) with the teacher pool's rows for the teacher."""

    cls: ClassTerm
    teacher_id: int
    name: str
    roles: str  # 理论 / 实操 / 理论、实操
    sources: frozenset[str]
    pool: Sequence[PoolEntry] = ()


@dataclass(frozen=True)
class CrossFinding:
    """A finding and its basis: the rule, the person and the register fact it rests on (one anomaly per basis)."""

    finding: Finding
    basis: str


EMPLOYEE_EXCLUDED_KINDS = ("居民", "灵活", "个体")  # residents' insurance and self-paid flexible employment


def is_employee_insurance(row: Insured) -> bool:
    """Whether the row is insurance paid by an employer (职工), not residents' or flexible-employment insurance."""
    return bool(row.employer) and not any(word in (row.kind or "") for word in EMPLOYEE_EXCLUDED_KINDS)


def months_overlap(a: tuple[str, str], b: tuple[str, str]) -> bool:
    """Whether two inclusive YYYY-MM ranges share a month."""
    return a[0] <= b[1] and b[0] <= a[1]


def insured_during(facts: EnrolmentFacts) -> list[Insured]:
    """The employee insurance rows whose months overlap the class's months."""
    return [r for r in facts.insured if is_employee_insurance(r)
            and months_overlap((r.month_from, r.month_to), facts.cls.months)]


def judge_category(facts: EnrolmentFacts, limits: CrossCheckLimits) -> list[CrossFinding]:
    """CATEGORY_CONTRADICTED: enrolled as unemployed or rural labour, insured as an employee during the class."""
    if INSURANCE not in facts.sources or facts.category not in (TraineeCategory.UNEMPLOYED, TraineeCategory.RURAL):
        return []
    rows = insured_during(facts)
    if not rows:
        return []
    label = "登记失业人员" if facts.category == TraineeCategory.UNEMPLOYED else "农村转移就业劳动者"
    first = rows[0]
    employers = sorted({r.employer for r in rows})
    message = (f"以“{label}”身份参训，但培训期间（{facts.cls.months[0]}～{facts.cls.months[1]}）在"
               f"“{first.employer}”以职工身份参保（{first.month_from}～{first.month_to}）（第八条：错领）")
    evidence = {"category": facts.category, "employers": employers,
                "insured": [{"employer": r.employer, "county_code": r.county_code, "months": f"{r.month_from}～"
                             f"{r.month_to}", "kind": r.kind} for r in rows]}
    return [CrossFinding(Finding(AnomalyCode.CATEGORY_CONTRADICTED, Severity.HIGH, message, evidence),
                         f"{facts.category}|{'|'.join(employers)}")]


def judge_employed_elsewhere(facts: EnrolmentFacts, limits: CrossCheckLimits) -> list[CrossFinding]:
    """EMPLOYED_ELSEWHERE: insured by an employer far from the venue (or outside the province) during the class, a
    two-places signal."""
    if INSURANCE not in facts.sources:
        return []
    far: list[tuple[Insured, float | None]] = []
    for row in insured_during(facts):
        if not row.county_code.startswith("53"):
            far.append((row, None))
        elif row.place is not None:
            away = distance_m(row.place, facts.cls.venue) / 1000
            if away >= limits.far_km:
                far.append((row, away))
    if not far:
        return []
    first, km = far[0]
    where = "云南省外" if km is None else f"距培训场地约 {km:.0f} 公里"
    message = (f"培训期间在“{first.employer}”参保（参保地 {first.county_code}，{where}，"
               f"{first.month_from}～{first.month_to}），与在本地参训相矛盾（两地同时在岗）")
    evidence = {"insured": [{"employer": r.employer, "county_code": r.county_code, "distance_km":
                             None if d is None else round(d, 1), "months": f"{r.month_from}～{r.month_to}"}
                            for r, d in far], "venue_county": facts.cls.venue_county}
    return [CrossFinding(Finding(AnomalyCode.EMPLOYED_ELSEWHERE, Severity.MEDIUM, message, evidence,
                                 {"crosscheck_far_km": limits.far_km}),
                         "|".join(sorted({f"{r.employer}@{r.county_code}" for r, _ in far})))]


def judge_repeat_subsidy(facts: EnrolmentFacts, limits: CrossCheckLimits) -> list[CrossFinding]:
    """REPEAT_SUBSIDY: a certificate of the same occupation and level, or an earlier subsidised class in them,
    within the policy window before this class."""
    cls, window = facts.cls, timedelta(days=limits.repeat_window_days)
    thresholds = {"crosscheck_repeat_window_days": limits.repeat_window_days}
    out: list[CrossFinding] = []
    if CERTIFICATES in facts.sources and cls.level is not None:
        certs = [c for c in facts.certificates if c.occupation_code == cls.occupation_code and c.level == cls.level
                 and cls.start - window <= c.issued_on < cls.start]
        if certs:
            c = certs[0]
            out.append(CrossFinding(Finding(
                AnomalyCode.REPEAT_SUBSIDY, Severity.HIGH,
                f"已于 {c.issued_on:%Y-%m-%d} 取得“{cls.occupation_name}”{cls.level} 级证书（{c.certificate_no}），"
                f"{limits.repeat_window_days} 天内同职业同等级再次参训（第八条：多领）",
                {"certificates": [{"certificate_no": x.certificate_no, "occupation_code": x.occupation_code,
                                   "level": x.level, "issued_on": x.issued_on.isoformat()} for x in certs]},
                thresholds), "cert|" + "|".join(sorted(x.certificate_no for x in certs))))
    earlier = [e for e in facts.earlier if e.class_id != cls.class_id and e.occupation_code == cls.occupation_code
               and e.level == cls.level and e.start < cls.start and e.end >= cls.start - window]
    if earlier:
        e = earlier[0]
        out.append(CrossFinding(Finding(
            AnomalyCode.REPEAT_SUBSIDY, Severity.HIGH,
            f"已在班次 {e.code}（{e.start:%Y-%m-%d}～{e.end:%Y-%m-%d}）以同一职业（工种）和等级领取培训补贴，"
            f"{limits.repeat_window_days} 天内再次参训（第八条：多领）",
            {"earlier_classes": [{"class_id": x.class_id, "code": x.code, "start": x.start.isoformat(),
                                  "end": x.end.isoformat()} for x in earlier]}, thresholds),
            "class|" + "|".join(sorted(str(x.class_id) for x in earlier))))
    return out


USED_STATES = ("已使用", "已核销", "已兑付", "已结算", "使用")
VOID_STATES = ("作废", "过期", "注销", "失效", "撤销")


def judge_voucher(facts: EnrolmentFacts, limits: CrossCheckLimits) -> list[CrossFinding]:
    """VOUCHER_INVALID: the declared voucher is not in the register, not issued to this trainee, void, already used
    before the class, or for another occupation."""
    if VOUCHERS not in facts.sources or not facts.voucher_no:
        return []
    cls, number = facts.cls, facts.voucher_no
    reasons: list[str] = []
    if not facts.vouchers:
        reasons.append("培训券登记中无此券")
    for v in facts.vouchers:
        if not v.holder_matches:
            reasons.append("该券不是发给本学员的（冒用）")
        if v.occupation_code != cls.occupation_code:
            reasons.append(f"该券用于职业编码 {v.occupation_code}，与本班 {cls.occupation_code} 不符")
        if any(word in v.state for word in VOID_STATES):
            reasons.append(f"该券状态为“{v.state}”")
        elif any(word in v.state for word in USED_STATES) and (v.used_on is None or v.used_on < cls.start):
            reasons.append(f"该券已于 {v.used_on:%Y-%m-%d} 使用" if v.used_on else "该券已使用（无使用日期）")
        if v.issued_on > cls.end:
            reasons.append(f"该券发放于 {v.issued_on:%Y-%m-%d}，晚于培训结束")
    if not reasons:
        return []
    reasons = list(dict.fromkeys(reasons))
    return [CrossFinding(Finding(AnomalyCode.VOUCHER_INVALID, Severity.HIGH,
                                 f"培训券 {number} 无效：{'；'.join(reasons)}（第八条）",
                                 {"voucher_no": number, "reasons": reasons}), f"{number}|{'|'.join(reasons)}")]


def judge_teacher(facts: TeacherFacts, limits: CrossCheckLimits) -> list[CrossFinding]:
    """TEACHER_NOT_IN_POOL / TEACHER_CHECK_FAILED (clause 九): a class's teacher is not in the teacher pool, or the
    teacher's latest annual check did not pass or is older than allowed."""
    if TEACHERS not in facts.sources:
        return []
    who = f"{facts.roles}教师“{facts.name}”"
    if not facts.pool:
        return [CrossFinding(Finding(AnomalyCode.TEACHER_NOT_IN_POOL, Severity.HIGH,
                                     f"{who}不在师资库中（第九条）", {"teacher_id": facts.teacher_id}), "absent")]
    latest = max(facts.pool, key=lambda p: p.check_year)
    evidence = {"teacher_id": facts.teacher_id, "check_year": latest.check_year, "check_result": latest.check_result,
                "qualifications": latest.qualifications}
    thresholds = {"crosscheck_check_max_age_years": limits.check_max_age_years,
                  "crosscheck_passing_results": list(limits.passing_results)}
    if not any(word in latest.check_result for word in limits.passing_results) or "不" in latest.check_result:
        return [CrossFinding(Finding(AnomalyCode.TEACHER_CHECK_FAILED, Severity.MEDIUM,
                                     f"{who} {latest.check_year} 年度年审结果为“{latest.check_result}”（第九条）",
                                     evidence, thresholds), f"{latest.check_year}|{latest.check_result}")]
    if latest.check_year < facts.cls.start.year - limits.check_max_age_years:
        return [CrossFinding(Finding(AnomalyCode.TEACHER_CHECK_FAILED, Severity.MEDIUM,
                                     f"{who}最近一次年审为 {latest.check_year} 年度，已超过有效期（第九条）",
                                     evidence, thresholds), f"{latest.check_year}|expired")]
    return []


ENROLMENT_RULES = (judge_category, judge_employed_elsewhere, judge_repeat_subsidy, judge_voucher)


def judge_enrolment(facts: EnrolmentFacts, limits: CrossCheckLimits) -> list[CrossFinding]:
    """Every enrolment rule."""
    return [f for rule in ENROLMENT_RULES for f in rule(facts, limits)]


def add_months(month: str, months: int) -> str:
    """`YYYY-MM` plus `months`."""
    year, m = int(month[:4]), int(month[5:7]) - 1 + months
    return f"{year + m // 12:04d}-{m % 12 + 1:02d}"


def employed_after(end: date, insured: Sequence[Insured]) -> bool:
    """Whether employee insurance starts or runs within EMPLOYMENT_MONTHS after the month the class ended."""
    window = (add_months(f"{end:%Y-%m}", 1), add_months(f"{end:%Y-%m}", EMPLOYMENT_MONTHS))
    return any(is_employee_insurance(r) and months_overlap((r.month_from, r.month_to), window) for r in insured)


def is_observable(end: date, insurance_period: str) -> bool:
    """Whether the insurance extract's period covers the whole window after a class that ended on `end`."""
    return insurance_period >= add_months(f"{end:%Y-%m}", EMPLOYMENT_MONTHS)


@dataclass(frozen=True)
class EmploymentRate:
    """An institution's post-training employment: completed trainees observable, those insured within the window."""

    institution_id: int
    completed: int
    employed: int

    @property
    def rate(self) -> float | None:
        return self.employed / self.completed if self.completed else None


def provincial_median(rates: Sequence[EmploymentRate], limits: CrossCheckLimits) -> float | None:
    """The median of the institutions' rates, over institutions with a large enough cohort."""
    values = [r.rate for r in rates if r.completed >= limits.min_cohort and r.rate is not None]
    return float(median(values)) if values else None


def employment_shortfall(rate: EmploymentRate | None, median_rate: float | None, limits: CrossCheckLimits) -> float:
    """How far below the provincial median the institution's rate lies, as a share of the median (0 when at or
    above it, or when the cohort is too small to say): 0.5 means half the median."""
    if rate is None or median_rate is None or median_rate <= 0 or rate.completed < limits.min_cohort \
            or rate.rate is None:
        return 0.0
    return round(max(0.0, (median_rate - rate.rate) / median_rate), 4)
