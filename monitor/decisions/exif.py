"""What a photo's EXIF says about when and where it was taken, read defensively: an unreadable or impossible
value is ignored and noted (a finding about the photo), never an error that stops its verification."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime

EARLIEST_YEAR, LATEST_YEAR = 1990, 2100  # no phone photo of a class is from outside these years


def read_exif_time(raw: object) -> tuple[str | None, str | None]:
    """EXIF 'YYYY:MM:DD HH:MM:SS' (camera local time) as ISO 8601, or (None, why it was ignored)."""
    if raw is None or raw == "":
        return None, None
    text = str(raw).strip("\x00 ")
    try:
        when = datetime.strptime(text, "%Y:%m:%d %H:%M:%S")
    except ValueError:
        return None, f"EXIF 拍摄时间“{text[:30]}”无法识别，已忽略"
    if not EARLIEST_YEAR <= when.year <= LATEST_YEAR:
        return None, f"EXIF 拍摄时间 {text[:30]} 不合理，已忽略"
    return when.isoformat(), None


def dms_to_degrees(value: Sequence[object]) -> float:
    """(degrees, minutes, seconds) rationals as decimal degrees; NaN when any part is unreadable (e.g. 0/0)."""
    try:
        d, m, s = (float(x) for x in value)  # type: ignore[arg-type]
    except (TypeError, ValueError, ZeroDivisionError):
        return math.nan
    return d + m / 60 + s / 3600


def read_exif_gps(lat_dms: Sequence[object], lat_ref: object, lon_dms: Sequence[object],
                  lon_ref: object) -> tuple[tuple[float, float] | None, str | None]:
    """The EXIF GPS position in degrees, or (None, why it was ignored) when it cannot be a place on Earth."""
    lat = dms_to_degrees(lat_dms) * (-1 if lat_ref == "S" else 1)
    lon = dms_to_degrees(lon_dms) * (-1 if lon_ref == "W" else 1)
    if not (math.isfinite(lat) and math.isfinite(lon)) or abs(lat) > 90 or abs(lon) > 180:
        return None, "EXIF 中的定位数据无效（无法换算为经纬度），已忽略"
    if lat == 0 and lon == 0:
        return None, "EXIF 中的定位为 (0,0)，已忽略"
    return (lat, lon), None
