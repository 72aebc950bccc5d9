"""An upload's photo hash, stored and committed before its verdict, and the earlier near copies it is judged
against: two near copies verified at once by two workers are then judged one against the other (the later hash row
is the replay), where each used to be judged without the other."""

from __future__ import annotations

import time

from sqlalchemy import select

from models.clock import utc_now
from models.tables import PhotoHash
from models.terms import SubjectKind
from monitor.adapters.photo_index import PhotoHashIndex
from monitor.adapters.storage import Database

RESERVE_WAIT_SECONDS = 2.0  # the longest an upload waits for a lower hash row another worker has not committed yet
POLL_SECONDS = 0.05


def reserve_photo_hash(db: Database, sha256: str, phash: str, kind: SubjectKind, subject_id: int) -> int:
    """The id of the upload's hash row: inserted and committed now, or the one an earlier attempt stored."""
    with db.session() as session:
        existing = session.scalar(select(PhotoHash.id).where(
            PhotoHash.subject_kind == kind, PhotoHash.subject_id == subject_id, PhotoHash.sha256 == sha256))
        if existing is not None:
            return int(existing)
        row = PhotoHash(sha256=sha256, phash=phash, subject_kind=kind, subject_id=subject_id, created_at=utc_now())
        session.add(row)
        session.flush()
        return int(row.id)


def earlier_near_copies(db: Database, index: PhotoHashIndex, own_id: int, phash: str, max_distance: int,
                        wait_s: float = RESERVE_WAIT_SECONDS) -> list[tuple[str, int, int]]:
    """(subject kind, subject id, bits) of the stored photos within `max_distance` bits of `phash`, uploads only when
    their hash row is older than `own_id`. Every lower row is awaited (up to `wait_s` seconds) until committed: on
    PostgreSQL an id is handed out at insert and seen at commit, so a near copy reserved just before could be
    missing for a few milliseconds."""
    deadline = time.monotonic() + wait_s
    while True:
        with db.session() as session:
            index.refresh(session)
        if not index.recent_gaps_below(own_id, wait_s) or time.monotonic() >= deadline:
            return index.find_near(phash, max_distance, before_id=own_id)
        time.sleep(POLL_SECONDS)
