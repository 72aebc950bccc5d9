"""Trust benchmark: classes of 60 trainees over a week, genuine and cheating check-ins, judged by the real rules.

Usage: .venv/bin/python scripts/bench_trust.py [--classes 10] [--trainees 60] [--days 5] [--seed 1]
                                               [--index-sizes 10000,100000]

Faces are synthetic 128-d encodings whose distances reproduce what face_recognition measures on East
Asian people (different-person pairs: 34 % <= 0.60, 18 % <= 0.55, 6 % <= 0.50, 1.4 % <= 0.45; same-person
pairs: median 0.39, 6 % > 0.50), so look-alikes come as often as in the province's classes, and a
look-alike stays one for every photo. Each check-in is judged by the same pure rule functions the worker
runs (face against the trainee and the class's evidence, fence, GPS, replay, device), and the script prints
per rule: injected, caught, and false alarms per 1,000 genuine check-ins; then the 1:N index's timings.
"""

from __future__ import annotations

import random
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import numpy as np
import typer

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from models.domain import FenceResult  # noqa: E402
from monitor.decisions.faces import FaceMatch, match_face, rank_other_people  # noqa: E402
from monitor.decisions.geodesy import circle_signed_distance_m, classify_fix  # noqa: E402
from monitor.decisions.verdicts import (  # noqa: E402
    PriorCheckIn,
    Thresholds,
    judge_checkin_face,
    judge_fence,
    judge_gps,
    judge_proxy,
    judge_replay,
)
from monitor.settings import Settings  # noqa: E402

DIM = 128
# Fitted to the East Asian figures above (identity in 16 dimensions with a spread per person, photo
# variation in 32 dimensions with a spread per photo); see the module docstring.
IDENTITY_DIMS, IDENTITY_SCALE, IDENTITY_SPREAD = 16, 0.09, 0.3
PHOTO_DIMS, PHOTO_SCALE, PHOTO_SPREAD = 32, 0.05, 0.15
CHEATS = ("proxy", "wrong_face", "replay", "out_of_fence", "mock_gps")
EXPECTED = {"proxy": "PROXY_SIGNIN", "wrong_face": "FACE_MISMATCH", "replay": "PHOTO_REPLAY",
            "out_of_fence": "OUT_OF_FENCE", "mock_gps": "GPS_IMPLAUSIBLE"}
VENUE = (25.0389, 102.7183)  # Kunming
VENUE_RADIUS_M = 120.0


class FaceWorld:
    """Synthetic people: an identity vector each, and photos of them."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.identity_basis = np.linalg.qr(rng.normal(size=(DIM, IDENTITY_DIMS)))[0]

    def person(self) -> np.ndarray:
        spread = np.exp(self.rng.normal(0, IDENTITY_SPREAD))
        return (self.identity_basis @ self.rng.normal(size=IDENTITY_DIMS)) * IDENTITY_SCALE * spread

    def photo(self, identity: np.ndarray) -> np.ndarray:
        basis = np.linalg.qr(self.rng.normal(size=(DIM, PHOTO_DIMS)))[0]
        spread = np.exp(self.rng.normal(0, PHOTO_SPREAD))
        return identity + (basis @ self.rng.normal(size=PHOTO_DIMS)) * PHOTO_SCALE * spread


@dataclass
class Tally:
    injected: Counter[str] = field(default_factory=Counter)
    caught: Counter[str] = field(default_factory=Counter)  # the expected rule fired
    held: Counter[str] = field(default_factory=Counter)  # not passed (any rule or review)
    passed_cheats: Counter[str] = field(default_factory=Counter)
    genuine: int = 0
    genuine_outcome: Counter[str] = field(default_factory=Counter)
    false_alarms: Counter[str] = field(default_factory=Counter)  # rule -> firings on genuine check-ins
    reviews: Counter[str] = field(default_factory=Counter)


def random_hash(rng: random.Random) -> int:
    return rng.getrandbits(64)


def flip_bits(value: int, bits: int, rng: random.Random) -> int:
    for b in rng.sample(range(64), bits):
        value ^= 1 << b
    return value


def near_copies(hashes: np.ndarray, count: int, probe: int, max_bits: int) -> list[tuple[str, int, int]]:
    """Earlier photos within `max_bits` of `probe` (Hamming distance on 64-bit pHashes)."""
    if count == 0:
        return []
    xor = np.bitwise_xor(hashes[:count], np.uint64(probe))
    bits = np.unpackbits(xor.view(np.uint8).reshape(-1, 8), axis=1).sum(axis=1)
    return [("checkin", int(i), int(bits[i])) for i in np.flatnonzero(bits <= max_bits)[:10]]


def offset(lat: float, lon: float, metres: float, rng: random.Random) -> tuple[float, float]:
    """A point about `metres` away from (lat, lon) in a random direction (small-distance approximation)."""
    angle = rng.uniform(0, 2 * np.pi)
    return (lat + metres * np.cos(angle) / 111_320, lon + metres * np.sin(angle) / (111_320 * np.cos(np.radians(lat))))


def simulate(classes: int, trainees: int, days: int, seed: int, rates: dict[str, float], t: Thresholds) -> Tally:
    """Run every class's week and judge each check-in; returns the tally."""
    nrng = np.random.default_rng(seed)
    rng = random.Random(seed)
    faces = FaceWorld(nrng)
    tally = Tally()
    start = datetime(2026, 3, 2, 0, 30, tzinfo=UTC)  # 08:30 in Shanghai, a Monday
    hashes = np.zeros(classes * trainees * days * 4 + 16, dtype=np.uint64)  # province-wide photo index
    stored = 0
    for _ in range(classes):
        people = [faces.person() for _ in range(trainees)]
        templates = {i: [faces.photo(p)] for i, p in enumerate(people)}
        outsiders = [faces.person() for _ in range(20)]
        last: dict[int, PriorCheckIn] = {}
        earlier_photos: dict[int, list[tuple[np.ndarray, int]]] = defaultdict(list)
        checkin_id = 0
        for day in range(days):
            passed_today: dict[int, list[tuple[list[float], int | None]]] = defaultdict(list)
            for slot in range(4):  # morning in/out, afternoon in/out
                at = start + timedelta(days=day, hours=(0, 3.5, 5, 8.5)[slot])
                order = list(range(trainees))
                rng.shuffle(order)
                for k, trainee in enumerate(order):
                    checkin_id += 1
                    when = at + timedelta(seconds=k * 20)
                    cheat = next((c for c in CHEATS if rng.random() < rates[c]), None)
                    if cheat == "replay" and not earlier_photos[trainee]:
                        cheat = None
                    device = f"phone-{trainee}"
                    if cheat == "proxy":
                        helper = rng.choice([p for p in range(trainees) if p != trainee])
                        encoding, phash, device = faces.photo(people[helper]), random_hash(rng), f"phone-{helper}"
                    elif cheat == "wrong_face":
                        encoding, phash = faces.photo(rng.choice(outsiders)), random_hash(rng)
                    elif cheat == "replay":
                        old, old_hash = rng.choice(earlier_photos[trainee])
                        encoding, phash = old + nrng.normal(0, 0.003, DIM), flip_bits(old_hash, rng.randint(0, 4), rng)
                    else:
                        encoding, phash = faces.photo(people[trainee]), random_hash(rng)
                    accuracy = rng.uniform(8, 40)
                    if cheat == "out_of_fence":
                        fix = offset(*VENUE, rng.uniform(1000, 5000), rng)
                    else:
                        fix = offset(*VENUE, rng.uniform(0, VENUE_RADIUS_M - accuracy) * 0.9, rng)
                    findings, review = judge_one(
                        trainee, encoding, templates, passed_today, fix, accuracy, cheat == "mock_gps", when,
                        last.get(trainee), device, phash, hashes, stored, t)
                    codes = {f.code.value for f in findings}
                    hashes[stored] = np.uint64(phash)
                    stored += 1
                    outcome = "refused" if codes else ("review" if review else "passed")
                    if cheat is None:
                        tally.genuine += 1
                        tally.genuine_outcome[outcome] += 1
                        for code in codes:
                            tally.false_alarms[code] += 1
                        if review:
                            tally.reviews[review.code] += 1
                    else:
                        tally.injected[cheat] += 1
                        tally.caught[cheat] += EXPECTED[cheat] in codes
                        tally.held[cheat] += outcome != "passed"
                        tally.passed_cheats[cheat] += outcome == "passed"
                    if outcome == "passed":
                        passed_today[trainee].append((encoding.tolist(), checkin_id))
                        earlier_photos[trainee].append((encoding, phash))
                    last[trainee] = PriorCheckIn(checkin_id, trainee, when, fix[0], fix[1], device)
    return tally


def judge_one(trainee: int, encoding: np.ndarray, templates: dict[int, list[np.ndarray]],
              passed_today: dict[int, list[tuple[list[float], int | None]]], fix: tuple[float, float],
              accuracy: float, mock: bool, when: datetime, previous: PriorCheckIn | None, device: str,
              phash: int, hashes: np.ndarray, stored: int, t: Thresholds):  # noqa: ANN202
    """The worker's rules for one check-in, on plain values."""
    match: FaceMatch = match_face(encoding, templates[trainee], t.face_match)
    evidence = {p: [(e.tolist(), None) for e in enc] + passed_today.get(p, [])
                for p, enc in templates.items() if p != trainee}
    findings, review = judge_checkin_face(1, None, match, t, rank_other_people(encoding, evidence))
    signed = circle_signed_distance_m(fix, VENUE, VENUE_RADIUS_M)
    fence = classify_fix(signed, accuracy)
    findings += judge_fence(fence, signed, accuracy, int(fence is FenceResult.UNCERTAIN), t)
    moved = circle_signed_distance_m(fix, (previous.lat, previous.lon), 0) if previous else None
    findings += judge_gps(mock, accuracy, fix, when, previous, moved, [], t)
    findings += judge_replay(near_copies(hashes, stored, phash, t.replay_phash_max_distance), None, when, None,
                             None, t)
    recent = [previous] if previous and previous.device_id == device else []
    findings += judge_proxy(trainee, recent, t)
    return findings, review


def print_index_figures(sizes: list[int]) -> None:
    """The 1:N duplicate-identity index: search time, memory and recall (scripts/bench_face_index.py)."""
    try:
        from scripts.bench_face_index import measure_index  # type: ignore[import-not-found]
    except ImportError as exc:
        typer.echo(f"\n1:N index: not measured ({exc})")
        return
    typer.echo("\n1:N duplicate-identity index (synthetic 128-d templates; recall against exact search)")
    for n in sizes:
        figures = measure_index(n)
        typer.echo("  " + ", ".join(f"{k} {v}" for k, v in figures.items()))


def main(
    classes: Annotated[int, typer.Option()] = 10,
    trainees: Annotated[int, typer.Option()] = 60,
    days: Annotated[int, typer.Option()] = 5,
    seed: Annotated[int, typer.Option()] = 1,
    proxy_rate: Annotated[float, typer.Option()] = 0.02,
    wrong_face_rate: Annotated[float, typer.Option()] = 0.01,
    replay_rate: Annotated[float, typer.Option()] = 0.01,
    out_of_fence_rate: Annotated[float, typer.Option()] = 0.01,
    mock_gps_rate: Annotated[float, typer.Option()] = 0.01,
    index_sizes: Annotated[str, typer.Option(help="comma-separated template counts; empty skips")] = "10000,100000",
) -> None:
    """Print per rule: injected, caught, false alarms per 1,000 genuine check-ins."""
    rates = {"proxy": proxy_rate, "wrong_face": wrong_face_rate, "replay": replay_rate,
             "out_of_fence": out_of_fence_rate, "mock_gps": mock_gps_rate}
    t = Settings().thresholds()
    began = time.perf_counter()
    tally = simulate(classes, trainees, days, seed, rates, t)
    total = tally.genuine + sum(tally.injected.values())
    typer.echo(f"{classes} classes x {trainees} trainees x {days} days x 4 check-ins = {total} check-ins "
               f"({tally.genuine} genuine), seed {seed}, {time.perf_counter() - began:.0f} s")
    typer.echo(f"thresholds: pass <= {t.face_match}, FACE_MISMATCH > {t.face_mismatch}, proxy: classmate within "
               f"{t.proxy_face_max} and {t.proxy_face_margin} nearer; pHash <= {t.replay_phash_max_distance} bits\n")
    typer.echo(f"{'cheat':<13} {'rule':<16} {'injected':>8} {'caught':>7} {'held':>6} {'passed':>7}")
    for cheat in CHEATS:
        n = tally.injected[cheat]
        typer.echo(f"{cheat:<13} {EXPECTED[cheat]:<16} {n:8d} {tally.caught[cheat]:7d} {tally.held[cheat]:6d} "
                   f"{tally.passed_cheats[cheat]:7d}")
    typer.echo("(caught: the rule fired; held: refused or sent to review; passed: accepted silently)\n")
    per_k = 1000 / max(tally.genuine, 1)
    typer.echo(f"{'rule':<16} {'false alarms':>12} {'per 1,000 genuine':>18}")
    for rule in sorted(set(EXPECTED.values()) | set(tally.false_alarms)):
        typer.echo(f"{rule:<16} {tally.false_alarms[rule]:12d} {tally.false_alarms[rule] * per_k:18.2f}")
    outcome = tally.genuine_outcome
    typer.echo(f"\ngenuine check-ins: passed {outcome['passed'] * per_k / 10:.1f} %, sent to review "
               f"{outcome['review'] * per_k / 10:.1f} % ({dict(tally.reviews)}), refused "
               f"{outcome['refused'] * per_k / 10:.2f} %")
    if index_sizes:
        print_index_figures([int(x) for x in index_sizes.split(",") if x])


if __name__ == "__main__":
    typer.run(main)
