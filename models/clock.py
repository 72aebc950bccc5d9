"""Time as the province keeps it: stored in UTC, shown and reckoned in days of Asia/Shanghai."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")


def utc_now() -> datetime:
    """The current time, timezone-aware UTC (what every column stores)."""
    return datetime.now(UTC)


def local_day_start(moment: datetime) -> datetime:
    """Midnight (Asia/Shanghai) of the day `moment` falls on, in UTC (what stored times compare with)."""
    local = moment.astimezone(SHANGHAI)
    return local.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(UTC)
