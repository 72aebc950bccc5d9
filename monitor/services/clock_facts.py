"""Every query of the clock rules: for one moment, the subjects each rule judges (what is due), with their facts."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from models.clock import SHANGHAI, local_at, utc_now
from models.tables import (
    CheckIn,
    ClassSession,
    Institution,
    Occupation,
    RosterEntry,
    RuleSubject,
    SessionReview,
    Snapshot,
    Teacher,
    Trainee,
    TrainingClass,
    Verification,
    shanghai_date,
)
from models.terms import SubjectKind, UploadStatus
from monitor.decisions.attendance import AttendanceTally, Mark, SessionSlot, scheduled_slots, trainee_attendance
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
    return list(session.scalars(select(TrainingClass).where(*running_on(day)).order_by(TrainingClass.id)))


def running_on(day: date) -> list[Any]:
    """The filter of the offline classes whose term includes `day` (the classes the clock rules look at)."""
    return [TrainingClass.start_date <= day, TrainingClass.end_date >= day, TrainingClass.mode == "offline"]


def sessions_of(session: Session, class_id: int) -> list[ClassSession]:
    return list(session.scalars(select(ClassSession).where(ClassSession.class_id == class_id)
                                .order_by(ClassSession.start_local)))


def sessions_by_class(session: Session, day: date) -> dict[int, list[ClassSession]]:
    """The sessions of every class running on `day`, in one query, each class's by start time."""
    out: dict[int, list[ClassSession]] = defaultdict(list)
    for s in session.scalars(select(ClassSession).join(TrainingClass, TrainingClass.id == ClassSession.class_id)
                             .where(*running_on(day)).order_by(ClassSession.class_id, ClassSession.start_local)):
        out[s.class_id].append(s)
    return out


def claim_subject(session: Session, key: str) -> int | None:
    """The id for a newly judged subject, or None if it was judged before (by this or another worker)."""
    if session.scalar(select(RuleSubject.id).where(RuleSubject.key == key)) is not None:
        return None
    try:
        with session.begin_nested():
            row = RuleSubject(key=key, created_at=utc_now())
            session.add(row)
            session.flush()
    except IntegrityError:
        return None
    return row.id


def claim_subjects(session: Session, keys: Sequence[str]) -> dict[str, int]:
    """Claim `keys`, found unclaimed in this transaction (`claimed_keys`), at once: their ids. One savepoint and one
    insert of many rows; when another worker claimed one of them since (the unique key refuses the insert), each is
    claimed on its own and those already taken are left out."""
    if not keys:
        return {}
    now = utc_now()
    rows = [RuleSubject(key=key, created_at=now) for key in dict.fromkeys(keys)]
    try:
        with session.begin_nested():
            session.add_all(rows)
            session.flush()
    except IntegrityError:
        return {key: subject_id for key in dict.fromkeys(keys) if (subject_id := claim_subject(session, key))}
    return {row.key: row.id for row in rows}


def claimed_keys(session: Session, keys: Collection[str]) -> set[str]:
    """Those of `keys` judged before (a RuleSubject row each), by the unique index, a thousand at a time."""
    wanted, out = sorted(keys), set()
    for start in range(0, len(wanted), 1000):
        out |= set(session.scalars(select(RuleSubject.key).where(RuleSubject.key.in_(wanted[start:start + 1000]))))
    return out


def marks_of(session: Session, class_id: int, since: datetime, until: datetime | None = None,
             session_ids: Collection[int] | None = None) -> dict[int, list[Mark]]:
    """Each trainee's verified sign-ins and sign-outs since `since` (and before `until`; of `session_ids` only, when
    given), and those awaiting review (pending)."""
    marks: dict[int, list[Mark]] = defaultdict(list)
    within = [CheckIn.captured_at < until.astimezone(UTC)] if until is not None else []
    if session_ids is not None:
        within.append(CheckIn.session_id.in_(list(session_ids)))
    for c in session.execute(select(  # columns, not entities: no identity map of every check-in in the tick
            CheckIn.id, CheckIn.trainee_id, CheckIn.kind, CheckIn.captured_at, CheckIn.session_id,
            CheckIn.photo_sha256, CheckIn.status).where(
            CheckIn.class_id == class_id, CheckIn.status.in_([UploadStatus.PASSED, UploadStatus.REVIEW]),
            CheckIn.captured_at >= since.astimezone(UTC), *within).order_by(CheckIn.captured_at)):
        marks[c.trainee_id].append(Mark(c.kind, c.captured_at, c.session_id, c.id, c.photo_sha256,
                                        pending=c.status == UploadStatus.REVIEW))
    return marks


def slot_settled_key(class_id: int, session_id: int, day: date) -> str:
    """A (class, session, day) whose every rostered trainee was judged with no check-in awaiting review."""
    return f"SLOT:{class_id}:{session_id}:{day.isoformat()}"


def load_ended_slots(session: Session, local_now: datetime, settings: Settings) -> Iterator[ClockCase]:
    """Every rostered trainee in every session that ended `attendance_grace_minutes` ago (today and yesterday) and
    is not settled yet: a session is settled once all its trainees were judged with none held by a check-in
    awaiting review (each finding is raised once anyway); later ticks look at what is new or still held only."""
    grace = timedelta(minutes=settings.attendance_grace_minutes)
    today = local_now.date()
    sessions = sessions_by_class(session, today)
    due: list[tuple[TrainingClass, date, list[SessionSlot]]] = []
    for cls in active_classes(session, today):
        spans = [(s.id, s.name, s.start_local, s.end_local) for s in sessions.get(cls.id, [])]
        since = max(cls.start_date, today - timedelta(days=1))
        slots = scheduled_slots(since, cls.end_date, spans, local_now - grace)
        if slots:
            due.append((cls, since, slots))
    settled = claimed_keys(session, {slot_settled_key(cls.id, s.session_id, s.day) for cls, _, slots in due
                                     for s in slots})
    for cls, _since, slots in due:
        open_slots = [s for s in slots if slot_settled_key(cls.id, s.session_id, s.day) not in settled]
        if not open_slots:
            continue
        # only the open sessions' check-ins (once yesterday's settled, today's; once the morning's, the afternoon's)
        marks = marks_of(session, cls.id, datetime.combine(min(s.day for s in open_slots), time(0), SHANGHAI),
                         datetime.combine(max(s.day for s in open_slots) + timedelta(days=1), time(0), SHANGHAI),
                         {s.session_id for s in open_slots})
        roster = session.execute(
            select(Trainee.id, Trainee.name).join(RosterEntry, RosterEntry.trainee_id == Trainee.id)
            .where(RosterEntry.class_id == cls.id)).all()
        held: set[tuple[int, date]] = set()
        for trainee_id, name in roster:
            for s in trainee_attendance(open_slots, marks[trainee_id], settings.min_attendance_rate).sessions:
                if s.sign_in_pending or s.sign_out_pending:
                    held.add((s.slot.session_id, s.slot.day))
                key = attendance_key(cls.id, s.slot.session_id, s.slot.day, trainee_id)
                yield ClockCase(cls, s, fixed_key(key), trainee_id, name)
        for slot in open_slots:  # reached once every case above was judged and recorded
            if (slot.session_id, slot.day) not in held:
                claim_subject(session, slot_settled_key(cls.id, slot.session_id, slot.day))


def load_sessions_in_progress(session: Session, local_now: datetime, settings: Settings) -> Iterator[ClockCase]:
    """Every session in progress not yet found silent today, with the class's last check-in or snapshot (read
    for all of them in two grouped queries over what arrived since the earliest of their starts)."""
    today, hhmm = local_now.date(), local_now.strftime("%H:%M")
    running = session.execute(
        select(TrainingClass, ClassSession).join(ClassSession, ClassSession.class_id == TrainingClass.id)
        .where(*running_on(today), ClassSession.start_local <= hhmm, ClassSession.end_local > hhmm)
        .order_by(TrainingClass.id, ClassSession.start_local)).all()
    keys = {cs.id: f"SILENT:{cls.id}:{cs.id}:{today.isoformat()}" for cls, cs in running}
    fired = claimed_keys(session, set(keys.values()))
    rows = [(cls, cs) for cls, cs in running if keys[cs.id] not in fired]
    if not rows:
        return
    earliest = min(local_at(today, cs.start_local) for _, cs in rows)
    class_ids = sorted({cls.id for cls, _ in rows})
    latest: dict[int, datetime] = {}
    for model in (CheckIn, Snapshot):
        for first in range(0, len(class_ids), 1000):
            for class_id, at in session.execute(
                    select(model.class_id, func.max(model.received_at))
                    .where(model.class_id.in_(class_ids[first:first + 1000]), model.received_at >= earliest,
                           model.received_at <= local_now).group_by(model.class_id)):
                if at is not None:
                    latest[class_id] = max(latest.get(class_id, at), at)
    quiet_after = timedelta(minutes=settings.silent_after_minutes)
    for cls, cs in rows:
        start = local_at(today, cs.start_local)
        last = latest.get(cls.id)
        if last is None or last < start:
            if local_now - start >= quiet_after:  # it may fire: its finding cites the last upload ever
                last = last_upload(session, cls.id, local_now)
            else:
                last = None  # nothing since the start and not quiet long enough: judged the same either way
        yield ClockCase(cls, QuietFacts(last, start, local_now), fixed_key(keys[cs.id]))


def last_upload(session: Session, class_id: int, until: datetime) -> datetime | None:
    """The class's last check-in or snapshot received by `until`."""
    return max(filter(None, [
        session.scalar(select(func.max(CheckIn.received_at)).where(
            CheckIn.class_id == class_id, CheckIn.received_at <= until)),
        session.scalar(select(func.max(Snapshot.received_at)).where(
            Snapshot.class_id == class_id, Snapshot.received_at <= until)),
    ]), default=None)


def rates_settled_key(class_id: int, day: date) -> str:
    """A class whose trainees' attendance rates were judged for the day with none held by a pending review."""
    return f"RATES:{class_id}:{day.isoformat()}"


def load_attendance_rates(session: Session, local_now: datetime, settings: Settings) -> Iterator[ClockCase]:
    """Every rostered trainee's attendance so far, once the day's last session ended (plus the grace), for the
    classes not settled for the day yet (judged with no check-in awaiting review). Counted by the database
    (`attendance_tallies`): the rule needs counts, not each session's detail, over a term that may be months long."""
    grace = timedelta(minutes=settings.attendance_grace_minutes)
    today = local_now.date()
    sessions = sessions_by_class(session, today)
    due = []
    for cls in active_classes(session, today):
        spans = [(s.id, s.name, s.start_local, s.end_local) for s in sessions.get(cls.id, [])]
        if spans and local_now >= local_at(today, max(s[3] for s in spans)) + grace:
            due.append((cls, spans))
    settled = claimed_keys(session, {rates_settled_key(cls.id, today) for cls, _ in due})
    due = [(cls, spans) for cls, spans in due if rates_settled_key(cls.id, today) not in settled]
    for part in (due[i:i + 500] for i in range(0, len(due), 500)):
        tallies = attendance_tallies(session, [cls.id for cls, _ in part], today)
        rosters: dict[int, list[int]] = defaultdict(list)
        for class_id, trainee_id in session.execute(select(RosterEntry.class_id, RosterEntry.trainee_id).where(
                RosterEntry.class_id.in_([cls.id for cls, _ in part])).order_by(RosterEntry.trainee_id)):
            rosters[class_id].append(trainee_id)
        settled_now = []
        for cls, spans in part:
            scheduled = len(scheduled_slots(cls.start_date, cls.end_date, spans, local_now))
            held = False
            for trainee_id in rosters[cls.id]:
                attended, pending = tallies.get((cls.id, trainee_id), (0, 0))
                held = held or pending > 0
                yield ClockCase(cls, AttendanceTally(scheduled, attended, pending),
                                fixed_key(f"LOWATT:{cls.id}:{trainee_id}:{today.isoformat()}"), trainee_id)
            if not held:
                settled_now.append(rates_settled_key(cls.id, today))
        claim_subjects(session, settled_now)  # one insert for the part's settled classes, not one each


def attendance_tallies(session: Session, class_ids: Sequence[int],
                       until: date) -> dict[tuple[int, int], tuple[int, int]]:
    """For each (class, trainee): the sessions attended and those pending review, from the class's first day to
    `until` (Shanghai days), counted in the database exactly as `session_attendance` counts them.

    A session of a day is attended with a passed sign-in and a passed sign-out of it; it is pending when not attended
    but each of the two is passed or awaiting review. Check-ins are counted against the class's own sessions only.
    Held equal to the session-by-session count (monitor.decisions.attendance) by tests/test_policy_rules.py."""
    day = shanghai_date(CheckIn.captured_at)

    def has(kind: str, status: UploadStatus) -> Any:
        return func.max(case((and_(CheckIn.kind == kind, CheckIn.status == status), 1), else_=0))

    slot = (select(CheckIn.class_id, CheckIn.trainee_id, has("sign_in", UploadStatus.PASSED).label("i"),
                   has("sign_out", UploadStatus.PASSED).label("o"), has("sign_in", UploadStatus.REVIEW).label("ip"),
                   has("sign_out", UploadStatus.REVIEW).label("op"))
            .join(ClassSession, and_(ClassSession.id == CheckIn.session_id, ClassSession.class_id == CheckIn.class_id))
            .join(TrainingClass, TrainingClass.id == CheckIn.class_id)
            .where(CheckIn.class_id.in_(list(class_ids)),
                   CheckIn.status.in_([UploadStatus.PASSED, UploadStatus.REVIEW]),
                   day >= TrainingClass.start_date, day <= until)
            .group_by(CheckIn.class_id, CheckIn.trainee_id, CheckIn.session_id, day)).subquery()
    both = and_(slot.c.i == 1, slot.c.o == 1)
    attended = func.sum(case((both, 1), else_=0))
    pending = func.sum(case((and_(~both, or_(slot.c.i == 1, slot.c.ip == 1), or_(slot.c.o == 1, slot.c.op == 1)), 1),
                            else_=0))
    return {(class_id, trainee_id): (int(a), int(p)) for class_id, trainee_id, a, p in session.execute(
        select(slot.c.class_id, slot.c.trainee_id, attended, pending).group_by(slot.c.class_id, slot.c.trainee_id))}


def load_ended_sessions(session: Session, local_now: datetime, settings: Settings) -> Iterator[ClockCase]:
    """Each session that ended today and was not reviewed yet, with the teachers its snapshots showed."""
    today, hhmm = local_now.date(), local_now.strftime("%H:%M")
    reviewed = select(SessionReview.id).where(SessionReview.class_id == TrainingClass.id,
                                              SessionReview.session_id == ClassSession.id, SessionReview.day == today)
    rows = session.execute(
        select(TrainingClass, ClassSession).join(ClassSession, ClassSession.class_id == TrainingClass.id)
        .where(TrainingClass.start_date <= today, TrainingClass.end_date >= today, ClassSession.end_local <= hhmm,
               ~reviewed.exists())
    ).all()
    for cls, cs in rows:
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
    """Each running class's institution, teachers and occupation (one query for all of them)."""
    theory, practical = aliased(Teacher), aliased(Teacher)
    for cls, institution, occupation, *teachers in session.execute(
            select(TrainingClass, Institution, Occupation, theory, practical)
            .join(Institution, Institution.id == TrainingClass.institution_id)
            .join(Occupation, Occupation.id == TrainingClass.occupation_id)
            .join(theory, theory.id == TrainingClass.theory_teacher_id)
            .join(practical, practical.id == TrainingClass.practical_teacher_id)
            .where(*running_on(local_now.date())).order_by(TrainingClass.id)).all():
        facts = ClassFacts(
            institution.name, institution.blacklisted,
            [(t.id, t.name, t.id_number, t.blacklisted) for t in teachers],
            occupation.name, (occupation.has_training_standard, occupation.has_evaluation_standard,
                              occupation.has_evaluation_body))
        yield ClockCase(cls, facts, audit_key(cls.id))


def load_enrolments(session: Session, local_now: datetime, settings: Settings) -> Iterator[ClockCase]:
    """Each rostered running class of a trainee on two or more of them, each with the trainee's later classes (a
    trainee on one running class cannot clash: the database picks the others out, by the roster's index)."""
    today = local_now.date()
    running = select(TrainingClass.id).where(*running_on(today))
    several = (select(RosterEntry.trainee_id).where(RosterEntry.class_id.in_(running))
               .group_by(RosterEntry.trainee_id).having(func.count() > 1))
    classes_of: dict[int, list[int]] = defaultdict(list)
    for class_id, trainee_id in session.execute(
            select(RosterEntry.class_id, RosterEntry.trainee_id)
            .where(RosterEntry.trainee_id.in_(several), RosterEntry.class_id.in_(running))
            .order_by(RosterEntry.trainee_id, RosterEntry.class_id)).all():
        classes_of[trainee_id].append(class_id)
    if not classes_of:
        return
    involved = sorted({c for ids in classes_of.values() for c in ids})
    by_id = {c.id: c for c in session.scalars(select(TrainingClass).where(TrainingClass.id.in_(involved)))}
    sessions = sessions_by_class(session, today)
    schedules = {c.id: Schedule(c.id, c.start_date, c.end_date,
                                [(s.start_local, s.end_local) for s in sessions.get(c.id, [])])
                 for c in by_id.values()}
    for trainee_id, class_ids in classes_of.items():
        for class_id in class_ids:
            facts = EnrolmentFacts(schedules[class_id], [schedules[o] for o in class_ids if o > class_id])
            yield ClockCase(by_id[class_id], facts, double_enrolment_key(trainee_id, class_id), trainee_id)
