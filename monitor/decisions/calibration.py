"""Face-threshold calibration as pure functions: pair distances, the FMR/FNMR curve, thresholds at a target."""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from monitor.decisions.faces import Metric, face_distance, face_distances


@dataclass(frozen=True)
class CurvePoint:
    """Error rates at one distance threshold (a pair matches when its distance is at or below it)."""

    threshold: float
    fmr: float  # share of different-person pairs that match (false match rate)
    fnmr: float  # share of same-person pairs that do not match (false non-match rate)
    false_matches: int
    false_non_matches: int


@dataclass(frozen=True)
class Calibration:
    """Thresholds chosen from measured pairs, with the rates they give on those pairs."""

    genuine_pairs: int
    impostor_pairs: int
    face_match: float  # largest threshold whose FMR <= target_fmr
    fnmr_at_match: float
    face_mismatch: float  # smallest threshold that refuses at most target_fnmr of genuine pairs
    fmr_below_mismatch: float
    proxy_face_max: float  # one-to-many over a class: FMR <= target_fmr / (class_size - 1)
    target_fmr: float
    target_fnmr: float
    class_size: int
    fmr_resolution: float  # with no false match among N pairs, the true FMR is below 3/N (95 %)


def pair_distances(encodings: Mapping[str, Sequence[Sequence[float]]],
                   metric: Metric) -> tuple[np.ndarray, np.ndarray]:
    """Distances (model's metric) of every same-person pair and every different-person pair, sorted ascending."""
    people = [(name, np.asarray(v, dtype=np.float64)) for name, v in encodings.items() if len(v)]
    genuine = [face_distance(a, b, metric) for _, enc in people for a, b in itertools.combinations(enc, 2)]
    impostor: list[float] = []
    for (_, ea), (_, eb) in itertools.combinations(people, 2):
        for a in ea:
            impostor.extend(face_distances(a, eb, metric).tolist())
    return np.sort(np.asarray(genuine)), np.sort(np.asarray(impostor))


def error_curve(genuine: np.ndarray, impostor: np.ndarray, thresholds: Sequence[float]) -> list[CurvePoint]:
    """FMR and FNMR at each threshold; `genuine` and `impostor` are sorted distances."""
    out = []
    for t in thresholds:
        fm = int(np.searchsorted(impostor, t, side="right"))
        fnm = int(len(genuine) - np.searchsorted(genuine, t, side="right"))
        out.append(CurvePoint(threshold=float(t), fmr=fm / max(len(impostor), 1),
                              fnmr=fnm / max(len(genuine), 1), false_matches=fm, false_non_matches=fnm))
    return out


def threshold_at_fmr(impostor: np.ndarray, target_fmr: float) -> float:
    """The largest distance threshold at which at most `target_fmr` of the sorted impostor pairs match."""
    if len(impostor) == 0:
        raise ValueError("no different-person pairs")
    allowed = int(np.floor(target_fmr * len(impostor)))
    # Matching means distance <= threshold: stay just below the (allowed+1)-th smallest impostor distance.
    return float(np.nextafter(impostor[allowed], -np.inf)) if allowed < len(impostor) else float(impostor[-1])


def threshold_at_fnmr(genuine: np.ndarray, target_fnmr: float) -> float:
    """The smallest distance threshold above which at most `target_fnmr` of the sorted genuine pairs lie."""
    if len(genuine) == 0:
        raise ValueError("no same-person pairs")
    allowed = int(np.floor(target_fnmr * len(genuine)))
    return float(genuine[max(len(genuine) - 1 - allowed, 0)])


def calibrate(genuine: np.ndarray, impostor: np.ndarray, target_fmr: float = 0.001, target_fnmr: float = 0.001,
              class_size: int = 60) -> Calibration:
    """Thresholds meeting the targets on these pairs: 1:1 pass, FACE_MISMATCH and the class-wide proxy limit."""
    # Rounded to 4 decimals towards the safe side: pass thresholds down, the refusal threshold up.
    match = math.floor(threshold_at_fmr(impostor, target_fmr) * 1e4) / 1e4
    mismatch = max(math.ceil(threshold_at_fnmr(genuine, target_fnmr) * 1e4) / 1e4, match)
    proxy = math.floor(threshold_at_fmr(impostor, target_fmr / max(class_size - 1, 1)) * 1e4) / 1e4
    [at_match] = error_curve(genuine, impostor, [match])
    [at_mismatch] = error_curve(genuine, impostor, [mismatch])
    return Calibration(
        genuine_pairs=len(genuine), impostor_pairs=len(impostor), face_match=match,
        fnmr_at_match=at_match.fnmr, face_mismatch=mismatch, fmr_below_mismatch=at_mismatch.fmr,
        proxy_face_max=min(proxy, match), target_fmr=target_fmr, target_fnmr=target_fnmr,
        class_size=class_size, fmr_resolution=3 / max(len(impostor), 1),
    )


def rank_one_rate(encodings: Mapping[str, Sequence[Sequence[float]]], metric: Metric) -> float:
    """Share of photos (of people with two or more) whose nearest other photo is the same person's: how often the
    right person is the nearest of a roster made of everyone in the folder."""
    flat = [(name, np.asarray(e, dtype=np.float64)) for name, v in encodings.items() for e in v]
    hits = total = 0
    for i, (name, probe) in enumerate(flat):
        if len(encodings[name]) < 2:
            continue
        others = [e for j, (_, e) in enumerate(flat) if j != i]
        names = [n for j, (n, _) in enumerate(flat) if j != i]
        nearest = int(np.argmin(face_distances(probe, others, metric)))
        hits += names[nearest] == name
        total += 1
    return hits / total if total else 0.0
