"""Near-copy search over the perceptual hashes of every stored photo (in memory, refreshed from the database)."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from models.tables import PhotoHash

GAP_SECONDS = 120.0  # how long an id skipped over is looked for again (a transaction still open when a later id showed)
MAX_GAPS = 20_000
ORDERED_KINDS = ("checkin", "snapshot", "heartbeat")  # uploads judged against the earlier ones only (`find_near`)
MIN_STRUCTURE_BITS = 16  # a pHash with fewer bits (or more than 64 minus these) set describes no picture


def phash_has_structure(phash: str) -> bool:
    """Whether a 64-bit pHash describes a picture at all. pHash sets the bits of the DCT coefficients above their
    median, so a photo with any content has 32 of 64 bits set (every sample photo and simulator photo has exactly
    32). A black, white or otherwise flat frame (lens covered, camera not ready) has its coefficients tied at zero and
    hashes to 0x0000... or 0x8000...: every such frame would be a "near copy" of every other, from any trainee."""
    bits = int(phash, 16).bit_count()
    return MIN_STRUCTURE_BITS <= bits <= 64 - MIN_STRUCTURE_BITS


class PhotoHashIndex:
    """All 64-bit pHashes as a numpy array; a query XORs and counts bits over all of them.

    Two million photos take 16 MB and about 10 ms a query. New rows are loaded incrementally by id. Every worker
    process writes hashes, and on PostgreSQL an id is handed out at insert but seen at commit: a row can appear
    after a higher id was loaded. So the ids skipped over are remembered and looked for again on each refresh for
    `GAP_SECONDS` (a rolled-back insert leaves a gap that never fills): the index holds what the table holds.
    """

    def __init__(self) -> None:
        self._hashes = np.zeros(0, dtype=np.uint64)
        self._ids = np.zeros(0, dtype=np.int64)  # each hash's row id
        self._ordered = np.zeros(0, dtype=bool)  # each hash is an upload's (ORDERED_KINDS)
        self._refs: list[tuple[str, int, str]] = []  # (subject kind, subject id, sha256)
        self._last_id = 0
        self._gaps: dict[int, float] = {}  # id skipped over -> when it was first missed
        self._lock = threading.Lock()

    def refresh(self, session: Session) -> None:
        with self._lock:
            columns = (PhotoHash.id, PhotoHash.phash, PhotoHash.subject_kind, PhotoHash.subject_id, PhotoHash.sha256)
            rows = list(session.execute(select(*columns).where(PhotoHash.id > self._last_id)
                                        .order_by(PhotoHash.id)).all())
            now = time.monotonic()
            newest = rows[-1].id if rows else self._last_id
            if rows:
                self._note_gaps(rows, now)
            if self._gaps:
                self._gaps = {i: t for i, t in self._gaps.items() if now - t < GAP_SECONDS}
                wanted = sorted(i for i in self._gaps if i < (rows[0].id if rows else self._last_id + 1))
                for start in range(0, len(wanted), 500):
                    late = session.execute(select(*columns).where(PhotoHash.id.in_(wanted[start:start + 500]))).all()
                    for r in late:
                        del self._gaps[r.id]
                    rows.extend(late)
            if not rows:
                return
            new = np.array([int(r.phash, 16) for r in rows], dtype=np.uint64)
            self._hashes = np.concatenate([self._hashes, new])
            self._ids = np.concatenate([self._ids, np.array([r.id for r in rows], dtype=np.int64)])
            self._ordered = np.concatenate([self._ordered, np.array([r.subject_kind in ORDERED_KINDS for r in rows],
                                                                    dtype=bool)])
            self._refs.extend((r.subject_kind, r.subject_id, r.sha256) for r in rows)
            self._last_id = max(self._last_id, newest)

    def _note_gaps(self, rows: Sequence[Any], now: float) -> None:
        """Remember the ids skipped over by `rows` (new rows, by id) above the last one loaded."""
        expected = self._last_id + 1 if self._last_id else rows[0].id  # nothing is missed before the very first row
        if rows[-1].id - expected + 1 == len(rows):
            return  # no id skipped: the usual case, decided without a loop
        for row_id in (r.id for r in rows):
            for missing in range(max(expected, row_id - MAX_GAPS), row_id):
                self._gaps[missing] = now
            expected = row_id + 1
        if len(self._gaps) > MAX_GAPS:
            self._gaps = dict(sorted(self._gaps.items())[-MAX_GAPS:])

    @property
    def size(self) -> int:
        return len(self._hashes)

    def recent_gaps_below(self, row_id: int, within_s: float) -> bool:
        """Whether an id below `row_id` was skipped over less than `within_s` seconds ago: a row another process
        inserted but has not committed yet (a reservation commits within milliseconds; an older gap is a rollback)."""
        now = time.monotonic()
        with self._lock:
            return any(i < row_id and now - t < within_s for i, t in self._gaps.items())

    def find_near(self, phash: str, max_distance: int, exclude_sha256: str | None = None,
                  before_id: int | None = None) -> list[tuple[str, int, int]]:
        """(subject kind, subject id, Hamming distance) of stored photos within `max_distance` bits.

        With `before_id` (the row id of the upload's own hash), uploads (check-ins, snapshots, heartbeats) count only
        when their hash row is older: of two near copies judged at once by two workers, the later row is the replay,
        whichever worker reads first. Enrolment photos and burst frames count whatever their id.

        A flat picture (see `phash_has_structure`) is a near copy of nothing: two blank frames are not one photo."""
        if not phash_has_structure(phash):
            return []
        with self._lock:
            if not len(self._hashes):
                return []
            distances = np.bitwise_count(self._hashes ^ np.uint64(int(phash, 16)))
            near = distances <= max_distance
            if before_id is not None:
                near &= ~self._ordered | (self._ids < before_id)
            hits = np.nonzero(near)[0]
            out = [(self._refs[i][0], self._refs[i][1], int(distances[i])) for i in hits
                   if self._refs[i][2] != exclude_sha256]
        return sorted(out, key=lambda r: r[2])
