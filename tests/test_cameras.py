"""Classroom cameras (issue 19): real local streams (MJPEG over HTTP made by ffmpeg from the sample video or a
still photo, behind Basic authentication) pulled by the camera puller, their frames arriving as classroom
snapshots (stored evidence, verification, faces counted), CAMERA_OFFLINE and FROZEN_FEED raised and resolved, the
credentials encrypted at rest and never answered nor logged, and a slow camera that delays nobody."""

from __future__ import annotations

import base64
import random
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import numpy as np
import pytest
from alembic import command
from alembic.config import Config
from fastapi.testclient import TestClient
from sqlalchemy import select, text

from models.clock import utc_now
from models.tables import Anomaly, AuditEntry, Camera, CameraHealth, Snapshot, Verification
from monitor.adapters.camera_keys import load_camera_keyring
from monitor.adapters.camera_stream import split_credentials, with_credentials
from monitor.adapters.storage import _MIGRATIONS, Database
from monitor.cli.demo import DEMO_CAMERA, DEMO_VIDEO, demo_camera
from monitor.decisions.camera_health import (
    CameraLimits,
    backoff_seconds,
    frame_defect,
    frame_difference,
    judge_frozen,
    judge_offline,
    pick_frame,
)
from monitor.services.cameras import CameraPuller, camera_subject, claim
from tests.conftest import LOG_LINES
from tests.helpers import FACES_DIR, World, auth
from tests.test_pages import live_world  # noqa: F401 - the live world fixture

CLIP = FACES_DIR / "video" / "short_hamilton_clip.mp4"
STILL = FACES_DIR / "groups" / "obama_and_biden.jpg"
CLIP_SECONDS = 9.0
MOVING = ["-stream_loop", "-1", "-i", str(CLIP)]
FROZEN = ["-loop", "1", "-framerate", "10", "-i", str(STILL)]
# A still classroom: nobody moves, only the sensor's noise does.
QUIET = [*FROZEN[:-2], "-i", str(STILL), "-vf", "noise=alls=40:allf=t:all_seed={seed}"]
USER, PASSWORD = "admin", "Cam#Secret-7Qz"

FAST = {"camera_scan_seconds": 0.3, "camera_offline_seconds": 4.0, "camera_frozen_pulls": 2,
        "camera_open_timeout_seconds": 2.0, "camera_read_timeout_seconds": 2.0, "camera_backoff_max_seconds": 1.0,
        "camera_burst_frames": 3}


class MjpegServer:
    """A camera: MJPEG over HTTP, each client fed by its own ffmpeg process; Basic authentication required;
    `stall()` kills the ffmpeg processes and then accepts connections without ever answering."""

    def __init__(self, source: list[str] | None, user: str = USER, password: str = PASSWORD) -> None:
        self.source = source
        self.expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(32)
        self.port = self.sock.getsockname()[1]
        self.procs: list[subprocess.Popen[bytes]] = []
        self.held: list[socket.socket] = []
        self.served = 0
        self.refused = 0
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self, with_login: bool = True) -> str:
        login = f"{USER}:{PASSWORD.replace('#', '%23')}@" if with_login else ""
        return f"http://{login}127.0.0.1:{self.port}/stream.mjpg"

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with self._lock:
            source = self.source
            if source is None:
                self.held.append(conn)  # a stalled camera: connected, silent
                return
        proc = None
        try:
            conn.settimeout(5)
            request = b""
            while b"\r\n\r\n" not in request:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                request += chunk
            headers = {line.split(":", 1)[0].strip().lower(): line.split(":", 1)[1].strip()
                       for line in request.decode("latin-1").split("\r\n")[1:] if ":" in line}
            if headers.get("authorization") != self.expected:
                self.refused += 1
                conn.sendall(b'HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm="camera"\r\n'
                             b"Content-Length: 0\r\nConnection: close\r\n\r\n")
                return
            if "-stream_loop" in source:  # a live camera: each viewer joins where the clock says, not at the start
                source = ["-ss", f"{time.time() % CLIP_SECONDS:.2f}", *source]
            filters = "scale=640:-2"
            if "-vf" in source:
                at = source.index("-vf")
                seeded = source[at + 1].replace("{seed}", str(random.randrange(1 << 30)))  # noise differs per viewer
                filters, source = f"{seeded},{filters}", source[:at] + source[at + 2:]
            proc = subprocess.Popen(["ffmpeg", "-loglevel", "error", "-re", *source, "-an", "-vf", filters,
                                     "-q:v", "4", "-f", "mpjpeg", "-"], stdout=subprocess.PIPE,
                                    stderr=subprocess.DEVNULL)
            with self._lock:
                self.procs.append(proc)
            conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: multipart/x-mixed-replace;boundary=ffmpeg\r\n\r\n")
            self.served += 1
            assert proc.stdout is not None
            while data := proc.stdout.read1(65536):
                conn.sendall(data)
        except OSError:
            pass
        finally:
            if proc is not None:
                proc.kill()
                proc.wait()
            conn.close()

    def switch(self, source: list[str] | None) -> None:
        """Kill every running ffmpeg (the stream stops mid-frame) and serve `source` from now on."""
        with self._lock:
            self.source = source
            procs, self.procs = self.procs, []
            held, self.held = self.held, []
        for proc in procs:
            proc.kill()
        for conn in held:
            conn.close()

    def stall(self) -> None:
        self.switch(None)

    def close(self) -> None:
        self.switch(None)
        self.sock.close()
        for conn in self.held:
            conn.close()


@pytest.fixture
def servers() -> Iterator[Callable[[list[str] | None], MjpegServer]]:
    if shutil.which("ffmpeg") is None:
        pytest.fail("ffmpeg not found; run ./scripts/test.sh (scripts/system-deps.sh installs it)")
    made: list[MjpegServer] = []

    def make(source: list[str] | None) -> MjpegServer:
        made.append(MjpegServer(source))
        return made[-1]

    yield make
    for server in made:
        server.close()


@pytest.fixture
def camera_world(client_factory: Callable[..., TestClient]) -> World:
    return World.build(client_factory(**FAST))


def register(world: World, url: str, name: str = "302 教室", interval: int = 1, **extra: Any) -> dict[str, Any]:
    r = world.client.post(f"/api/v1/venues/{world.ids['venue']}/cameras", headers=auth(world.admin),
                          json={"name": name, "stream_url": url, "kind": "http", "interval_seconds": interval, **extra})
    assert r.status_code == 201, r.text
    return r.json()


def wait_for(what: Callable[[], Any], seconds: float, message: str) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = what()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"not within {seconds} s: {message}")


def camera_anomalies(world: World, camera_id: int, rule: str) -> list[Anomaly]:
    with world.client.app.state.db.session() as session:
        return list(session.scalars(select(Anomaly).where(Anomaly.subject_kind == "camera",
                                                          Anomaly.subject_id == camera_id, Anomaly.rule == rule)))


def snapshots_of(world: World, camera_id: int) -> list[Snapshot]:
    with world.client.app.state.db.session() as session:
        return list(session.scalars(select(Snapshot).where(Snapshot.camera_id == camera_subject(camera_id))
                                    .order_by(Snapshot.id)))


def health(world: World, camera_id: int, token: str | None = None) -> dict[str, Any]:
    r = world.client.get(f"/api/v1/cameras/{camera_id}/health", headers=auth(token or world.operator))
    assert r.status_code == 200, r.text
    return r.json()


# -- real streams ---------------------------------------------------------------------------------------------------

def test_frames_arrive_as_verified_snapshots_with_faces_counted(
        camera_world: World, servers: Callable[[list[str] | None], MjpegServer]) -> None:
    world = camera_world
    server = servers(MOVING)
    camera = register(world, server.url(), interval=2)
    assert camera["stream_url"] == f"http://127.0.0.1:{server.port}/stream.mjpg" and camera["has_credentials"]

    def verified() -> list[tuple[Snapshot, Verification]]:
        with world.client.app.state.db.session() as session:
            return list(session.execute(select(Snapshot, Verification).join(
                Verification, (Verification.subject_kind == "snapshot") & (Verification.subject_id == Snapshot.id))
                .where(Snapshot.camera_id == camera_subject(camera["id"]), Verification.face_count > 0)).all())

    snapshot, verification = wait_for(verified, 60, "a camera frame verified with faces counted")[0]
    assert server.served >= 1 and server.refused >= 1  # asked for the login, then given the decrypted one
    assert snapshot.class_id == world.class_id and snapshot.status in ("passed", "failed")
    assert world.client.app.state.evidence.get(snapshot.photo_sha256)[:2] == b"\xff\xd8"  # the JPEG, stored
    assert verification.measured["signed_in"] == 0 and verification.face_count >= 1
    r = world.client.get(f"/api/v1/snapshots/{snapshot.id}", headers=auth(world.site))  # the site's own view
    assert r.status_code == 200 and "张人脸" in r.json()["message"] or r.json()["reasons"]
    state = health(world, camera["id"])
    assert state["state"] == "ok" and state["last_frame_at"] and state["open_anomalies"] == []


def test_a_stalled_stream_is_offline_until_frames_return(
        camera_world: World, servers: Callable[[list[str] | None], MjpegServer]) -> None:
    world = camera_world
    server = servers(MOVING)
    camera = register(world, server.url())
    wait_for(lambda: snapshots_of(world, camera["id"]), 30, "a first frame")
    server.stall()  # ffmpeg killed; the camera accepts connections and never answers
    offline = wait_for(lambda: camera_anomalies(world, camera["id"], "CAMERA_OFFLINE"), 30, "CAMERA_OFFLINE")
    assert len(offline) == 1 and offline[0].state == "open" and offline[0].class_id == world.class_id
    assert offline[0].thresholds["camera_offline_seconds"] == FAST["camera_offline_seconds"]
    state = health(world, camera["id"])
    assert state["state"] == "offline" and state["failures"] >= 1 and state["last_error"]
    assert state["open_anomalies"] == ["CAMERA_OFFLINE"]
    time.sleep(1.0)
    assert len(camera_anomalies(world, camera["id"], "CAMERA_OFFLINE")) == 1  # one per episode, not per pull
    before = len(snapshots_of(world, camera["id"]))
    server.switch(MOVING)  # a new stream comes back
    wait_for(lambda: [a for a in camera_anomalies(world, camera["id"], "CAMERA_OFFLINE") if a.state == "resolved"],
             30, "CAMERA_OFFLINE resolved")
    # the returned stream starts over: its first picture can be the one taken before the stall (no new evidence)
    wait_for(lambda: len(snapshots_of(world, camera["id"])) > before, 30, "new snapshots from the returned stream")
    assert health(world, camera["id"])["state"] == "ok"


def test_a_looped_still_frame_is_a_frozen_feed_until_the_picture_moves(
        camera_world: World, servers: Callable[[list[str] | None], MjpegServer]) -> None:
    world = camera_world
    server = servers(FROZEN)
    camera = register(world, server.url())
    frozen = wait_for(lambda: camera_anomalies(world, camera["id"], "FROZEN_FEED"), 30, "FROZEN_FEED")
    assert len(frozen) == 1 and frozen[0].evidence["difference"] <= FAST.get("camera_frozen_max_difference", 0.5)
    assert health(world, camera["id"])["state"] == "frozen"
    assert len(snapshots_of(world, camera["id"])) == 1  # the same picture again is no new evidence
    assert not camera_anomalies(world, camera["id"], "CAMERA_OFFLINE")  # frozen is not offline: frames arrive
    server.switch(MOVING)
    wait_for(lambda: [a for a in camera_anomalies(world, camera["id"], "FROZEN_FEED") if a.state == "resolved"],
             30, "FROZEN_FEED resolved")
    assert health(world, camera["id"])["state"] == "ok" and len(snapshots_of(world, camera["id"])) >= 2


def test_a_slow_camera_does_not_delay_another(
        camera_world: World, servers: Callable[[list[str] | None], MjpegServer]) -> None:
    world = camera_world
    silent = socket.socket()  # accepts, never answers: each pull waits out the open timeout (2 s)
    silent.bind(("127.0.0.1", 0))
    silent.listen(64)
    try:
        slow = register(world, f"http://127.0.0.1:{silent.getsockname()[1]}/live", name="坏的摄像头")
        server = servers(MOVING)
        good = register(world, server.url(), name="好的摄像头")
        wait_for(lambda: health(world, slow["id"])["failures"] >= 1, 20, "the slow camera's first timeout")
        start = len(snapshots_of(world, good["id"]))
        t0 = time.monotonic()
        wait_for(lambda: len(snapshots_of(world, good["id"])) >= start + 3, 12, "three more frames")
        elapsed = time.monotonic() - t0
        assert elapsed < 8, elapsed  # ~1 s apart, not held behind the slow camera's 2 s timeouts
        assert "超时" in (health(world, slow["id"])["last_error"] or "")
        frames = [s.id for s in snapshots_of(world, good["id"])]

        def reasons() -> list[list[dict[str, Any]]] | None:
            with world.client.app.state.db.session() as session:
                found = list(session.scalars(select(Verification.reasons).where(
                    Verification.subject_kind == "snapshot", Verification.subject_id.in_(frames))))
            return found if len(found) == len(frames) else None

        # A fixed camera's frames are near copies of each other: not PHOTO_REPLAY (a still feed is FROZEN_FEED's)
        assert all(r["code"] != "PHOTO_REPLAY" for found in wait_for(reasons, 60, "every frame verified")
                   for r in found)
        forged = world.snapshot(b"not even read", camera_id=camera_subject(good["id"]))  # sites may not use the prefix
        assert forged.status_code == 422 and forged.json()["code"] == "RESERVED_CAMERA_ID"
    finally:
        silent.close()


def test_a_quiet_classroom_is_neither_frozen_nor_a_replay(
        camera_world: World, servers: Callable[[list[str] | None], MjpegServer]) -> None:
    """Nobody moves, the sensor's noise does: each frame is a near copy of the last by pHash, yet no replay (the
    camera's own earlier frames do not count) and not frozen (the frames differ)."""
    world = camera_world
    camera = register(world, servers(QUIET).url())
    frames = wait_for(lambda: [s.id for s in snapshots_of(world, camera["id"])][:3] if len(
        snapshots_of(world, camera["id"])) >= 3 else None, 30, "three frames")

    def reasons() -> list[list[dict[str, Any]]] | None:
        with world.client.app.state.db.session() as session:
            found = list(session.scalars(select(Verification.reasons).where(
                Verification.subject_kind == "snapshot", Verification.subject_id.in_(frames))))
        return found if len(found) == len(frames) else None

    assert [r["code"] for found in wait_for(reasons, 60, "three frames verified") for r in found
            if r["code"] == "PHOTO_REPLAY"] == []
    assert not camera_anomalies(world, camera["id"], "FROZEN_FEED") and health(world, camera["id"])["state"] == "ok"


# -- credentials ---------------------------------------------------------------------------------------------------

def test_credentials_are_encrypted_at_rest_and_never_answered_nor_logged(
        camera_world: World, servers: Callable[[list[str] | None], MjpegServer]) -> None:
    world = camera_world
    server = servers(MOVING)
    rtsp = register(world, f"rtsp://{USER}:{PASSWORD.replace('#', '%23')}@10.1.2.3:554/Streaming/Channels/101",
                    name="海康 101", kind="rtsp", interval=300)
    assert rtsp["stream_url"] == "rtsp://10.1.2.3:554/Streaming/Channels/101" and rtsp["has_credentials"]
    apart = register(world, server.url(with_login=False), name="门口", username=USER, password=PASSWORD)
    wait_for(lambda: snapshots_of(world, apart["id"]), 30, "frames with credentials given apart from the URL")
    r = world.client.patch(f"/api/v1/cameras/{apart['id']}", headers=auth(world.admin),
                           json={"password": PASSWORD + "-new", "interval_seconds": 5})
    assert r.status_code == 200 and r.json()["interval_seconds"] == 5
    answers = [rtsp, apart, r.json(),
               world.client.get(f"/api/v1/venues/{world.ids['venue']}/cameras", headers=auth(world.operator)).json(),
               health(world, apart["id"]), health(world, rtsp["id"])]
    db = world.client.app.state.db
    with db.engine.connect() as conn:
        rows = [tuple(row) for row in conn.execute(text("SELECT * FROM cameras"))]
        audit = [row.detail for row in conn.execute(select(AuditEntry.detail).where(
            AuditEntry.subject_kind == "cameras"))]
    assert len(audit) >= 3
    everything = repr(answers) + repr(rows) + repr(audit) + "\n".join(LOG_LINES)
    assert PASSWORD not in everything and PASSWORD.replace("#", "%23") not in everything
    assert all(row[-2] is None or "gAAAA" in str(rows) for row in rows)  # Fernet tokens
    keyring = load_camera_keyring(world.client.app.state.settings.data_dir / "camera-keys.json", create=False)
    with db.session() as session:
        stored = session.get(Camera, rtsp["id"])
        assert stored is not None and stored.credentials_encrypted
        assert keyring.decrypt(stored.credentials_encrypted, stored.key_id) == (USER, PASSWORD)
    key_file = world.client.app.state.settings.data_dir / "camera-keys.json"
    assert key_file.stat().st_mode & 0o077 == 0  # owner-only, outside the database


def test_urls_split_and_join_credentials() -> None:
    clean, user, password = split_credentials("rtsp://ad%40min:p%3Aw%23d@192.168.1.64:554/h264?ch=1", "rtsp")
    assert (clean, user, password) == ("rtsp://192.168.1.64:554/h264?ch=1", "ad@min", "p:w#d")
    assert split_credentials(with_credentials(clean, user, password), "rtsp") == (clean, user, password)
    assert split_credentials("/data/class.mp4", "file") == ("/data/class.mp4", "", "")
    with pytest.raises(ValueError):
        split_credentials("http://x/cam", "rtsp")


# -- access --------------------------------------------------------------------------------------------------------

def test_admins_register_the_center_reads_sites_do_not(client_factory: Callable[..., TestClient]) -> None:
    world = World.build(client_factory(cameras_enabled=False))
    c = world.client
    venue = world.ids["venue"]
    body = {"name": "A", "stream_url": "rtsp://10.0.0.9/live", "kind": "rtsp"}
    assert c.post(f"/api/v1/venues/{venue}/cameras", json=body, headers=auth(world.operator)).status_code == 403
    assert c.post(f"/api/v1/venues/{venue}/cameras", json=body).status_code == 401
    made = c.post(f"/api/v1/venues/{venue}/cameras", json=body, headers=auth(world.admin))
    assert made.status_code == 201
    assert c.post(f"/api/v1/venues/{venue}/cameras", json=body, headers=auth(world.admin)).status_code == 409
    bad = c.post(f"/api/v1/venues/{venue}/cameras", headers=auth(world.admin),
                 json={**body, "name": "B", "stream_url": "http://10.0.0.9/live"})
    assert bad.status_code == 422 and bad.json()["code"] == "INVALID_STREAM_URL"
    assert c.post("/api/v1/venues/999999/cameras", json=body, headers=auth(world.admin)).status_code == 404
    assert c.get(f"/api/v1/venues/{venue}/cameras", headers=auth(world.operator)).json()[0]["name"] == "A"
    assert c.get(f"/api/v1/venues/{venue}/cameras", headers=auth(world.site)).status_code == 403
    camera = made.json()["id"]
    assert health(world, camera)["state"] == "idle"
    assert c.patch(f"/api/v1/cameras/{camera}", json={"active": False}, headers=auth(world.operator)).status_code == 403
    assert c.delete(f"/api/v1/cameras/{camera}", headers=auth(world.admin)).status_code == 204
    assert c.get(f"/api/v1/cameras/{camera}/health", headers=auth(world.operator)).status_code == 404


# -- scale-out and the pure rules ----------------------------------------------------------------------------------

def test_one_puller_at_a_time_holds_a_camera(client_factory: Callable[..., TestClient]) -> None:
    world = World.build(client_factory(cameras_enabled=False))
    camera = world.client.post(f"/api/v1/venues/{world.ids['venue']}/cameras", headers=auth(world.admin),
                               json={"name": "A", "stream_url": "rtsp://10.0.0.9/live"}).json()
    db = world.client.app.state.db
    now = utc_now()
    results: list[bool] = []
    barrier = threading.Barrier(4)

    def race(owner: str) -> None:
        barrier.wait()
        with db.writing() as conn:
            results.append(claim(conn, camera["id"], owner, now, 60))

    threads = [threading.Thread(target=race, args=(f"p{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False, False, False, True]
    with db.writing() as conn:  # once the lease lapses (and the camera is due), another puller takes it
        assert claim(conn, camera["id"], "late", now + timedelta(seconds=61), 60)
    puller = CameraPuller(world.client.app.state.settings, db, world.client.app.state.ingest,
                          world.client.app.state.camera_keyring, owner="late")
    puller.release_leases()
    with db.session() as session:
        row = session.get(CameraHealth, camera["id"])
        assert row is not None and row.lease_owner is None


def test_frame_rules_are_pure() -> None:
    limits = CameraLimits()
    rng = np.random.default_rng(1)
    scene = rng.integers(0, 255, (36, 64), dtype=np.uint8)
    grey = np.full((36, 64), 128, dtype=np.uint8)
    half = scene.copy()
    half[14:] = 128  # the lower part never decoded: one flat grey
    assert [frame_defect(f, limits) for f in (None, grey, np.zeros((36, 64), np.uint8), half, scene)] == \
        ["undecodable", "uniform", "uniform", "flat", None]
    assert pick_frame(["uniform", None, "flat", None, "undecodable"]) == 3 and pick_frame(["uniform"]) is None
    noisy = np.clip(scene.astype(int) + rng.integers(-1, 2, scene.shape), 0, 255).astype(np.uint8)
    assert frame_difference(scene, scene) == 0 and frame_difference(scene, noisy) < 1 < frame_difference(scene, half)
    assert frame_difference(scene, scene[:10]) == float("inf")
    assert judge_frozen(2, 0.0, limits) == [] and judge_frozen(3, 0.0, limits)[0].code == "FROZEN_FEED"
    now = utc_now()
    assert judge_offline(now - timedelta(seconds=299), now - timedelta(hours=1), now, None, limits) == []
    found = judge_offline(None, now - timedelta(seconds=301), now, "无法连接", limits)
    assert found[0].code == "CAMERA_OFFLINE" and "无法连接" in found[0].message
    assert [backoff_seconds(n, 300, 60) for n in (0, 1, 2, 3, 8)] == [300, 1, 2, 4, 60]


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_migration_0023_goes_down_and_up(backend: str, tmp_path: Any, request: pytest.FixtureRequest) -> None:
    url = request.getfixturevalue("postgres_url") if backend == "postgresql" else f"sqlite:///{tmp_path}/m.sqlite3"
    db = Database(url)
    db.migrate()
    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0022")
        assert not db.engine.dialect.has_table(conn, "cameras")
        command.upgrade(cfg, "head")
        assert db.engine.dialect.has_table(conn, "camera_health")
    db.dispose()


def test_the_demo_registers_one_file_camera_playing_the_sample_clip(live_world: World) -> None:  # noqa: F811
    world = live_world
    base = str(world.client.base_url).rstrip("/")
    said = demo_camera(base, world.admin, world.class_id, FACES_DIR)
    assert said.endswith(DEMO_VIDEO.name)
    assert demo_camera(base, world.admin, world.class_id, FACES_DIR) == said  # a kept database: not twice
    venue = world.client.get(f"/api/v1/classes/{world.class_id}", headers=auth(world.admin)).json()["venue_id"]
    [camera] = world.client.get(f"/api/v1/venues/{venue}/cameras", headers=auth(world.admin)).json()
    assert (camera["name"], camera["kind"]) == (DEMO_CAMERA, "file")
    assert camera["stream_url"].endswith(str(DEMO_VIDEO))
    assert demo_camera(base, world.admin, world.class_id, FACES_DIR / "nowhere") == ""  # no clip: no camera
