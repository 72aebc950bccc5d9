"""The demo's simulator against a real app: every anomaly kind it plays appears within two minutes of
rounds, no genuine upload is refused, and registering again on the same database reuses the world."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from models.domain import Role
from models.tables import Teacher, Trainee
from monitor.adapters.tokens import issue_token
from monitor.cli.demo import hold_data_dir
from monitor.cli.errors import CliError
from monitor.demo.photos import server_phash
from monitor.demo.scenarios import INTENDED
from monitor.demo.simulator import ProvinceSimulator
from tests.helpers import FACES_DIR, auth

INTERVAL_S = 2.0
TWO_MINUTES = int(120 / INTERVAL_S)  # rounds at the demo's default interval


def simulator(client: TestClient, seed: int, start: datetime) -> ProvinceSimulator:
    with client.app.state.db.session() as session:
        admin = issue_token(session, Role.ADMIN, "演示管理员")
    sim = ProvinceSimulator(str(client.base_url), admin, FACES_DIR, seed=seed, http=client)
    sim.clock = lambda: start + timedelta(seconds=INTERVAL_S * sim.rounds)  # a fixed clock: 2 s a round
    return sim


def test_two_minutes_show_every_anomaly_kind_and_no_false_one(client_factory: Callable[..., TestClient]) -> None:
    client = client_factory()
    sim = simulator(client, seed=20240501, start=datetime.now(UTC))
    world = sim.register(2)
    assert [len(c.trainees) for c in world.classes] == [5, 5]
    for _ in range(TWO_MINUTES):
        sim.step()
    sim.settle()

    uploads = sim.uploads
    assert len(uploads) == TWO_MINUTES
    genuine = [u for u in uploads if u.genuine]
    refused = [(u.round, u.scenario, u.status, u.codes, u.message) for u in genuine
               if u.status not in ("passed", "review") or u.codes]
    assert not refused, refused
    assert len(genuine) >= TWO_MINUTES // 2

    intended = set(INTENDED.values())
    seen = {u.intended for u in uploads if u.intended and u.intended in u.codes}
    assert seen == intended, (intended - seen, [(u.round, u.scenario, u.codes) for u in uploads if not u.genuine])
    anomalies = client.get("/api/v1/anomalies?limit=500", headers=auth(world.operator_token)).json()
    assert intended <= {a["rule"] for a in anomalies}


def test_registering_twice_on_one_database_reuses_the_world(client_factory: Callable[..., TestClient]) -> None:
    client = client_factory()
    start = datetime.now(UTC)
    first = simulator(client, seed=1, start=start).register(1)
    again = simulator(client, seed=2, start=start)
    second = again.register(1)  # a kept database: no DUPLICATE_* refusal, the same records, fresh tokens

    assert [c.id for c in second.classes] == [c.id for c in first.classes]
    assert set(second.classes[0].trainees) == set(first.classes[0].trainees)
    assert second.classes[0].site_token != first.classes[0].site_token
    assert second.operator_token != first.operator_token
    for trainee_id in second.classes[0].trainees:
        assert client.get(f"/api/v1/trainees/{trainee_id}", headers=auth(second.admin_token)).json()[
            "face_templates"] == 1
    upload = again.upload_checkin(second.classes[0], "genuine")
    assert upload is not None and upload.status_code == 201, upload
    assert upload.status in ("passed", "review") and not upload.codes, upload


class Interrupted(Exception):
    """The demo stopped (Ctrl-C) in the middle of its registration."""


class CutBeforeClass:
    """The registrar's HTTP client, cut just before it would create its `nth` class (its people already are)."""

    def __init__(self, http: TestClient, nth: int) -> None:
        self.http, self.left = http, nth

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        if (method, path) == ("POST", "/api/v1/classes"):
            self.left -= 1
            if self.left == 0:
                raise Interrupted(path)
        return self.http.request(method, path, **kwargs)


def test_a_registration_interrupted_before_its_class_resumes_without_duplicates(
        client_factory: Callable[..., TestClient]) -> None:
    client = client_factory()
    start = datetime.now(UTC)
    cut = simulator(client, seed=4, start=start)
    cut.registrar.http = cast(httpx.Client, CutBeforeClass(client, nth=2))
    with pytest.raises(Interrupted):
        cut.register(2)  # the first class, and the second's trainees (faces enrolled) and teachers, but no class

    def people() -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        with client.app.state.db.session() as session:
            return ([(t.name, t.id_number) for t in session.scalars(select(Trainee).order_by(Trainee.id))],
                    [(t.name, t.id_number) for t in session.scalars(select(Teacher).order_by(Teacher.id))])

    before = people()
    assert len(before[0]) == 10 and len(before[1]) == 4
    world = simulator(client, seed=5, start=start).register(2)  # `monitor demo --keep`: resumed by natural keys

    assert people() == before  # nobody registered again under a new ID number
    classes = client.get("/api/v1/classes", headers=auth(world.admin_token)).json()
    assert sorted(c["id"] for c in classes) == sorted(c.id for c in world.classes) and len(classes) == 2
    with client.app.state.db.session() as session:
        all_trainees = set(session.scalars(select(Trainee.id)))
    assert set().union(*(c.trainees for c in world.classes)) == all_trainees
    assert {len(c["trainee_ids"]) for c in classes} == {5}


def test_server_phash_is_what_the_server_stores(client_factory: Callable[..., TestClient]) -> None:
    client = client_factory()
    sim = simulator(client, seed=3, start=datetime.now(UTC))
    world = sim.register(1)
    upload = sim.upload_checkin(world.classes[0], "genuine")
    assert upload is not None
    trainee = world.classes[0].trainees[upload.trainee_id]
    with client.app.state.db.session() as session:
        from models.tables import PhotoHash
        stored = session.query(PhotoHash).filter(PhotoHash.subject_kind == "checkin").one()
    assert int(stored.phash, 16) == server_phash(trainee.last_sent)


def test_a_second_demo_on_the_same_data_directory_is_refused_before_anything_is_wiped(tmp_path: Path) -> None:
    data = tmp_path / "demo"
    first = hold_data_dir(data)
    (data / "monitor.sqlite3").write_text("the running demo's data")
    with pytest.raises(CliError, match="正被另一个运行中的演示使用"):
        hold_data_dir(data)
    assert (data / "monitor.sqlite3").read_text() == "the running demo's data"
    first.close()  # the first demo exits: the directory is free again
    hold_data_dir(data).close()


def test_a_failed_background_registration_leaves_the_center_running(tmp_path: Path) -> None:
    """`monitor demo` registers its world in the background: when that fails (here: a faces folder holding only one
    of the sample people), it says so in zh-CN and the dispatch center keeps answering."""
    import os
    import subprocess
    import time

    from tests.conftest import free_port
    from tests.helpers import REPO, stop_group

    faces = tmp_path / "faces"
    (faces / "people").mkdir(parents=True)
    (faces / "people" / "obama").symlink_to(FACES_DIR / "people" / "obama")  # the others are missing
    port = free_port()
    env = {**os.environ, "MONITOR_FACES_DIR": str(faces), "MONITOR_DATA_DIR": str(tmp_path / "demo"),
           "MONITOR_DRAW_AUTO": "false"}
    log = (tmp_path / "demo.log").open("w")
    proc = subprocess.Popen([str(REPO / ".venv" / "bin" / "monitor"), "demo", "--port", str(port), "--classes", "1"],
                            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while "registration failed" not in (tmp_path / "demo.log").read_text():
            assert proc.poll() is None, (tmp_path / "demo.log").read_text()[-3000:]
            assert time.monotonic() < deadline, (tmp_path / "demo.log").read_text()[-3000:]
            time.sleep(0.5)
        time.sleep(2)  # whatever the failure would take down has had its chance
        assert proc.poll() is None, (tmp_path / "demo.log").read_text()[-3000:]
        assert "演示数据登记失败" in (tmp_path / "demo.log").read_text()
        assert httpx.get(f"http://127.0.0.1:{port}/wall", timeout=10).status_code == 200
        assert httpx.get(f"http://127.0.0.1:{port}/public/rules.json", timeout=10).status_code == 200
        admin = re.search(r"admin token:\s+(mon_\S+)", (tmp_path / "demo.log").read_text()).group(1)  # type: ignore
        headers = {"Authorization": f"Bearer {admin}"}
        staff = httpx.get(f"http://127.0.0.1:{port}/api/v1/staff", headers=headers, timeout=10).json()
        link = httpx.post(f"http://127.0.0.1:{port}/api/v1/staff/{staff[0]['id']}/sign-in-links", headers=headers,
                          json={}, timeout=10)
        assert link.status_code == 201 and link.json()["url"].startswith(f"http://localhost:{port}/inspector#"), \
            link.text  # a link the demo hands out opens this demo, whatever its port
    finally:
        stop_group(proc)
        log.close()
