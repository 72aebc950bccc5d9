"""Rate limits on what a site can ask for without uploading anything (liveness challenges, online sessions):
counted from the rows already stored, so they hold across API processes. The decision is pure."""

from __future__ import annotations

from dataclasses import dataclass

from models.errors import ApiError

WINDOW_S = 60.0


@dataclass(frozen=True)
class RateLimits:
    """Most requests in WINDOW_S per device and per site (institution), and most open at once per trainee."""

    per_device: int
    per_site: int
    open_per_trainee: int


@dataclass(frozen=True)
class RecentCounts:
    """How many the device and the site asked for in the last WINDOW_S, and how many the trainee holds open."""

    device: int
    site: int
    open_for_trainee: int


def refuse_over_limit(what: str, counts: RecentCounts, limits: RateLimits) -> ApiError | None:
    """A 429 (or 409 for too many open) naming the limit that was reached, or None when within all of them."""
    retry = {"Retry-After": str(int(WINDOW_S))}
    if counts.device >= limits.per_device:
        return ApiError(429, "RATE_LIMITED",
                        f"该设备 1 分钟内申请{what}过多（上限 {limits.per_device} 次），请稍后再试",
                        headers=retry, limit=limits.per_device, scope="device")
    if counts.site >= limits.per_site:
        return ApiError(429, "RATE_LIMITED",
                        f"本机构 1 分钟内申请{what}过多（上限 {limits.per_site} 次），请稍后再试",
                        headers=retry, limit=limits.per_site, scope="site")
    if counts.open_for_trainee >= limits.open_per_trainee:
        return ApiError(409, "TOO_MANY_OPEN",
                        f"该学员已有 {counts.open_for_trainee} 个未完成的{what}，请先完成或等待其过期",
                        limit=limits.open_per_trainee, scope="trainee")
    return None
