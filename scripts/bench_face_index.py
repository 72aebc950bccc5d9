"""Benchmark of the 1:N face index (monitor/face_index.py): build time, memory, search time and recall.

Usage: .venv/bin/python scripts/bench_face_index.py [--model faceplugin-arcface] [--sizes 10000,100000,1000000]
                                                    [--queries 200]

With the default model (faceplugin-arcface, 512-d, cosine) the templates are synthetic unit vectors fitted to
its East Asian figures (the same people as scripts/bench_trust.py); the script prints, per gallery size, build,
memory, search time, recall, and per enrolment of a new person the false candidates (strangers within the
review and duplicate distances, exact distances over the index's candidates), and how often a re-photographed
person enrolled under another ID number is found (top candidate within the review distance). The rest of this
text is the dlib model's (--model dlib-resnet).

Templates are synthetic 128-d face encodings (one per person): an identity in a 16-dimensional subspace
with a spread per person, plus photo variation, fitted to what face_recognition measures on East Asian
people (the script prints the synthetic distance figures next to the measured ones). Synthetic vectors
are fine for timing; recall is measured against exact search over the same vectors:

- recall@10: the production path (the index proposes 4k = 40 candidates, re-ranked exactly, top 10
  kept) against the exact top 10 of random new faces;
- dup recall@1: for a new photo of an enrolled person (the 1:N case), the index's nearest is the exact
  nearest; "dup nearest is same person" says how often that exact nearest is the person at all (the
  model's limit, not the index's: look-alikes come nearer than a second photo of oneself);
- near-copy recall: a re-used photo or re-scan (distance ~0.1) of an enrolled template is among the
  candidates: the case the DUPLICATE rule acts on.

Search time is per query, one at a time, as an enrolment searches. Memory is the growth of the
process's resident set over the build (the vectors themselves already loaded) and the bytes of the
serialised index. "startup" adds to the build the time to turn the stored float32 copies
(`face_vectors`) into one array, "startup_json" the time to parse the JSON of record instead (timed
on 20,000 rows, extrapolated); database transfer is not included.

Expected false hits: a 1:N search of N templates meets N x FMR(t) strangers under threshold t, with
FMR(t) the *assumed* different-person rate of monitor/identity_match.py (measured down to 0.45,
extrapolated below as a linear probit, which overstates the tail).

`measure_index(n, queries)` returns one size's figures as a flat dict (scripts/bench_trust.py prints it).

`--retrain` measures instead what a retrain costs the searches made meanwhile (monitor/adapters/face_index.py
`FaceIndex`, its vectors held in memory rather than read from the table): an index of each size is made due for
a retrain, then an enrolment (one new template, a refresh and a 40-candidate search, as `nearest_templates` does)
runs every 20 ms until the new index has swapped in. It prints the longest and the p99 of those calls with the
retrain in a background thread (now) and done in place (before: the enrolment that triggered it waited for it).
"""

from __future__ import annotations

import argparse
import ctypes
import json
import sys
import time
from pathlib import Path
from typing import Any

import faiss
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from monitor.adapters import vector_index  # noqa: E402
from monitor.adapters.face_index import FaceIndex  # noqa: E402
from monitor.adapters.face_models import load_manifest  # noqa: E402
from monitor.adapters.vector_index import DIM, VectorIndex, parse_encodings  # noqa: E402
from monitor.decisions.identity_match import (  # noqa: E402
    MEASURED_FMR,
    assumed_false_match_rate,
    expected_false_hits,
)
from monitor.settings import Settings  # noqa: E402

IDENTITY_DIMS, IDENTITY_SCALE, IDENTITY_SPREAD = 16, 0.09, 0.3
PHOTO_DIMS, PHOTO_SCALE, PHOTO_SPREAD = 32, 0.05, 0.15
K = 10
PROVINCE = 2_000_000


class SyntheticFaces:
    """People as identity vectors, photos of them as identity + photo variation (vectorised)."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.identity_basis = np.linalg.qr(self.rng.normal(size=(DIM, IDENTITY_DIMS)))[0].astype(np.float32)
        self.photo_bases = [np.linalg.qr(self.rng.normal(size=(DIM, PHOTO_DIMS)))[0].astype(np.float32)
                            for _ in range(8)]

    def people(self, n: int) -> np.ndarray:
        spread = np.exp(self.rng.normal(0, IDENTITY_SPREAD, size=(n, 1))).astype(np.float32)
        z = self.rng.standard_normal((n, IDENTITY_DIMS), dtype=np.float32)
        return (z @ self.identity_basis.T) * (IDENTITY_SCALE * spread)

    def photos(self, identities: np.ndarray) -> np.ndarray:
        n = len(identities)
        out = identities.copy()
        which = self.rng.integers(0, len(self.photo_bases), size=n)
        spread = np.exp(self.rng.normal(0, PHOTO_SPREAD, size=(n, 1))).astype(np.float32)
        w = self.rng.standard_normal((n, PHOTO_DIMS), dtype=np.float32) * (PHOTO_SCALE * spread)
        for b, basis in enumerate(self.photo_bases):
            rows = which == b
            out[rows] += w[rows] @ basis.T
        return out


def rss_bytes() -> int:
    """Resident set size, after handing freed heap back to the system (else a build reuses it unseen)."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:
        pass
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


def distance_figures(faces: SyntheticFaces, pairs: int = 20_000) -> dict[str, float]:
    """Shares of different-person pairs under the measured thresholds, and the same-person median."""
    a, b = faces.photos(faces.people(pairs)), faces.photos(faces.people(pairs))
    different = np.linalg.norm(a - b, axis=1)
    identities = faces.people(pairs)
    same = np.linalg.norm(faces.photos(identities) - faces.photos(identities), axis=1)
    figures = {f"diff<={t:.2f}": float(np.mean(different <= t)) for t in sorted(MEASURED_FMR)}
    figures |= {"same_median": float(np.median(same)), "same>0.50": float(np.mean(same > 0.50))}
    return figures


def round_3(x: float) -> float:
    """Three significant figures."""
    return float(f"{x:.3g}")


def measure_index(n: int, queries: int = 200, seed: int = 1) -> dict[str, float | int | str]:
    """Build the index over n synthetic templates and measure it (see the module text)."""
    faces = SyntheticFaces(seed)
    identities = faces.people(n)
    gallery = np.ascontiguousarray(faces.photos(identities), dtype=np.float32)
    thresholds = Settings().duplicate_thresholds(load_manifest("dlib-resnet"))

    before = rss_bytes()
    start = time.perf_counter()
    index = VectorIndex()
    index.build(gallery)
    build_s = time.perf_counter() - start
    rss_delta = rss_bytes() - before
    index_bytes = index.nbytes()

    # Start-up from the database: the float32 copies (face_vectors) joined and viewed, as FaceIndex loads them;
    # the JSON of record parsed instead is timed on a sample and extrapolated.
    stored = [row.astype("<f4").tobytes() for row in gallery]
    start = time.perf_counter()
    loaded = np.frombuffer(b"".join(stored), dtype="<f4").reshape(n, DIM).astype(np.float32)
    load_s = time.perf_counter() - start
    assert np.array_equal(loaded, gallery)
    del stored, loaded
    sample = min(n, 20_000)
    texts = [json.dumps([float(x) for x in row]) for row in gallery[:sample].astype(np.float64)]
    start = time.perf_counter()
    parse_encodings(texts)
    parse_s = (time.perf_counter() - start) * n / sample

    # Queries: new faces (recall@10) and new photos of enrolled people (duplicate recall).
    strangers = faces.photos(faces.people(queries))
    planted = faces.rng.choice(n, size=queries, replace=False)
    duplicates = faces.photos(identities[planted])
    exact_d, exact_i = faiss.knn(strangers, gallery, K)

    timings = []
    found = []
    for q in strangers:
        start = time.perf_counter()
        _, positions = index.search(q[None, :], 4 * K)
        candidates = positions[0][positions[0] >= 0]
        exact = np.linalg.norm(gallery[candidates] - q, axis=1)  # the exact re-rank, as from the stored rows
        top = candidates[np.argsort(exact)[:K]]
        timings.append(time.perf_counter() - start)
        found.append(top)
    recall = float(np.mean([len(set(f) & set(e)) / K for f, e in zip(found, exact_i, strict=True)]))
    # New photos of enrolled people: does the index give the exact nearest (recall@1 against exact search),
    # and is that nearest the planted person at all (what the model allows, index aside)?
    exact_dup_d, exact_dup_i = faiss.knn(duplicates, gallery, 1)
    same_as_exact = planted_first = 0
    for q, want, truth in zip(duplicates, planted, exact_dup_i[:, 0], strict=True):
        _, positions = index.search(q[None, :], 4 * K)
        candidates = positions[0][positions[0] >= 0]
        exact = np.linalg.norm(gallery[candidates] - q, axis=1)
        nearest = candidates[int(np.argmin(exact))] if len(candidates) else -1
        same_as_exact += int(nearest == truth)
        planted_first += int(truth == want)
    # Near copies (a re-used photo or a re-scan: distance ~0.1, what the DUPLICATE rule acts on).
    copies = gallery[planted] + faces.rng.normal(0, 0.1 / np.sqrt(DIM), size=(queries, DIM)).astype(np.float32)
    copy_found = 0
    for q, want in zip(copies, planted, strict=True):
        _, positions = index.search(q[None, :], 4 * K)
        copy_found += int(want in positions[0])
    under_review = float(np.mean(np.sqrt(np.maximum(exact_d, 0)) <= thresholds.review_distance, axis=0).sum())
    ms = np.array(timings) * 1000
    return {
        "n": n, "kind": index.kind, "build_s": round(build_s, 2), "startup_s": round(build_s + load_s, 2),
        "startup_json_s": round(build_s + parse_s, 1),
        "rss_delta_mb": round(rss_delta / 2**20, 1), "index_mb": round(index_bytes / 2**20, 1),
        "search_p50_ms": round(float(np.percentile(ms, 50)), 3),
        "search_p99_ms": round(float(np.percentile(ms, 99)), 3),
        "recall_at_10": round(recall, 4), "dup_recall_at_1": round(same_as_exact / queries, 4),
        "dup_nearest_is_same_person": round(planted_first / queries, 4),
        "near_copy_recall": round(copy_found / queries, 4),
        "synthetic_strangers_under_review_distance": round(under_review, 4),
        "expected_false_hits_at_max_distance": round_3(expected_false_hits(n, thresholds.max_distance, "euclidean")),
    }


ARC_DIM, ARC_K, ARC_NOISE, ARC_PHOTO_SPREAD, ARC_PERSON_SPREAD = 512, 20, 0.75, 0.25, 0.2  # as bench_trust.py


def cosine_people(rng: np.random.Generator, basis: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """n unit identities in the basis's subspace, and each person's photo-noise scale."""
    ids = rng.standard_normal((n, basis.shape[1]), dtype=np.float32) @ basis.T
    ids /= np.linalg.norm(ids, axis=1, keepdims=True)
    return ids, np.exp(rng.normal(0, ARC_PERSON_SPREAD, size=(n, 1))).astype(np.float32)


def cosine_photos(rng: np.random.Generator, ids: np.ndarray, scale: np.ndarray) -> np.ndarray:
    noise = rng.standard_normal(ids.shape, dtype=np.float32)
    noise /= np.linalg.norm(noise, axis=1, keepdims=True)
    r = ARC_NOISE * scale * np.exp(rng.normal(0, ARC_PHOTO_SPREAD, size=(len(ids), 1))).astype(np.float32)
    out = ids + r * noise
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def measure_cosine_index(n: int, queries: int = 200, seed: int = 1) -> dict[str, float | int | str]:
    """The index over n synthetic ArcFace templates: timings, recall, false candidates per enrolment, and how often
    a re-photographed person is found (see the module text)."""
    t = Settings().duplicate_thresholds(load_manifest("faceplugin-arcface"))
    rng = np.random.default_rng(seed)
    basis = np.linalg.qr(rng.normal(size=(ARC_DIM, ARC_K)))[0].astype(np.float32)
    gallery = np.empty((n, ARC_DIM), np.float32)
    ids_kept = np.empty((queries, ARC_DIM), np.float32)
    scale_kept = np.empty((queries, 1), np.float32)
    planted = np.sort(rng.choice(n, size=queries, replace=False))
    for start in range(0, n, 100_000):  # in chunks: 1 M x 512 float32 is 2 GB already
        ids, scale = cosine_people(rng, basis, min(100_000, n - start))
        gallery[start:start + len(ids)] = cosine_photos(rng, ids, scale)
        inside = (planted >= start) & (planted < start + len(ids))
        ids_kept[inside] = ids[planted[inside] - start]
        scale_kept[inside] = scale[planted[inside] - start]
    before = rss_bytes()
    began = time.perf_counter()
    index = VectorIndex(dim=ARC_DIM)
    index.build(gallery)
    build_s = time.perf_counter() - began
    rss_delta = rss_bytes() - before
    strangers = cosine_photos(rng, *cosine_people(rng, basis, queries))
    rephotographed = cosine_photos(rng, ids_kept, scale_kept)
    exact_d, exact_i = faiss.knn(strangers, gallery, K)
    timings, found, review_hits, duplicate_hits = [], [], [], []
    for q in strangers:
        began = time.perf_counter()
        _, positions = index.search(q[None, :], 4 * K)
        candidates = positions[0][positions[0] >= 0]
        exact = 1.0 - gallery[candidates] @ q  # the exact re-rank (cosine distance)
        order = np.argsort(exact)
        timings.append(time.perf_counter() - began)
        found.append(candidates[order[:K]])
        review_hits.append(int(np.sum(exact <= t.review_distance)))
        duplicate_hits.append(int(np.sum(exact <= t.max_distance)))
    recall = float(np.mean([len(set(f) & set(e)) / K for f, e in zip(found, exact_i, strict=True)]))
    found_again = 0
    for q, want in zip(rephotographed, planted, strict=True):
        _, positions = index.search(q[None, :], 4 * K)
        candidates = positions[0][positions[0] >= 0]
        exact = 1.0 - gallery[candidates] @ q
        best = int(np.argmin(exact))
        found_again += int(candidates[best] == want and exact[best] <= t.review_distance)
    ms = np.array(timings) * 1000
    return {
        "n": n, "kind": index.kind, "build_s": round(build_s, 1), "rss_delta_mb": round(rss_delta / 2**20, 1),
        "index_mb": round(index.nbytes() / 2**20, 1), "search_p50_ms": round(float(np.percentile(ms, 50)), 2),
        "search_p99_ms": round(float(np.percentile(ms, 99)), 2), "recall_at_10": round(recall, 4),
        "false_candidates_per_enrolment": round(float(np.mean(review_hits)), 4),
        "enrolments_with_a_false_candidate": round(float(np.mean(np.array(review_hits) > 0)), 4),
        "false_duplicates_per_enrolment": round(float(np.mean(duplicate_hits)), 4),
        "rephotographed_found": round(found_again / queries, 4),
        "expected_false_candidates": float(f"{expected_false_hits(n, t.review_distance, 'cosine'):.3g}"),
    }


def main_cosine(sizes: list[int], queries: int) -> None:
    t = Settings().duplicate_thresholds(load_manifest("faceplugin-arcface"))
    print(f"faceplugin-arcface (512-d, cosine): faiss {faiss.__version__}; review (look-alike, to an operator) at "
          f"<= {t.review_distance}, refusal (same photo or sitting) at <= {t.max_distance}; 40 candidates re-ranked")
    columns = ["n", "kind", "build_s", "rss_delta_mb", "index_mb", "search_p50_ms", "search_p99_ms", "recall_at_10",
               "false_candidates_per_enrolment", "enrolments_with_a_false_candidate",
               "false_duplicates_per_enrolment", "rephotographed_found", "expected_false_candidates"]
    print(" | ".join(f"{c:>{max(9, len(c))}}" for c in columns))
    for n in sizes:
        row = measure_cosine_index(n, queries)
        print(" | ".join(f"{row[c]!s:>{max(9, len(c))}}" for c in columns), flush=True)
    print("\nExpected strangers within the review distance per search at 2 M templates (normal fit of FMR 0.1 % at "
          f"0.56): {expected_false_hits(PROVINCE, t.review_distance, 'cosine'):.3g}; within the refusal distance "
          f"{expected_false_hits(PROVINCE, t.max_distance, 'cosine'):.3g}. Candidates go to review, never to an "
          "automatic refusal; only a re-used photo or sitting (<= the refusal distance, all photos agreeing) is "
          "refused.")


class MemoryFaceIndex(FaceIndex):
    """`FaceIndex` over vectors held in memory: template id i is row i - 1, the first `visible` rows are enrolled."""

    def __init__(self, vectors: np.ndarray, background: bool) -> None:
        super().__init__(dim=vectors.shape[1], background=background)
        self.source, self.visible = vectors, 0

    def _load_since(self, session: Any, last_id: int, until: int | None = None) -> tuple[list[Any], np.ndarray]:
        high = self.visible if until is None else min(until, self.visible)
        return [(i, "trainee", i) for i in range(last_id + 1, high + 1)], self.source[last_id:high]

    def _load_snapshot(self, bind: Any, upto: int) -> tuple[list[Any], np.ndarray]:
        return self._load_since(None, 0, upto)


def retrain_gallery(model: str, n: int) -> np.ndarray:
    """n synthetic templates of the model (128-d dlib encodings or 512-d unit ArcFace vectors)."""
    if model == "dlib-resnet":
        faces = SyntheticFaces(1)
        return np.ascontiguousarray(faces.photos(faces.people(n)), dtype=np.float32)
    rng = np.random.default_rng(1)
    basis = np.linalg.qr(rng.normal(size=(ARC_DIM, ARC_K)))[0].astype(np.float32)
    gallery = np.empty((n, ARC_DIM), np.float32)
    for start in range(0, n, 100_000):
        ids, scale = cosine_people(rng, basis, min(100_000, n - start))
        gallery[start:start + len(ids)] = cosine_photos(rng, ids, scale)
    return gallery


def measure_retrain(gallery: np.ndarray, background: bool, every_s: float = 0.02) -> dict[str, float | int | str]:
    """Enrolments every `every_s` while the index over the gallery (all but 2,000 rows) retrains."""
    n = len(gallery) - 2_000
    index = MemoryFaceIndex(gallery, background)
    index.visible = n
    index.refresh(None)  # start-up: built in place (there is nothing to answer with before)
    index._core.trained_at = n // vector_index.RETRAIN_GROWTH  # due: the next template retrains it
    queries = gallery[np.random.default_rng(2).integers(0, n, size=len(gallery) - n)]
    calls: list[float] = []
    starts: list[float] = []
    began = time.perf_counter()
    while index.visible < len(gallery):
        index.visible += 1
        start = time.perf_counter()
        index.refresh(None)
        hits = index.search([queries[index.visible - n - 1]], 4 * K)
        calls.append(time.perf_counter() - start)
        starts.append(start - began)
        assert hits and hits[0]
        if index.rebuilds and index.visible - n > 25:
            break
        time.sleep(every_s)
    swapped = time.perf_counter() - began
    assert index.wait_for_rebuild(600) and index.rebuilds == 1 and index.size == index.visible
    ms = np.array(calls) * 1000
    return {"n": len(gallery), "retrain": "background" if background else "in place", "calls": len(calls),
            "retrain_to_swap_s": round(swapped, 1), "longest_call_ms": round(float(ms.max()), 1),
            "longest_at_s": round(starts[int(ms.argmax())], 2),
            "p99_call_ms": round(float(np.percentile(ms, 99)), 1),
            "p50_call_ms": round(float(np.percentile(ms, 50)), 2)}


def main_retrain(model: str, sizes: list[int]) -> None:
    print(f"{model}: a retrain at each size, enrolments (refresh + 40-candidate search) every 20 ms meanwhile; "
          f"faiss {faiss.__version__}, one thread")
    columns = ["n", "retrain", "calls", "retrain_to_swap_s", "longest_call_ms", "longest_at_s", "p99_call_ms",
               "p50_call_ms"]
    print(" | ".join(f"{c:>{max(10, len(c))}}" for c in columns))
    for n in sizes:
        gallery = retrain_gallery(model, n)
        for background in (True, False):
            row = measure_retrain(gallery, background)
            print(" | ".join(f"{row[c]!s:>{max(10, len(c))}}" for c in columns), flush=True)
        del gallery


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="faceplugin-arcface", choices=["faceplugin-arcface", "dlib-resnet"])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--retrain", action="store_true", help="the longest search pause during a retrain instead")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    if args.retrain:
        main_retrain(args.model, sizes)
        return
    if args.model == "faceplugin-arcface":
        main_cosine(sizes, args.queries)
        return
    t = Settings().duplicate_thresholds(load_manifest("dlib-resnet"))
    print(f"faiss {faiss.__version__}, {faiss.omp_get_max_threads()} threads; index: exact up to 20,000 templates, "
          f"then IVF (sqrt(n) cells, nprobe 96) with 8-bit scalar quantisation; 40 candidates re-ranked exactly")
    figures = distance_figures(SyntheticFaces(99))
    print("synthetic faces vs measured (East Asian): different-person share <= t: "
          + ", ".join(f"{t_:.2f} {figures[f'diff<={t_:.2f}']:.3f} (measured {MEASURED_FMR[t_]:.3f})"
                      for t_ in sorted(MEASURED_FMR))
          + f"; same-person median {figures['same_median']:.2f}, > 0.50 {figures['same>0.50']:.3f} (measured 0.055)")
    print()
    columns = ["n", "kind", "build_s", "startup_s", "startup_json_s", "rss_delta_mb", "index_mb", "search_p50_ms",
               "search_p99_ms", "recall_at_10", "dup_recall_at_1", "dup_nearest_is_same_person", "near_copy_recall"]
    print(" | ".join(f"{c:>{max(9, len(c))}}" for c in columns))
    for n in sizes:
        row = measure_index(n, args.queries)
        print(" | ".join(f"{row[c]!s:>{max(9, len(c))}}" for c in columns), flush=True)
    print()
    print("Expected strangers under a threshold per 1:N search, N x FMR(t), FMR assumed: measured rates down to "
          "0.45 (1.1 %), below that the probit extrapolated linearly from 0.50 -> 0.45 (pessimistic):")
    thresholds = [0.35, 0.30, 0.25, t.review_distance, t.max_distance]
    print(f"{'N':>10} | " + " | ".join(f"t={x:.2f} (FMR {assumed_false_match_rate(x, 'euclidean'):.1e})"
                                       for x in thresholds))
    for n in [*sizes, PROVINCE]:
        print(f"{n:>10,} | " + " | ".join(f"{expected_false_hits(n, x, 'euclidean'):>22.3g}" for x in thresholds))
    print(f"Chosen: duplicate at median <= {t.max_distance:.2f} with margin {t.margin:.2f} and all photos agreeing "
          f"(refused), look-alike review up to {t.review_distance:.2f}; k = {t.neighbours}. At 2 M templates: "
          f"{expected_false_hits(PROVINCE, t.max_distance, 'euclidean'):.3g} strangers under {t.max_distance:.2f} and "
          f"{expected_false_hits(PROVINCE, t.review_distance, 'euclidean'):.3g} under {t.review_distance:.2f} "
          "per search.")


if __name__ == "__main__":
    main()
