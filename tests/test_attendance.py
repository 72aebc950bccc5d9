"""Attendance and eligibility: boundary values (exactly 80 %), missing sign-outs, class hours."""

from datetime import date, datetime, timedelta

import pytest

from models.clock import SHANGHAI
from monitor.decisions.attendance import Mark, scheduled_slots, trainee_attendance

SESSIONS = [(1, "上午", "08:30", "12:00"), (2, "下午", "14:00", "17:30")]
START = date(2026, 11, 23)  # Monday


def at(day: date, hhmm: str) -> datetime:
    return datetime.combine(day, datetime.strptime(hhmm, "%H:%M").time(), SHANGHAI)


def marks_for(days: int, skip: set[tuple[int, int]] = frozenset(), no_out: set[tuple[int, int]] = frozenset()):
    out, n = [], 0
    for d in range(days):
        day = START + timedelta(days=d)
        for sid, _, s, e in SESSIONS:
            if (d, sid) in skip:
                continue
            n += 1
            out.append(Mark("sign_in", at(day, s) + timedelta(minutes=5), sid, n, f"{n:064x}"))
            if (d, sid) not in no_out:
                n += 1
                out.append(Mark("sign_out", at(day, e) - timedelta(minutes=5), sid, n, f"{n:064x}"))
    return out


def slots(days: int):
    return scheduled_slots(START, START + timedelta(days=days - 1), SESSIONS, at(START + timedelta(days=days), "00:00"))


def test_slots_end_by_the_given_moment() -> None:
    assert len(slots(5)) == 10
    midday = scheduled_slots(START, START + timedelta(days=4), SESSIONS, at(START + timedelta(days=1), "13:00"))
    assert [(s.day.day, s.name) for s in midday] == [(23, "上午"), (23, "下午"), (24, "上午")]


def test_full_attendance_and_class_hours() -> None:
    a = trainee_attendance(slots(5), marks_for(5), min_rate=0.8)
    assert (a.scheduled, a.attended, a.rate, a.eligible) == (10, 10, 1.0, True)
    assert a.valid_hours == pytest.approx(10 * 200 / 60, abs=0.01)  # 3 h 20 min a session


@pytest.mark.parametrize(("missed", "eligible"), [(2, True), (3, False)])
def test_exactly_eighty_percent_is_eligible(missed: int, eligible: bool) -> None:
    skip = {(d, 1) for d in range(missed)}
    a = trainee_attendance(slots(5), marks_for(5, skip=skip), min_rate=0.8)
    assert a.rate == (10 - missed) / 10 and a.eligible is eligible
    assert ("低于 80%" in a.reason) is (not eligible)


def test_sign_in_without_sign_out_does_not_count() -> None:
    a = trainee_attendance(slots(5), marks_for(5, no_out={(0, 1), (1, 1), (2, 1)}), min_rate=0.8)
    assert a.attended == 7 and not a.eligible and "有签到无签退" in a.reason


def test_minutes_are_clipped_to_the_session() -> None:
    day = START
    marks = [Mark("sign_in", at(day, "07:00"), 1, 1, "a" * 64), Mark("sign_out", at(day, "13:00"), 1, 2, "b" * 64)]
    a = trainee_attendance(slots(1)[:1], marks, min_rate=0.8)
    assert a.sessions[0].minutes == 210


def test_no_ended_session_means_not_yet_eligible() -> None:
    a = trainee_attendance([], [], min_rate=0.8)
    assert a.rate is None and not a.eligible and a.reason == "尚无已结束的课时"
