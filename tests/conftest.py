"""Fixtures: real PostgreSQL and Redis servers started for the session, and a running app per test."""

from __future__ import annotations

import glob
import hashlib
import logging
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
import redis
from fastapi.testclient import TestClient

from monitor.adapters.face_dlib import FaceEngine
from monitor.adapters.face_scan import FaceScan, Purpose
from monitor.adapters.storage import Database
from monitor.app import create_app
from monitor.settings import Settings
from tests.crew import crew, crew_pg  # noqa: F401 - the dispatch tests' fixtures, shared by their modules
from tests.helpers import FACES_DIR, World

_SERVICES_HINT = "run ./scripts/test.sh, which installs PostgreSQL, Redis and Chromium"

LOG_LINES: list[str] = []  # every log line of the session, as a handler would print it (tests/test_zz_log_scan.py)


@pytest.fixture(scope="session", autouse=True)
def remember_face_scans() -> Iterator[None]:
    """The real face engine, run once per distinct photo and purpose for the whole session.

    Every test registers people from the same sample photos: dlib gives the same answer for the same bytes,
    so the second registration reuses the first one's scan (a third of the suite's time was enrolments).
    Tests that replace an engine's `scan` (to make it fail) still replace it: this wraps the class method."""
    cache: dict[tuple[bytes, str, str], FaceScan] = {}
    real = FaceEngine.scan

    def scan(self: FaceEngine, data: bytes, purpose: Purpose = "selfie") -> FaceScan:
        key = (hashlib.sha256(data).digest(), purpose, self.model_version)
        if key not in cache:
            cache[key] = real(self, data, purpose)
        return cache[key]

    FaceEngine.scan = scan  # type: ignore[method-assign]
    yield
    FaceEngine.scan = real  # type: ignore[method-assign]


@pytest.fixture(scope="session", autouse=True)
def keep_every_log_line() -> Iterator[None]:
    """Record every log line the suite produces, through whatever logger: uvicorn's loggers do not propagate,
    so lines are taken where records are made (after the app's redaction), not from a handler."""
    previous = logging.getLogRecordFactory()
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")

    def keeping(*args: object, **kwargs: object) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        try:
            LOG_LINES.append(formatter.format(record))
        except Exception:  # noqa: BLE001 - a record that cannot be formatted is not printed either
            pass
        return record

    root = logging.getLogger()
    level = root.level
    root.setLevel(min(level, logging.INFO))
    logging.setLogRecordFactory(keeping)
    yield
    logging.setLogRecordFactory(previous)
    root.setLevel(level)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_postgres(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A throwaway PostgreSQL cluster on a free port (or MONITOR_TEST_POSTGRES_URL); yields its base URL."""
    if url := os.environ.get("MONITOR_TEST_POSTGRES_URL"):
        yield url.rstrip("/")
        return
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb")) or [shutil.which("initdb") or ""]
    initdb = candidates[-1]
    if not initdb or not Path(initdb).exists():
        pytest.fail(f"PostgreSQL server binaries not found; {_SERVICES_HINT}")
    bindir = Path(initdb).parent
    root = Path(tempfile.mkdtemp(prefix="monitor-pg-"))
    data = root / "data"
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    port = free_port()
    subprocess.run(_as_postgres([str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres",
                                 "--encoding=UTF8", "--locale=C"]), check=True, capture_output=True)
    subprocess.run(_as_postgres([str(bindir / "pg_ctl"), "-D", str(data), "-w", "-l", str(root / "log"), "-o",
                                 f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off", "start"]),
                   check=True, capture_output=True)
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}"
    finally:
        subprocess.run(_as_postgres([str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
                       capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A fresh, empty database on the session's PostgreSQL server."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(f"{postgres_server}/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield f"{postgres_server}/{name}"
    with psycopg.connect(f"{postgres_server}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def redis_server() -> Iterator[str]:
    """A redis-server on a free port (or MONITOR_TEST_REDIS_URL)."""
    if url := os.environ.get("MONITOR_TEST_REDIS_URL"):
        yield url
        return
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail(f"redis-server not found; {_SERVICES_HINT}")
    port = free_port()
    workdir = tempfile.mkdtemp(prefix="monitor-redis-")
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                             "--dir", workdir], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    for _ in range(100):
        try:
            client.ping()
            break
        except redis.ConnectionError:
            time.sleep(0.05)
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def redis_url(redis_server: str) -> str:
    redis.Redis.from_url(redis_server).flushall()
    return redis_server


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An SQLite file migrated to head once per session; each test's database starts as a copy of it (the
    migrations themselves are tested in test_storage.py, on empty databases)."""
    path = tmp_path_factory.mktemp("template") / "monitor.sqlite3"
    db = Database(f"sqlite:///{path}")
    db.migrate()
    with db.engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    db.dispose()
    return path


@pytest.fixture
def db(tmp_path: Path, migrated_sqlite: Path) -> Iterator[Database]:
    """A database of its own for one test: a copy of the migrated SQLite file."""
    shutil.copyfile(migrated_sqlite, tmp_path / "monitor.sqlite3")
    database = Database(f"sqlite:///{tmp_path / 'monitor.sqlite3'}")
    yield database
    database.dispose()


@pytest.fixture
def settings_factory(tmp_path: Path, migrated_sqlite: Path) -> Callable[..., Settings]:
    def make(**overrides: object) -> Settings:
        values: dict[str, object] = {"data_dir": tmp_path / "data", "faces_dir": FACES_DIR,
                                     "relay_interval_seconds": 0.5, "clock_interval_seconds": 1.0,
                                     "face_processes": 0, "clock_rules": False,
                                     "draw_auto": False}
        values.update(overrides)
        settings = Settings(**values)
        target = settings.data_dir / "monitor.sqlite3"
        if not settings.database_url and not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(migrated_sqlite, target)
        return settings

    return make


SLOW_MACHINE_VERDICT_WAIT_S = 30.0
"""How long an upload in a test waits for its worker's verdict (tests of the 202 itself set their own wait)."""


@pytest.fixture
def client_factory(settings_factory: Callable[..., Settings]) -> Iterator[Callable[..., TestClient]]:
    """Start apps (lifespan included: hub and worker run) and stop them after the test."""
    clients: list[TestClient] = []

    def make(run_worker: bool = True, **overrides: object) -> TestClient:
        if run_worker:  # its worker answers in well under a second; on a machine busy with the whole suite (and a
            # browser or two) a verdict once took more than the 6 s default, and the test read a 202 as a failure
            overrides.setdefault("verdict_wait_seconds", SLOW_MACHINE_VERDICT_WAIT_S)
        client = TestClient(create_app(settings_factory(**overrides), run_worker=run_worker))
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in reversed(clients):
        client.__exit__(None, None, None)


@pytest.fixture
def client(client_factory: Callable[..., TestClient]) -> TestClient:
    return client_factory()


@pytest.fixture
def world(client: TestClient) -> World:
    """One institution, venue, class and trainee enrolled with people/obama/obama.jpg, and tokens."""
    return World.build(client)


@pytest.fixture(scope="module")
def shared_world(tmp_path_factory: pytest.TempPathFactory, migrated_sqlite: Path) -> Iterator[World]:
    """One registered world for a whole module whose tests leave it as they found it (refusals, reads):
    registering it costs more than most of those tests."""
    data = tmp_path_factory.mktemp("shared") / "data"
    data.mkdir(parents=True)
    shutil.copyfile(migrated_sqlite, data / "monitor.sqlite3")
    settings = Settings(data_dir=data, faces_dir=FACES_DIR, relay_interval_seconds=0.5, clock_interval_seconds=1.0,
                        face_processes=0, clock_rules=False)
    with TestClient(create_app(settings)) as client:
        yield World.build(client)
