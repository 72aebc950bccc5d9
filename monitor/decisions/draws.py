"""双随机 (clause 七): classes drawn by risk, inspectors across counties, re-run from a published seed; pure."""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from monitor.decisions.dispatch import ClassPlace, Inspector, Level, covers, is_recused

# The algorithm's version, published with every draw: a re-run must use the same one. Version 2: every random number
# is SHA-256 of the seed and a label (no library generator), so the rules below can be redone in any language.
ALGORITHM = "yn-draw/2"
LEGACY_ALGORITHM = "yn-draw/1"  # draws made before 0021: Python's random.Random(seed), Efraimidis–Spirakis


@dataclass(frozen=True)
class Candidate:
    """A class that may be drawn, its place and its risk."""

    class_id: int
    place: ClassPlace
    anomalies: int  # the class's anomalies over the look-back window
    violations: int  # alerts of its institution closed as violations confirmed
    employment_shortfall: float = 0.0  # its institution's post-training employment below the median, share of it

    @property
    def weight(self) -> float:
        return risk_weight(self.anomalies, self.violations, self.employment_shortfall)


@dataclass(frozen=True)
class DrawRule:
    """How many classes a draw takes of `n` candidates: ⌈n·rate⌉, at most `at_most`, at least 1; never all of them
    unless `take_all` (with n ≥ 2 it takes n − 1 at most; a lone candidate is drawn with probability `rate`)."""

    rate: float
    at_most: int
    take_all: bool = False

    def as_json(self) -> dict[str, Any]:
        return {"rate": self.rate, "at_most": self.at_most, "take_all": self.take_all}

    @classmethod
    def of(cls, raw: Mapping[str, Any]) -> DrawRule:
        return cls(float(raw["rate"]), int(raw["at_most"]), bool(raw["take_all"]))


class Tier(StrEnum):
    """Where a drawn inspector comes from, best first (异地交叉: another county of the same prefecture)."""

    CROSS_COUNTY = "cross_county"  # a county inspector of another county of the class's prefecture
    PREFECTURE = "prefecture"  # the class's prefecture's own inspectors
    PROVINCE = "province"  # the province's inspectors
    LOCAL = "local"  # the class's own county: the last resort, recorded as such


TIERS = (Tier.CROSS_COUNTY, Tier.PREFECTURE, Tier.PROVINCE, Tier.LOCAL)
TIER_NAMES = {Tier.CROSS_COUNTY: "异地交叉（同州市其他县区）", Tier.PREFECTURE: "州市级", Tier.PROVINCE: "省级",
              Tier.LOCAL: "本地（无其他可选人员）"}


def unit(seed: str, *labels: object) -> float:
    """A number in (0, 1) from SHA-256 of `seed:label:…` (the first 53 bits, centred so it is never 0 or 1)."""
    digest = hashlib.sha256(":".join([seed, *map(str, labels)]).encode()).digest()
    return ((int.from_bytes(digest[:8], "big") >> 11) + 0.5) / 2.0**53


def risk_weight(anomalies: int, violations: int, employment_shortfall: float = 0.0) -> float:
    """Every class can be drawn; each recent anomaly adds half a chance, each confirmed violation of its
    institution two, and an institution whose trainees find work less often than the province's median up to two
    more (2 × the shortfall, a share of the median: clause 八's post-training employment; 0 in draws before it)."""
    return 1.0 + 0.5 * anomalies + 2.0 * violations + 2.0 * max(0.0, min(1.0, employment_shortfall))


def draw_size(n: int, rule: DrawRule, seed: str) -> int:
    """How many of `n` candidates the draw takes (see DrawRule); a lone candidate's coin is unit(seed, "size")."""
    if n <= 0:
        return 0
    if rule.take_all:
        return min(n, rule.at_most)
    if n == 1:
        return 1 if unit(seed, "size") < rule.rate else 0
    return max(1, min(math.ceil(n * rule.rate - 1e-9), rule.at_most, n - 1))


def draw_classes(candidates: Sequence[Candidate], how_many: int, seed: str) -> list[int]:
    """`how_many` classes without replacement, each with probability in proportion to its weight (Efraimidis–
    Spirakis: the largest keys u^(1/w), u = unit(seed, "class", id)), in drawn order; independent of the order."""
    keyed = [(unit(seed, "class", c.class_id) ** (1.0 / c.weight), c.class_id) for c in candidates]
    return [class_id for _, class_id in sorted(keyed, reverse=True)[:how_many]]


def draw_day(candidates: Sequence[Candidate], rule: DrawRule, seed: str) -> list[int]:
    """The classes a draw takes under its rule."""
    return draw_classes(candidates, draw_size(len(candidates), rule, seed), seed)


def tier_of(inspector: Inspector, place: ClassPlace) -> Tier | None:
    """The inspector's tier for the class, or None when the inspector's region does not reach it."""
    if inspector.level is Level.COUNTY:
        if inspector.region_code == place.county_code:
            return Tier.LOCAL
        same_prefecture = inspector.region_code[:4] == place.county_code[:4]
        return Tier.CROSS_COUNTY if same_prefecture else None
    if inspector.level is Level.PREFECTURE:
        return Tier.PREFECTURE if inspector.region_code == place.prefecture_code else None
    return Tier.PROVINCE


def on_duty_during(inspector: Inspector, start: datetime, end: datetime) -> bool:
    return any(s < end and e > start for s, e in inspector.duty)


def eligible_pool(inspectors: Sequence[Inspector], start: datetime, end: datetime) -> list[Inspector]:
    """The active inspectors, and of them those on duty during [start, end) when anyone is (no duty data: all)."""
    active = [i for i in inspectors if i.active]
    on = [i for i in active if on_duty_during(i, start, end)]
    return sorted(on if on else active, key=lambda i: i.staff_id)


@dataclass(frozen=True)
class Pick:
    """The inspector drawn for a class and the tier they came from (None, None: nobody eligible)."""

    staff_id: int | None
    tier: Tier | None


def draw_inspectors(classes: Sequence[Candidate], inspectors: Sequence[Inspector], seed: str) -> dict[int, Pick]:
    """For each drawn class, an inspector of the best tier that has anyone not recused from its institution (see
    Tier), chosen at floor(unit(seed, "inspector", class id) · pool size) in the pool ordered by staff id."""
    chosen: dict[int, Pick] = {}
    for c in classes:
        pick = Pick(None, None)
        for tier in TIERS:
            pool = sorted((i for i in inspectors if tier_of(i, c.place) is tier
                           and not is_recused(i, c.place.institution_id)), key=lambda i: i.staff_id)
            if pool:
                index = min(int(unit(seed, "inspector", c.class_id) * len(pool)), len(pool) - 1)
                pick = Pick(pool[index].staff_id, tier)
                break
        chosen[c.class_id] = pick
    return chosen


def replay(candidates: Sequence[Candidate], rule: DrawRule, seed: str, algorithm: str, how_many: int | None = None
           ) -> list[int]:
    """The classes a published draw gives again; `how_many` only for legacy draws (they had no rule)."""
    if algorithm == ALGORITHM:
        return draw_day(candidates, rule, seed)
    if algorithm == LEGACY_ALGORITHM and how_many is not None:
        return legacy_draw_classes(candidates, how_many, seed)
    raise ValueError(f"unknown draw algorithm {algorithm!r} (this code runs {ALGORITHM})")


def legacy_draw_classes(candidates: Sequence[Candidate], how_many: int, seed: str) -> list[int]:
    """Version 1 (before migration 0021), kept so that old draws can still be redone."""
    rng = random.Random(seed)
    keyed = [(rng.random() ** (1.0 / risk_weight(c.anomalies, c.violations)), c.class_id)
             for c in sorted(candidates, key=lambda c: c.class_id)]
    return [class_id for _, class_id in sorted(keyed, reverse=True)[:how_many]]


def legacy_draw_inspectors(classes: Sequence[Candidate], inspectors: Sequence[Inspector], seed: str
                           ) -> dict[int, int | None]:
    """Version 1: county level first (local), then prefecture, then province."""
    rng = random.Random(f"{seed}:inspectors")
    chosen: dict[int, int | None] = {}
    for c in classes:
        pool: list[Inspector] = []
        for level in ("county", "prefecture", "province"):
            pool = sorted((i for i in inspectors if i.active and i.level.value == level and covers(i, c.place)
                           and not is_recused(i, c.place.institution_id)), key=lambda i: i.staff_id)
            if pool:
                break
        chosen[c.class_id] = rng.choice(pool).staff_id if pool else None
    return chosen
