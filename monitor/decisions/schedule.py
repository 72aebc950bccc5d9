"""A class's state at a moment, from its date range and daily sessions (Asia/Shanghai); pure functions."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime

STATUS_NAMES = {
    "scheduled": "未开班",
    "in_session": "上课中",
    "between": "课间/非上课时段",
    "finished": "已结业",
}


def class_status_at(local_now: datetime, start: date, end: date, sessions: Sequence[tuple[str, str]]) -> str:
    """scheduled | in_session | between | finished for a local wall-clock moment."""
    today = local_now.date()
    if today < start:
        return "scheduled"
    if today > end:
        return "finished"
    hhmm = local_now.strftime("%H:%M")
    if any(s <= hhmm < e for s, e in sessions):
        return "in_session"
    return "between"
