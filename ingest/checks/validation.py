"""Checks on upload fields (coordinates, accuracy, capture time, keys); pure functions raising ApiError."""

from __future__ import annotations

import math
from datetime import UTC, datetime

from models.clock import SHANGHAI
from models.domain import outside_service_area
from models.errors import ApiError


def check_fix(lat: float, lon: float, accuracy_m: float, max_accuracy_m: float) -> None:
    """Reject impossible GPS fixes: non-finite, out of range, (0,0), outside China, or a meaningless accuracy."""
    if not (math.isfinite(lat) and math.isfinite(lon)):
        raise ApiError(422, "INVALID_COORDINATES", "经纬度必须是有效数字（不能为 NaN 或无穷大）")
    if not -90.0 <= lat <= 90.0:
        raise ApiError(422, "INVALID_COORDINATES", f"纬度 {lat} 超出范围（-90 到 90）")
    if not -180.0 <= lon <= 180.0:
        raise ApiError(422, "INVALID_COORDINATES", f"经度 {lon} 超出范围（-180 到 180）")
    if lat == 0.0 and lon == 0.0:
        raise ApiError(422, "NULL_ISLAND", "定位为 (0,0)，说明手机未取得有效定位，请开启定位后重试")
    if why := outside_service_area(lat, lon):
        raise ApiError(422, "OUTSIDE_SERVICE_AREA", why)
    if not math.isfinite(accuracy_m) or accuracy_m <= 0:
        raise ApiError(422, "INVALID_ACCURACY", "定位精度（米）必须是大于 0 的数字")
    if accuracy_m > max_accuracy_m:
        raise ApiError(
            422,
            "ACCURACY_TOO_POOR",
            f"定位精度 {accuracy_m:.0f} 米过差（上限 {max_accuracy_m:.0f} 米），请到开阔处重试" if accuracy_m < 1e6
            else f"定位精度超过 1000 公里，不是有效定位（上限 {max_accuracy_m:.0f} 米），请到开阔处重试",
        )


def parse_client_time(value: str) -> datetime:
    """An ISO 8601 time from a phone, as UTC; a time without offset is read as Asia/Shanghai."""
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=SHANGHAI)
        return parsed.astimezone(UTC)
    except (ValueError, OverflowError) as exc:  # OverflowError: year 1 or 9999 shifted by its offset
        raise ApiError(422, "INVALID_CAPTURED_AT",
                       f"拍摄时间无效：{value[:40]!r}（应为 ISO 8601，且在公元 1 年到 9999 年之间）") from exc


def check_capture_time(captured_at: datetime, now: datetime, max_future_s: float, max_age_s: float) -> None:
    """Reject capture times too far in the future (clock skew) or in the past (stale uploads)."""
    delta = (captured_at - now).total_seconds()
    if delta > max_future_s:
        raise ApiError(
            422, "CAPTURED_AT_IN_FUTURE", f"拍摄时间比服务器时间晚 {delta:.0f} 秒，请校准手机时间后重试"
        )
    if -delta > max_age_s:
        raise ApiError(
            422,
            "CAPTURED_AT_TOO_OLD",
            f"拍摄时间已过去 {-delta / 3600:.1f} 小时，超过允许的 {max_age_s / 3600:.0f} 小时",
        )


def check_text(value: str, field: str, label: str, max_len: int) -> str:
    """A required short text field, stripped; 422 when empty or too long."""
    value = value.strip()
    if not value:
        raise ApiError(422, "MISSING_FIELD", f"缺少{label}（{field}）")
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise ApiError(422, "INVALID_CHARACTERS", f"{label}（{field}）含有控制字符（如 NUL），请只用可见字符")
    if len(value) > max_len:
        raise ApiError(422, "FIELD_TOO_LONG", f"{label}（{field}）过长，最多 {max_len} 个字符")
    return value


def idempotency_key_of(raw: str) -> str | None:
    """An `Idempotency-Key` as sent (stripped), or None when it is not 1 to 100 visible characters."""
    key = raw.strip()
    if not key or len(key) > 100 or any(ord(c) < 32 or ord(c) == 127 for c in key):
        return None
    return key
