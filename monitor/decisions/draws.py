"""双随机 (clause 七): a day's draw of classes to inspect, weighted by risk, and of inspectors for them, reproducible
from a recorded seed so that anyone can redo it once it is published; pure functions."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from monitor.decisions.dispatch import ClassPlace, Inspector, covers, is_recused


@dataclass(frozen=True)
class Candidate:
    """A class that may be drawn, its place and its risk."""

    class_id: int
    place: ClassPlace
    anomalies: int  # the class's anomalies over the look-back window
    violations: int  # alerts of its institution closed as violations confirmed


def risk_weight(anomalies: int, violations: int) -> float:
    """Every class can be drawn; each recent anomaly adds half a chance, each confirmed violation of its
    institution two."""
    return 1.0 + 0.5 * anomalies + 2.0 * violations


def draw_classes(candidates: Sequence[Candidate], how_many: int, seed: str) -> list[int]:
    """`how_many` classes without replacement, each with probability in proportion to its weight (Efraimidis–
    Spirakis keys), in drawn order; the same seed and candidates give the same draw."""
    rng = random.Random(seed)
    keyed = [(rng.random() ** (1.0 / risk_weight(c.anomalies, c.violations)), c.class_id)
             for c in sorted(candidates, key=lambda c: c.class_id)]
    return [class_id for _, class_id in sorted(keyed, reverse=True)[:how_many]]


def draw_inspectors(classes: Sequence[Candidate], inspectors: Sequence[Inspector], seed: str
                    ) -> dict[int, int | None]:
    """For each drawn class, an inspector drawn at random among the active ones covering it and not recused from its
    institution (county level first, then prefecture, then province); None when there is nobody."""
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
