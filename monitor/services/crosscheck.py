"""Cross-checks of classes against the committed register extracts (clause 八/九): each class's enrolments and
teachers matched to the registers by the keyed hash of their ID numbers (indexed lookups in chunks, never a scan),
judged by the pure rules (monitor/decisions/crosscheck.py), raised once per finding, resolved when a newer extract no
longer shows it, and recorded per class as a run (when, which extracts) that payment decisions cite."""

from __future__ import annotations

import hashlib
import json
import logging
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import cache
from importlib import resources
from typing import Any

from sqlalchemy import Table, select
from sqlalchemy.orm import Session

from models.clock import SHANGHAI, utc_now
from models.domain import CROSSCHECK_RULES, AnomalyCode
from models.tables import (
    Alert,
    Anomaly,
    ClassPayment,
    CrossCheckRun,
    InstitutionEmployment,
    Occupation,
    RegisterImport,
    RosterEntry,
    RuleSubject,
    Teacher,
    Trainee,
    TrainingClass,
    Venue,
)
from models.terms import SubjectKind
from monitor.adapters.register_keys import RegisterKey
from monitor.adapters.storage import Database
from monitor.decisions.crosscheck import (
    CERTIFICATES,
    INSURANCE,
    TEACHERS,
    VOUCHERS,
    Certificate,
    ClassTerm,
    CrossCheckLimits,
    CrossFinding,
    EarlierClass,
    EmploymentRate,
    EnrolmentFacts,
    Insured,
    PoolEntry,
    TeacherFacts,
    VoucherRow,
    employed_after,
    employment_shortfall,
    is_observable,
    judge_enrolment,
    judge_teacher,
    provincial_median,
)
from monitor.services.alerts import ACTIVE, add_anomaly, resolve_anomaly
from monitor.services.clock import claim_subject
from monitor.services.events import class_context
from monitor.services.registers import active_imports, row_table
from monitor.settings import Settings

log = logging.getLogger(__name__)

CHUNK = 500  # ID hashes per IN (…) lookup: within SQLite's parameter limit, each an index probe
CLASSES_PER_BATCH = 20  # classes whose people are looked up together (about 1,200 trainees)
RULE_SOURCES: dict[AnomalyCode, str] = {
    AnomalyCode.CATEGORY_CONTRADICTED: INSURANCE, AnomalyCode.EMPLOYED_ELSEWHERE: INSURANCE,
    AnomalyCode.REPEAT_SUBSIDY: CERTIFICATES, AnomalyCode.VOUCHER_INVALID: VOUCHERS,
    AnomalyCode.TEACHER_NOT_IN_POOL: TEACHERS, AnomalyCode.TEACHER_CHECK_FAILED: TEACHERS,
}


def limits_of(settings: Settings) -> CrossCheckLimits:
    return CrossCheckLimits(repeat_window_days=settings.crosscheck_repeat_window_days,
                            far_km=settings.crosscheck_far_km, min_cohort=settings.crosscheck_min_cohort)


@cache
def county_centres() -> dict[str, tuple[float, float]]:
    """Yunnan's county and prefecture centres (WGS-84), from monitor/data (scripts/make_county_centres.py)."""
    text = resources.files("monitor.data").joinpath("yunnan_county_centres.json").read_text(encoding="utf-8")
    return {code: (float(c[0]), float(c[1])) for code, c in json.loads(text)["centres"].items()}


def centre_of(county_code: str) -> tuple[float, float] | None:
    """The county's centre, else its prefecture's; None outside Yunnan or for an unknown code."""
    centres = county_centres()
    return centres.get(county_code) or centres.get(county_code[:4] + "00")


def chunks(items: Sequence[Any], size: int = CHUNK) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def rows_of_import(session: Session, table: Table, column: str, import_id: int, values: Iterable[str]
                   ) -> dict[str, list[Any]]:
    """The register rows of one extract whose `column` (id_hash, voucher_no: both indexed) is one of these values,
    by value. The lookup names only the indexed column and the extract is picked here: with `import_id = ?` in the
    query SQLite (no statistics) walks the import_id index instead — every row of the extract for each chunk, a
    million rows per chunk for a province extract (scripts/bench_crosscheck.py)."""
    found: dict[str, list[Any]] = defaultdict(list)
    key = table.c[column]
    for part in chunks(sorted(set(values))):
        for row in session.execute(select(table).where(key.in_(part))):
            if row.import_id == import_id:
                found[getattr(row, column)].append(row)
    return found


def rows_by_hash(session: Session, table: Table, import_id: int, hashes: Iterable[str]) -> dict[str, list[Any]]:
    """The register rows of one extract for these ID hashes, by hash (index on id_hash)."""
    return rows_of_import(session, table, "id_hash", import_id, hashes)


@dataclass(frozen=True)
class ImportRef:
    """A committed extract as a run cites it."""

    id: int
    period: str
    sha256: str
    key_id: str

    @classmethod
    def of(cls, row: RegisterImport) -> ImportRef:
        return cls(row.id, row.period, row.sha256, row.key_id)


@dataclass
class Registers:
    """The committed extracts a run relies on: source → import."""

    imports: dict[str, ImportRef]

    @classmethod
    def load(cls, session: Session) -> Registers:
        return cls({source: ImportRef.of(row) for source, row in active_imports(session).items()})

    @property
    def sources(self) -> frozenset[str]:
        return frozenset(self.imports)

    def as_json(self) -> dict[str, Any]:
        return {source: {"import_id": i.id, "period": i.period, "sha256": i.sha256}
                for source, i in sorted(self.imports.items())}

    def periods(self) -> dict[str, str]:
        return {source: i.period for source, i in sorted(self.imports.items())}


@dataclass
class RunSummary:
    classes: int = 0
    trainees: int = 0
    findings: int = 0
    raised: int = 0
    resolved: int = 0
    sources: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {"classes": self.classes, "trainees": self.trainees, "findings": self.findings, "raised": self.raised,
                "resolved": self.resolved, "registers": self.sources}


def class_term(cls: TrainingClass, venue: Venue, occupation: Occupation) -> ClassTerm:
    return ClassTerm(cls.id, cls.start_date, cls.end_date, occupation.code, occupation.name, cls.level,
                     (venue.center_lat, venue.center_lon), venue.region_code)


def load_earlier(session: Session, trainee_ids: Sequence[int], since: date) -> dict[int, list[EarlierClass]]:
    """Per trainee, the classes marked payable with the trainee among the eligible, ended on or after `since`."""
    out: dict[int, list[EarlierClass]] = defaultdict(list)
    for part in chunks(list(trainee_ids)):
        for trainee_id, cls, code, eligible in session.execute(
                select(RosterEntry.trainee_id, TrainingClass, Occupation.code, ClassPayment.eligible_trainee_ids)
                .join(TrainingClass, TrainingClass.id == RosterEntry.class_id)
                .join(ClassPayment, ClassPayment.class_id == RosterEntry.class_id)
                .join(Occupation, Occupation.id == TrainingClass.occupation_id)
                .where(RosterEntry.trainee_id.in_(part), TrainingClass.end_date >= since)):
            if trainee_id in set(eligible or []):
                out[trainee_id].append(EarlierClass(cls.id, cls.code, code, cls.level, cls.start_date, cls.end_date))
    return out


def judge_batch(session: Session, classes: Sequence[TrainingClass], registers: Registers, key: RegisterKey,
                limits: CrossCheckLimits) -> dict[int, tuple[int, list[tuple[int | None, str, CrossFinding]]]]:
    """Per class: trainees checked, and its findings as (trainee id or None, person key, finding)."""
    terms: dict[int, ClassTerm] = {}
    for cls, venue, occupation in session.execute(
            select(TrainingClass, Venue, Occupation).join(Venue, Venue.id == TrainingClass.venue_id)
            .join(Occupation, Occupation.id == TrainingClass.occupation_id)
            .where(TrainingClass.id.in_([c.id for c in classes]))):
        terms[cls.id] = class_term(cls, venue, occupation)
    roster = session.execute(
        select(RosterEntry.class_id, RosterEntry.trainee_id, RosterEntry.category, RosterEntry.voucher_no,
               Trainee.id_number)
        .join(Trainee, Trainee.id == RosterEntry.trainee_id)
        .where(RosterEntry.class_id.in_(list(terms)))).all()
    hash_of = {trainee_id: key.hash_id(id_number) for _, trainee_id, _, _, id_number in roster}
    imports, sources = registers.imports, registers.sources
    hashes = list(hash_of.values())
    insured = rows_by_hash(session, row_table(INSURANCE), imports[INSURANCE].id, hashes) if INSURANCE in imports \
        else {}
    certs = rows_by_hash(session, row_table(CERTIFICATES), imports[CERTIFICATES].id, hashes) \
        if CERTIFICATES in imports else {}
    vouchers = rows_of_import(session, row_table(VOUCHERS), "voucher_no", imports[VOUCHERS].id,
                              (v for _, _, _, v, _ in roster if v)) if VOUCHERS in imports else {}
    since = min((t.start for t in terms.values()), default=date.today()) \
        - timedelta(days=limits.repeat_window_days)
    earlier = load_earlier(session, list(hash_of), since)
    out: dict[int, tuple[int, list[tuple[int | None, str, CrossFinding]]]] = {
        c: (0, []) for c in terms}
    for class_id, trainee_id, category, voucher_no, _ in roster:
        h = hash_of[trainee_id]
        facts = EnrolmentFacts(
            terms[class_id], category, voucher_no, sources,
            insured=[Insured(r.employer, r.county_code, r.month_from, r.month_to, r.kind, centre_of(r.county_code))
                     for r in insured.get(h, [])],
            certificates=[Certificate(r.occupation_code, r.level, r.certificate_no, r.issued_on)
                          for r in certs.get(h, [])],
            earlier=earlier.get(trainee_id, []),
            vouchers=[VoucherRow(r.id_hash == h, r.occupation_code, r.state, r.issued_on, r.used_on)
                      for r in vouchers.get(voucher_no or "", [])])
        count, found = out[class_id]
        out[class_id] = (count + 1, found + [(trainee_id, f"t{trainee_id}", f) for f in judge_enrolment(facts, limits)])
    if TEACHERS in imports:
        teachers: dict[int, list[tuple[int, str]]] = defaultdict(list)
        for cls in classes:
            teachers[cls.id] = [(cls.theory_teacher_id, "理论"), (cls.practical_teacher_id, "实操")]
        people = {t.id: t for t in session.scalars(select(Teacher).where(Teacher.id.in_(
            {tid for pairs in teachers.values() for tid, _ in pairs})))}
        teacher_hash = {tid: key.hash_id(t.id_number) for tid, t in people.items()}
        pool = rows_by_hash(session, row_table(TEACHERS), imports[TEACHERS].id, teacher_hash.values())
        for class_id, pairs in teachers.items():
            roles: dict[int, list[str]] = defaultdict(list)
            for tid, role in pairs:
                roles[tid].append(role)
            for tid, what in roles.items():
                teacher = people.get(tid)
                if teacher is None or class_id not in terms:
                    continue
                facts_t = TeacherFacts(terms[class_id], tid, teacher.name, "、".join(what), sources,
                                       [PoolEntry(r.qualifications, r.check_result, r.check_year)
                                        for r in pool.get(teacher_hash[tid], [])])
                count, found = out[class_id]
                out[class_id] = (count, found + [(None, f"r{tid}", f) for f in judge_teacher(facts_t, limits)])
    return out


def finding_key(code: str, class_id: int, person: str, basis: str) -> str:
    """The RuleSubject key of one finding: the same rule, class, person and register fact is raised once."""
    return f"XC:{code}:{class_id}:{person}:{hashlib.sha256(basis.encode()).hexdigest()[:20]}"


def record_class(session: Session, cls: TrainingClass, trainees: int,
                 findings: Sequence[tuple[int | None, str, CrossFinding]], registers: Registers,
                 now: datetime) -> CrossCheckRun:
    """Raise what is new, resolve what a newer extract no longer shows, and note the run."""
    names = dict(session.execute(select(Trainee.id, Trainee.name).where(
        Trainee.id.in_({t for t, _, _ in findings if t is not None}))).all()) if findings else {}
    periods = registers.periods()
    keys = [finding_key(cross.finding.code.value, cls.id, person, cross.basis) for _, person, cross in findings]
    claimed: set[str] = set()  # raised by an earlier run: one lookup, not a claim attempt each (a rerun's common case)
    for part in chunks(sorted(set(keys))):
        claimed.update(session.scalars(select(RuleSubject.key).where(RuleSubject.key.in_(part))))
    current: set[str] = set()
    raised = 0
    context: dict[str, Any] | None = None
    for (trainee_id, _, cross), key in zip(findings, keys, strict=True):
        current.add(key)
        subject_id = None if key in claimed else claim_subject(session, key)
        if subject_id is None:
            continue
        context = context or class_context(session, cls)
        source = RULE_SOURCES[cross.finding.code]
        add_anomaly(session, context, cross.finding, SubjectKind.CROSSCHECK, subject_id,
                    {"trainee_id": trainee_id, "trainee_name": names.get(trainee_id) if trainee_id else None},
                    {"rule_key": key, "register": source, "register_period": periods.get(source)}, {})
        raised += 1
    resolved = 0
    for anomaly, key in session.execute(
            select(Anomaly, RuleSubject.key).join(RuleSubject, RuleSubject.id == Anomaly.subject_id)
            .where(Anomaly.class_id == cls.id, Anomaly.subject_kind == SubjectKind.CROSSCHECK,
                   Anomaly.state == "open")).all():
        rule_source = RULE_SOURCES.get(AnomalyCode(anomaly.rule))
        if key in current or rule_source is None or rule_source not in registers.imports:
            continue
        imp = registers.imports[rule_source]
        note = f"按 {imp.period} 期{source_name(rule_source)}（导入 {imp.id}）复核，不再成立"
        resolve_anomaly(session, anomaly, note)
        resolved += 1
    run = CrossCheckRun(class_id=cls.id, ran_at=now, imports=registers.as_json(), trainees=trainees,
                        findings=len(findings), raised=raised, resolved=resolved)
    session.add(run)
    session.flush()
    return run


SOURCE_NAMES = {INSURANCE: "社会保险参保数据", "employment": "就业失业登记", CERTIFICATES: "职业技能等级证书",
                TEACHERS: "师资库", VOUCHERS: "培训券登记"}


def source_name(source: str) -> str:
    return SOURCE_NAMES.get(source, source)


def classes_to_check(session: Session, today: date, lookback_days: int) -> list[int]:
    """Classes not yet marked payable that have not ended more than `lookback_days` ago, oldest first."""
    paid = select(ClassPayment.class_id)
    return list(session.scalars(select(TrainingClass.id).where(
        TrainingClass.end_date >= today - timedelta(days=lookback_days), TrainingClass.id.not_in(paid))
        .order_by(TrainingClass.id)))


def run_crosscheck(db: Database, settings: Settings, class_ids: Sequence[int] | None = None,
                   now: datetime | None = None) -> RunSummary:
    """Cross-check the classes (default: every class not yet payable within the look-back) against the committed
    extracts, a batch of classes per transaction."""
    now = now or utc_now()
    key = settings.register_hash_key()
    limits = limits_of(settings)
    summary = RunSummary()
    with db.session() as session:
        registers = Registers.load(session)
        summary.sources = registers.as_json()
        ids = list(class_ids) if class_ids is not None else classes_to_check(
            session, now.astimezone(SHANGHAI).date(), settings.crosscheck_lookback_days)
        stale = [source for source, i in registers.imports.items() if i.key_id != key.key_id]
    if not registers.imports:
        return summary
    if stale:
        log.warning("register extracts hashed with another key are left out: %s", ", ".join(stale))
        registers = Registers({s: i for s, i in registers.imports.items() if s not in stale})
    for part in chunks(ids, CLASSES_PER_BATCH):
        with db.session() as session:
            classes = list(session.scalars(select(TrainingClass).where(TrainingClass.id.in_(part))
                                           .order_by(TrainingClass.id)))
            judged = judge_batch(session, classes, registers, key, limits)
            for cls in classes:
                trainees, findings = judged.get(cls.id, (0, []))
                run = record_class(session, cls, trainees, findings, registers, now)
                summary.classes += 1
                summary.trainees += trainees
                summary.findings += run.findings
                summary.raised += run.raised
                summary.resolved += run.resolved
    log.info("cross-check: %s", summary.as_json())
    return summary


def latest_run(session: Session, class_id: int) -> CrossCheckRun | None:
    return session.scalar(select(CrossCheckRun).where(CrossCheckRun.class_id == class_id)
                          .order_by(CrossCheckRun.ran_at.desc(), CrossCheckRun.id.desc()).limit(1))


def open_crosscheck_alerts(session: Session, class_id: int) -> list[Alert]:
    """The class's cross-check alerts nobody has closed yet (they hold its payment)."""
    return list(session.scalars(select(Alert).where(
        Alert.class_id == class_id, Alert.rule.in_([r.value for r in CROSSCHECK_RULES]), Alert.state.in_(ACTIVE))
        .order_by(Alert.id)))


def crosscheck_results(session: Session, class_id: int) -> dict[int | None, list[dict[str, Any]]]:
    """The class's cross-check findings by trainee (None: about a teacher), each with its state: 待核查 (open, or its
    alert still active), 已确认 (its alert closed as a confirmed violation), 已排除 (cleared by an extract or closed
    otherwise)."""
    return crosscheck_results_by_class(session, [class_id]).get(class_id, defaultdict(list))


def crosscheck_results_by_class(session: Session, class_ids: Sequence[int] | None = None
                                ) -> dict[int, dict[int | None, list[dict[str, Any]]]]:
    """`crosscheck_results` of the classes given (of every class: None), in one query."""
    out: dict[int, dict[int | None, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    which = [Anomaly.class_id.in_(list(class_ids))] if class_ids is not None else []
    for anomaly in session.execute(  # the columns read (the public notice follows their changes: NOTICE_INPUTS)
            select(Anomaly.id, Anomaly.alert_id, Anomaly.class_id, Anomaly.trainee_id, Anomaly.rule, Anomaly.message,
                   Anomaly.state, Anomaly.evidence, Anomaly.created_at, Alert.state.label("alert_state"),
                   Alert.outcome.label("alert_outcome"))
            .outerjoin(Alert, Alert.id == Anomaly.alert_id)
            .where(Anomaly.subject_kind == SubjectKind.CROSSCHECK, *which)
            .order_by(Anomaly.id)).all():
        if anomaly.alert_state == "closed" and anomaly.alert_outcome == "violation_confirmed":
            state, label = "confirmed", "已确认"
        elif anomaly.state == "open" or anomaly.alert_state in ACTIVE:
            state, label = "open", "待核查"
        else:
            state, label = "cleared", "已排除"
        out[anomaly.class_id][anomaly.trainee_id].append({
            "anomaly_id": anomaly.id, "alert_id": anomaly.alert_id, "rule": anomaly.rule, "message": anomaly.message,
            "state": state, "state_text": label, "source": anomaly.evidence.get("register"),
            "register_period": anomaly.evidence.get("register_period"), "at": anomaly.created_at.isoformat()})
    return out


def employment_rates(session: Session, settings: Settings, key: RegisterKey) -> tuple[list[EmploymentRate], str | None]:
    """Per institution, completed trainees whose six months after the class the insurance extract covers, and those
    insured as employees within them; with the extract's period (None without one)."""
    imp = Registers.load(session).imports.get(INSURANCE)
    if imp is None or imp.key_id != key.key_id:
        return [], None
    cohort: list[tuple[int, date, int]] = []
    for institution_id, end, eligible in session.execute(
            select(TrainingClass.institution_id, TrainingClass.end_date, ClassPayment.eligible_trainee_ids)
            .join(ClassPayment, ClassPayment.class_id == TrainingClass.id)):
        if is_observable(end, imp.period):
            cohort.extend((institution_id, end, int(t)) for t in eligible or [])
    numbers: dict[int, str] = {}
    for part in chunks(sorted({t for _, _, t in cohort})):
        numbers.update(session.execute(select(Trainee.id, Trainee.id_number).where(Trainee.id.in_(part))).all())
    completed: dict[int, list[tuple[int, date, str]]] = defaultdict(list)
    for institution_id, end, trainee_id in cohort:
        if trainee_id in numbers:
            completed[institution_id].append((trainee_id, end, key.hash_id(numbers[trainee_id])))
    hashes = [h for people in completed.values() for _, _, h in people]
    rows = rows_by_hash(session, row_table(INSURANCE), imp.id, hashes)
    rates = []
    for institution_id, people in sorted(completed.items()):
        employed = sum(1 for _, end, h in people if employed_after(end, [
            Insured(r.employer, r.county_code, r.month_from, r.month_to, r.kind, None) for r in rows.get(h, [])]))
        rates.append(EmploymentRate(institution_id, len(people), employed))
    return rates, imp.period


def refresh_employment(db: Database, settings: Settings, now: datetime | None = None) -> list[InstitutionEmployment]:
    """Recompute every institution's post-training employment against the provincial median, and keep it for the
    draw's risk weight and the institution's figures (institutions no longer observable are dropped)."""
    now = now or utc_now()
    limits = limits_of(settings)
    key = settings.register_hash_key()
    with db.session() as session:
        rates, period = employment_rates(session, settings, key)
        med = provincial_median(rates, limits)
        # Through the ORM, each row changed only when its figures did (the chain records each change; `computed_at`
        # is when the figures it holds were computed): an hourly refresh of 2,000 institutions writes nothing new.
        held = {row.institution_id: row for row in session.scalars(select(InstitutionEmployment))}
        rows = []
        for r in rates:
            figures = {"insurance_period": period or "", "completed": r.completed, "employed": r.employed,
                       "median_rate": med, "shortfall": employment_shortfall(r, med, limits)}
            row = held.pop(r.institution_id, None)
            if row is None:
                row = InstitutionEmployment(institution_id=r.institution_id, computed_at=now, **figures)
                session.add(row)
            elif any(getattr(row, k) != v for k, v in figures.items()):
                for k, v in figures.items():
                    setattr(row, k, v)
                row.computed_at = now
            rows.append(row)
        for gone in held.values():
            session.delete(gone)
        session.flush()
        for row in rows:
            session.expunge(row)
        return rows


def shortfalls(session: Session) -> dict[int, float]:
    """Each institution's employment shortfall as last computed (0 for those not computed)."""
    return {i: float(s) for i, s in session.execute(
        select(InstitutionEmployment.institution_id, InstitutionEmployment.shortfall)).all()}


def payment_of(session: Session, class_id: int) -> dict[str, Any] | None:
    """The class's payment decision as the ledger and the payment list state it, or None before one."""
    p = session.scalar(select(ClassPayment).where(ClassPayment.class_id == class_id))
    if p is None:
        return None
    return {"id": p.id, "marked_by": p.marked_by, "marked_at": p.marked_at.isoformat(), "note": p.note,
            "eligible": len(p.eligible_trainee_ids or []), "eligible_trainee_ids": list(p.eligible_trainee_ids or []),
            "crosscheck_run_id": p.crosscheck_run_id, "crosscheck_at": p.crosscheck_at.isoformat(),
            "register_periods": p.register_periods, "ledger_sha256": p.ledger_sha256}


def crosscheck_all(db: Database, settings: Settings) -> None:
    """Every class due a cross-check, then the institutions' employment; logged, never raised (a background task
    and the worker's loop call it)."""
    try:
        run_crosscheck(db, settings)
        refresh_employment(db, settings)
    except Exception:  # noqa: BLE001 - the next run (worker interval) tries again
        log.exception("cross-check run failed")
