"""Near-copy search over the perceptual hashes of every stored photo (in memory, refreshed from the database)."""

from __future__ import annotations

import threading

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from models.tables import PhotoHash


class PhotoHashIndex:
    """All 64-bit pHashes as a numpy array; a query XORs and counts bits over all of them.

    Two million photos take 16 MB and about 10 ms a query. New rows are loaded incrementally by id.
    """

    def __init__(self) -> None:
        self._hashes = np.zeros(0, dtype=np.uint64)
        self._refs: list[tuple[str, int, str]] = []  # (subject kind, subject id, sha256)
        self._last_id = 0
        self._lock = threading.Lock()

    def refresh(self, session: Session) -> None:
        with self._lock:
            rows = session.execute(
                select(PhotoHash.id, PhotoHash.phash, PhotoHash.subject_kind, PhotoHash.subject_id, PhotoHash.sha256)
                .where(PhotoHash.id > self._last_id).order_by(PhotoHash.id)
            ).all()
            if not rows:
                return
            new = np.array([int(r.phash, 16) for r in rows], dtype=np.uint64)
            self._hashes = np.concatenate([self._hashes, new])
            self._refs.extend((r.subject_kind, r.subject_id, r.sha256) for r in rows)
            self._last_id = rows[-1].id

    def find_near(self, phash: str, max_distance: int, exclude_sha256: str | None = None) -> list[tuple[str, int, int]]:
        """(subject kind, subject id, Hamming distance) of stored photos within `max_distance` bits."""
        with self._lock:
            if not len(self._hashes):
                return []
            distances = np.bitwise_count(self._hashes ^ np.uint64(int(phash, 16)))
            hits = np.nonzero(distances <= max_distance)[0]
            out = [(self._refs[i][0], self._refs[i][1], int(distances[i])) for i in hits
                   if self._refs[i][2] != exclude_sha256]
        return sorted(out, key=lambda r: r[2])
