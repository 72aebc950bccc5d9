"""The clock rules as a pipeline: each rule's subjects loaded (monitor/services/clock_facts.py), judged by a pure
rule (monitor/decisions/clock_rules.py) and recorded once per subject, by whichever worker gets there first."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from models.clock import SHANGHAI, utc_now
from models.tables import Anomaly, CheckIn, RuleSubject, SessionReview, TrainingClass
from models.terms import SubjectKind
from monitor.adapters.storage import Database
from monitor.decisions.clock_rules import (
    ClockLimits,
    judge_attendance_rate,
    judge_enrolments,
    judge_quiet,
    judge_running_class,
    judge_session_teachers,
    judge_slot,
)
from monitor.decisions.verdicts import Finding
from monitor.services.alerts import NewAnomaly, add_anomalies, resolve_anomaly
from monitor.services.clock_facts import (
    ClockCase,
    attendance_key,
    claim_subjects,
    claimed_keys,
    load_attendance_rates,
    load_ended_sessions,
    load_ended_slots,
    load_enrolments,
    load_running_classes,
    load_sessions_in_progress,
)
from monitor.services.clock_facts import (
    claim_subject as claim_subject,
)
from monitor.services.events import class_context
from monitor.settings import Settings

log = logging.getLogger(__name__)

Loader = Callable[[Session, datetime, Settings], Iterator[ClockCase]]
Judge = Callable[[Any, ClockLimits], list[Finding]]
Recorder = Callable[[Session, ClockCase, list[Finding]], int]


def context_of(session: Session, cls: TrainingClass) -> dict[str, Any]:
    """`class_context` once per class for the tick's transaction (a tick records thousands of findings over the same
    classes and changes none of their names: four lookups each otherwise)."""
    cache: dict[int, dict[str, Any]] = session.info.setdefault("clock_class_contexts", {})
    if cls.id not in cache:
        cache[cls.id] = class_context(session, cls)
    return cache[cls.id]


def record_once(session: Session, case: ClockCase, findings: list[Finding]) -> int:
    """Each finding's anomaly, once per subject key (a finding whose key was claimed before is not raised again)."""
    return record_new(session, [(case, findings)])


def record_new(session: Session, batch: list[tuple[ClockCase, list[Finding]]]) -> int:
    """`record_once` for each case, in a few statements for the whole batch: the keys claimed before looked up at
    once, the new ones claimed at once, their anomalies stored at once (`add_anomalies`). A key two cases share goes
    to the first, as if the second found it claimed."""
    claimed = claimed_keys(session, {case.key_of(f) for case, found in batch for f in found})
    keyed: dict[str, tuple[ClockCase, list[Finding]]] = {}
    for case, found in batch:
        for finding in found:
            key = case.key_of(finding)
            if key not in claimed and (entry := keyed.setdefault(key, (case, [])))[0] is case:
                entry[1].append(finding)
    subject_ids = claim_subjects(session, list(keyed))
    items = [NewAnomaly(context_of(session, case.cls), finding, SubjectKind.CLOCK, subject_ids[key],
                        {"trainee_id": case.trainee_id, "trainee_name": case.trainee_name}, {"rule_key": key}, {})
             for key, (case, found) in keyed.items() if key in subject_ids for finding in found]
    return len(add_anomalies(session, items))


def record_session_review(session: Session, case: ClockCase, findings: list[Finding]) -> int:
    """The session's review (so it is judged once) and its teacher anomalies; counts the review."""
    session_id, day, facts = case.facts
    review = SessionReview(class_id=case.cls.id, session_id=session_id, day=day, snapshots=facts.snapshots,
                           teachers_seen=list(facts.class_teachers_seen), created_at=utc_now())
    session.add(review)
    session.flush()
    if findings:
        context = context_of(session, case.cls)
        add_anomalies(session, [NewAnomaly(context, finding, SubjectKind.SESSION, review.id,
                                           {"trainee_id": None, "trainee_name": None},
                                           {"session_name": facts.session_name, "day": day.isoformat()}, {})
                                for finding in findings])
    return 1


@dataclass(frozen=True)
class ClockRule:
    name: str
    load: Loader
    judge: Judge
    record: Recorder = record_once


def _judge_reviewed_session(facts: tuple[int, date, Any], limits: ClockLimits) -> list[Finding]:
    return judge_session_teachers(facts[2], limits)


ATTENDANCE = ClockRule("attendance", load_ended_slots, judge_slot)
SILENCE = ClockRule("silence", load_sessions_in_progress, judge_quiet)
LOW_ATTENDANCE = ClockRule("low_attendance", load_attendance_rates, judge_attendance_rate)
TEACHERS = ClockRule("teachers", load_ended_sessions, _judge_reviewed_session, record_session_review)
CLASS_AUDIT = ClockRule("class_audit", load_running_classes, judge_running_class)
DOUBLE_ENROLMENT = ClockRule("double_enrolment", load_enrolments, judge_enrolments)
CLOCK_RULES: tuple[ClockRule, ...] = (ATTENDANCE, SILENCE, LOW_ATTENDANCE, TEACHERS, CLASS_AUDIT, DOUBLE_ENROLMENT)


class PolicyClock:
    """Runs the clock rules for one moment (`local_now`, Asia/Shanghai); safe to run repeatedly and in parallel."""

    def __init__(self, settings: Settings, db: Database, rules: Sequence[ClockRule] = CLOCK_RULES) -> None:
        self.settings, self.db, self.rules = settings, db, rules
        self.limits = ClockLimits(settings.silent_after_minutes, settings.min_attendance_rate,
                                  settings.low_attendance_min_sessions)

    def run(self, now: datetime | None = None) -> int:
        """Every rule; one that fails is logged and does not stop the others. Returns what fired."""
        local_now = (now or utc_now()).astimezone(SHANGHAI)
        fired = 0
        for rule in self.rules:
            try:
                fired += self.run_rule(rule, local_now)
            except Exception:  # noqa: BLE001 - one failing rule must not stop the others
                log.exception("clock rule %s failed", rule.name)
        return fired

    def run_rule(self, rule: ClockRule, local_now: datetime) -> int:
        """Load the rule's subjects, judge each, record what is new, in one transaction. Findings raised once per key
        are looked up 500 cases at a time (one query), so a finding raised on an earlier tick costs no query each."""
        fired = 0
        with self.db.session() as session:
            batch: list[tuple[ClockCase, list[Finding]]] = []
            for case in rule.load(session, local_now.astimezone(SHANGHAI), self.settings):
                findings = rule.judge(case.facts, self.limits)
                if rule.record is not record_once:
                    fired += rule.record(session, case, findings)
                elif findings:
                    batch.append((case, findings))
                    if len(batch) >= 500:
                        fired, batch = fired + record_new(session, batch), []
            fired += record_new(session, batch)
        return fired

    def review_teachers(self, local_now: datetime) -> int:
        """Judge each session that ended today, once: TEACHER_ABSENT / TEACHER_MISMATCH; returns sessions reviewed."""
        return self.run_rule(TEACHERS, local_now)

    def audit_classes(self, local_now: datetime) -> int:
        """BLACKLISTED, CLASS_NOT_ALLOWED, SAME_TEACHER_BOTH and DOUBLE_ENROLMENT for running classes (once each)."""
        return self.run_rule(CLASS_AUDIT, local_now) + self.run_rule(DOUBLE_ENROLMENT, local_now)


def resolve_attendance(session: Session, checkin: CheckIn) -> None:
    """A late verified sign-in clears the session's NO_SHOW, a late sign-out its MISSING_SIGNOUT."""
    if checkin.session_id is None:
        return
    day = checkin.captured_at.astimezone(SHANGHAI).date()
    key = attendance_key(checkin.class_id, checkin.session_id, day, checkin.trainee_id)
    subject_id = session.scalar(select(RuleSubject.id).where(RuleSubject.key == key))
    if subject_id is None:
        return
    rule = "NO_SHOW" if checkin.kind == "sign_in" else "MISSING_SIGNOUT"
    local = checkin.captured_at.astimezone(SHANGHAI)
    for anomaly in session.scalars(select(Anomaly).where(
            Anomaly.subject_kind == SubjectKind.CLOCK, Anomaly.subject_id == subject_id, Anomaly.rule == rule,
            Anomaly.state == "open")):
        what = "补签到" if checkin.kind == "sign_in" else "补签退"
        resolve_anomaly(session, anomaly, f"学员已于 {local:%m月%d日 %H:%M} {what}（签到编号 {checkin.id}）")
