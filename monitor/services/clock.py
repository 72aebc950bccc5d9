"""The clock rules (attendance, silence, low attendance, teacher presence, class audit), each firing once a subject."""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from models.clock import SHANGHAI, utc_now
from models.tables import (
    Anomaly,
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
)
from monitor.adapters.storage import Database
from monitor.decisions.attendance import Mark, scheduled_slots, trainee_attendance
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
from monitor.services.alerts import add_anomaly, class_context, resolve_anomaly
from monitor.settings import Settings

log = logging.getLogger(__name__)


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


def attendance_key(class_id: int, session_id: int, day: date, trainee_id: int) -> str:
    return f"ATTEND:{class_id}:{session_id}:{day.isoformat()}:{trainee_id}"


class PolicyClock:
    """Runs the clock rules for one moment (`local_now`, Asia/Shanghai); safe to run repeatedly and in parallel."""

    def __init__(self, settings: Settings, db: Database) -> None:
        self.settings = settings
        self.db = db

    def run(self, now: datetime | None = None) -> int:
        local_now = (now or utc_now()).astimezone(SHANGHAI)
        fired = 0
        for step in (self.check_attendance, self.check_silence, self.check_low_attendance, self.review_teachers,
                     self.audit_classes):
            try:
                fired += step(local_now)
            except Exception:  # noqa: BLE001 - one failing rule must not stop the others
                log.exception("clock rule %s failed", step.__name__)
        return fired

    def _fire(self, session: Session, cls: TrainingClass, key: str, findings: list[Finding],
              trainee_id: int | None = None, trainee_name: str | None = None) -> int:
        if not findings:
            return 0
        subject_id = claim_subject(session, key)
        if subject_id is None:
            return 0
        context = class_context(session, cls)
        for finding in findings:
            add_anomaly(session, context, finding, "clock", subject_id,
                        {"trainee_id": trainee_id, "trainee_name": trainee_name}, {"rule_key": key}, {})
        return len(findings)

    def _active_classes(self, session: Session, day: date) -> list[TrainingClass]:
        return list(session.scalars(select(TrainingClass).where(
            TrainingClass.start_date <= day, TrainingClass.end_date >= day, TrainingClass.mode == "offline")))

    def _sessions(self, session: Session, class_id: int) -> list[ClassSession]:
        return list(session.scalars(select(ClassSession).where(ClassSession.class_id == class_id)
                                    .order_by(ClassSession.start_local)))

    def _marks(self, session: Session, class_id: int, since: datetime) -> dict[int, list[Mark]]:
        marks: dict[int, list[Mark]] = defaultdict(list)
        for c in session.scalars(select(CheckIn).where(
                CheckIn.class_id == class_id, CheckIn.status == "passed",
                CheckIn.captured_at >= since.astimezone(UTC)).order_by(CheckIn.captured_at)):
            marks[c.trainee_id].append(Mark(c.kind, c.captured_at, c.session_id, c.id, c.photo_sha256))
        return marks

    def check_attendance(self, local_now: datetime) -> int:
        """NO_SHOW / MISSING_SIGNOUT for every rostered trainee once a session ended `grace` minutes ago."""
        grace = timedelta(minutes=self.settings.attendance_grace_minutes)
        fired = 0
        with self.db.session() as session:
            for cls in self._active_classes(session, local_now.date()):
                sessions = [(s.id, s.name, s.start_local, s.end_local) for s in self._sessions(session, cls.id)]
                since = max(cls.start_date, local_now.date() - timedelta(days=1))
                slots = [s for s in scheduled_slots(since, cls.end_date, sessions, local_now - grace)]
                if not slots:
                    continue
                marks = self._marks(session, cls.id, datetime.combine(since, time(0), SHANGHAI))
                roster = session.execute(
                    select(Trainee.id, Trainee.name).join(RosterEntry, RosterEntry.trainee_id == Trainee.id)
                    .where(RosterEntry.class_id == cls.id)).all()
                for trainee_id, name in roster:
                    a = trainee_attendance(slots, marks[trainee_id])
                    for s in a.sessions:
                        findings = judge_slot_attendance(s.signed_in, s.signed_out, s.slot.name, s.slot.day)
                        key = attendance_key(cls.id, s.slot.session_id, s.slot.day, trainee_id)
                        fired += self._fire(session, cls, key, findings, trainee_id, name)
        return fired

    def check_silence(self, local_now: datetime) -> int:
        """CLASS_SILENT for a class in session that sent nothing for `silent_after_minutes`."""
        fired = 0
        hhmm = local_now.strftime("%H:%M")
        with self.db.session() as session:
            for cls in self._active_classes(session, local_now.date()):
                for s in self._sessions(session, cls.id):
                    if not s.start_local <= hhmm < s.end_local:
                        continue
                    start = datetime.combine(local_now.date(), time.fromisoformat(s.start_local), SHANGHAI)
                    last = max(filter(None, [
                        session.scalar(select(func.max(CheckIn.received_at)).where(
                            CheckIn.class_id == cls.id, CheckIn.received_at <= local_now)),
                        session.scalar(select(func.max(Snapshot.received_at)).where(
                            Snapshot.class_id == cls.id, Snapshot.received_at <= local_now)),
                    ]), default=None)
                    findings = judge_silence(last, start, local_now,
                                             self.settings.silent_after_minutes)
                    key = f"SILENT:{cls.id}:{s.id}:{local_now.date().isoformat()}"
                    fired += self._fire(session, cls, key, findings)
        return fired

    def check_low_attendance(self, local_now: datetime) -> int:
        """LOW_ATTENDANCE once a day, after the day's last session, for trainees under the minimum rate."""
        fired = 0
        grace = timedelta(minutes=self.settings.attendance_grace_minutes)
        with self.db.session() as session:
            for cls in self._active_classes(session, local_now.date()):
                sessions = [(s.id, s.name, s.start_local, s.end_local) for s in self._sessions(session, cls.id)]
                if not sessions:
                    continue
                last_end = datetime.combine(local_now.date(), time.fromisoformat(max(s[3] for s in sessions)),
                                            SHANGHAI)
                if local_now < last_end + grace:
                    continue
                slots = scheduled_slots(cls.start_date, cls.end_date, sessions, local_now)
                marks = self._marks(session, cls.id, datetime.combine(cls.start_date, time(0), SHANGHAI))
                for (trainee_id,) in session.execute(select(RosterEntry.trainee_id)
                                                     .where(RosterEntry.class_id == cls.id)).all():
                    a = trainee_attendance(slots, marks[trainee_id])
                    findings = judge_low_attendance(a.rate, a.scheduled, self.settings.min_attendance_rate,
                                                    self.settings.low_attendance_min_sessions)
                    key = f"LOWATT:{cls.id}:{trainee_id}:{local_now.date().isoformat()}"
                    fired += self._fire(session, cls, key, findings, trainee_id)
        return fired

    def review_teachers(self, local_now: datetime) -> int:
        """Judge each session that ended today, once: TEACHER_ABSENT / TEACHER_MISMATCH over its snapshots."""
        local_now = local_now.astimezone(SHANGHAI)
        today, hhmm = local_now.date(), local_now.strftime("%H:%M")
        reviewed = 0
        with self.db.session() as session:
            rows = session.execute(
                select(TrainingClass, ClassSession).join(ClassSession, ClassSession.class_id == TrainingClass.id)
                .where(TrainingClass.start_date <= today, TrainingClass.end_date >= today,
                       ClassSession.end_local <= hhmm)
            ).all()
            for cls, cs in rows:
                if session.scalar(select(SessionReview.id).where(
                        SessionReview.class_id == cls.id, SessionReview.session_id == cs.id,
                        SessionReview.day == today)) is not None:
                    continue
                start = datetime.combine(today, time.fromisoformat(cs.start_local), SHANGHAI).astimezone(UTC)
                end = datetime.combine(today, time.fromisoformat(cs.end_local), SHANGHAI).astimezone(UTC)
                measured = [m for (m,) in session.execute(
                    select(Verification.measured).join(
                        Snapshot, (Verification.subject_kind == "snapshot") & (Verification.subject_id == Snapshot.id))
                    .where(Snapshot.class_id == cls.id, Snapshot.captured_at >= start, Snapshot.captured_at <= end))]
                class_seen = sorted({t for m in measured for t in m.get("teachers_seen", [])})
                others = sorted({t for m in measured for t in m.get("other_teachers_seen", [])})
                review = SessionReview(class_id=cls.id, session_id=cs.id, day=today, snapshots=len(measured),
                                       teachers_seen=class_seen, created_at=utc_now())
                session.add(review)
                session.flush()
                findings = judge_teachers(len(measured), class_seen, others, cs.name)
                if findings:
                    context = class_context(session, cls)
                    for finding in findings:
                        add_anomaly(session, context, finding, "session", review.id,
                                    {"trainee_id": None, "trainee_name": None},
                                    {"session_name": cs.name, "day": today.isoformat()}, {})
                reviewed += 1
        return reviewed

    def audit_classes(self, local_now: datetime) -> int:
        """BLACKLISTED, CLASS_NOT_ALLOWED, SAME_TEACHER_BOTH and DOUBLE_ENROLMENT for running classes (once each)."""
        fired = 0
        with self.db.session() as session:
            active = self._active_classes(session, local_now.date())
            schedules = {c.id: Schedule(c.id, c.start_date, c.end_date,
                                        [(s.start_local, s.end_local) for s in self._sessions(session, c.id)])
                         for c in active}
            classes_of: dict[int, list[int]] = defaultdict(list)
            for class_id, trainee_id in session.execute(
                    select(RosterEntry.class_id, RosterEntry.trainee_id)
                    .where(RosterEntry.class_id.in_(list(schedules)))).all():
                classes_of[trainee_id].append(class_id)
            for cls in active:
                institution = session.get(Institution, cls.institution_id)
                occupation = session.get(Occupation, cls.occupation_id)
                teachers = [session.get(Teacher, cls.theory_teacher_id), session.get(Teacher, cls.practical_teacher_id)]
                assert institution is not None and occupation is not None and all(teachers)
                facts = ClassFacts(
                    institution.name, institution.blacklisted,
                    [(t.id, t.name, t.id_number, t.blacklisted) for t in teachers if t],
                    occupation.name, (occupation.has_training_standard, occupation.has_evaluation_standard,
                                      occupation.has_evaluation_body))
                for finding in judge_class_audit(facts):
                    fired += self._fire(session, cls, f"AUDIT:{finding.code.value}:{cls.id}", [finding])
            for trainee_id, class_ids in classes_of.items():
                for class_id in class_ids:
                    others = [schedules[o] for o in class_ids if o > class_id]
                    findings = judge_double_enrolment(schedules[class_id], others)
                    if findings:
                        cls = session.get(TrainingClass, class_id)
                        assert cls is not None
                        others_text = ",".join(map(str, findings[0].evidence["other_class_ids"]))
                        key = f"DOUBLE:{trainee_id}:{class_id}:{others_text}"
                        fired += self._fire(session, cls, key, findings, trainee_id)
        return fired


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
            Anomaly.subject_kind == "clock", Anomaly.subject_id == subject_id, Anomaly.rule == rule,
            Anomaly.state == "open")):
        what = "补签到" if checkin.kind == "sign_in" else "补签退"
        resolve_anomaly(session, anomaly, f"学员已于 {local:%m月%d日 %H:%M} {what}（签到编号 {checkin.id}）")
