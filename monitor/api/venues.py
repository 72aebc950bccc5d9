"""Venues (培训场地) with their fences, drawn in any of the three datums and stored in WGS-84."""


from typing import Any

from fastapi import APIRouter
from sqlalchemy import select

from models.clock import utc_now
from models.domain import (
    CircleFence,
    Datum,
    VenueIn,
)
from models.errors import errors
from models.scope import (
    venue_clause,
)
from models.tables import (
    Institution,
    Venue,
)
from monitor.api.common import check_region, get_or_404, insert
from monitor.api.deps import Admin, Db, Reader
from monitor.api.schemas.registration import VenueOut
from monitor.decisions.geodesy import convert_to_wgs84

router = APIRouter(prefix="/api/v1", tags=["registration"])


def venue_out(v: Venue) -> dict[str, Any]:
    return {"id": v.id, "institution_id": v.institution_id, "name": v.name, "address": v.address,
            "region_code": v.region_code, "datum": v.datum, "shape": v.shape,
            "center_wgs84": {"lat": v.center_lat, "lon": v.center_lon}, "radius_m": v.radius_m,
            "polygon_wgs84": v.polygon, "original": v.original}


@router.post("/venues", status_code=201, responses=errors(404, 409), response_model=VenueOut)
def create_venue(body: VenueIn, scope: Admin, db: Db) -> dict[str, Any]:
    with db.session() as session:
        get_or_404(session, Institution, body.institution_id, "UNKNOWN_INSTITUTION", "培训机构")
        check_region(session, body.region_code, "county")
        datum = Datum(body.datum)
        fence = body.fence
        if isinstance(fence, CircleFence):
            lat, lon = convert_to_wgs84(fence.center.lat, fence.center.lon, datum)
            radius, polygon = fence.radius_m, None
        else:
            polygon = [list(convert_to_wgs84(p.lat, p.lon, datum)) for p in fence.points]
            lat = sum(p[0] for p in polygon) / len(polygon)
            lon = sum(p[1] for p in polygon) / len(polygon)
            radius = None
        row = insert(session, Venue(
            institution_id=body.institution_id, name=body.name, address=body.address,
            region_code=body.region_code, datum=datum.value, shape=fence.shape, center_lat=lat,
            center_lon=lon, radius_m=radius, polygon=polygon,
            original={"datum": datum.value, "fence": fence.model_dump()}, created_at=utc_now(),
        ), "DUPLICATE_VENUE", "场地已存在")
        return venue_out(row)


@router.get("/venues", response_model=list[VenueOut])
def list_venues(scope: Reader, db: Db) -> list[dict[str, Any]]:
    with db.session() as session:
        return [venue_out(v) for v in session.scalars(select(Venue).where(venue_clause(scope)).order_by(Venue.id))]
