"""Online study (clause 六) as pure functions: verified minutes from face heartbeats, the 8-hour daily cap."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from models.domain import AnomalyCode, Severity
from monitor.decisions.verdicts import Finding


@dataclass(frozen=True)
class Beat:
    """A judged heartbeat: the moment it vouches for (its capture, never later than its arrival), and its verdict."""

    at: datetime
    passed: bool


def vouched_at(captured_at: datetime, received_at: datetime) -> datetime:
    """The moment a heartbeat vouches for: its capture time, but never after it reached the server (a phone clock
    ahead by the skew allowed would otherwise claim minutes not yet lived, even past the session's end)."""
    return min(captured_at, received_at)


def verified_minutes(start: datetime, end: datetime | None, beats: Sequence[Beat], max_gap_min: float) -> float:
    """Minutes of one session vouched for by heartbeats: each stretch up to a heartbeat counts when that
    heartbeat's face check passed, at most `max_gap_min` of it; after the last heartbeat, up to the end (or
    nothing if the session is still open), again at most `max_gap_min` and only if that heartbeat passed.
    Heartbeats before the start or after the end vouch for nothing."""
    total = 0.0
    previous = start
    last_passed = False
    for beat in sorted(beats, key=lambda b: b.at):
        if beat.at < start or (end is not None and beat.at > end):
            continue
        stretch = (beat.at - previous).total_seconds() / 60
        if beat.passed:
            total += min(stretch, max_gap_min)
        previous, last_passed = beat.at, beat.passed
    if end is not None and last_passed and end > previous:
        total += min((end - previous).total_seconds() / 60, max_gap_min)
    return round(total, 2)


@dataclass(frozen=True)
class DailyStudy:
    verified_min: float
    counted_min: float
    over_cap: bool


def daily_study(session_minutes: Sequence[float], cap_min: float) -> DailyStudy:
    """A day's verified minutes; what exceeds the cap is not counted (exactly 8 hours is within it)."""
    verified = round(sum(session_minutes), 2)
    return DailyStudy(verified, min(verified, cap_min), verified > cap_min)


def counted_in_order(session_minutes: Sequence[float], cap_min: float) -> list[float]:
    """Each session's counted minutes, the day's sessions taken in the order they started: the first `cap_min`
    minutes of the trainee's day count, wherever they were studied, and what comes after is not counted."""
    left, out = cap_min, []
    for minutes in session_minutes:
        counted = min(minutes, max(left, 0.0))
        out.append(round(counted, 2))
        left -= counted
    return out


def judge_online_day(day_total: DailyStudy, cap_min: float) -> list[Finding]:
    """ONLINE_OVER_8H: a trainee's verified online study exceeds the daily cap."""
    if not day_total.over_cap:
        return []
    return [Finding(AnomalyCode.ONLINE_OVER_8H, Severity.MEDIUM,
                    f"当日线上学习 {day_total.verified_min / 60:.1f} 小时，超过 {cap_min / 60:.0f} 小时，"
                    "超出部分不计学时（第六条）",
                    {"verified_minutes": day_total.verified_min, "counted_minutes": day_total.counted_min},
                    {"daily_cap_minutes": cap_min})]
