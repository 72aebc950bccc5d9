"""A stored event as the live feed sends it: encoded to JSON once, with the region and verdict routing needs."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from models.tables import Event


@dataclass(frozen=True, slots=True)
class LiveEvent:
    """One stored event as every client receives it: encoded to JSON once, with what routing needs."""

    id: int
    region_code: str
    verdict_of: tuple[str, int] | None
    text: str
    institution_id: int | None = None  # hidden from inspectors recused from it
    staff_id: int | None = None  # addressed to one inspector (a page)


def serialise_event(row: Event) -> dict[str, Any]:
    return {"id": row.id, "type": row.kind, "at": row.created_at.isoformat(), "region_code": row.region_code,
            "data": row.payload}


def encode_event(row: Event) -> LiveEvent:
    body = serialise_event(row)
    verdict_of = None
    if row.kind == "verdict":
        verdict_of = (str(row.payload.get("subject_kind")), int(row.payload.get("subject_id") or 0))
    return LiveEvent(row.id, row.region_code or "", verdict_of,
                     json.dumps(body, ensure_ascii=False, separators=(",", ":"), default=str),
                     row.institution_id, row.staff_id)
