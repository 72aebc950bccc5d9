"""Live events written with the change they report (in its transaction), and the class and people they name."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from models.clock import utc_now
from models.tables import Event, Institution, Region, Trainee, TrainingClass, Venue
from models.terms import EventKind


def prefecture_of(region_code: str) -> str:
    """The prefecture code (GB/T 2260, 6 digits) a county code belongs to."""
    return region_code[:4] + "00"


def class_context(session: Session, cls: TrainingClass) -> dict[str, Any]:
    """The names an event shows about a class: institution, venue, county and prefecture."""
    venue = session.get(Venue, cls.venue_id)
    institution = session.get(Institution, cls.institution_id)
    assert venue is not None and institution is not None
    county = session.get(Region, venue.region_code)
    prefecture = session.get(Region, prefecture_of(venue.region_code))
    return {
        "class_id": cls.id,
        "class_code": cls.code,
        "class_name": cls.name,
        "institution_id": cls.institution_id,
        "institution_name": institution.name,
        "venue_name": venue.name,
        "venue": {"lat": venue.center_lat, "lon": venue.center_lon, "radius_m": venue.radius_m,
                  "polygon": venue.polygon},
        "county_code": venue.region_code,
        "county_name": county.name if county else "",
        "prefecture_code": prefecture_of(venue.region_code),
        "prefecture_name": prefecture.name if prefecture else "",
    }


def people_of(session: Session, trainee_id: int | None) -> dict[str, Any]:
    """The trainee an event or anomaly names (id and name; never the ID number)."""
    trainee = session.get(Trainee, trainee_id) if trainee_id else None
    return {"trainee_id": trainee_id, "trainee_name": trainee.name if trainee else None}


def add_event(session: Session, kind: EventKind, context: dict[str, Any], payload: dict[str, Any],
              staff_id: int | None = None) -> None:
    """Append one event to the live feed (in the caller's transaction: it is seen only if the change commits)."""
    session.add(
        Event(
            kind=kind.value,
            region_code=context["county_code"],
            class_id=context["class_id"],
            institution_id=context["institution_id"],
            staff_id=staff_id,
            payload={**context, **payload},
            created_at=utc_now(),
        )
    )
