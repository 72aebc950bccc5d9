"""Attendance, valid class hours and subsidy eligibility (clause 十四) as pure functions."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from models.clock import SHANGHAI, local_at


@dataclass(frozen=True)
class SessionSlot:
    """One scheduled session on one day, with its local start and end."""

    day: date
    session_id: int
    name: str
    start: datetime
    end: datetime


@dataclass(frozen=True)
class Mark:
    """A verified (passed) sign-in or sign-out of one trainee, or one awaiting an operator's review (`pending`).

    A pending mark never counts as attendance, and never counts against the trainee either: NO_SHOW and
    MISSING_SIGNOUT wait for the review (README "Reviews at the session's end")."""

    kind: str  # sign_in | sign_out
    at: datetime
    session_id: int | None
    checkin_id: int
    photo_sha256: str
    verification_id: int | None = None
    pending: bool = False


@dataclass(frozen=True)
class SessionAttendance:
    slot: SessionSlot
    signed_in: bool
    signed_out: bool
    minutes: int
    evidence: list[Mark] = field(default_factory=list)
    sign_in_pending: bool = False  # no verified sign-in, but one awaits review
    sign_out_pending: bool = False

    @property
    def attended(self) -> bool:
        """Counted only with a verified sign-in and sign-out (每天上午、下午分别签到、签退)."""
        return self.signed_in and self.signed_out

    @property
    def pending(self) -> bool:
        """Not attended as verified, but would be if the check-ins awaiting review are confirmed."""
        return not self.attended and (self.signed_in or self.sign_in_pending) and (
            self.signed_out or self.sign_out_pending)


@dataclass(frozen=True)
class TraineeAttendance:
    sessions: list[SessionAttendance]
    scheduled: int
    attended: int
    rate: float | None
    valid_hours: float
    eligible: bool
    reason: str
    pending: int = 0  # sessions that would count if their check-ins awaiting review were confirmed
    undecided: bool = False  # eligibility depends on those reviews: not payable until they are decided


@dataclass(frozen=True)
class AttendanceTally:
    """A trainee's sessions counted over the ended sessions, without each session's detail (the low-attendance rule
    at province scale): `attended` and `pending` as `SessionAttendance` counts them."""

    scheduled: int
    attended: int
    pending: int

    @property
    def rate(self) -> float | None:
        """Sessions attended over sessions scheduled (0-1); None before any session ended."""
        return self.attended / self.scheduled if self.scheduled else None


def tally_attendance(attendance: TraineeAttendance) -> AttendanceTally:
    """The counts of a trainee's attendance worked out session by session."""
    return AttendanceTally(attendance.scheduled, attendance.attended, attendance.pending)


def scheduled_slots(start: date, end: date, sessions: Sequence[tuple[int, str, str, str]],
                    until: datetime) -> list[SessionSlot]:
    """Every (day, session) of the class that has ended by `until` (local); sessions are (id, name, HH:MM, HH:MM)."""
    slots = []
    last = min(end, until.astimezone(SHANGHAI).date())
    day = start
    while day <= last:
        for session_id, name, s, e in sessions:
            begin = local_at(day, s)
            finish = local_at(day, e)
            if finish <= until:
                slots.append(SessionSlot(day, session_id, name, begin, finish))
        day += timedelta(days=1)
    return slots


def session_attendance(slot: SessionSlot, marks: Sequence[Mark]) -> SessionAttendance:
    """Sign-in and sign-out of one session and the minutes between them within its window (verified marks only;
    marks awaiting review are noted as pending)."""
    ours = [m for m in marks if m.session_id == slot.session_id and m.at.astimezone(SHANGHAI).date() == slot.day]
    mine = [m for m in ours if not m.pending]
    ins = sorted(m.at for m in mine if m.kind == "sign_in")
    outs = sorted(m.at for m in mine if m.kind == "sign_out")
    minutes = 0
    if ins and outs:
        begin = max(ins[0], slot.start)
        finish = min(outs[-1], slot.end)
        minutes = max(0, int((finish - begin).total_seconds() // 60))
    waiting = {m.kind for m in ours if m.pending}
    return SessionAttendance(slot, bool(ins), bool(outs), minutes, sorted(mine, key=lambda m: m.at),
                             sign_in_pending=not ins and "sign_in" in waiting,
                             sign_out_pending=not outs and "sign_out" in waiting)


def trainee_attendance(slots: Sequence[SessionSlot], marks: Sequence[Mark],
                       min_rate: float) -> TraineeAttendance:
    """Attendance over all ended sessions: rate, valid class hours and eligibility with the reason (zh-CN)."""
    by_slot: dict[tuple[int | None, date], list[Mark]] = defaultdict(list)  # each mark read once, not once a slot
    for m in marks:
        by_slot[(m.session_id, m.at.astimezone(SHANGHAI).date())].append(m)
    sessions = [session_attendance(slot, by_slot.get((slot.session_id, slot.day), [])) for slot in slots]
    attended = sum(1 for s in sessions if s.attended)
    rate = attended / len(sessions) if sessions else None
    hours = round(sum(s.minutes for s in sessions if s.attended) / 60, 2)
    if rate is None:
        return TraineeAttendance(sessions, 0, 0, None, 0.0, False, "尚无已结束的课时")
    eligible = rate >= min_rate
    pending = sum(1 for s in sessions if s.pending)
    undecided = not eligible and pending > 0 and (attended + pending) / len(sessions) >= min_rate
    missing_out = sum(1 for s in sessions if s.signed_in and not s.signed_out and not s.sign_out_pending)
    if eligible:
        reason = f"出勤率 {rate:.1%}，达到 {min_rate:.0%}"
    elif undecided:
        reason = (f"出勤率 {rate:.1%}，另有 {pending} 个课时的签到待人工复核；复核确认前不计入出勤、"
                  "不得列入补贴发放")
    else:
        reason = f"出勤率 {rate:.1%}，低于 {min_rate:.0%}，不得申请培训补贴"
        if missing_out:
            reason += f"（其中 {missing_out} 个课时有签到无签退）"
    if pending and not undecided:
        reason += f"（{pending} 个课时待人工复核，未计入）"
    return TraineeAttendance(sessions, len(sessions), attended, rate, hours, eligible, reason, pending, undecided)
