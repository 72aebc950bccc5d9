"""Face work runs in worker processes, several check-ins at once, while the API process stays free."""

import io
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

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


def test_face_processes_do_not_outlive_a_killed_worker(tmp_path: Path) -> None:
    """kill -9 of a worker must not leave its face processes (about 300 MB each) running as orphans."""
    script = tmp_path / "worker.py"
    script.write_text(
        "import sys, time\n"
        f"sys.path.insert(0, {str(Path(__file__).resolve().parent.parent)!r})\n"
        "from monitor.adapters.face_engine import ProcessFaceEngine\n"
        "if __name__ == '__main__':\n"
        "    engine = ProcessFaceEngine(2)\n"
        "    engine.warm_up()\n"
        "    while len(engine.child_pids()) < 2:\n"
        "        time.sleep(0.1)\n"
        "    engine._executor().submit(int).result(timeout=120)  # the processes are up and serving\n"
        "    print(' '.join(map(str, engine.child_pids())), flush=True)\n"
        "    time.sleep(600)\n")
    worker = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        children = [int(p) for p in worker.stdout.readline().split()]  # type: ignore[union-attr]
        assert len(children) == 2 and all(alive(p) for p in children)
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
        deadline = time.monotonic() + 15
        while any(alive(p) for p in children) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not any(alive(p) for p in children), "face processes outlived their worker"
    finally:
        worker.kill()


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split()[2] != "Z"  # a zombie has exited
    except FileNotFoundError:
        return False
