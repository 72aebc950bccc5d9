"""Time as the province keeps it: stored in UTC, shown and reckoned in days of Asia/Shanghai."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")


def utc_now() -> datetime:
    """The current time, timezone-aware UTC (what every column stores)."""
    return datetime.now(UTC)


def local_day_start(moment: datetime) -> datetime:
    """Midnight (Asia/Shanghai) of the day `moment` falls on, in UTC (what stored times compare with)."""
    local = moment.astimezone(SHANGHAI)
    return local.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(UTC)


def minutes_of(hhmm: str) -> int:
    """Minutes after midnight of a local wall-clock time written HH:MM (how sessions are registered)."""
    return int(hhmm[:2]) * 60 + int(hhmm[3:5])


def local_at(day: date, hhmm: str) -> datetime:
    """The moment (Asia/Shanghai) a registered HH:MM falls on `day`."""
    return datetime.combine(day, time.fromisoformat(hhmm), SHANGHAI)
