"""Live events written with the change they report (in its transaction), and the class and people they name."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

from models.clock import utc_now
from models.tables import Event, Institution, Region, Trainee, TrainingClass, Venue
from models.terms import EventKind
from monitor.adapters.storage import note_events_written


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
    add_events(session, [(kind, context, payload, staff_id)])


NewEvent = tuple[EventKind, dict[str, Any], dict[str, Any], int | None]  # kind, class context, payload, staff id


def add_events(session: Session, events: Sequence[NewEvent]) -> None:
    """Append events (kind, class context, payload, the one inspector it is for) in one statement, in order, in the
    caller's transaction. Their ids are not read back: nothing needs them before the commit, and an ORM insert on
    SQLite reads each new id with its own statement (a clock tick writes thousands)."""
    if not events:
        return
    now = utc_now()
    session.execute(insert(Event), [
        {"kind": kind.value, "region_code": context["county_code"], "class_id": context["class_id"],
         "institution_id": context["institution_id"], "staff_id": staff_id, "payload": {**context, **payload},
         "created_at": now} for kind, context, payload, staff_id in events])
    note_events_written(session)
