"""Test helpers: sample-face paths, a registered demo world, and upload shortcuts."""

from __future__ import annotations

import io
import os
import random
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi.testclient import TestClient
from httpx import Response
from PIL import Image
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models.clock import SHANGHAI
from models.domain import Role
from models.tables import CheckIn, Evidence, OutboxMessage, Snapshot
from monitor.adapters.tokens import issue_token
from monitor.demo.world import make_id_number, offset_point

REPO = Path(__file__).resolve().parent.parent
FACES_DIR = Path(os.environ.get("MONITOR_FACES_DIR", REPO.parent / "shared" / "faces"))
VENUE = (25.0433, 102.7058)  # WGS-84, Wuhua district, Kunming
VENUE_RADIUS_M = 150.0


def face(rel: str) -> bytes:
    """The bytes of a sample photo, e.g. face('people/obama/obama2.jpg')."""
    return (FACES_DIR / rel).read_bytes()


def jpeg(image: Image.Image, quality: int = 90) -> bytes:
    out = io.BytesIO()
    image.convert("RGB").save(out, "JPEG", quality=quality)
    return out.getvalue()


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def local_today() -> date:
    return datetime.now(UTC).astimezone(SHANGHAI).date()


@dataclass
class World:
    client: TestClient
    admin: str
    operator: str
    site: str
    other_site: str
    class_id: int
    other_class_id: int
    obama_id: int
    biden_id: int
    stranger_id: int
    ids: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def build(cls, client: TestClient) -> World:
        with client.app.state.db.session() as session:
            admin = issue_token(session, Role.ADMIN, "测试管理员")

        def post(path: str, **kwargs: Any) -> dict[str, Any]:
            r = client.post(path, headers=auth(admin), **kwargs)
            assert r.status_code == 201, (path, r.status_code, r.text)
            return r.json()

        today = local_today()
        occupation = post("/api/v1/occupations", json={"code": "4-03-02-01", "name": "中式烹调师"})
        classes = []
        sites = []
        for n, county in enumerate(("530102", "532901")):
            inst = post("/api/v1/institutions", json={"name": f"测试培训学校{n}", "licence_no": f"LIC-{n}",
                                                      "region_code": county})
            venue = post("/api/v1/venues", json={
                "institution_id": inst["id"], "name": f"教学楼{n}", "region_code": county,
                "fence": {"shape": "circle", "center": {"lat": VENUE[0] + n, "lon": VENUE[1]},
                          "radius_m": VENUE_RADIUS_M}})
            teachers = [post("/api/v1/teachers", json={
                "id_number": make_id_number(county, date(1980, 5, 1 + k), 10 * n + k), "name": f"教师{n}{k}"})["id"]
                for k in (1, 2)]
            classes.append((inst, venue, teachers))
            sites.append(issue_token_via_api(client, admin, "site", f"站点{n}", inst["id"]))
        trainees = {}
        people = (("obama", "欧建国", "people/obama/obama.jpg"), ("biden", "白德明", "people/biden/biden.jpg"),
                  ("stranger", "罗晓燕", "people/rose_leslie/img1.jpg"))
        for k, (who, name, photo) in enumerate(people):
            id_number = make_id_number("530102", date(1995, 3, 1 + k), 100 + k)
            t = post("/api/v1/trainees", json={"id_number": id_number, "name": name})
            post(f"/api/v1/trainees/{t['id']}/faces", files=[("photos", ("p.jpg", face(photo), "image/jpeg"))])
            trainees[who] = t["id"]
        class_ids = []
        for n, (inst, venue, teachers) in enumerate(classes):
            c = post("/api/v1/classes", json={
                "code": f"TEST-{n}", "name": f"测试班{n}", "institution_id": inst["id"], "venue_id": venue["id"],
                "occupation_id": occupation["id"], "start_date": (today - timedelta(days=1)).isoformat(),
                "end_date": (today + timedelta(days=5)).isoformat(), "theory_teacher_id": teachers[0],
                "practical_teacher_id": teachers[1], "sessions": [{"name": "全天", "start": "00:00", "end": "23:59"}],
                "trainee_ids": [trainees["obama"], trainees["biden"]] if n == 0 else [trainees["stranger"]]})
            class_ids.append(c["id"])
        operator = issue_token_via_api(client, admin, "operator", "值班员")
        return cls(client=client, admin=admin, operator=operator, site=sites[0], other_site=sites[1],
                   class_id=class_ids[0], other_class_id=class_ids[1], obama_id=trainees["obama"],
                   biden_id=trainees["biden"], stranger_id=trainees["stranger"],
                   ids={"occupation": occupation["id"], "institution": classes[0][0]["id"],
                        "venue": classes[0][1]["id"], "teachers": classes[0][2]})

    def checkin_form(self, **overrides: Any) -> dict[str, str]:
        lat, lon = offset_point(*VENUE, random.uniform(-20, 20), random.uniform(-20, 20))  # no two fixes alike
        form = {"trainee_id": self.obama_id, "class_id": self.class_id, "kind": "sign_in",
                "captured_at": datetime.now(UTC).isoformat(), "latitude": lat, "longitude": lon,
                "accuracy_m": 15, "device_id": "phone-1", "mock_location": "false"}
        form.update(overrides)
        return {k: str(v) for k, v in form.items()}

    def checkin(self, photo: bytes, token: str | None = None, key: str | None = None,
                filename: str = "selfie.jpg", **overrides: Any) -> Response:
        headers = auth(token or self.site)
        if key:
            headers["Idempotency-Key"] = key
        return self.client.post("/api/v1/check-ins", data=self.checkin_form(**overrides),
                                files={"photo": (filename, photo, "image/jpeg")}, headers=headers)

    def snapshot(self, photo: bytes, token: str | None = None, **overrides: Any) -> Response:
        form = {"class_id": str(self.class_id), "camera_id": "cam-1", "captured_at": datetime.now(UTC).isoformat()}
        form.update({k: str(v) for k, v in overrides.items()})
        return self.client.post("/api/v1/snapshots", data=form, files={"photo": ("s.jpg", photo, "image/jpeg")},
                                headers=auth(token or self.site))

    def stored(self) -> dict[str, int]:
        """What uploads have written: table rows and evidence files."""
        with self.client.app.state.db.session() as session:
            counts = count_rows(session)
        counts["evidence_files"] = self.client.app.state.evidence.count_files()
        return counts


def issue_token_via_api(client: TestClient, admin: str, role: str, name: str,
                        institution_id: int | None = None, regions: list[str] | None = None) -> str:
    body: dict[str, Any] = {"role": role, "name": name}
    if institution_id is not None:
        body["institution_id"] = institution_id
    if regions:
        body["region_codes"] = regions
    r = client.post("/api/v1/tokens", json=body, headers=auth(admin))
    assert r.status_code == 201, r.text
    return r.json()["token"]


def far_fix(distance_m: float) -> dict[str, float]:
    lat, lon = offset_point(*VENUE, distance_m, 0)
    return {"latitude": lat, "longitude": lon}


@contextmanager
def live_feed(client: TestClient, token: str, since: int | None = None) -> Iterator[Any]:
    """A live-feed WebSocket, authenticated by its first message (the token never goes in the URL)."""
    with client.websocket_connect("/api/v1/live") as ws:
        auth_message: dict[str, Any] = {"type": "auth", "token": token}
        if since is not None:
            auth_message["since"] = since
        ws.send_json(auth_message)
        yield ws


@contextmanager
def running_server(app: Any, header_timeout_s: float = 10.0, log_level: str = "warning",
                   port: int | None = None) -> Iterator[str]:
    """The app behind the real HTTP server (uvicorn, configured as `monitor serve` does), in a thread; its URL.
    `port`: a given one (a second server can take the first's place), else a free one."""
    from monitor.adapters.server import server_config
    from tests.conftest import free_port

    port = port or free_port()
    server = uvicorn.Server(server_config(app, "127.0.0.1", port, log_level=log_level,
                                          header_timeout_s=header_timeout_s))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "server did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)


class LiveClient(httpx.Client):
    """An HTTP client for a running server that, like TestClient, exposes the app for fixtures."""

    app: Any = None


@contextmanager
def live_world(app: Any, header_timeout_s: float = 10.0, log_level: str = "warning") -> Iterator[World]:
    """The app behind a real server, with the test world registered through it (World.client is an httpx client)."""
    with running_server(app, header_timeout_s, log_level) as url:
        client = LiveClient(base_url=url, timeout=30)
        client.app = app
        try:
            yield World.build(client)  # type: ignore[arg-type]
        finally:
            client.close()


def count_rows(session: Session) -> dict[str, int]:
    """Row counts of what an upload writes (the "nothing was stored" check)."""
    return {
        name: int(session.scalar(select(func.count()).select_from(model)) or 0)
        for name, model in (("checkins", CheckIn), ("snapshots", Snapshot), ("evidence", Evidence),
                            ("outbox", OutboxMessage))
    }


def insert_alert(world: World, rule: str = "PROXY_SIGNIN", class_id: int | None = None, state: str = "open",
                 outcome: str | None = None) -> int:
    """An alert of the class written straight into its table (as the worker's grouping leaves one, tested in
    tests/test_policy_rules.py); its id."""
    from models.tables import Alert

    now = datetime.now(UTC)
    with world.client.app.state.db.session() as session:
        alert = Alert(rule=rule, class_id=class_id or world.class_id, region_code="530100", severity="high",
                      count=1, open_count=0 if state == "closed" else 1, first_at=now, last_at=now, state=state,
                      institution_id=world.ids["institution"], outcome=outcome, updated_at=now)
        session.add(alert)
        session.flush()
        return int(alert.id)


def confirmed_violation(world: World, class_id: int | None = None, rule: str = "PROXY_SIGNIN") -> int:
    """An alert of the class closed as a confirmed violation (as the dispatch wing leaves one, tested in
    tests/test_dispatch.py): the evidence a blacklisting must cite (a teacher's: a TEACHER_ rule)."""
    return insert_alert(world, rule, class_id, "closed", "violation_confirmed")


def stop_group(proc: subprocess.Popen[bytes], timeout_s: float = 30.0) -> None:
    """Stop a process started in its own session, with everything it started: SIGTERM, then SIGKILL after
    `timeout_s`."""
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)


def heartbeat_dated(client: Any, site_token: str, session_id: int, photo: str, when: datetime) -> Any:
    """A heartbeat sent live (a heartbeat must reach the server within minutes of its capture), then dated back to
    `when` in the database, as if it had been taken and sent then: how a test lays out a session's past."""
    from models.tables import OnlineHeartbeat

    r = client.post(f"/api/v1/online/sessions/{session_id}/heartbeats",
                    data={"captured_at": datetime.now(UTC).isoformat()},
                    files={"photo": ("h.jpg", face(photo), "image/jpeg")}, headers=auth(site_token))
    if r.status_code in (200, 201, 202):
        with client.app.state.db.session() as s:
            beat = s.get(OnlineHeartbeat, r.json()["id"])
            beat.captured_at = beat.received_at = when
    return r
