"""The 双随机 draws' request and response bodies: the center's view, an inspector's assignments, the publication."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class DrawRuleOut(BaseModel):
    rate: float = Field(description="share of the candidates drawn: ⌈n·rate⌉, at least 1, never all unless take_all")
    at_most: int
    take_all: bool


class DrawOut(BaseModel):
    """A 双随机 draw as the center sees it (pool and ties included: never for sites, never published as is)."""

    id: int
    day: str
    kind: str = Field(description="daily | supplementary (classes registered after the daily draw)")
    seq: int = Field(description="1 for the daily draw, then 2, 3… for the day's supplementary draws")
    algorithm: str = Field(description="the draw algorithm's version; a re-run must use the same")
    rule: DrawRuleOut | None
    seed: str
    candidates: list[dict[str, int | float | str]]
    classes: list[int]
    inspectors: dict[str, int | None]
    tiers: dict[str, str | None] = Field(description="class id -> cross_county | prefecture | province | local")
    roster: list[dict[str, int | str | list[int]]]
    window_ends_at: str
    published: bool
    created_by: str
    created_at: str


class DrawRedoOut(BaseModel):
    classes: list[int]
    inspectors: dict[str, int | None]
    matches: bool = Field(description="the stored seed and inputs give exactly the stored draw")


class DrawIn(BaseModel):
    day: str | None = Field(default=None, pattern=r"^\d{4}-\d{2}-\d{2}$", description="local day; default today")
    kind: Literal["daily", "supplementary"] = Field(default="daily", description="supplementary: the classes in "
                                                    "session that no earlier draw of the day had as candidates")


class MyDrawOut(BaseModel):
    """The classes a draw gave this inspector."""

    day: str
    class_ids: list[int]


class AssignmentOut(BaseModel):
    """One class a draw gave the inspector: what, where, until when, and what to do."""

    draw_id: int
    day: str
    kind: str
    kind_name: str
    class_id: int
    class_code: str
    class_name: str
    class_dates: str
    sessions: list[str]
    institution_name: str
    venue_name: str
    venue_address: str
    county_name: str
    latitude: float = Field(description="the venue's centre, WGS-84")
    longitude: float
    tier: str | None
    tier_name: str
    window_ends_at: str
    todo: str
    inspection_ids: list[int] = Field(description="forms this inspector filed on the class within the window")
    done: bool


class PublicInspectionOut(BaseModel):
    """A filed form as published: nothing personal."""

    kind: str
    kind_name: str
    inspected_at: str
    items: dict[str, str]
    headcount_registered: int
    headcount_present: int | None
    conclusion: str
    nonconforming: list[str]


class PublicClassOut(BaseModel):
    class_id: int
    class_code: str
    class_name: str
    institution_id: int
    institution_name: str
    county_code: str
    county_name: str
    inspector_tier: str | None
    inspector_tier_name: str
    inspections: list[PublicInspectionOut]


class PublicDrawOut(BaseModel):
    """A draw once its window has passed: enough to re-run it (scripts/rerun_draw.py), and what came of it."""

    id: int
    day: str
    kind: str
    kind_name: str
    seq: int
    algorithm: str
    rule: DrawRuleOut | None
    seed: str
    candidates: list[dict[str, int | float | str]] = Field(description="class_id, county_code, institution_id, "
                                                            "anomalies, violations, weight")
    drawn: list[int] = Field(description="the drawn class ids in drawn order")
    classes: list[PublicClassOut]
    window_starts_at: str
    window_ends_at: str
