"""Every query of the clock rules: for one moment, the subjects each rule judges, with their facts."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models.clock import SHANGHAI, local_at
from models.tables import (
    CheckIn,
    ClassSession,
    Institution,
    Occupation,
    RosterEntry,
    SessionReview,
    Snapshot,
    Teacher,
    Trainee,
    TrainingClass,
    Verification,
)
from models.terms import SubjectKind, UploadStatus
from monitor.decisions.attendance import Mark, scheduled_slots, trainee_attendance
from monitor.decisions.clock_rules import EnrolmentFacts, QuietFacts, TeacherFacts
from monitor.decisions.rules import ClassFacts, Schedule
from monitor.decisions.verdicts import Finding
from monitor.settings import Settings


@dataclass
class ClockCase:
    """One subject a clock rule judges once: its class, facts, whom it names and the key that makes it once."""

    cls: TrainingClass
    facts: Any
    key_of: Callable[[Finding], str]  # the RuleSubject key of a finding (claimed once, by any worker)
    trainee_id: int | None = None
    trainee_name: str | None = None


def fixed_key(key: str) -> Callable[[Finding], str]:
    """A subject judged once whatever it finds."""
    return lambda _finding: key


def audit_key(class_id: int) -> Callable[[Finding], str]:
    """A running class judged once per rule."""
    return lambda finding: f"AUDIT:{finding.code.value}:{class_id}"


def double_enrolment_key(trainee_id: int, class_id: int) -> Callable[[Finding], str]:
    """A trainee's class judged once per set of clashing classes."""
    return lambda finding: f"DOUBLE:{trainee_id}:{class_id}:{','.join(map(str, finding.evidence['other_class_ids']))}"


def attendance_key(class_id: int, session_id: int, day: date, trainee_id: int) -> str:
    return f"ATTEND:{class_id}:{session_id}:{day.isoformat()}:{trainee_id}"


def active_classes(session: Session, day: date) -> list[TrainingClass]:
    return list(session.scalars(select(TrainingClass).where(
        TrainingClass.start_date <= day, TrainingClass.end_date >= day, TrainingClass.mode == "offline")))


def sessions_of(session: Session, class_id: int) -> list[ClassSession]:
    return list(session.scalars(select(ClassSession).where(ClassSession.class_id == class_id)
                                .order_by(ClassSession.start_local)))


def marks_of(session: Session, class_id: int, since: datetime) -> dict[int, list[Mark]]:
    """Each trainee's verified sign-ins and sign-outs since `since`, and those awaiting review (pending)."""
    marks: dict[int, list[Mark]] = defaultdict(list)
    for c in session.scalars(select(CheckIn).where(
            CheckIn.class_id == class_id, CheckIn.status.in_([UploadStatus.PASSED, UploadStatus.REVIEW]),
            CheckIn.captured_at >= since.astimezone(UTC)).order_by(CheckIn.captured_at)):
        marks[c.trainee_id].append(Mark(c.kind, c.captured_at, c.session_id, c.id, c.photo_sha256,
                                        pending=c.status == UploadStatus.REVIEW))
    return marks


def load_ended_slots(session: Session, local_now: datetime, settings: Settings) -> Iterator[ClockCase]:
    """Every rostered trainee in every session that ended `attendance_grace_minutes` ago (today and yesterday)."""
    grace = timedelta(minutes=settings.attendance_grace_minutes)
    for cls in active_classes(session, local_now.date()):
        sessions = [(s.id, s.name, s.start_local, s.end_local) for s in sessions_of(session, cls.id)]
        since = max(cls.start_date, local_now.date() - timedelta(days=1))
        slots = scheduled_slots(since, cls.end_date, sessions, local_now - grace)
        if not slots:
            continue
        marks = marks_of(session, cls.id, datetime.combine(since, time(0), SHANGHAI))
        roster = session.execute(
            select(Trainee.id, Trainee.name).join(RosterEntry, RosterEntry.trainee_id == Trainee.id)
            .where(RosterEntry.class_id == cls.id)).all()
        for trainee_id, name in roster:
            for s in trainee_attendance(slots, marks[trainee_id], settings.min_attendance_rate).sessions:
                key = attendance_key(cls.id, s.slot.session_id, s.slot.day, trainee_id)
                yield ClockCase(cls, s, fixed_key(key), trainee_id, name)


def load_sessions_in_progress(session: Session, local_now: datetime, settings: Settings) -> Iterator[ClockCase]:
    """Every session in progress, with the class's last check-in or snapshot."""
    hhmm = local_now.strftime("%H:%M")
    for cls in active_classes(session, local_now.date()):
        for s in sessions_of(session, cls.id):
            if not s.start_local <= hhmm < s.end_local:
                continue
            start = local_at(local_now.date(), s.start_local)
            last = max(filter(None, [
                session.scalar(select(func.max(CheckIn.received_at)).where(
                    CheckIn.class_id == cls.id, CheckIn.received_at <= local_now)),
                session.scalar(select(func.max(Snapshot.received_at)).where(
                    Snapshot.class_id == cls.id, Snapshot.received_at <= local_now)),
            ]), default=None)
            key = f"SILENT:{cls.id}:{s.id}:{local_now.date().isoformat()}"
            yield ClockCase(cls, QuietFacts(last, start, local_now), fixed_key(key))


def load_attendance_rates(session: Session, local_now: datetime, settings: Settings) -> Iterator[ClockCase]:
    """Every rostered trainee's attendance so far, once the day's last session ended (plus the grace)."""
    grace = timedelta(minutes=settings.attendance_grace_minutes)
    for cls in active_classes(session, local_now.date()):
        sessions = [(s.id, s.name, s.start_local, s.end_local) for s in sessions_of(session, cls.id)]
        if not sessions:
            continue
        last_end = local_at(local_now.date(), max(s[3] for s in sessions))
        if local_now < last_end + grace:
            continue
        slots = scheduled_slots(cls.start_date, cls.end_date, sessions, local_now)
        marks = marks_of(session, cls.id, datetime.combine(cls.start_date, time(0), SHANGHAI))
        for (trainee_id,) in session.execute(select(RosterEntry.trainee_id)
                                             .where(RosterEntry.class_id == cls.id)).all():
            key = f"LOWATT:{cls.id}:{trainee_id}:{local_now.date().isoformat()}"
            yield ClockCase(cls, trainee_attendance(slots, marks[trainee_id], settings.min_attendance_rate),
                            fixed_key(key), trainee_id)


def load_ended_sessions(session: Session, local_now: datetime, settings: Settings) -> Iterator[ClockCase]:
    """Each session that ended today and was not reviewed yet, with the teachers its snapshots showed."""
    today, hhmm = local_now.date(), local_now.strftime("%H:%M")
    rows = session.execute(
        select(TrainingClass, ClassSession).join(ClassSession, ClassSession.class_id == TrainingClass.id)
        .where(TrainingClass.start_date <= today, TrainingClass.end_date >= today, ClassSession.end_local <= hhmm)
    ).all()
    for cls, cs in rows:
        if session.scalar(select(SessionReview.id).where(
                SessionReview.class_id == cls.id, SessionReview.session_id == cs.id,
                SessionReview.day == today)) is not None:
            continue
        start = local_at(today, cs.start_local).astimezone(UTC)
        end = local_at(today, cs.end_local).astimezone(UTC)
        measured = [m for (m,) in session.execute(
            select(Verification.measured).join(
                Snapshot,
                (Verification.subject_kind == SubjectKind.SNAPSHOT) & (Verification.subject_id == Snapshot.id))
            .where(Snapshot.class_id == cls.id, Snapshot.captured_at >= start, Snapshot.captured_at <= end))]
        class_seen = sorted({t for m in measured for t in m.get("teachers_seen", [])})
        others = sorted({t for m in measured for t in m.get("other_teachers_seen", [])})
        facts = TeacherFacts(cs.name, len(measured), class_seen, others)
        yield ClockCase(cls, (cs.id, today, facts), fixed_key(""))  # judged once by its SessionReview row


def load_running_classes(session: Session, local_now: datetime, settings: Settings) -> Iterator[ClockCase]:
    """Each running class's institution, teachers and occupation."""
    for cls in active_classes(session, local_now.date()):
        institution = session.get(Institution, cls.institution_id)
        occupation = session.get(Occupation, cls.occupation_id)
        teachers = [session.get(Teacher, cls.theory_teacher_id), session.get(Teacher, cls.practical_teacher_id)]
        assert institution is not None and occupation is not None and all(teachers)
        facts = ClassFacts(
            institution.name, institution.blacklisted,
            [(t.id, t.name, t.id_number, t.blacklisted) for t in teachers if t],
            occupation.name, (occupation.has_training_standard, occupation.has_evaluation_standard,
                              occupation.has_evaluation_body))
        yield ClockCase(cls, facts, audit_key(cls.id))


def load_enrolments(session: Session, local_now: datetime, settings: Settings) -> Iterator[ClockCase]:
    """Each trainee's rostered running classes, each with the trainee's later classes."""
    active = active_classes(session, local_now.date())
    by_id = {c.id: c for c in active}
    schedules = {c.id: Schedule(c.id, c.start_date, c.end_date,
                                [(s.start_local, s.end_local) for s in sessions_of(session, c.id)]) for c in active}
    classes_of: dict[int, list[int]] = defaultdict(list)
    for class_id, trainee_id in session.execute(
            select(RosterEntry.class_id, RosterEntry.trainee_id)
            .where(RosterEntry.class_id.in_(list(schedules)))).all():
        classes_of[trainee_id].append(class_id)
    for trainee_id, class_ids in classes_of.items():
        for class_id in class_ids:
            facts = EnrolmentFacts(schedules[class_id], [schedules[o] for o in class_ids if o > class_id])
            yield ClockCase(by_id[class_id], facts, double_enrolment_key(trainee_id, class_id), trainee_id)
