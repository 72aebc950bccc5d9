"""Who is sent to an alert (clauses 七, 十四, 十六): eligibility, recusal, the escalation ladder; pure functions."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class Level(StrEnum):
    """An inspector's level: whom a county, prefecture or the province sends."""

    COUNTY = "county"
    PREFECTURE = "prefecture"
    PROVINCE = "province"


LADDER = (Level.COUNTY, Level.PREFECTURE, Level.PROVINCE)
LEVEL_NAMES = {Level.COUNTY: "县区", Level.PREFECTURE: "州市", Level.PROVINCE: "省级"}
PROVINCE_CODE = "530000"


@dataclass(frozen=True)
class Inspector:
    """What routing knows of one inspector: level, region, duty periods (UTC) and declared ties."""

    staff_id: int
    level: Level
    region_code: str  # a county code, a prefecture code (ends in 00) or the province (530000)
    duty: Sequence[tuple[datetime, datetime]] = ()
    tied_institutions: frozenset[int] = field(default_factory=frozenset)  # own, spouse's or child's (clause 十六)
    active: bool = True


@dataclass(frozen=True)
class ClassPlace:
    """Where the alert's class is and who runs it."""

    county_code: str
    institution_id: int

    @property
    def prefecture_code(self) -> str:
        return self.county_code[:4] + "00"


def covers(inspector: Inspector, place: ClassPlace) -> bool:
    """Whether the inspector's region holds the class at the inspector's level."""
    if inspector.level is Level.COUNTY:
        return inspector.region_code == place.county_code
    if inspector.level is Level.PREFECTURE:
        return inspector.region_code == place.prefecture_code
    return True


def on_duty(inspector: Inspector, at: datetime) -> bool:
    return any(start <= at < end for start, end in inspector.duty)


def is_recused(inspector: Inspector, institution_id: int) -> bool:
    """Clause 十六: never assigned to, never shown, a class of an institution the inspector is tied to."""
    return institution_id in inspector.tied_institutions


def eligible(inspectors: Sequence[Inspector], place: ClassPlace, level: Level, at: datetime,
             exclude: frozenset[int] = frozenset()) -> list[Inspector]:
    """Active, on duty at `at`, of `level` covering the class, not recused, not in `exclude`; by staff id."""
    return sorted((i for i in inspectors
                   if i.active and i.level is level and covers(i, place) and on_duty(i, at)
                   and not is_recused(i, place.institution_id) and i.staff_id not in exclude),
                  key=lambda i: i.staff_id)


@dataclass(frozen=True)
class Pick:
    """Whom to page next and at which level; nobody when the ladder is exhausted."""

    level: Level | None
    staff_ids: tuple[int, ...]


def next_page(inspectors: Sequence[Inspector], place: ClassPlace, at: datetime, already_paged: frozenset[int],
              paged_at_level: dict[Level, int], tries_per_level: int, how_many: int, rng: random.Random) -> Pick:
    """The next page of an alert: at the lowest level that still has tries and eligible inspectors, `how_many`
    drawn at random among those not paged before (several at once for high severity)."""
    for level in LADDER:
        if paged_at_level.get(level, 0) >= tries_per_level:
            continue
        pool = eligible(inspectors, place, level, at, already_paged)
        if pool:
            chosen = rng.sample(pool, min(how_many, len(pool)))
            return Pick(level, tuple(sorted(i.staff_id for i in chosen)))
    return Pick(None, ())
