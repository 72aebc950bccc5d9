"""The province simulator's pure decisions: the scaled province's plan, the morning's schedule, and its report."""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

from monitor.demo.scenarios import INTENDED
from monitor.demo.world import make_id_number

CHECKIN_CHEATS = ("wrong_face", "out_of_fence", "mock_gps", "replay", "proxy", "group", "no_face")
ABSENT = "absent"  # a rostered trainee who sends nothing all morning: NO_SHOW once the session has ended
CHEAT_KINDS = (*CHECKIN_CHEATS, ABSENT)
ABSENT_RULE = "NO_SHOW"
DEFAULT_RATES = {"wrong_face": 0.02, "out_of_fence": 0.02, "mock_gps": 0.01, "replay": 0.01, "proxy": 0.01,
                 "group": 0.01, "no_face": 0.01, ABSENT: 0.05}
CLASSES_PER_INSTITUTION = 5
VENUE_MAX_OFFSET_M = 2000.0  # a venue lies this close to its county's seat (well inside the county)
SIGN_INS_END = 0.70  # share of the morning in which the sign-ins (and the cheats) arrive; the peak at a third of it
SIGN_OUTS_END = 0.85  # sign-outs arrive after that, until this share; the rest lets the queue drain

SURNAMES = "王李张刘陈杨赵黄周吴徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢"
GIVEN = "建国明华丽芳强军平秀英玉兰志勇永福春梅海燕红霞国庆德文金凤桂云刚杰涛敏静婷磊洋超鹏飞晓东"


def parse_rates(text: str) -> dict[str, float]:
    """`wrong_face=0.02,absent=0.05` as rates; names outside CHEAT_KINDS and rates outside [0, 1) are refused."""
    rates: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, value = part.partition("=")
        name = name.strip()
        if name not in CHEAT_KINDS:
            raise ValueError(f"unknown cheat {name!r}; known: {', '.join(CHEAT_KINDS)}")
        rate = float(value)
        if not 0 <= rate < 1:
            raise ValueError(f"rate of {name} must be in [0, 1): {value}")
        rates[name] = rate
    if sum(r for k, r in rates.items() if k != ABSENT) >= 1:
        raise ValueError("the check-in cheats' rates add up to 1 or more: no genuine upload would be left")
    return rates


def count_cheats(n_uploads: int, rates: dict[str, float]) -> dict[str, int]:
    """How many check-ins of each cheat a morning of `n_uploads` carries: the rate's share, at least one for a
    kind with a rate above zero (so that every chosen rule is tried)."""
    return {k: max(1, round(rates[k] * n_uploads)) for k in CHECKIN_CHEATS if rates.get(k, 0) > 0}


def draw_scenarios(n_uploads: int, counts: dict[str, int], rng: random.Random) -> list[str]:
    """The morning's check-ins in order: exactly `counts` of each cheat, the rest genuine, shuffled."""
    cheats = [k for k, n in counts.items() for _ in range(n)]
    out = cheats + ["genuine"] * max(0, n_uploads - len(cheats))
    rng.shuffle(out)
    return out


def draw_arrivals(n: int, span_s: float, rng: random.Random, begin_s: float = 0.0) -> list[float]:
    """`n` arrival times (seconds from the morning's start, sorted) in [begin_s, begin_s + span_s]: a sign-in peak,
    rising to its top at a third of the span and falling off after (a triangular density)."""
    return sorted(begin_s + rng.triangular(0.0, span_s, span_s / 3) for _ in range(n))


def pick_absent(n: int, rate: float, rng: random.Random) -> set[int]:
    """Which of `n` rostered trainees (by index) send nothing all morning: round(rate * n) of them."""
    return set(rng.sample(range(n), min(n, round(rate * n))))


def name_of(i: int) -> str:
    """A plausible Chinese name for the i-th simulated person (names repeat, as they do in a province)."""
    return SURNAMES[i % len(SURNAMES)] + GIVEN[(i // len(SURNAMES)) % len(GIVEN)] + (
        GIVEN[(i // (len(SURNAMES) * len(GIVEN))) % len(GIVEN)] if i % 3 else "")


def id_number_of(i: int, county: str, seed: int) -> str:
    """A well-formed ID number unique to the i-th simulated person of a run (birth day and sequence from i)."""
    birth = date(1960, 1, 1) + timedelta(days=(seed * 389 + i // 1000) % 14000)
    return make_id_number(county, birth, i % 1000)


@dataclass(frozen=True)
class ScaledClass:
    """One class of the scaled province: its institution (by index) and roster size."""

    index: int
    institution: int
    roster: int


@dataclass(frozen=True)
class ProvincePlan:
    """Institutions (each a county), and the scaled classes over them."""

    institution_counties: list[str]
    classes: list[ScaledClass]

    @property
    def trainees(self) -> int:
        return sum(c.roster for c in self.classes)


def plan_province(n_classes: int, roster: int, counties: Sequence[str], rng: random.Random) -> ProvincePlan:
    """`n_classes` classes of `roster` trainees, five to an institution, the institutions spread over every county
    in turn (in a shuffled order, so that every prefecture has some)."""
    order = list(counties)
    rng.shuffle(order)
    n_inst = math.ceil(n_classes / CLASSES_PER_INSTITUTION) if n_classes else 0
    institutions = [order[i % len(order)] for i in range(n_inst)]
    classes = [ScaledClass(i, i // CLASSES_PER_INSTITUTION, roster) for i in range(n_classes)]
    return ProvincePlan(institutions, classes)


def offset_within(rng: random.Random, max_m: float = VENUE_MAX_OFFSET_M) -> tuple[float, float]:
    """A point (metres north, east) uniformly within `max_m` of the origin."""
    r, bearing = max_m * math.sqrt(rng.random()), rng.uniform(0, 2 * math.pi)
    return r * math.cos(bearing), r * math.sin(bearing)


# -- the report --------------------------------------------------------------------------------------------------
@dataclass
class SentCheckin:
    """One check-in the morning sent through the API, and what the center made of it."""

    scenario: str
    trainee_id: int
    kind: str
    status_code: int
    checkin_id: int | None = None
    status: str = ""
    rules: list[str] = field(default_factory=list)  # anomalies raised on this check-in


@dataclass(frozen=True)
class RuleLine:
    cheat: str
    rule: str
    injected: int
    detected: int
    outcome: dict[str, int]
    missed_rules: dict[str, int] = field(default_factory=dict)  # what the undetected ones raised instead

    @property
    def rate(self) -> float:
        return self.detected / self.injected if self.injected else float("nan")


def tally_cheats(sent: Iterable[SentCheckin]) -> list[RuleLine]:
    """Per check-in cheat: injected (accepted uploads), detected at the rule meant to catch it, the statuses."""
    by: dict[str, list[SentCheckin]] = {}
    for s in sent:
        if s.scenario != "genuine":
            by.setdefault(s.scenario, []).append(s)
    lines = []
    for cheat in CHECKIN_CHEATS:
        mine = by.get(cheat, [])
        if not mine:
            continue
        rule = INTENDED[cheat]
        missed = [s for s in mine if rule not in s.rules]
        lines.append(RuleLine(cheat, rule, len(mine), len(mine) - len(missed),
                              dict(Counter(s.status or "unknown" for s in mine)),
                              dict(Counter(r for s in missed for r in s.rules or ["none"]))))
    return lines


@dataclass(frozen=True)
class GenuineTally:
    sent: int
    statuses: dict[str, int]
    false_alarms: int  # genuine check-ins on which any anomaly was raised
    by_rule: dict[str, int]


def tally_genuine(sent: Iterable[SentCheckin]) -> GenuineTally:
    """Genuine check-ins: their statuses, and how many raised any anomaly (a false alarm), per rule."""
    mine = [s for s in sent if s.scenario == "genuine"]
    alarms = [s for s in mine if s.rules]
    return GenuineTally(len(mine), dict(Counter(s.status or "unknown" for s in mine)), len(alarms),
                        dict(Counter(r for s in alarms for r in s.rules)))


@dataclass(frozen=True)
class AbsentTally:
    injected: int
    detected: int  # absentees with a NO_SHOW
    false_no_show: int  # NO_SHOW on a trainee who signed in
    present: int
    missing_signout: int  # MISSING_SIGNOUT on a trainee who signed out (all present trainees sign out)


def tally_absent(absent: set[int], present: set[int], no_show: set[int], missing_signout: set[int]) -> AbsentTally:
    """Absentees against the NO_SHOW anomalies; the trainees who signed in and out against NO_SHOW and
    MISSING_SIGNOUT (false alarms)."""
    return AbsentTally(len(absent), len(absent & no_show), len(present & no_show), len(present),
                       len(present & missing_signout))


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (nearest rank); NaN for none."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]


def busiest_rate(times: Sequence[float], window_s: float) -> float:
    """Events per second in the busiest `window_s` window of `times` (seconds)."""
    ordered = sorted(times)
    best, lo = 0, 0
    for hi, t in enumerate(ordered):
        while t - ordered[lo] > window_s:
            lo += 1
        best = max(best, hi - lo + 1)
    return best / window_s if ordered else 0.0
