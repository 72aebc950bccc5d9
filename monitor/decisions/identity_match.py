"""One face under two identities (冒名, 多领): the pure 1:N decision at enrolment, no I/O.

Input: the encodings of the photos being enrolled for one person and, per photo, its k nearest
templates in the province (from `monitor.adapters.face_index`), each with the person it belongs to and
that person's ID number. Output: DUPLICATE_IDENTITY, a review (look-alike), or nothing, with the
measured values and thresholds that led there.

Why the thresholds are so strict. On the province's trainees face_recognition/dlib is weak:
34.5 % of different-person pairs score <= 0.60, 17.6 % <= 0.55, 6.1 % <= 0.50, 1.1 % <= 0.45,
while the same person photographed twice usually scores 0.30-0.45 (the sample photos: 0.31-0.43;
re-encodings of one photo: 0.04-0.14). A 1:N search compares one face with every template, so the
expected number of strangers that fall under a threshold t is N x FMR(t): at 2 million templates
and 0.45 that is 22,000 "matches" per search. Below 0.45 no labelled data is at hand, so FMR(t)
is *assumed* (see `assumed_false_match_rate`): the probit of the measured rates, extrapolated
linearly from its last two points (0.50 -> 0.45). The probit's slope grows as t falls
(0.53, 0.62, 0.74 per 0.05 step), so a linear continuation overstates the tail: the estimate is
pessimistic. Under it, 0.20 gives ~0.002 false hits per search at 2 M templates, 0.22 ~0.011,
0.25 ~0.14, 0.30 ~6 and 0.35 ~160.

Hence the rule:
- only the k nearest templates of each photo are looked at (never a scan of everything under t);
- the person's own templates, and any record with the *same* ID number (one person: a teacher
  who is also a trainee), are never candidates;
- DUPLICATE only when every photo's nearest other person is the same person, the median of the
  photos' distances to that person is <= `max_distance`, no photo is farther than
  `review_distance` from them, and the next other person is at least `margin` farther
  (a unique match, not one face of a crowd of look-alikes);
- REVIEW (an operator decides; medium severity, never a refusal) when a photo comes within
  `review_distance` of another person but the above does not hold;
- nothing otherwise. Photos of one person are strongly correlated, so no credit is taken for
  several photos agreeing when estimating false hits.

With this model a duplicate enrolled from a *different* photo (0.30-0.45) cannot be told from the
province's look-alikes at 2 M templates (~160 strangers under 0.35 per search): this rule finds a
re-used photo, a re-scan or a photo of the same sitting. Finding more needs a stronger model or a
narrower candidate set, not a looser threshold.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from statistics import NormalDist
from typing import Any

# Measured different-person rates of the model on the province's population (threshold -> share <= it).
MEASURED_FMR = {0.60: 0.345, 0.55: 0.176, 0.50: 0.061, 0.45: 0.011}
_N = NormalDist()
_Z_LOW = _N.inv_cdf(MEASURED_FMR[0.45])
_SLOPE = (_N.inv_cdf(MEASURED_FMR[0.50]) - _Z_LOW) / 0.05  # probit units per unit of distance


# The ArcFace-type model (cosine distance) on the same population: FMR 0.1 % at 0.56, different-person
# distances centred near 0.95 (issue 17's measurement); a normal fit through those two facts.
COSINE_IMPOSTOR_MEAN = 0.95
COSINE_IMPOSTOR_SD = (COSINE_IMPOSTOR_MEAN - 0.56) / -_N.inv_cdf(0.001)


def assumed_false_match_rate(threshold: float, metric: str) -> float:
    """The assumed share of different-person pairs scoring <= `threshold` (measured at >= 0.45, extrapolated below).

    Euclidean (dlib), below 0.45: Phi(z(0.45) + slope * (t - 0.45)), slope the probit's from 0.50 to 0.45
    (pessimistic). Cosine (ArcFace-type): the normal fit of `COSINE_IMPOSTOR_MEAN` and `COSINE_IMPOSTOR_SD`.
    """
    if metric == "cosine":
        return _N.cdf((threshold - COSINE_IMPOSTOR_MEAN) / COSINE_IMPOSTOR_SD)
    if threshold >= 0.45:
        points = sorted(MEASURED_FMR.items())
        for (t0, p0), (t1, p1) in zip(points, points[1:], strict=False):
            if threshold <= t1:
                z = _N.inv_cdf(p0) + (_N.inv_cdf(p1) - _N.inv_cdf(p0)) * (threshold - t0) / (t1 - t0)
                return _N.cdf(z)
        return MEASURED_FMR[0.60]
    return _N.cdf(_Z_LOW + _SLOPE * (threshold - 0.45))


def expected_false_hits(gallery_size: int, threshold: float, metric: str) -> float:
    """Strangers expected under `threshold` in one 1:N search of `gallery_size` templates."""
    return gallery_size * assumed_false_match_rate(threshold, metric)


@dataclass(frozen=True)
class DuplicateThresholds:
    """The 1:N limits (values in the settings); recorded with every identity decision."""

    max_distance: float
    review_distance: float
    margin: float
    neighbours: int
    metric: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class PersonRef:
    kind: str  # trainee | teacher
    id: int
    id_number: str

    @property
    def key(self) -> tuple[str, int]:
        return (self.kind, self.id)


@dataclass(frozen=True)
class NeighbourHit:
    """One of the k nearest templates of a photo, with exact distance and whose it is."""

    template_id: int
    person: PersonRef
    distance: float
    photo_sha256: str = ""


@dataclass(frozen=True)
class IdentityDecision:
    outcome: str  # duplicate | review | none
    other: PersonRef | None = None
    other_template_id: int | None = None
    other_photo_sha256: str | None = None
    distance: float | None = None  # median over the photos, to `other`
    reasons: tuple[str, ...] = ()
    measured: dict[str, Any] = field(default_factory=dict)
    thresholds: dict[str, Any] = field(default_factory=dict)

    @property
    def is_duplicate(self) -> bool:
        return self.outcome == "duplicate"

    @property
    def is_review(self) -> bool:
        return self.outcome == "review"


REASON_TEXT = {
    "same_face": "登记照片与另一身份证号人员的登记人脸为同一人",
    "lookalike_band": "相似距离处于相貌相近区间，需人工核验",
    "margin": "另有相貌相近人员距离接近，无法唯一确定",
    "photos_disagree": "多张登记照片未一致指向同一人",
}


def _is_self(own: PersonRef, other: PersonRef) -> bool:
    return other.key == own.key or other.id_number == own.id_number


def nearest_other_people(own: PersonRef, per_photo_hits: Sequence[Sequence[NeighbourHit]], neighbours: int
                         ) -> list[dict[str, NeighbourHit]]:
    """Per photo: each other person's nearest template among that photo's k nearest (own and same ID excluded).
    People are keyed by ID number: a trainee and a teacher with one ID number are one person."""
    best: list[dict[str, NeighbourHit]] = []
    for hits in per_photo_hits:
        per_person: dict[str, NeighbourHit] = {}
        for hit in sorted(hits, key=lambda h: h.distance):
            if _is_self(own, hit.person):
                continue
            if hit.person.id_number not in per_person:
                per_person[hit.person.id_number] = hit
                if len(per_person) >= neighbours:
                    break
        best.append(per_person)
    return best


def _rounded(value: float) -> float | None:
    return round(value, 4) if math.isfinite(value) else None


@dataclass(frozen=True)
class TopCandidate:
    """The other person nearest to the enrolment's photos, and how clearly."""

    hit: NeighbourHit  # that person's nearest template over all photos
    distances: list[float]  # per photo (inf where the photo did not see them)
    median: float
    next_person: float  # the next other person's distance
    photos_agree: bool  # every photo's nearest other person is this one
    closest: float  # the nearest other person's distance in any photo

    @property
    def margin(self) -> float:
        return self.next_person - self.median


def rank_candidates(best: Sequence[dict[str, NeighbourHit]]) -> tuple[TopCandidate, list[dict[str, Any]]]:
    """The nearest other person by median distance over the photos, and the first five candidates as measured."""
    candidates = {key for per_person in best for key in per_person}

    def distances_to(key: str) -> list[float]:
        return [pp[key].distance if key in pp else math.inf for pp in best]

    first = {key: min((pp[key] for pp in best if key in pp), key=lambda h: h.distance) for key in candidates}
    ranked = sorted(candidates, key=lambda key: (statistics.median(distances_to(key)), min(distances_to(key))))
    top = ranked[0]
    median = statistics.median(distances_to(top))
    second = statistics.median(distances_to(ranked[1])) if len(ranked) > 1 else math.inf
    # The next other person as seen by any photo (a crowd of look-alikes shows up in either view).
    second_any = min((h.distance for pp in best for key, h in pp.items() if key != top), default=math.inf)
    nearest_of_photo = [min(pp.values(), key=lambda h: h.distance) if pp else None for pp in best]
    chosen = TopCandidate(
        hit=first[top], distances=distances_to(top), median=median, next_person=min(second, second_any),
        photos_agree=all(h is not None and h.person.id_number == top for h in nearest_of_photo),
        closest=min(h.distance for h in nearest_of_photo if h is not None))
    listed = [{"kind": first[k].person.kind, "id": first[k].person.id,
               "distance_median": _rounded(statistics.median(distances_to(k)))} for k in ranked[:5]]
    return chosen, listed


def classify(top: TopCandidate, t: DuplicateThresholds) -> tuple[str, list[str]]:
    """duplicate (one clear person close in every photo), review (someone within the review distance) or none."""
    worst = max(top.distances)
    if top.median <= t.max_distance and top.photos_agree and worst <= t.review_distance and top.margin >= t.margin:
        return "duplicate", ["same_face"]
    if top.closest > t.review_distance:
        return "none", []
    reasons = []
    if not (top.median <= t.max_distance):
        reasons.append("lookalike_band")
    if top.margin < t.margin:
        reasons.append("margin")
    if not top.photos_agree or worst > t.review_distance:
        reasons.append("photos_disagree")
    return "review", reasons or ["lookalike_band"]


def decide(own: PersonRef, per_photo_hits: Sequence[Sequence[NeighbourHit]], thresholds: DuplicateThresholds,
           gallery_size: int = 0) -> IdentityDecision:
    """DUPLICATE_IDENTITY, review or nothing for one enrolment (see the module text for the rule)."""
    t = thresholds
    base_thresholds = t.as_dict() | {
        "assumed_fmr_at_max_distance": assumed_false_match_rate(t.max_distance, t.metric),
        "assumed_fmr_at_review_distance": assumed_false_match_rate(t.review_distance, t.metric),
    }
    if not per_photo_hits:
        return IdentityDecision("none", thresholds=base_thresholds)
    best = nearest_other_people(own, per_photo_hits, t.neighbours)
    measured: dict[str, Any] = {
        "photos": len(per_photo_hits), "gallery_size": gallery_size,
        "expected_false_hits_at_max_distance": expected_false_hits(gallery_size, t.max_distance, t.metric),
        "expected_false_hits_at_review_distance": expected_false_hits(gallery_size, t.review_distance, t.metric),
    }
    if not any(best):
        return IdentityDecision("none", measured=measured, thresholds=base_thresholds)
    top, listed = rank_candidates(best)
    measured |= {
        "distance_median": _rounded(top.median),
        "distance_per_photo": [_rounded(d) for d in top.distances],
        "next_person_distance": _rounded(top.next_person),
        "margin": _rounded(top.margin),
        "photos_agree": top.photos_agree,
        "closest_distance": round(top.closest, 4),
        "candidates": listed,
    }
    outcome, reasons = classify(top, t)
    if outcome == "none":
        return IdentityDecision("none", measured=measured, thresholds=base_thresholds)
    finite = [d for d in top.distances if math.isfinite(d)]
    return IdentityDecision(
        outcome=outcome, other=top.hit.person, other_template_id=top.hit.template_id,
        other_photo_sha256=top.hit.photo_sha256 or None,
        distance=round(top.median, 4) if math.isfinite(top.median) else round(min(finite), 4),
        reasons=tuple(reasons), measured=measured, thresholds=base_thresholds,
    )


def explain(decision: IdentityDecision) -> str:
    """The zh-CN reasons of a decision, joined."""
    return "；".join(REASON_TEXT[r] for r in decision.reasons)
