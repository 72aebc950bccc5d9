"""The scheduler's leader lease (issue 21 item 3): of all the processes that may run the scheduler (clock rules,
escalation timers, draws, cross-checks, audit sealing and anchors), exactly one holds the lease in the shared database
at a time, renews it every third of its term, and gives it up when it stops; if it dies, another takes it over once
the term has run out (seconds). One conditional UPDATE (or the first INSERT) decides, on SQLite and PostgreSQL."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from datetime import datetime, timedelta

from sqlalchemy import insert, update
from sqlalchemy.exc import IntegrityError

from models.clock import utc_now
from models.tables import Lease
from monitor.adapters.storage import Database, begin_write

log = logging.getLogger(__name__)

SCHEDULER = "scheduler"


def owner_id() -> str:
    """This process, as the lease names it: host, pid and a random suffix (a pid may come again after a restart)."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class LeaderLease:
    """One named lease held by `owner` for `term_s` seconds at a time."""

    def __init__(self, db: Database, term_s: float, name: str = SCHEDULER, owner: str | None = None) -> None:
        self.db, self.term, self.name = db, timedelta(seconds=term_s), name
        self.owner = owner or owner_id()
        self._held_until = 0.0  # monotonic: when this process stops trusting its last renewal
        self._checked = 0.0
        self._lock = threading.Lock()  # the worker's loops ask from their own threads

    def try_acquire(self, now: datetime | None = None) -> bool:
        """Take or renew the lease; True when this process holds it until now + term."""
        now = now or utc_now()
        until = now + self.term
        with self.db.session() as session:
            begin_write(session)
            taken = session.execute(update(Lease).where(
                Lease.name == self.name, (Lease.owner == self.owner) | (Lease.expires_at < now))
                .values(owner=self.owner, expires_at=until, renewed_at=now))
            if taken.rowcount == 1:  # type: ignore[attr-defined]
                return True
            try:
                with session.begin_nested():
                    session.execute(insert(Lease).values(name=self.name, owner=self.owner, expires_at=until,
                                                         renewed_at=now))
                return True
            except IntegrityError:
                return False

    def held(self) -> bool:
        """Whether this process leads now: renews (or tries to take) the lease at most every third of its term, and
        trusts a renewal for two thirds of it, so a stalled leader stops before another may start."""
        with self._lock:
            return self._held()

    def _held(self) -> bool:
        mono = time.monotonic()
        third = self.term.total_seconds() / 3
        if not self._checked or mono - self._checked >= third:
            self._checked = mono
            try:
                got = self.try_acquire()
            except Exception:  # noqa: BLE001 - the database unreachable: lead no longer
                log.warning("scheduler lease unreachable", exc_info=True)
                got = False
            was = mono < self._held_until
            self._held_until = mono + 2 * third if got else 0.0
            if got != was:
                log.info("scheduler lease %s by %s", "taken" if got else "lost", self.owner)
        return mono < self._held_until

    def release(self) -> None:
        """Give the lease up (on a clean stop), so another process takes over at once."""
        self._held_until = 0.0
        try:
            with self.db.session() as session:
                session.execute(update(Lease).where(Lease.name == self.name, Lease.owner == self.owner)
                                .values(expires_at=utc_now() - timedelta(seconds=1)))
        except Exception:  # noqa: BLE001 - it expires by itself
            log.warning("scheduler lease not released", exc_info=True)
