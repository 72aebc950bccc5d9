"""Attendance, valid class hours and subsidy eligibility (clause 十四) as pure functions."""

from __future__ import annotations

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
    """A verified (passed) sign-in or sign-out of one trainee."""

    kind: str  # sign_in | sign_out
    at: datetime
    session_id: int | None
    checkin_id: int
    photo_sha256: str
    verification_id: int | None = None


@dataclass(frozen=True)
class SessionAttendance:
    slot: SessionSlot
    signed_in: bool
    signed_out: bool
    minutes: int
    evidence: list[Mark] = field(default_factory=list)

    @property
    def attended(self) -> bool:
        """Counted only with a verified sign-in and sign-out (每天上午、下午分别签到、签退)."""
        return self.signed_in and self.signed_out


@dataclass(frozen=True)
class TraineeAttendance:
    sessions: list[SessionAttendance]
    scheduled: int
    attended: int
    rate: float | None
    valid_hours: float
    eligible: bool
    reason: str


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
    """Sign-in and sign-out of one session and the minutes between them within its window."""
    mine = [m for m in marks if m.session_id == slot.session_id and m.at.astimezone(SHANGHAI).date() == slot.day]
    ins = sorted(m.at for m in mine if m.kind == "sign_in")
    outs = sorted(m.at for m in mine if m.kind == "sign_out")
    minutes = 0
    if ins and outs:
        begin = max(ins[0], slot.start)
        finish = min(outs[-1], slot.end)
        minutes = max(0, int((finish - begin).total_seconds() // 60))
    return SessionAttendance(slot, bool(ins), bool(outs), minutes, sorted(mine, key=lambda m: m.at))


def trainee_attendance(slots: Sequence[SessionSlot], marks: Sequence[Mark],
                       min_rate: float) -> TraineeAttendance:
    """Attendance over all ended sessions: rate, valid class hours and eligibility with the reason (zh-CN)."""
    sessions = [session_attendance(slot, marks) for slot in slots]
    attended = sum(1 for s in sessions if s.attended)
    rate = attended / len(sessions) if sessions else None
    hours = round(sum(s.minutes for s in sessions if s.attended) / 60, 2)
    if rate is None:
        return TraineeAttendance(sessions, 0, 0, None, 0.0, False, "尚无已结束的课时")
    eligible = rate >= min_rate
    missing_out = sum(1 for s in sessions if s.signed_in and not s.signed_out)
    if eligible:
        reason = f"出勤率 {rate:.1%}，达到 {min_rate:.0%}"
    else:
        reason = f"出勤率 {rate:.1%}，低于 {min_rate:.0%}，不得申请培训补贴"
        if missing_out:
            reason += f"（其中 {missing_out} 个课时有签到无签退）"
    return TraineeAttendance(sessions, len(sessions), attended, rate, hours, eligible, reason)
