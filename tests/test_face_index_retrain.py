"""The 1:N face index retrains in a background thread: searches go on meanwhile, templates added meanwhile are found,
and the new index swaps in with them."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import numpy as np
import pytest

from models.tables import Evidence, FaceTemplate
from monitor.adapters import vector_index
from monitor.adapters.face_index import FaceIndex
from monitor.adapters.storage import Database
from monitor.adapters.vector_index import VectorIndex

DIM, MODEL, FLAT = 8, "test-model@1", 100
NOW = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)


class Gallery:
    """Templates written to the table as enrolments would (JSON of record; no float32 copies: parsed on load)."""

    def __init__(self, db: Database) -> None:
        self.db, self.rng, self.vectors, self.ids = db, np.random.default_rng(7), np.zeros((0, DIM), np.float32), []

    def enrol(self, n: int) -> None:
        new = self.rng.normal(size=(n, DIM)).astype(np.float32)
        with self.db.session() as session:
            rows = []
            for i, v in enumerate(new):
                sha = f"{len(self.ids) + i:064x}"
                session.add(Evidence(sha256=sha, size_bytes=1, media_type="image/jpeg", width=1, height=1,
                                     created_at=NOW))
                rows.append(FaceTemplate(person_kind="trainee", person_id=len(self.ids) + i + 1,
                                         encoding=[float(x) for x in v], photo_sha256=sha, model_version=MODEL,
                                         created_at=NOW))
            session.add_all(rows)
            session.flush()
            self.ids.extend(r.id for r in rows)
        self.vectors = np.concatenate([self.vectors, new])

    def exact(self, query: np.ndarray, k: int) -> list[int]:
        order = np.argsort(np.linalg.norm(self.vectors - query, axis=1))[:k]
        return [self.ids[i] for i in order]


def reranked(index: FaceIndex, gallery: Gallery, query: np.ndarray, k: int) -> list[int]:
    """The production path: 4k candidates from the index, re-ranked by exact distance, k kept."""
    candidates = [hit[0] for hit in index.search([query.tolist()], 4 * k)[0]]
    by_id = dict(zip(gallery.ids, gallery.vectors, strict=True))
    return sorted(candidates, key=lambda i: float(np.linalg.norm(by_id[i] - query)))[:k]


def test_retrain_runs_in_the_background_and_swaps_in_with_templates_added_meanwhile(
        db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(vector_index, "RETRAIN_GROWTH", 2)
    held, building = threading.Event(), threading.Event()
    real_build = VectorIndex.build

    def build(self: VectorIndex, vectors: np.ndarray) -> None:
        if threading.current_thread().name == "face-index-retrain":
            building.set()
            assert held.wait(30), "the test never let the retrain finish"
        real_build(self, vectors)

    monkeypatch.setattr(VectorIndex, "build", build)
    gallery = Gallery(db)
    index = FaceIndex(batch=37, flat_limit=FLAT, model_version=MODEL, dim=DIM)
    gallery.enrol(80)
    with db.session() as session:
        assert index.refresh(session) == 80
    assert index.stats().kind == "flat" and not index.stats().rebuilding

    # Past the exact index's limit: the retrain (to IVF) starts in its thread and is held there.
    gallery.enrol(60)
    with db.session() as session:
        assert index.refresh(session) == 60
    assert building.wait(30)
    gallery.enrol(25)  # enrolled while the retrain runs
    with db.session() as session:
        assert index.refresh(session) == 25
    stats = index.stats()
    assert stats.rebuilding and stats.rebuilds == 0 and stats.templates == 165 and stats.kind == "flat"
    # Every search answers from the current (exact) index while the build is held: each template finds itself
    # first, the ones added meanwhile included, and the k nearest are the exact ones.
    for position in [0, 79, 80, 139, 140, 164]:
        query = gallery.vectors[position]
        assert index.search([query.tolist()], 1)[0][0][0] == gallery.ids[position]
        assert reranked(index, gallery, query, 10) == gallery.exact(query, 10)
    assert index.stats().rebuilding  # still held: those searches did not wait for it

    held.set()
    assert index.wait_for_rebuild(30)
    stats = index.stats()
    assert stats.rebuilds == 1 and not stats.rebuilding and stats.kind == "ivf_sq8"
    assert stats.templates == 165 and stats.last_id == gallery.ids[-1]
    gallery.enrol(10)  # after the swap: appended to the new index
    with db.session() as session:
        assert index.refresh(session) == 10
    for position in [0, 100, 150, 164, 165, 174]:
        query = gallery.vectors[position]
        assert reranked(index, gallery, query, 5) == gallery.exact(query, 5)
        assert reranked(index, gallery, query, 1) == [gallery.ids[position]]

    # An IVF index grown past RETRAIN_GROWTH x its training retrains again, in the background as well.
    gallery.enrol(200)
    with db.session() as session:
        assert index.refresh(session) == 200
    assert index.wait_for_rebuild(60)
    stats = index.stats()
    assert stats.rebuilds == 2 and stats.templates == 375
    for position in [3, 200, 374]:
        assert reranked(index, gallery, gallery.vectors[position], 1) == [gallery.ids[position]]


def test_a_rebuild_meanwhile_supersedes_the_retrain_in_flight(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    held, building = threading.Event(), threading.Event()
    real_build = VectorIndex.build

    def build(self: VectorIndex, vectors: np.ndarray) -> None:
        if threading.current_thread().name == "face-index-retrain":
            building.set()
            assert held.wait(30)
        real_build(self, vectors)

    monkeypatch.setattr(VectorIndex, "build", build)
    gallery = Gallery(db)
    index = FaceIndex(flat_limit=FLAT, model_version=MODEL, dim=DIM)
    gallery.enrol(90)
    with db.session() as session:
        index.refresh(session)
    gallery.enrol(20)
    with db.session() as session:
        index.refresh(session)
    assert building.wait(30)
    with db.session() as session:
        assert index.rebuild(session) == 110  # built here, in the caller's thread
    held.set()
    index.wait_for_rebuild(30)
    stats = index.stats()
    assert stats.templates == 110 and stats.kind == "ivf_sq8" and stats.rebuilds == 0 and not stats.rebuilding
    assert reranked(index, gallery, gallery.vectors[105], 1) == [gallery.ids[105]]


def test_without_the_background_the_retrain_is_done_in_place(db: Database) -> None:
    gallery = Gallery(db)
    index = FaceIndex(flat_limit=FLAT, model_version=MODEL, dim=DIM, background=False)
    gallery.enrol(90)
    with db.session() as session:
        index.refresh(session)
    gallery.enrol(20)
    with db.session() as session:
        assert index.refresh(session) == 110
    stats = index.stats()
    assert stats.kind == "ivf_sq8" and stats.rebuilds == 1 and not stats.rebuilding and stats.templates == 110
