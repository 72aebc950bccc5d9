"""Faults answered truthfully (issue 21 item 2): the database unreachable is a 503 in the project's JSON shape with
Retry-After, and the center answers again once it is back; a full evidence disk (a real small tmpfs, and ext4 on a
loop device) is a 507 that stores nothing half-written, with STORAGE_LOW on /health and the wall before it fills;
the janitor removes files no record names (a rolled-back write) and nothing else."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from ingest.adapters.evidence import EvidenceStore
from monitor.cli import app as cli
from monitor.services.evidence_health import storage_state, sweep_orphans
from tests.helpers import World, auth, face


def set_connections(postgres_url: str, allowed: bool) -> None:
    """Open or close the test database to new connections, dropping those it has (the server "down" for it)."""
    base, name = postgres_url.rsplit("/", 1)
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {str(allowed).lower()}')
        if not allowed:
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))


def test_the_database_unreachable_is_a_503_with_retry_after_and_the_center_recovers(
        client_factory: Callable[..., TestClient], postgres_url: str) -> None:
    client = client_factory(database_url=postgres_url, run_worker=False)
    world = World.build(client)
    assert client.get("/api/v1/institutions", headers=auth(world.admin)).status_code == 200
    set_connections(postgres_url, allowed=False)
    try:
        for path in ("/api/v1/institutions", "/api/v1/overview", "/api/v1/health"):
            r = client.get(path, headers=auth(world.admin))
            assert r.status_code == 503, (path, r.status_code, r.text)
            assert r.json()["code"] == "DATABASE_UNAVAILABLE" and "稍后重试" in r.json()["message"]
            assert int(r.headers["Retry-After"]) > 0
        r = world.checkin(face("people/obama/obama2.jpg"), key="down-1")
        assert r.status_code == 503 and r.json()["code"] == "DATABASE_UNAVAILABLE"
    finally:
        set_connections(postgres_url, allowed=True)
    again = world.checkin(face("people/obama/obama2.jpg"), key="down-1")  # the phone retries with its key
    assert again.status_code in (200, 201, 202) and again.json()["id"]
    assert client.get("/api/v1/institutions", headers=auth(world.admin)).status_code == 200


def test_a_connection_found_cut_mid_request_is_a_503_not_a_plain_500(client: TestClient,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever touches a connection that was cut while its transaction was rolled back raises SQLAlchemy's
    PendingRollbackError, not the cut's own error: it is answered like the database being down (503, its JSON
    shape, Retry-After), on any route, and the next request is served."""
    from contextlib import contextmanager

    from sqlalchemy.exc import PendingRollbackError

    world = World.build(client)
    db = client.app.state.db
    real_session, cut = db.session, {"once": True}

    @contextmanager
    def session_on_a_cut_connection() -> Iterator[object]:
        if cut.pop("once", False):
            raise PendingRollbackError("Can't reconnect until invalid transaction is rolled back.")
        with real_session() as s:
            yield s

    monkeypatch.setattr(db, "session", session_on_a_cut_connection)
    r = client.get("/api/v1/institutions", headers=auth(world.admin))
    assert r.status_code == 503 and r.json()["code"] == "DATABASE_UNAVAILABLE", r.text
    assert "稍后重试" in r.json()["message"] and int(r.headers["Retry-After"]) > 0
    assert client.get("/api/v1/institutions", headers=auth(world.admin)).status_code == 200


@pytest.fixture(params=["tmpfs", "ext4"])
def tiny_evidence_disk(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Path]:
    """The evidence directory on a real small disk (root can mount one; CI runs as root): a 3 MiB tmpfs, or an
    ext4 image of 8 MiB on a loop device (a block device under O_DIRECT, as the evidence disk of a deployment)."""
    target = tmp_path / "data" / "evidence"
    target.mkdir(parents=True)
    if request.param == "tmpfs":
        command = ["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(target)]
    else:
        image = tmp_path / "evidence.img"
        with image.open("wb") as f:
            f.truncate(8 * 1024 * 1024)
        made = subprocess.run(["mkfs.ext4", "-q", "-m", "0", str(image)], capture_output=True)
        assert made.returncode == 0, made.stderr.decode(errors="replace")
        command = ["mount", "-o", "loop", str(image), str(target)]
    done = subprocess.run(command, capture_output=True)
    assert done.returncode == 0, f"mounting a small disk needs root: {done.stderr.decode(errors='replace')}"
    try:
        yield target
    finally:
        subprocess.run(["umount", "-l", str(target)], capture_output=True)


def fill(disk: Path, leave_bytes: int) -> Path:
    """A filler file that leaves about `leave_bytes` free."""
    filler = disk / "filler.bin"
    free = storage_state(disk, 0).free_bytes
    with filler.open("wb") as f:
        f.write(b"\0" * max(0, free - leave_bytes))
    return filler


def test_a_full_evidence_disk_is_a_507_and_leaves_nothing_half_written(
        tiny_evidence_disk: Path, client_factory: Callable[..., TestClient]) -> None:
    client = client_factory(storage_low_free_mb=1)
    world = World.build(client)
    assert client.get("/api/v1/health", headers=auth(world.admin)).json()["storage"]["state"] == "ok"
    filler = fill(tiny_evidence_disk, 16 * 1024)
    health = client.get("/api/v1/health", headers=auth(world.admin)).json()
    assert health["status"] == "degraded" and health["storage"]["state"] == "STORAGE_LOW"
    assert "扩容" in health["storage"]["message"]
    alarms = client.get("/api/v1/overview", headers=auth(world.operator)).json()["alarms"]
    assert [a["code"] for a in alarms] == ["STORAGE_LOW"]
    before = world.stored()
    r = world.checkin(face("people/obama/obama2.jpg"), key="full-1")
    assert r.status_code == 507, r.text
    assert r.json()["code"] == "STORAGE_FULL" and "存储空间不足" in r.json()["message"]
    assert world.stored() == before  # no row, no file
    assert not [p for p in tiny_evidence_disk.rglob(".tmp-*")]  # nothing half-written
    filler.unlink()
    r = world.checkin(face("people/obama/obama2.jpg"), key="full-1")  # the same upload, once there is room
    assert r.status_code in (201, 202), r.text
    assert client.get("/api/v1/overview", headers=auth(world.operator)).json()["alarms"] == []


def test_the_janitor_removes_only_old_files_no_record_names(world: World) -> None:
    """The janitor reads the write journals whose hour ended long enough ago (never walks the store): an old file no
    record names and a temporary file cut short beside it go, a file a record names stays, a young orphan waits
    (its transaction may still run), and a journal read is dropped. A file no journal names (written before the
    journals) is left to `monitor evidence sweep --all`, which walks everything."""
    app = world.client.app
    evidence: EvidenceStore = app.state.evidence
    t0 = time.time()
    evidence.clock = lambda: t0 - 7200  # the writes below are journalled two hours ago
    kept = world.checkin(face("people/obama/obama2.jpg")).json()["photo_sha256"]
    orphan_old, orphan_young, unjournalled = "a" * 64, "b" * 64, "c" * 64
    evidence.put(orphan_old, b"written before a transaction that rolled back")
    evidence.clock = time.time
    evidence.put(orphan_young, b"written by a transaction still running")
    path = evidence.path_for(unjournalled)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"from before the journals")
    stale_tmp = evidence.path_for(orphan_old).parent / ".tmp-cut-short"
    stale_tmp.write_bytes(b"half")
    two_hours_ago = t0 - 7200
    for old in (evidence.path_for(orphan_old), stale_tmp, evidence.path_for(kept), path):
        os.utime(old, (two_hours_ago, two_hours_ago))
    journals = [p for p, _ in evidence.journals()]
    assert len(journals) == 2
    removed = sweep_orphans(app.state.db, evidence, older_than_s=600)
    assert removed == 2
    assert not evidence.exists(orphan_old) and not stale_tmp.exists()
    assert evidence.exists(orphan_young)  # may belong to a transaction still running
    assert evidence.exists(kept)  # a record names it
    assert evidence.exists(unjournalled)  # the janitor does not walk the store
    assert [p for p, _ in evidence.journals()] == journals[1:]  # the old journal is done with, the young one waits
    assert sweep_orphans(app.state.db, evidence, older_than_s=600) == 0
    result = CliRunner().invoke(cli, ["evidence", "sweep", "--all", "--data-dir",
                                      str(app.state.settings.data_dir)])
    assert result.exit_code == 0 and "已清理 1 份" in result.output, result.output
    assert not evidence.exists(unjournalled) and evidence.exists(kept) and evidence.exists(orphan_young)


def test_the_wall_shows_storage_low_before_the_disk_is_full(tiny_evidence_disk: Path, tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    from monitor.app import create_app
    from monitor.settings import Settings
    from tests.helpers import FACES_DIR, running_server
    from tests.test_pages import CHROMIUM, CHROMIUM_ARGS

    settings = Settings(data_dir=tmp_path / "data", faces_dir=FACES_DIR, face_processes=0, clock_rules=False,
                        draw_auto=False, storage_low_free_mb=1)
    from models.domain import Role
    from monitor.adapters.tokens import issue_token

    app = create_app(settings)
    with running_server(app) as base, sync_playwright() as p:
        with app.state.db.session() as session:
            operator = issue_token(session, Role.OPERATOR, "值班员")
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1920, "height": 1080}, locale="zh-CN")
        page.goto(f"{base}/wall#token={operator}")
        expect(page.locator("#conn")).to_have_text("实时连接正常", timeout=10_000)
        expect(page.locator("#alarms")).to_be_hidden()
        fill(tiny_evidence_disk, 16 * 1024)
        expect(page.locator("#alarms")).to_contain_text("系统告警：证据存储剩余空间", timeout=20_000)
        box = page.locator("#alarms").bounding_box()
        assert box is not None and box["y"] + box["height"] <= 1080
        browser.close()


def test_a_connection_cut_mid_read_raises_its_own_error_so_the_answer_is_a_503(postgres_url: str) -> None:
    """PostgreSQL restarted while a request reads (an upload's verdict, after its commit): the read fails with the
    cut's OperationalError, which the routes answer (202 for a stored upload, 503 elsewhere). The idempotency
    listener touched the cut connection while it was rolled back and raised PendingRollbackError over it: a plain
    500 for an upload already stored (seen under load)."""
    from sqlalchemy import text
    from sqlalchemy.exc import OperationalError

    from monitor.adapters.storage import Database
    from monitor.api.idempotency import mark_commits

    db = Database(postgres_url)
    mark_commits(db.engine)
    try:
        with pytest.raises(OperationalError), db.session() as s:
            s.execute(text("SELECT 1"))
            set_connections(postgres_url, allowed=False)  # the server ends this session
            s.execute(text("SELECT 1"))
    finally:
        set_connections(postgres_url, allowed=True)
        db.dispose()
