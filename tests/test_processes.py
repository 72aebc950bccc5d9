"""Face work runs in worker processes, several check-ins at once, while the API process stays free."""

import io
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import select

from models.tables import Verification
from tests.helpers import World, auth, face, jpeg


def test_check_ins_are_verified_in_worker_processes(client_factory: Callable[..., TestClient]) -> None:
    client = client_factory(face_processes=2, verdict_wait_seconds=0)
    world = World.build(client)
    sources = ["people/obama/obama1.jpg", "people/obama/obama2.jpg", "people/obama/obama-720p.jpg",
               "people/obama/obama_small.jpg"]
    photos = [jpeg(Image.open(io.BytesIO(face(p))).convert("RGB").resize((4000, 3000)))
              for p in sources]
    with ThreadPoolExecutor(4) as pool:
        responses = list(pool.map(lambda p: world.checkin(p), photos))
    assert all(r.status_code in (201, 202) for r in responses)
    urls = [r.json()["status_url"] for r in responses]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        states = [client.get(u, headers=auth(world.site)).json()["status"] for u in urls]
        if "pending" not in states:
            break
        time.sleep(0.2)
    assert "pending" not in states
    with client.app.state.db.session() as s:
        pids = {v.measured["scanned_by_pid"] for v in s.scalars(select(Verification))}
    workers = set(client.app.state.engine._pool._processes)  # noqa: SLF001
    assert len(workers) == 2
    assert os.getpid() not in pids and {int(p) for p in pids} <= workers  # never in the API process
