"""The evidence store's health: free space against the STORAGE_LOW threshold (raised before the disk is full), and
the janitor that removes files no row names (written before a transaction that then rolled back, or a temporary file
of a write cut short), once they are older than a grace period."""

from __future__ import annotations

import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select

from ingest.adapters.evidence import EvidenceStore
from models.tables import Evidence
from monitor.adapters.storage import Database

log = logging.getLogger(__name__)

CHUNK = 500


@dataclass(frozen=True)
class StorageState:
    free_bytes: int
    total_bytes: int
    low_below_bytes: int

    @property
    def low(self) -> bool:
        return self.free_bytes < self.low_below_bytes

    def as_json(self) -> dict[str, object]:
        return {"state": "STORAGE_LOW" if self.low else "ok", "free_bytes": self.free_bytes,
                "total_bytes": self.total_bytes, "low_below_bytes": self.low_below_bytes,
                "message": f"证据存储剩余空间 {self.free_bytes / 2**30:.1f} GiB，低于告警线 "
                           f"{self.low_below_bytes / 2**30:.1f} GiB，请尽快扩容" if self.low else ""}


def storage_state(root: Path, low_below_bytes: int) -> StorageState:
    """Free and total bytes of the filesystem holding `root`."""
    usage = shutil.disk_usage(root)
    return StorageState(int(usage.free), int(usage.total), low_below_bytes)


def sweep_orphans(db: Database, evidence: EvidenceStore, older_than_s: float, now: float | None = None) -> int:
    """Remove evidence files older than `older_than_s` that no evidence row names, and stale temporary files; returns
    how many. A file younger than that may belong to a transaction still running, so it stays."""
    cutoff = (now if now is not None else time.time()) - older_than_s
    candidates: dict[str, Path] = {}
    removed = 0
    for path in evidence.root.rglob("*"):
        try:
            if not path.is_file() or path.stat().st_mtime > cutoff:
                continue
        except FileNotFoundError:
            continue
        if path.name.startswith(".tmp-"):
            path.unlink(missing_ok=True)
            removed += 1
        else:
            candidates[path.name] = path
    names = sorted(candidates)
    for i in range(0, len(names), CHUNK):
        part = names[i:i + CHUNK]
        with db.session() as session:
            known = set(session.scalars(select(Evidence.sha256).where(Evidence.sha256.in_(part))))
        for name in part:
            if name not in known:
                candidates[name].unlink(missing_ok=True)
                removed += 1
    if removed:
        log.warning("evidence janitor removed %d file(s) no record names", removed)
    return removed
