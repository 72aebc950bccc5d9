"""Durations as a person says them in zh-CN messages: 42 秒, 约 5 分钟, 约 3.5 小时, 约 2.1 天, 约 16.6 年."""

from __future__ import annotations

import math

_DAY = 86400.0
_YEAR = 365.2425 * _DAY
# (seconds per unit, unit, decimals, the unit is used below this many of it)
_UNITS: tuple[tuple[float, str, int, float], ...] = (
    (1.0, "秒", 0, 60),
    (60.0, "分钟", 0, 60),
    (3600.0, "小时", 1, 24),
    (_DAY, "天", 1, 60),
    (_YEAR / 12, "个月", 1, 12),
    (_YEAR, "年", 1, math.inf),
)


def _number(value: float, decimals: int) -> str:
    text = f"{value:,.{decimals}f}"
    return text[:-2] if text.endswith(".0") else text


def format_duration_zh(seconds: float) -> str:
    """A duration in the largest sensible unit, rounded, with 约 when rounding changed it.

    The sign is ignored (a time difference reads the same either way): 42 → "42 秒", 300 → "5 分钟",
    310 → "约 5 分钟", 12600 → "3.5 小时", 181440 → "2.1 天", 522537120 s (145149.2 小时) → "约 16.6 年".
    A value that rounds up to the next unit moves there (86390 s → "约 1 天", not "约 24 小时").
    """
    if not math.isfinite(seconds):
        return "时长未知"
    seconds = abs(seconds)
    if 0 < seconds < 0.5:
        return "不到 1 秒"
    for size, unit, decimals, below in _UNITS:
        value = round(seconds / size, decimals if seconds / size < 100 else 0)
        if value < below:
            about = "约 " if not math.isclose(value * size, seconds, rel_tol=1e-9, abs_tol=1e-6) else ""
            return f"{about}{_number(value, decimals if value < 100 else 0)} {unit}"
    raise AssertionError("unreachable: the last unit has no upper bound")
