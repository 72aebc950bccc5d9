"""Benchmark: the cluster under load, from one command (issue 21 item 5).

Usage: .venv/bin/python scripts/bench_load.py [--quick] [--queue 400] [--latency-seconds 30] [--accept-seconds 12]
                                               [--clients 500] [--ws-events 10] [--no-postgres]

Starts its own redis-server (and a throwaway PostgreSQL cluster, as tests/conftest.py does) and the cluster's
processes as scripts/cluster.sh runs them (`monitor serve --no-worker --reuse-port`, `monitor worker
--no-scheduler`; the schedulers take no part in verification and are not started), each pinned to a core with
taskset, then measures in four bounded phases:

  1. workers: N genuine check-ins queued with no worker running, then 1 (then 2) workers started; verified
     check-ins per second in the steady state (the first tenth of the verdicts, the workers' warm-up, left out),
     for 1 and 2 workers, and the ratio; each on a fresh database given the same N check-ins, so that the two
     figures are side by side (not the second on a day the first has filled);
  2. latency: open-loop Poisson arrivals at 50 % and 90 % of the 2-worker capacity for --latency-seconds each;
     upload start -> the check-in's `verdict` event on a live-feed WebSocket, p50/p95/p99;
     then the phase-1 check-ins once more, to 2 workers on a fresh PostgreSQL world (verification on PostgreSQL);
  3. acceptance: 12 MP uploads (4000x3000 variants of people/obama/obama{1,2,3}.jpg with sensor grain, 3-4 MB,
     as scripts/bench_ingest.py makes them) stored and queued with no verdict awaited
     (MONITOR_VERDICT_WAIT_SECONDS=0), from --accept-concurrency connections, on SQLite and on PostgreSQL, with
     1 and 2 API processes;
  4. live feed: --clients WebSocket clients of one API process; an event committed (as the worker commits one,
     announced on Redis) every --ws-interval seconds; time until it reached all of them.

The check-ins of phases 1-2 are the demo simulator's genuine selfies (monitor/demo/photos.py: a varied crop of
the trainee's own sample photo, about 1000 px and 50-150 kB, each with its own pHash so none is a replay).
Every figure's line starts with a fixed label (tests/test_bench_load.py looks for them).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import glob
import json
import math
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

MONITOR = REPO / ".venv" / "bin" / "monitor"
CORES = sorted(os.sched_getaffinity(0))
T0 = time.monotonic()


def say(text: str) -> None:
    print(text, flush=True)


def note(text: str) -> None:
    say(f"  [{time.monotonic() - T0:5.0f} s] {text}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def load_now() -> str:
    one, five, _ = os.getloadavg()
    busy = subprocess.run(["pgrep", "-f", "pytest"], capture_output=True, text=True).stdout.split()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min); pytest processes: {len(busy)}"


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its waited-for children (face processes count once they exit)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def tree_cpu(pid: int) -> float:
    """CPU of a process and all its live descendants (the API's and the worker's face processes)."""
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        total += cpu_seconds(p)
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{p}/task").iterdir():
                children = (task / "children").read_text().split()
                todo.extend(int(c) for c in children)
    return total


@contextlib.contextmanager
def pinned(cores: list[int]) -> Iterator[None]:
    """This process (the load generator) on `cores` for a while."""
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cores)
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


# -- services ------------------------------------------------------------------------------------------------
class Processes:
    """Processes started here, each in its own session (so its face processes stop with it)."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.running: list[subprocess.Popen[bytes]] = []

    def start(self, name: str, cmd: list[str], env: dict[str, str], core: int | None = None) -> subprocess.Popen[bytes]:
        if core is not None:
            cmd = ["taskset", "-c", str(CORES[core % len(CORES)]), *cmd]
        log = (self.logs / f"{name}-{len(self.running)}.log").open("wb")
        proc = subprocess.Popen(cmd, env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        self.running.append(proc)
        return proc

    def stop(self, procs: list[subprocess.Popen[bytes]]) -> None:
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # face processes left behind, if any
            if proc in self.running:
                self.running.remove(proc)

    def stop_all(self) -> None:
        self.stop(list(self.running))


def start_redis(procs: Processes, workdir: Path) -> str:
    import redis

    port = free_port()
    procs.start("redis", ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                          "--appendonly", "no", "--dir", str(workdir)], dict(os.environ))
    url = f"redis://127.0.0.1:{port}"
    client = redis.Redis.from_url(url)
    for _ in range(200):
        try:
            client.ping()
            return url
        except redis.ConnectionError:
            time.sleep(0.05)
    raise RuntimeError("redis-server did not start")


def _as_postgres(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


@dataclass
class Postgres:
    url: str
    bindir: Path
    data: Path
    root: Path

    @classmethod
    def start(cls) -> Postgres | None:
        """A throwaway cluster on a free port (tests/conftest.py's recipe); None when the binaries are missing."""
        candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb")) or [shutil.which("initdb") or ""]
        if not candidates[-1] or not Path(candidates[-1]).exists():
            return None
        bindir = Path(candidates[-1]).parent
        root = Path(tempfile.mkdtemp(prefix="bench-load-pg-"))  # its own, for the postgres user
        if os.geteuid() == 0:
            shutil.chown(root, "postgres", "postgres")
        data, port = root / "data", free_port()
        subprocess.run(_as_postgres([str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres",
                                     "--encoding=UTF8", "--locale=C"]), check=True, capture_output=True)
        subprocess.run(_as_postgres([str(bindir / "pg_ctl"), "-D", str(data), "-w", "-l", str(root / "log"), "-o",
                                     f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c max_connections=300",
                                     "start"]), check=True, capture_output=True)
        return cls(f"postgresql://postgres@127.0.0.1:{port}", bindir, data, root)

    def create(self, name: str) -> str:
        import psycopg

        with psycopg.connect(f"{self.url}/postgres", autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return f"{self.url}/{name}"

    def stop(self) -> None:
        subprocess.run(_as_postgres([str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop"]),
                       capture_output=True)
        shutil.rmtree(self.root, ignore_errors=True)


# -- a world: one database, its data directory, its Redis database, a class registered through the API ---------
@dataclass
class World:
    name: str
    env: dict[str, str]
    database_url: str  # SQLAlchemy URL
    admin: str = ""
    operator: str = ""
    class_id: int = 0
    site_token: str = ""
    venue: tuple[float, float] = (0.0, 0.0)
    trainees: list[Any] = field(default_factory=list)  # DemoTrainee
    port: int = 0
    api: list[subprocess.Popen[bytes]] = field(default_factory=list)
    api_cores: list[int] = field(default_factory=list)
    uploads: dict[int, int] = field(default_factory=dict)  # trainee id -> check-ins sent (sign-in, out, in…)
    spots: dict[int, tuple[float, float]] = field(default_factory=dict)  # trainee id -> metres east, north

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def make_world(name: str, root: Path, redis_url: str, faces: Path, database_url: str, extra_env: dict[str, str],
               ) -> World:
    from models.domain import Role
    from monitor.adapters.storage import Database
    from monitor.adapters.tokens import issue_token
    from monitor.settings import Settings

    data = root / name
    data.mkdir()
    env = {**os.environ, "MONITOR_DATA_DIR": str(data), "MONITOR_REDIS_URL": redis_url,
           "MONITOR_DATABASE_URL": database_url, "MONITOR_FACES_DIR": str(faces), "MONITOR_DRAW_AUTO": "false",
           "MONITOR_VERDICT_WAIT_SECONDS": "0", "PYTHONUNBUFFERED": "1", **extra_env}
    subprocess.run([str(MONITOR), "migrate"], env=env, cwd=REPO, check=True, capture_output=True)
    settings = Settings(data_dir=data, database_url=database_url)
    db = Database(settings.sqlalchemy_url, settings.audit_keyring().current)  # the cluster's key file, as it signs
    with db.session() as s:
        admin = issue_token(s, Role.ADMIN, "压测管理员")
        operator = issue_token(s, Role.OPERATOR, "压测值班员")
    db.dispose()
    return World(name, env, settings.sqlalchemy_url, admin, operator)


def start_api(procs: Processes, world: World, n: int, cores: list[int]) -> None:
    started = time.monotonic()
    world.port = world.port or free_port()
    world.api_cores = cores[:n]
    world.api = [procs.start(f"api-{world.name}", [str(MONITOR), "serve", "--no-worker", "--reuse-port", "--port",
                                                   str(world.port)], world.env, core=cores[i % len(cores)])
                 for i in range(n)]
    deadline = time.monotonic() + 120
    seen: set[int] = set()
    while len(seen) < n:  # every process answers (new connections reach each of them in turn)
        try:
            r = httpx.get(f"{world.base}/api/v1/health", headers={"Authorization": f"Bearer {world.admin}"},
                          timeout=5)
            if r.status_code == 200:
                seen.add(r.json()["pid"])
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"the API did not come up ({len(seen)} of {n} answered)")
        if any(p.poll() is not None for p in world.api):
            raise RuntimeError(f"an API process exited; see {procs.logs}")
        time.sleep(0.2)
    note(f"{world.name}: {n} API process(es) answering in {time.monotonic() - started:.1f} s")


def register(world: World, faces: Path) -> None:
    from monitor.demo.simulator import ProvinceSimulator

    sim = ProvinceSimulator(world.base, world.admin, faces, seed=1)
    try:
        demo = sim.register(n_classes=1).classes[0]
    finally:
        sim.http.close()
        sim.admin_http.close()
    world.class_id, world.site_token, world.venue = demo.id, demo.site_token, demo.venue_wgs84
    world.trainees = list(demo.trainees.values())


def start_workers(procs: Processes, world: World, cores: list[int]) -> list[subprocess.Popen[bytes]]:
    return [procs.start(f"worker-{world.name}", [str(MONITOR), "worker", "--no-scheduler"], world.env, core=c)
            for c in cores]


# -- genuine check-in photos ---------------------------------------------------------------------------------
def _genuine_batch(faces: str, people: list[tuple[int, str, str]], seed: int) -> list[tuple[int, bytes]]:
    from monitor.demo.photos import PhotoMaker
    from monitor.demo.world import DemoTrainee

    maker = PhotoMaker(Path(faces), random.Random(seed))
    out = []
    for trainee_id, person, enrol in people:
        photo = maker.make_genuine_photo(DemoTrainee(trainee_id, person, enrol, ""))
        if photo:
            maker.remember(photo, "checkin")
            out.append((trainee_id, photo))
    return out


class GenuinePhotos:
    """The simulator's genuine selfies, made in a pool of processes before a phase needs them."""

    def __init__(self, faces: Path, trainees: list[Any]) -> None:
        self.faces, self.trainees = faces, trainees
        self.ready: list[tuple[int, bytes]] = []
        self.batches = 0
        self.dropped = 0  # photos too near (pHash) to one made before
        self.hashes: Any = np.zeros(0, np.uint64)

    def make(self, n: int) -> None:
        need = n - len(self.ready)
        if need <= 0:
            return
        started = time.monotonic()
        people = [(t.id, t.person, t.enrol_photo) for t in self.trainees]
        jobs = max(1, len(CORES))
        for _ in range(6):  # photos too near one made before are dropped: make more until enough
            short = n - len(self.ready)
            if short <= 0:
                break
            plan = [[people[(k * jobs + j + self.batches) % len(people)] for k in range(math.ceil(short / jobs))]
                    for j in range(jobs)]
            with ProcessPoolExecutor(jobs) as pool:
                for batch in pool.map(_genuine_batch, [str(self.faces)] * jobs, plan,
                                      [1000 * self.batches + j for j in range(jobs)]):
                    self.ready.extend(self.keep_distinct(batch))
            self.batches += 1
        random.Random(self.batches).shuffle(self.ready)
        note(f"made {need} genuine selfies in {time.monotonic() - started:.0f} s ({self.dropped} dropped in all: "
             f"too near one made before) "
             f"(median {statistics.median(len(p) for _, p in self.ready) / 1e3:.0f} kB)")

    def keep_distinct(self, batch: list[tuple[int, bytes]]) -> list[tuple[int, bytes]]:
        """The photos of `batch` far enough (pHash) from every photo made before, in any process: each process
        knows only its own, and a genuine selfie the server takes for a replay would be measured as a failure."""
        from monitor.demo.photos import MIN_PHASH_DISTANCE, server_phash

        kept = []
        for trainee_id, photo in batch:
            phash = np.uint64(server_phash(photo))
            if len(self.hashes) and int(np.bitwise_count(self.hashes ^ phash).min()) < MIN_PHASH_DISTANCE:
                self.dropped += 1
                continue
            self.hashes = np.append(self.hashes, phash)
            kept.append((trainee_id, photo))
        return kept

    def take(self) -> tuple[int, bytes]:
        return self.ready.pop()


def same_trainees(photos: list[tuple[int, bytes]], before: World, after: World) -> list[tuple[int, bytes]]:
    """`photos` (trainee id, selfie) of `before`'s trainees given to the same sittings in `after`."""
    ids = {(t.person, t.enrol_photo): t.id for t in after.trainees}
    sitting = {t.id: (t.person, t.enrol_photo) for t in before.trainees}
    return [(ids[sitting[trainee_id]], photo) for trainee_id, photo in photos]


# -- check-in uploads and the live feed ----------------------------------------------------------------------
class Uploader:
    """Posts genuine check-ins of the world's class (no verdict awaited) and remembers when each started."""

    def __init__(self, world: World, photos: GenuinePhotos) -> None:
        from monitor.demo.world import offset_point

        self.world, self.photos, self.offset_point = world, photos, offset_point
        self.kinds = world.uploads
        self.started: dict[int, float] = {}  # check-in id -> time.time() when its upload began
        self.answer_s: list[float] = []
        self.errors: dict[str, int] = {}
        self.rng = random.Random(5)
        self.client = httpx.AsyncClient(base_url=world.base, timeout=120,
                                        limits=httpx.Limits(max_connections=400, max_keepalive_connections=400))

    async def one(self) -> int | None:
        trainee_id, photo = self.photos.take()
        n = self.kinds.get(trainee_id, 0)
        self.kinds[trainee_id] = n + 1
        if trainee_id not in self.world.spots:  # where the trainee sits; each fix a few cm off (not a copy)
            self.world.spots[trainee_id] = (self.rng.uniform(-20, 20), self.rng.uniform(-20, 20))
        east, north = self.world.spots[trainee_id]
        lat, lon = self.offset_point(*self.world.venue, east + self.rng.uniform(-0.1, 0.1),
                                     north + self.rng.uniform(-0.1, 0.1))
        form = {"trainee_id": str(trainee_id), "class_id": str(self.world.class_id),
                "kind": "sign_in" if n % 2 == 0 else "sign_out", "captured_at": datetime.now(UTC).isoformat(),
                "latitude": f"{lat:.7f}", "longitude": f"{lon:.7f}", "accuracy_m": "12",
                "device_id": f"bench-phone-{trainee_id}", "mock_location": "false"}
        started = time.time()
        try:
            r = await self.client.post("/api/v1/check-ins", data=form, files={"photo": ("selfie.jpg", photo,
                                                                                       "image/jpeg")},
                                       headers={"Authorization": f"Bearer {self.world.site_token}",
                                                "Idempotency-Key": f"bench-{uuid.uuid4().hex}"})
        except httpx.HTTPError as e:
            self.errors[type(e).__name__] = self.errors.get(type(e).__name__, 0) + 1
            return None
        if r.status_code not in (201, 202):
            self.errors[str(r.status_code)] = self.errors.get(str(r.status_code), 0) + 1
            return None
        self.answer_s.append(time.time() - started)
        checkin_id = int(r.json()["id"])
        self.started[checkin_id] = started
        return checkin_id

    async def close(self) -> None:
        await self.client.aclose()


class Verdicts:
    """A live-feed client that notes when each check-in's `verdict` event arrives."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.at: dict[int, float] = {}
        self.status: dict[int, str] = {}
        self.changed = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()

    async def run(self) -> None:
        from websockets.asyncio.client import connect

        url = self.world.base.replace("http://", "ws://") + "/api/v1/live"
        async with connect(url, max_size=2**22, compression=None, open_timeout=60) as ws:
            await ws.send(json.dumps({"type": "auth", "token": self.world.admin}))
            self.connected.set()
            async for raw in ws:
                at = time.time()
                event = json.loads(raw)
                data = event.get("data") or {}
                if event.get("type") == "verdict" and data.get("subject_kind") == "checkin":
                    self.at[int(data["subject_id"])] = at
                    codes = sorted({str(r.get("code")) for r in data.get("reasons") or [] if isinstance(r, dict)})
                    self.status[int(data["subject_id"])] = str(data.get("status")) + (
                        f" ({'+'.join(codes)})" if codes else "")
                    self.changed.set()

    async def __aenter__(self) -> Verdicts:
        self.task = asyncio.create_task(self.run())
        await asyncio.wait_for(self.connected.wait(), 60)
        await asyncio.sleep(0.3)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.task is not None
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self.task

    async def wait_for(self, ids: set[int], deadline: float) -> None:
        while not ids <= self.at.keys() and time.monotonic() < deadline:
            self.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), 0.5)


def mix(statuses: list[str]) -> str:
    counts: dict[str, int] = {}
    for s in statuses:
        counts[s] = counts.get(s, 0) + 1
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))


# -- phase 1: verified check-ins per second ---------------------------------------------------------------------
async def drain(procs: Processes, world: World, photos: GenuinePhotos, n: int, worker_cores: list[int],
                timeout_s: float, keep: bool) -> tuple[float, list[subprocess.Popen[bytes]]]:
    uploader = Uploader(world, photos)
    async with Verdicts(world) as verdicts:
        sem = asyncio.Semaphore(8)

        async def queued() -> int | None:
            async with sem:
                return await uploader.one()

        ids = {i for i in await asyncio.gather(*(queued() for _ in range(n))) if i is not None}
        await uploader.close()
        started = time.time()
        workers = start_workers(procs, world, worker_cores)
        skip = max(1, len(ids) // 10)
        deadline, cpu_at_skip = time.monotonic() + timeout_s, None
        while len(ids & verdicts.at.keys()) < len(ids) and time.monotonic() < deadline:
            if cpu_at_skip is None and len(ids & verdicts.at.keys()) >= skip:  # warm: the steady state begins
                cpu_at_skip = (time.time(), sum(tree_cpu(w.pid) for w in workers))
            await asyncio.sleep(0.05)
        cpu_end = (time.time(), sum(tree_cpu(w.pid) for w in workers))
        done = sorted(verdicts.at[i] for i in ids if i in verdicts.at)
        if not keep:
            procs.stop(workers)
    rate = (len(done) - skip) / (done[-1] - done[skip - 1]) if len(done) > skip + 1 else float("nan")
    first = done[0] - started if done else float("nan")
    busy = ((cpu_end[1] - cpu_at_skip[1]) / (cpu_end[0] - cpu_at_skip[0]) * 100
            if cpu_at_skip and cpu_end[0] > cpu_at_skip[0] else float("nan"))
    say(f"  {len(worker_cores)} worker(s) on core(s) {','.join(map(str, worker_cores))}: {len(ids)} queued "
        f"(upload errors {uploader.errors or 'none'}), {len(done)} verified in {timeout_s:.0f} s at most; "
        f"first verdict {first:.1f} s after start, last {done[-1] - started if done else float('nan'):.1f} s; "
        f"workers' CPU in the steady state {busy:.0f} % of one core (face processes included); "
        f"verdicts: {mix([verdicts.status[i] for i in ids if i in verdicts.status])}")
    return rate, (workers if keep else [])


# -- phase 2: open-loop latency -------------------------------------------------------------------------------
async def open_loop(world: World, photos: GenuinePhotos, rate: float, seconds: float, drain_s: float,
                    poisson: bool) -> dict[str, Any]:
    uploader = Uploader(world, photos)
    rng = random.Random(11)
    async with Verdicts(world) as verdicts:
        loop = asyncio.get_running_loop()
        begin = loop.time()
        at, tasks = begin, []
        while at < begin + seconds and photos.ready:
            await asyncio.sleep(max(0.0, at - loop.time()))
            tasks.append(asyncio.create_task(uploader.one()))
            at += rng.expovariate(rate) if poisson else 1 / rate
        offered = len(tasks) / seconds
        ids = {i for i in await asyncio.gather(*tasks) if i is not None}
        await verdicts.wait_for(ids, time.monotonic() + drain_s)
        latencies = [verdicts.at[i] - uploader.started[i] for i in ids if i in verdicts.at]
        statuses = [verdicts.status[i] for i in ids if i in verdicts.status]
    await uploader.close()
    return {"offered": offered, "sent": len(tasks), "accepted": len(ids), "verdicts": len(latencies),
            "latencies": latencies, "answers": list(uploader.answer_s), "errors": uploader.errors,
            "mix": mix(statuses)}


# -- phase 3: acceptance -------------------------------------------------------------------------------------
async def accept_load(world: World, photos: list[bytes], seconds: float, concurrency: int, run: str,
                      ) -> tuple[list[float], dict[int, int], int]:
    """scripts/bench_ingest.py's load against this world, with Idempotency-Keys unique to this run."""
    from bench_ingest import load

    return await load(world.base, world.site_token, world.class_id, [t.id for t in world.trainees], world.venue,
                      photos, seconds, concurrency, run=run)


def acceptance(world: World, photos12: list[bytes], seconds: float, concurrency: int, client_cores: list[int],
               run: str) -> tuple[float, str]:
    cpu0 = {p.pid: tree_cpu(p.pid) for p in world.api}
    with pinned(client_cores):
        wall0, client0 = time.monotonic(), time.process_time()
        latencies, statuses, sent = asyncio.run(accept_load(world, photos12, seconds, concurrency, run))
        wall, client_cpu = time.monotonic() - wall0, time.process_time() - client0
    cpu = sum(tree_cpu(p.pid) - cpu0[p.pid] for p in world.api)
    rate = len(latencies) / wall
    detail = (f"{len(latencies)} in {wall:.1f} s, {sent / wall / 1e6:.0f} MB/s; statuses "
              f"{dict(sorted(statuses.items()))}; answer p50 {pct(latencies, 50) * 1000:.0f} ms, "
              f"p99 {pct(latencies, 99) * 1000:.0f} ms; API CPU {cpu / wall * 100:.0f} %, "
              f"load generator {client_cpu / wall * 100:.0f} % of a core")
    return rate, detail


# -- phase 4: live-feed fan-out ------------------------------------------------------------------------------
async def fan_out(world: World, redis_url: str, clients: int, events: int, interval: float) -> dict[str, Any]:
    from websockets.asyncio.client import connect

    from models.tables import Event
    from monitor.adapters.bus import create_bus
    from monitor.adapters.storage import Database

    url = world.base.replace("http://", "ws://") + "/api/v1/live"
    arrivals: list[dict[int, float]] = [{} for _ in range(clients)]
    ready = 0
    stop = asyncio.Event()

    async def client(k: int) -> None:
        nonlocal ready
        async with connect(url, max_size=2**22, compression=None, open_timeout=120, ping_interval=None) as ws:
            await ws.send(json.dumps({"type": "auth", "token": world.operator}))
            ready += 1
            while not stop.is_set():
                try:
                    raw = await asyncio.wait_for(ws.recv(), 1.0)
                except TimeoutError:
                    continue
                at = time.time()
                i = raw.find('"bench_n":')
                if i >= 0:
                    arrivals[k][int(raw[i + 10:raw.index(",", i)])] = at

    connect_started = time.monotonic()
    tasks: list[asyncio.Task[None]] = []
    deadline = time.monotonic() + 120
    for k in range(clients):  # in waves of 50, as a morning's wall screens and pages would open
        tasks.append(asyncio.create_task(client(k)))
        while ready <= k - 50 and time.monotonic() < deadline and not any(t.done() for t in tasks):
            await asyncio.sleep(0.01)
    while ready < clients and time.monotonic() < deadline and not all(t.done() for t in tasks):
        await asyncio.sleep(0.05)
    connect_s = time.monotonic() - connect_started
    await asyncio.sleep(1.0)  # every connection authenticated and streaming

    db = Database(world.database_url)
    bus = create_bus(redis_url + "/0")
    db.on_events_committed.append(bus.announce_events)  # as the worker announces its commits
    committed: list[float] = []
    pad = "证" * 150  # about 600 bytes, as an anomaly with its evidence is
    for n in range(events):
        def commit(n: int = n) -> float:
            with db.session() as s:
                s.add(Event(kind="anomaly", region_code="530102", class_id=world.class_id,
                            created_at=datetime.now(UTC), payload={"bench_n": n, "rule": "FACE_MISMATCH",
                                                                   "pad": pad}))
            return time.time()
        committed.append(await asyncio.to_thread(commit))
        await asyncio.sleep(interval)
    await asyncio.sleep(min(10.0, max(1.0, interval)))
    stop.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    db.dispose()
    failed = sum(1 for r in results if isinstance(r, BaseException))
    to_all, each = [], []
    reached = []
    for n, t in enumerate(committed):
        got = [a[n] - t for a in arrivals if n in a]
        reached.append(len(got))
        each.extend(got)
        if len(got) == clients:
            to_all.append(max(got))
    return {"connect_s": connect_s, "ready": ready, "failed": failed, "to_all": to_all, "each": each,
            "reached": reached}


# -- the run ------------------------------------------------------------------------------------------------
def main() -> None:  # noqa: PLR0915 - one phase after another
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a smoke run (about a minute): small numbers")
    parser.add_argument("--queue", type=int, help="check-ins queued for each worker measurement (400; quick 16)")
    parser.add_argument("--drain-timeout", type=float, default=180.0, help="most seconds a worker phase may take")
    parser.add_argument("--latency-seconds", type=float, help="arrivals per load level (30; quick 2)")
    parser.add_argument("--arrivals", choices=("poisson", "fixed"), default="poisson")
    parser.add_argument("--accept-seconds", type=float, help="per acceptance run (12; quick 2)")
    parser.add_argument("--accept-concurrency", type=int, default=32)
    parser.add_argument("--clients", type=int, help="live-feed clients (500; quick 500)")
    parser.add_argument("--ws-events", type=int, help="events sent to them (10; quick 2)")
    parser.add_argument("--ws-interval", type=float, default=1.0, help="seconds between those events")
    parser.add_argument("--no-postgres", action="store_true", help="skip the PostgreSQL acceptance runs")
    parser.add_argument("--photo-px", type=int, default=4000, help="long side of the acceptance photos (12 MP)")
    parser.add_argument("--faces", type=Path, default=Path(os.environ.get("MONITOR_FACES_DIR",
                                                                          REPO.parent / "shared" / "faces")))
    args = parser.parse_args()
    quick = args.quick
    queue = args.queue or (16 if quick else 400)
    latency_s = args.latency_seconds or (2.0 if quick else 30.0)
    accept_s = args.accept_seconds or (2.0 if quick else 12.0)
    clients = args.clients or 500
    ws_events = args.ws_events or (2 if quick else 10)
    if len(CORES) < 2:
        sys.exit("needs at least two cores (roles are pinned to cores)")
    c0, c1 = CORES[0], CORES[1]

    root = Path(tempfile.mkdtemp(prefix="bench-load-"))
    logs = root / "logs"
    logs.mkdir()
    procs = Processes(logs)
    pg: Postgres | None = None
    say(f"bench_load: {len(CORES)} cores {CORES}, {os.cpu_count()} in all; {load_now()}; work dir {root}")
    try:
        redis_url = start_redis(procs, root)
        if not args.no_postgres:
            pg = Postgres.start()
        say(f"services: redis-server {redis_url} and "
            f"{'PostgreSQL ' + pg.url if pg else 'no PostgreSQL'} (unpinned)")
        # 1. workers: 1 and 2 workers each on a fresh world given the same check-ins (side by side: the same
        # database state, the same photos; a second run on the first world's fuller day would cost more per check-in)
        say(f"\n[1] verification throughput: {queue} check-ins queued with no worker, then workers started "
            f"(API on core {c0}, idle while they work; each worker runs its face processes on its own core); "
            f"1 and 2 workers each on a fresh database given the same {queue} check-ins")
        single = make_world("sqlite-1-worker", root, redis_url + "/2", args.faces, "", {})
        start_api(procs, single, 1, [c0])
        register(single, args.faces)
        photos = GenuinePhotos(args.faces, single.trainees)
        photos.make(queue)
        same = list(photos.ready)
        say(f"  {load_now()}")
        rate1, _ = asyncio.run(drain(procs, single, photos, queue, [c1], args.drain_timeout, keep=False))
        procs.stop(single.api)
        sqlite = make_world("sqlite", root, redis_url + "/0", args.faces, "", {})
        start_api(procs, sqlite, 1, [c0])
        register(sqlite, args.faces)
        note(f"SQLite world: class {sqlite.class_id}, {len(sqlite.trainees)} trainees "
             f"({', '.join(sorted({t.person for t in sqlite.trainees}))})")
        photos.trainees, photos.ready = sqlite.trainees, same_trainees(same, single, sqlite)
        say(f"  {load_now()}")
        rate2, workers = asyncio.run(drain(procs, sqlite, photos, queue, [c1, c0], args.drain_timeout, keep=True))
        say(f"VERIFIED/S 1 WORKER: {rate1:.2f} check-ins/s (core {c1})")
        say(f"VERIFIED/S 2 WORKERS: {rate2:.2f} check-ins/s (cores {c1},{c0})")
        say(f"WORKER SCALING 2/1: {rate2 / rate1:.2f}x")

        # 2. latency
        capacity = rate2 if rate2 == rate2 else 1.0  # noqa: PLR0124 - NaN when nothing was verified
        levels = [(50, 0.5 * capacity), (90, 0.9 * capacity)]
        photos.make(sum(math.ceil(r * latency_s * 1.25) + 5 for _, r in levels))
        say(f"\n[2] upload -> live verdict event, open-loop {args.arrivals} arrivals for {latency_s:.0f} s per level "
            f"(2 workers on cores {c1},{c0}, API on core {c0}, load generator and live client unpinned)")
        for level, rate in levels:
            say(f"  {load_now()}")
            r = asyncio.run(open_loop(sqlite, photos, rate, latency_s, drain_s=max(30.0, latency_s),
                                      poisson=args.arrivals == "poisson"))
            lat = r["latencies"]
            say(f"LATENCY AT {level}% ({rate:.2f}/s offered {r['offered']:.2f}/s): p50 {pct(lat, 50) * 1000:.0f} ms, "
                f"p95 {pct(lat, 95) * 1000:.0f} ms, p99 {pct(lat, 99) * 1000:.0f} ms "
                f"({r['verdicts']} of {r['sent']} sent had their verdict event; upload errors {r['errors'] or 'none'}; "
                f"upload answer p50 {pct(r['answers'], 50) * 1000:.0f} ms; verdicts: {r['mix']})")
        procs.stop(workers)

        # 2b. verification on PostgreSQL: 2 workers on a fresh PostgreSQL world given the same check-ins as phase 1
        postgres: World | None = None
        if pg is not None:
            postgres = make_world("postgres", root, redis_url + "/1", args.faces, pg.create("bench"), {})
            start_api(procs, postgres, 1, [c0])  # kept for the acceptance runs below
            register(postgres, args.faces)
            photos.trainees, photos.ready = postgres.trainees, same_trainees(same, single, postgres)
            say(f"\n[2b] verification throughput on PostgreSQL: the same {queue} check-ins, 2 workers (cores {c1},"
                f"{c0}); PostgreSQL and Redis unpinned")
            say(f"  {load_now()}")
            rate_pg, _ = asyncio.run(drain(procs, postgres, photos, queue, [c1, c0], args.drain_timeout, keep=False))
            say(f"VERIFIED/S POSTGRES 2 WORKERS: {rate_pg:.2f} check-ins/s (cores {c1},{c0}; SQLite "
                f"{rate2:.2f}/s)")
        else:
            say("VERIFIED/S POSTGRES: not measured (no PostgreSQL server binaries, or --no-postgres)")

        # 3. live feed (the SQLite world's one API process)
        say(f"\n[3] live feed: {clients} WebSocket clients of one API process (core {c0}; the clients in this "
            f"process on core {c1}); {ws_events} events, one every {args.ws_interval:.1f} s, committed and "
            f"announced on Redis as the worker does")
        say(f"  {load_now()}")
        with pinned([c1]):
            r = asyncio.run(fan_out(sqlite, redis_url, clients, ws_events, args.ws_interval))
        to_all = r["to_all"]
        say(f"  {r['ready']} of {clients} connected in {r['connect_s']:.1f} s ({r['failed']} failed); "
            f"reached per event {r['reached']}")
        say(f"WS FAN-OUT TO ALL {clients}: median {pct(to_all, 50) * 1000:.0f} ms, max "
            f"{max(to_all, default=float('nan')) * 1000:.0f} ms from commit until the last client had it "
            f"({len(to_all)} of {ws_events} events reached all); per delivery p50 {pct(r['each'], 50) * 1000:.0f} ms, "
            f"p99 {pct(r['each'], 99) * 1000:.0f} ms")

        # 4. acceptance
        from bench_ingest import twelve_megapixel_selfies

        photos12 = twelve_megapixel_selfies(args.faces, args.photo_px)
        say(f"\n[4] acceptance alone (stored + queued, MONITOR_VERDICT_WAIT_SECONDS=0, no worker running): "
            f"{args.accept_concurrency} connections for {accept_s:.0f} s per run; photos {args.photo_px}x"
            f"{args.photo_px * 3 // 4} variants of people/obama/obama{{2,1,3}}.jpg "
            f"({', '.join(f'{len(p) / 1e6:.1f} MB' for p in photos12)})")
        worlds = [sqlite] if postgres is None else [sqlite, postgres]
        for world in worlds:
            label = "SQLITE" if world is sqlite else "POSTGRES"
            for n in (1, 2):
                if len(world.api) != n:
                    procs.stop(world.api)
                    start_api(procs, world, n, [c0, c1])
                if not world.class_id:
                    register(world, args.faces)
                client_cores = [c1] if n == 1 else CORES
                say(f"  {load_now()}")
                rate, detail = acceptance(world, photos12, accept_s, args.accept_concurrency, client_cores,
                                          f"{label}-{n}-{uuid.uuid4().hex[:8]}")
                say(f"ACCEPTED/S {label} {n} API: {rate:.1f} uploads/s (API on core(s) "
                    f"{','.join(map(str, world.api_cores))}, load generator on {','.join(map(str, client_cores))}; "
                    f"{detail})")
            procs.stop(world.api)
        if pg is None:
            say("ACCEPTED/S POSTGRES: not measured (no PostgreSQL server binaries, or --no-postgres)")

        say(f"\ndone in {time.monotonic() - T0:.0f} s; {load_now()}")
    finally:
        procs.stop_all()
        if pg is not None:
            pg.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
