"""The clock rules as a pipeline: each judges one kind of subject's facts (loaded by monitor/services/clock.py)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from monitor.decisions.attendance import AttendanceTally, SessionAttendance
from monitor.decisions.classroom import judge_teachers
from monitor.decisions.rules import (
    ClassFacts,
    Schedule,
    judge_class_audit,
    judge_double_enrolment,
    judge_low_attendance,
    judge_silence,
    judge_slot_attendance,
)
from monitor.decisions.verdicts import Finding


@dataclass(frozen=True)
class ClockLimits:
    """The clock rules' limits (values in the settings)."""

    silent_after_min: int
    min_attendance_rate: float
    low_attendance_min_sessions: int


@dataclass(frozen=True)
class QuietFacts:
    """A session in progress and the class's last upload (local times)."""

    last_activity: datetime | None
    session_start: datetime
    now: datetime


@dataclass(frozen=True)
class TeacherFacts:
    """One ended session of one day: how many snapshots, and which teachers they showed."""

    session_name: str
    snapshots: int
    class_teachers_seen: Sequence[int]
    other_teachers_seen: Sequence[int]


@dataclass(frozen=True)
class EnrolmentFacts:
    """One rostered class of a trainee and the trainee's other classes (later ids) that could clash with it."""

    mine: Schedule
    others: Sequence[Schedule]


def judge_slot(facts: SessionAttendance, limits: ClockLimits) -> list[Finding]:
    """NO_SHOW / MISSING_SIGNOUT for one trainee in one ended session; a check-in awaiting an operator's review
    holds the rule until the review decides (a confirmed one counts, a rejected one lets the rule fire)."""
    return judge_slot_attendance(facts.signed_in or facts.sign_in_pending,
                                 facts.signed_out or facts.sign_out_pending, facts.slot.name, facts.slot.day)


def judge_quiet(facts: QuietFacts, limits: ClockLimits) -> list[Finding]:
    """CLASS_SILENT."""
    return judge_silence(facts.last_activity, facts.session_start, facts.now, limits.silent_after_min)


def judge_attendance_rate(facts: AttendanceTally, limits: ClockLimits) -> list[Finding]:
    """LOW_ATTENDANCE."""
    return judge_low_attendance(facts.rate, facts.scheduled, limits.min_attendance_rate,
                                limits.low_attendance_min_sessions)


def judge_session_teachers(facts: TeacherFacts, limits: ClockLimits) -> list[Finding]:
    """TEACHER_ABSENT / TEACHER_MISMATCH."""
    return judge_teachers(facts.snapshots, facts.class_teachers_seen, facts.other_teachers_seen, facts.session_name)


def judge_running_class(facts: ClassFacts, limits: ClockLimits) -> list[Finding]:
    """BLACKLISTED, CLASS_NOT_ALLOWED, SAME_TEACHER_BOTH."""
    return judge_class_audit(facts)


def judge_enrolments(facts: EnrolmentFacts, limits: ClockLimits) -> list[Finding]:
    """DOUBLE_ENROLMENT."""
    return judge_double_enrolment(facts.mine, facts.others)
