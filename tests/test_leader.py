"""One scheduler at a time (issue 21 item 3): the lease on SQLite and PostgreSQL (taken once, renewed by its owner,
taken over only after its term, released on a clean stop), and two scheduler processes' workers on one database of
which exactly one leads at any moment, the other taking over within seconds when the leader stops or dies."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from ingest.adapters.evidence import EvidenceStore
from models.clock import utc_now
from monitor.adapters.bus import InProcessBus
from monitor.adapters.face_engine import create_face_engine
from monitor.adapters.storage import Database
from monitor.services.leader import LeaderLease
from monitor.services.worker import Worker
from monitor.settings import Settings
from tests.helpers import FACES_DIR


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_the_lease_is_held_by_one_renewed_by_it_and_taken_over_only_after_its_term(
        backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    url = request.getfixturevalue("postgres_url") if backend == "postgresql" else f"sqlite:///{tmp_path}/l.sqlite3"
    db = Database(url)
    db.migrate()
    a, b = LeaderLease(db, 10, owner="a"), LeaderLease(db, 10, owner="b")
    now = utc_now()
    assert a.try_acquire(now) and not b.try_acquire(now)
    assert a.try_acquire(now + timedelta(seconds=5))  # renewed by its owner
    assert not b.try_acquire(now + timedelta(seconds=14))  # the renewal runs to 15 s
    assert b.try_acquire(now + timedelta(seconds=16))  # the owner died: taken over once the term ran out
    assert not a.try_acquire(now + timedelta(seconds=17))  # the old owner does not get it back
    b.release()
    assert a.try_acquire()  # a clean stop hands it over at once
    db.dispose()


def scheduler(tmp_path: Path, term_s: float) -> Worker:
    settings = Settings(data_dir=tmp_path / "data", faces_dir=FACES_DIR, face_processes=0, clock_rules=False,
                        draw_auto=False, relay_interval_seconds=0.2, clock_interval_seconds=0.2,
                        dispatch_interval_seconds=0.2, scheduler_lease_seconds=term_s)
    db = Database(settings.sqlalchemy_url)
    db.migrate()
    return Worker(settings, db, InProcessBus(), EvidenceStore(settings.evidence_dir),
                  create_face_engine(0, settings.load_face_model()), verify=False)


def leaders(workers: list[Worker]) -> list[bool]:
    return [w.lease.held() for w in workers]


def test_of_two_schedulers_exactly_one_leads_and_the_other_takes_over(tmp_path: Path) -> None:
    workers = [scheduler(tmp_path, 3.0), scheduler(tmp_path, 3.0)]
    for w in workers:
        w.start()
    stopped: list[Any] = []
    try:
        seen = []
        for _ in range(10):
            seen.append(leaders(workers))
            time.sleep(0.3)
        assert all(s.count(True) == 1 for s in seen), seen
        first = seen[-1].index(True)
        workers[first].stop()  # a clean stop releases the lease
        stopped.append(workers[first])
        other = workers[1 - first]
        deadline = time.monotonic() + 5
        while not other.lease.held():
            assert time.monotonic() < deadline, "the standby did not take over"
            time.sleep(0.1)
    finally:
        for w in workers:
            if w not in stopped:
                w.stop()
            w.db.dispose()


def test_a_scheduler_killed_with_sigkill_is_replaced_after_its_term(tmp_path: Path, redis_url: str) -> None:
    """`monitor scheduler` as its own process holds the lease; kill -9 leaves it to expire: a standby takes over
    within the term, not before."""
    import os
    import signal
    import subprocess
    import sys

    from sqlalchemy import select

    from models.tables import Lease

    data = tmp_path / "data"
    env = {**os.environ, "MONITOR_DATA_DIR": str(data), "MONITOR_REDIS_URL": redis_url,
           "MONITOR_SCHEDULER_LEASE_SECONDS": "4", "MONITOR_FACE_PROCESSES": "0", "MONITOR_DRAW_AUTO": "false",
           "MONITOR_FACES_DIR": str(FACES_DIR)}
    proc = subprocess.Popen([sys.executable, "-m", "monitor.cli", "scheduler"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    db = Database(f"sqlite:///{data / 'monitor.sqlite3'}")
    try:
        deadline = time.monotonic() + 60
        owner = None
        while owner is None:
            assert time.monotonic() < deadline and proc.poll() is None, "the scheduler did not take the lease"
            time.sleep(0.3)
            try:
                with db.session() as session:
                    owner = session.scalar(select(Lease.owner).where(Lease.name == "scheduler"))
            except Exception:  # noqa: BLE001 - not migrated yet
                owner = None
        assert f":{proc.pid}:" in owner
        standby = LeaderLease(db, 4, owner="standby")
        assert not standby.try_acquire()
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        killed = time.monotonic()
        while not standby.try_acquire():
            assert time.monotonic() - killed < 10, "no takeover after the term"
            time.sleep(0.2)
        assert time.monotonic() - killed < 6  # within the 4 s term (plus the last renewal's age)
    finally:
        if proc.poll() is None:
            proc.kill()
        db.dispose()
