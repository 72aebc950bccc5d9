"""Trust benchmark per face model: classes of 60 trainees over a week, genuine and cheating check-ins, judged by
the real rules; then every labelled face set at hand run as a class through the real engine.

Usage: .venv/bin/python scripts/bench_trust.py [--model NAME,NAME] [--classes 10] [--trainees 60] [--days 5]
                                               [--seed 1] [--faces DIR] [--index-sizes 10000,100000]

Synthetic faces reproduce, per model, what was measured on East Asian people:
- dlib-resnet: 128-d encodings, Euclidean (different-person pairs: 34 % <= 0.60, 18 % <= 0.55, 6 % <= 0.50,
  1.4 % <= 0.45; same-person pairs: median 0.39, 6 % > 0.50);
- faceplugin-arcface: 512-d unit vectors, cosine (FMR 0.1 % at 0.56 with FNMR 6.5 %, FNMR 1.3 % at FMR 1 %,
  d' 4.76): identities in a 20-d subspace, photo noise per photo and per person;
- expo-mobilefacenet: 192-d, cosine (FNMR 10.5 % at FMR 0.1 %, 3.3 % at FMR 1 %, d' 4.27).
Look-alikes come as often as in the province's classes, and a look-alike stays one for every photo. Each
check-in is judged by the same pure rule functions the worker runs (face against the trainee and the class's
evidence, fence, GPS, replay, device); the script prints per rule: injected, caught, and false alarms per 1,000
genuine check-ins, and passed / review / refused for genuine sign-ins and for classmate proxies.

Real faces (--faces, default the shared sample people; one sub-folder per person): each person is enrolled with
their first photo, signs in with every other photo, and signs in once with each photo *for* the next classmate;
the engine scans every photo and the same rules judge. Then the 1:N index's timings.
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
from monitor.adapters.face_models import load_manifest, manifest_names  # noqa: E402
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
from monitor.services.checkins import CLASSMATE_RECENT_CHECKINS  # noqa: E402
from monitor.settings import Settings  # noqa: E402

DIM = 128
# Fitted to the East Asian figures above (identity in 16 dimensions with a spread per person, photo
# variation in 32 dimensions with a spread per photo); see the module docstring.
IDENTITY_DIMS, IDENTITY_SCALE, IDENTITY_SPREAD = 16, 0.09, 0.3
PHOTO_DIMS, PHOTO_SCALE, PHOTO_SPREAD = 32, 0.05, 0.15
# expo-mobilefacenet's synthetic people (k, noise, photo spread, person spread), fitted to its measured figures.
MOBILEFACENET_FIT = (24, 0.85, 0.15, 0.3)
CHEATS = ("proxy", "wrong_face", "replay", "out_of_fence", "mock_gps")
EXPECTED = {"proxy": "PROXY_SIGNIN", "wrong_face": "FACE_MISMATCH", "replay": "PHOTO_REPLAY",
            "out_of_fence": "OUT_OF_FENCE", "mock_gps": "GPS_IMPLAUSIBLE"}
VENUE = (25.0389, 102.7183)  # Kunming
VENUE_RADIUS_M = 120.0


class FaceWorld:
    """Synthetic dlib people: an identity vector each, and photos of them (Euclidean)."""

    dim = DIM

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


class CosineFaceWorld:
    """Synthetic people for a cosine model: unit identities in a `k`-d subspace of `dim`, photos the identity plus
    noise of norm `noise` (spread per photo and per person), normalised. Fitted to the model's measured figures."""

    def __init__(self, rng: np.random.Generator, dim: int, k: int, noise: float, photo_spread: float,
                 person_spread: float) -> None:
        self.rng, self.dim, self.noise = rng, dim, noise
        self.photo_spread, self.person_spread = photo_spread, person_spread
        self.identity_basis = np.linalg.qr(rng.normal(size=(dim, k)))[0]
        self.spread: dict[int, float] = {}

    def person(self) -> np.ndarray:
        v = self.identity_basis @ self.rng.normal(size=self.identity_basis.shape[1])
        v = v / np.linalg.norm(v)
        self.spread[id(v)] = float(np.exp(self.rng.normal(0, self.person_spread)))
        return v

    def photo(self, identity: np.ndarray) -> np.ndarray:
        r = self.noise * self.spread.get(id(identity), 1.0) * float(np.exp(self.rng.normal(0, self.photo_spread)))
        e = self.rng.normal(size=self.dim)
        v = identity + r * e / np.linalg.norm(e)
        return v / np.linalg.norm(v)


def face_world(model: str, rng: np.random.Generator) -> FaceWorld | CosineFaceWorld:
    """The synthetic people of one model (see the module text for what each is fitted to)."""
    if model == "faceplugin-arcface":
        return CosineFaceWorld(rng, 512, k=20, noise=0.75, photo_spread=0.25, person_spread=0.2)
    if model == "expo-mobilefacenet":
        k, noise, photo_spread, person_spread = MOBILEFACENET_FIT
        return CosineFaceWorld(rng, 192, k, noise, photo_spread, person_spread)
    return FaceWorld(rng)


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
    cheat_outcome: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))


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


def simulate(classes: int, trainees: int, days: int, seed: int, rates: dict[str, float], t: Thresholds,
             model: str = "dlib-resnet") -> Tally:
    """Run every class's week and judge each check-in with `model`'s synthetic faces; returns the tally."""
    nrng = np.random.default_rng(seed)
    rng = random.Random(seed)
    faces = face_world(model, nrng)
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
                        encoding, phash = old + nrng.normal(0, 0.003, faces.dim), flip_bits(old_hash, rng.randint(0, 4),
                                                                                            rng)
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
                        tally.cheat_outcome[cheat][outcome] += 1
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
    match: FaceMatch = match_face(encoding, templates[trainee], t.face_match, t.metric)
    evidence = {p: [(e.tolist(), None) for e in enc] + passed_today.get(p, [])[-CLASSMATE_RECENT_CHECKINS:]
                for p, enc in templates.items() if p != trainee}  # as monitor.services.checkins.classmates_evidence
    findings, review = judge_checkin_face(1, None, match, t, rank_other_people(encoding, evidence, t.metric))
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


@dataclass
class RealClass:
    """A labelled folder run as one class through the real engine: outcomes of genuine sign-ins and proxies."""

    people: int = 0
    genuine: Counter[str] = field(default_factory=Counter)
    proxies: Counter[str] = field(default_factory=Counter)
    per_checkin_ms: float = 0.0


def real_class(model: str, folder: Path, t: Thresholds) -> RealClass:
    """Each person enrolled with their first photo signs in with every other one, and once with each of them for the
    next classmate (a proxy); the engine scans every photo, the worker's face rules judge."""
    from monitor.adapters.face_dlib import FaceEngine
    from monitor.adapters.face_models import load_face_model

    engine = FaceEngine(load_face_model(model))
    photos = {p.name: sorted(f for f in p.iterdir() if f.suffix.lower() in {".jpg", ".jpeg", ".png", ".webp"})
              for p in sorted(folder.iterdir()) if p.is_dir()}
    people = [name for name, files in photos.items() if files]
    scans = {}
    began = time.perf_counter()
    for name in people:
        for f in photos[name]:
            scans[f] = engine.scan(f.read_bytes(), "selfie")
    out = RealClass(people=len(people), per_checkin_ms=1000 * (time.perf_counter() - began) / max(len(scans), 1))
    templates = {i: [np.asarray(scans[photos[n][0]].encodings[0])] for i, n in enumerate(people)
                 if scans[photos[n][0]].faces}

    def outcome(trainee: int, scan_faces: list[list[float]]) -> str:
        if len(scan_faces) != 1 or trainee not in templates:
            return "refused"
        enc = scan_faces[0]
        match = match_face(enc, templates[trainee], t.face_match, t.metric)
        evidence = {p: [(e.tolist(), None) for e in enc_list] for p, enc_list in templates.items() if p != trainee}
        findings, review = judge_checkin_face(1, None, match, t, rank_other_people(enc, evidence, t.metric))
        return "refused" if findings else ("review" if review else "passed")

    for i, name in enumerate(people):
        for f in photos[name][1:]:
            out.genuine[outcome(i, scans[f].encodings)] += 1
            if len(people) > 1:
                out.proxies[outcome((i + 1) % len(people), scans[f].encodings)] += 1
    return out


def share(counter: Counter[str]) -> str:
    n = sum(counter.values())
    return " / ".join(f"{counter[k]} ({100 * counter[k] / n:.1f} %)" if n else "0" for k in ("passed", "review",
                                                                                           "refused"))


def report_model(model: str, args: dict[str, int], rates: dict[str, float], faces_dir: Path | None) -> None:
    t = Settings().thresholds(load_manifest(model))
    began = time.perf_counter()
    tally = simulate(args["classes"], args["trainees"], args["days"], args["seed"], rates, t, model)
    total = tally.genuine + sum(tally.injected.values())
    typer.echo(f"== {model} ({t.metric}) ==")
    typer.echo(f"{args['classes']} classes x {args['trainees']} trainees x {args['days']} days x 4 check-ins = "
               f"{total} check-ins ({tally.genuine} genuine), seed {args['seed']}, {time.perf_counter() - began:.0f} s")
    typer.echo(f"thresholds: pass <= {t.face_match} (and the roster's nearest by {t.cohort_margin}), FACE_MISMATCH > "
               f"{t.face_mismatch}, proxy: classmate within {t.proxy_face_max} and {t.proxy_face_margin} nearer; "
               f"pHash <= {t.replay_phash_max_distance} bits\n")
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
    typer.echo(f"\nsynthetic, passed / review / refused: genuine {share(tally.genuine_outcome)}; "
               f"classmate proxies {share(tally.cheat_outcome['proxy'])}; "
               f"strangers {share(tally.cheat_outcome['wrong_face'])}")
    typer.echo(f"reviews of genuine check-ins by reason: {dict(tally.reviews)}")
    if faces_dir is not None and faces_dir.is_dir():
        real = real_class(model, faces_dir, t)
        typer.echo(f"real faces ({faces_dir}, {real.people} people, {real.per_checkin_ms:.0f} ms a scan), "
                   f"passed / review / refused: genuine {share(real.genuine)}; classmate proxies "
                   f"{share(real.proxies)}")
    typer.echo("")


def main(
    model: Annotated[str, typer.Option(help="comma-separated face models (default: every shipped one)")] = "",
    classes: Annotated[int, typer.Option()] = 10,
    trainees: Annotated[int, typer.Option()] = 60,
    days: Annotated[int, typer.Option()] = 5,
    seed: Annotated[int, typer.Option()] = 1,
    proxy_rate: Annotated[float, typer.Option()] = 0.02,
    wrong_face_rate: Annotated[float, typer.Option()] = 0.01,
    replay_rate: Annotated[float, typer.Option()] = 0.01,
    out_of_fence_rate: Annotated[float, typer.Option()] = 0.01,
    mock_gps_rate: Annotated[float, typer.Option()] = 0.01,
    faces: Annotated[Path | None, typer.Option(help="labelled faces, one sub-folder per person (default: the "
                                               "shared sample people; a missing folder is skipped)")] = None,
    index_sizes: Annotated[str, typer.Option(help="comma-separated template counts; empty skips")] = "10000,100000",
) -> None:
    """Print per model and rule: injected, caught, false alarms per 1,000 genuine check-ins; outcomes on real faces."""
    rates = {"proxy": proxy_rate, "wrong_face": wrong_face_rate, "replay": replay_rate,
             "out_of_fence": out_of_fence_rate, "mock_gps": mock_gps_rate}
    models = [m for m in model.split(",") if m] or manifest_names()
    faces_dir = faces if faces is not None else Settings().faces_dir / "people"
    for name in models:
        report_model(name, {"classes": classes, "trainees": trainees, "days": days, "seed": seed}, rates, faces_dir)
    if index_sizes:
        print_index_figures([int(x) for x in index_sizes.split(",") if x])


if __name__ == "__main__":
    typer.run(main)
