"""Datum conversion (WGS-84, GCJ-02, BD-09) and the accuracy-aware fence test; pure functions."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from geopy.distance import geodesic
from shapely.geometry import Point as ShapelyPoint
from shapely.geometry import Polygon

from models.domain import Datum, FenceResult

_KRASOVSKY_A = 6378245.0
_KRASOVSKY_EE = 0.00669342162296594323
_X_PI = math.pi * 3000.0 / 180.0
_WGS84_A = 6378137.0
_WGS84_E2 = 0.00669437999014


def is_outside_china(lat: float, lon: float) -> bool:
    """GCJ-02 applies no offset outside China's rough bounding box."""
    return not (72.004 <= lon <= 137.8347 and 0.8293 <= lat <= 55.8271)


def _transform_lat(x: float, y: float) -> float:
    ret = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * math.sqrt(abs(x))
    ret += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    ret += (20.0 * math.sin(y * math.pi) + 40.0 * math.sin(y / 3.0 * math.pi)) * 2.0 / 3.0
    ret += (160.0 * math.sin(y / 12.0 * math.pi) + 320 * math.sin(y * math.pi / 30.0)) * 2.0 / 3.0
    return ret


def _transform_lon(x: float, y: float) -> float:
    ret = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * math.sqrt(abs(x))
    ret += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    ret += (20.0 * math.sin(x * math.pi) + 40.0 * math.sin(x / 3.0 * math.pi)) * 2.0 / 3.0
    ret += (150.0 * math.sin(x / 12.0 * math.pi) + 300.0 * math.sin(x / 30.0 * math.pi)) * 2.0 / 3.0
    return ret


def wgs84_to_gcj02(lat: float, lon: float) -> tuple[float, float]:
    """WGS-84 (GPS) to GCJ-02 (AMap, Tencent), degrees."""
    if is_outside_china(lat, lon):
        return lat, lon
    dlat = _transform_lat(lon - 105.0, lat - 35.0)
    dlon = _transform_lon(lon - 105.0, lat - 35.0)
    radlat = lat / 180.0 * math.pi
    magic = 1 - _KRASOVSKY_EE * math.sin(radlat) ** 2
    sqrtmagic = math.sqrt(magic)
    dlat = (dlat * 180.0) / ((_KRASOVSKY_A * (1 - _KRASOVSKY_EE)) / (magic * sqrtmagic) * math.pi)
    dlon = (dlon * 180.0) / (_KRASOVSKY_A / sqrtmagic * math.cos(radlat) * math.pi)
    return lat + dlat, lon + dlon


def gcj02_to_wgs84(lat: float, lon: float) -> tuple[float, float]:
    """GCJ-02 to WGS-84 by fixed-point iteration (error below 1e-7 degrees, about 1 cm)."""
    if is_outside_china(lat, lon):
        return lat, lon
    wlat, wlon = lat, lon
    for _ in range(30):
        glat, glon = wgs84_to_gcj02(wlat, wlon)
        dlat, dlon = glat - lat, glon - lon
        wlat, wlon = wlat - dlat, wlon - dlon
        if abs(dlat) < 1e-9 and abs(dlon) < 1e-9:
            break
    return wlat, wlon


def gcj02_to_bd09(lat: float, lon: float) -> tuple[float, float]:
    """GCJ-02 to BD-09 (Baidu), degrees."""
    z = math.sqrt(lon * lon + lat * lat) + 0.00002 * math.sin(lat * _X_PI)
    theta = math.atan2(lat, lon) + 0.000003 * math.cos(lon * _X_PI)
    return z * math.sin(theta) + 0.006, z * math.cos(theta) + 0.0065


def bd09_to_gcj02(lat: float, lon: float) -> tuple[float, float]:
    """BD-09 (Baidu) to GCJ-02, degrees."""
    x, y = lon - 0.0065, lat - 0.006
    z = math.sqrt(x * x + y * y) - 0.00002 * math.sin(y * _X_PI)
    theta = math.atan2(y, x) - 0.000003 * math.cos(x * _X_PI)
    return z * math.sin(theta), z * math.cos(theta)


def convert_to_wgs84(lat: float, lon: float, datum: Datum) -> tuple[float, float]:
    """A coordinate taken in `datum`, expressed in WGS-84."""
    if datum is Datum.WGS84:
        return lat, lon
    if datum is Datum.GCJ02:
        return gcj02_to_wgs84(lat, lon)
    return gcj02_to_wgs84(*bd09_to_gcj02(lat, lon))


def convert_from_wgs84(lat: float, lon: float, datum: Datum) -> tuple[float, float]:
    """A WGS-84 coordinate expressed in `datum`."""
    if datum is Datum.WGS84:
        return lat, lon
    gcj = wgs84_to_gcj02(lat, lon)
    return gcj if datum is Datum.GCJ02 else gcj02_to_bd09(*gcj)


def distance_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Geodesic distance in metres between two (lat, lon) points on the WGS-84 ellipsoid."""
    return float(geodesic(a, b).meters)


def _local_projector(lat0: float, lon0: float) -> Callable[[float, float], tuple[float, float]]:
    """(lat, lon) -> (x, y) metres on the plane tangent at (lat0, lon0); accurate within a few km."""
    phi = math.radians(lat0)
    s = 1 - _WGS84_E2 * math.sin(phi) ** 2
    meridional = _WGS84_A * (1 - _WGS84_E2) / s**1.5
    normal = _WGS84_A / math.sqrt(s)
    per_deg_lat = math.radians(1) * meridional
    per_deg_lon = math.radians(1) * normal * math.cos(phi)
    return lambda lat, lon: ((lon - lon0) * per_deg_lon, (lat - lat0) * per_deg_lat)


def circle_signed_distance_m(point: tuple[float, float], center: tuple[float, float], radius_m: float) -> float:
    """Metres from `point` to the circle's edge: negative inside, positive outside."""
    return distance_m(point, center) - radius_m


def polygon_signed_distance_m(point: tuple[float, float], ring: Sequence[Sequence[float]]) -> float:
    """Metres from `point` to the polygon's boundary (ring of (lat, lon)): negative inside, positive outside."""
    lat0 = sum(p[0] for p in ring) / len(ring)
    lon0 = sum(p[1] for p in ring) / len(ring)
    project = _local_projector(lat0, lon0)
    polygon = Polygon([project(p[0], p[1]) for p in ring])
    pt = ShapelyPoint(project(point[0], point[1]))
    if polygon.contains(pt):
        return -float(pt.distance(polygon.exterior))
    return float(pt.distance(polygon))


def classify_fix(signed_distance_m: float, accuracy_m: float) -> FenceResult:
    """Inside when the whole accuracy circle is in the fence, outside when wholly out, else uncertain."""
    if signed_distance_m + accuracy_m <= 0:
        return FenceResult.INSIDE
    if signed_distance_m - accuracy_m > 0:
        return FenceResult.OUTSIDE
    return FenceResult.UNCERTAIN
