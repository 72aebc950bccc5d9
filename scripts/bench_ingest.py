"""Benchmark: how many 12 MP check-ins one API process stores and queues per second (the morning peak).

Usage: .venv/bin/python scripts/bench_ingest.py [--seconds 20] [--concurrency 48] [--database-url URL]
                                                 [--redis-url URL] [--server-core N]

Starts one API process (`uvicorn` as `monitor serve` configures it, worker separated: with the in-process bus
the messages wait in its queue, with --redis-url in the Redis stream), registers a class through the API,
then posts distinct 4000x3000 JPEG sign-ins (each about 3 MB, 1-in-3 as portrait with an EXIF orientation,
as phones send) from `concurrency` connections for `seconds`. Every upload is stored durably (evidence file
fsynced, rows and outbox committed) and queued; none waits for a verdict. Prints uploads accepted per second,
latency percentiles, errors, the server's CPU use and the bytes it received.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SERVER = """
import sys, uvicorn
sys.path.insert(0, {repo!r})
from monitor.app import create_app
from monitor.adapters.server import server_config
from monitor.settings import Settings
settings = Settings(data_dir={data!r}, database_url={database_url!r}, redis_url={redis_url!r},
                    verdict_wait_seconds=0, clock_rules=False, face_processes=1)
import os
app = create_app(settings, run_worker=False)
if os.environ.get("BENCH_PROFILE"):  # developer aid: CPU profile of the event loop's share of each upload
    import cProfile, time
    profiler, seen = cProfile.Profile(time.thread_time), [0]
    inner = app
    async def app(scope, receive, send):
        if scope["type"] != "http" or scope["path"] != "/api/v1/check-ins":
            return await inner(scope, receive, send)
        profiler.enable()
        try:
            await inner(scope, receive, send)
        finally:
            profiler.disable()
            seen[0] += 1
            if seen[0] % 200 == 0:
                profiler.dump_stats(os.environ["BENCH_PROFILE"])
    app.state = inner.state  # the server's configuration reads the app's settings from it
uvicorn.Server(server_config(app, "127.0.0.1", {port}, log_level="warning", body_timeout_s=30)).run()
"""


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def twelve_megapixel_selfies(faces: Path, long_px: int = 4000) -> list[bytes]:
    """Three base 12 MP selfies with sensor grain (so they weigh what phone photos do, 3-4 MB); each upload is
    one of them with its own JPEG comment (a distinct file)."""
    import numpy as np
    from PIL import Image, ImageOps

    rng = np.random.default_rng(1)
    out = []
    for i, name in enumerate(("obama/obama2.jpg", "obama/obama1.jpg", "obama/obama3.jpg")):
        image = ImageOps.fit(ImageOps.exif_transpose(Image.open(faces / "people" / name)).convert("RGB"),
                             (long_px * 3 // 4, long_px), Image.Resampling.BICUBIC, centering=(0.5, 0.35))
        grain = rng.normal(0, 4, (long_px, long_px * 3 // 4, 3))
        image = Image.fromarray(np.clip(np.asarray(image, dtype=np.float32) + grain, 0, 255).astype(np.uint8))
        exif = Image.Exif()
        if i == 2:
            image, exif[0x0112] = image.transpose(Image.Transpose.ROTATE_90), 6
        buf = io.BytesIO()
        image.save(buf, "JPEG", quality=92, exif=exif)
        out.append(buf.getvalue())
    return out


def multipart(fields: dict[str, str], photo: bytes, comment: str) -> tuple[list[bytes | memoryview], str]:
    """A multipart body as pieces that share the photo's bytes (the client must not be what is measured). The
    photo gets a JPEG COM segment after SOI: another file (another SHA-256), the same picture."""
    boundary = uuid.uuid4().hex
    head = "".join(f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'
                   for k, v in fields.items())
    head += (f'--{boundary}\r\nContent-Disposition: form-data; name="photo"; filename="p.jpg"\r\n'
             "Content-Type: image/jpeg\r\n\r\n")
    note = comment.encode()
    start = head.encode() + photo[:2] + b"\xff\xfe" + (len(note) + 2).to_bytes(2, "big") + note
    return [start, memoryview(photo)[2:], f"\r\n--{boundary}--\r\n".encode()], \
        f"multipart/form-data; boundary={boundary}"


async def load(base: str, token: str, class_id: int, trainee_ids: list[int], venue: tuple[float, float],
               photos: list[bytes], seconds: float, concurrency: int, run: str = ""
               ) -> tuple[list[float], dict[int, int], int]:
    """Distinct sign-ins from `concurrency` connections for `seconds`: answer times of the accepted ones, statuses
    (0: the connection failed) and bytes sent. Idempotency-Keys carry `run` (default this pid): a second run on one
    database needs its own, or it would be answered as repeats."""
    run = run or str(os.getpid())
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    sent_bytes = 0
    stop_at = time.monotonic() + seconds
    counter = 0

    async def one(client: httpx.AsyncClient) -> None:
        nonlocal counter, sent_bytes
        while time.monotonic() < stop_at:
            counter += 1
            n = counter
            fields = {"trainee_id": str(trainee_ids[n % len(trainee_ids)]), "class_id": str(class_id),
                      "kind": "sign_in", "captured_at": datetime.now(UTC).isoformat(),
                      "latitude": f"{venue[0] + (n % 97) * 1e-6:.7f}", "longitude": f"{venue[1]:.7f}",
                      "accuracy_m": "12", "device_id": f"bench-{n % 500}"}
            pieces, ctype = multipart(fields, photos[n % len(photos)], f"bench {run} {n} {uuid.uuid4()}")
            size = sum(len(p) for p in pieces)

            async def body(pieces: list[bytes | memoryview] = pieces) -> Any:
                for piece in pieces:
                    yield bytes(piece) if isinstance(piece, memoryview) and len(piece) < 65536 else piece

            started = time.perf_counter()
            try:
                r = await client.post("/api/v1/check-ins", content=body(), headers={
                    "Authorization": f"Bearer {token}", "Content-Type": ctype,
                    "Idempotency-Key": f"bench-{run}-{n}", "Content-Length": str(size)})
                code = r.status_code
            except httpx.HTTPError:
                code = 0
            if code in (201, 202):
                latencies.append(time.perf_counter() - started)
            statuses[code] = statuses.get(code, 0) + 1
            sent_bytes += size

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, timeout=120, limits=limits) as client:
        await asyncio.gather(*(one(client) for _ in range(concurrency)))
    return latencies, statuses, sent_bytes


def cpu_split_seconds(pid: int) -> tuple[float, float]:
    """A process's CPU time so far, user and kernel, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--concurrency", type=int, default=48)
    parser.add_argument("--photo-px", type=int, default=4000, help="long side of the photos (4000: 12 MP)")
    parser.add_argument("--database-url", default="")
    parser.add_argument("--redis-url", default="")
    parser.add_argument("--server-core", type=int, default=None,
                        help="pin the API process to this core (taskset) and this client to the others")
    parser.add_argument("--faces", type=Path, default=Path(os.environ.get("MONITOR_FACES_DIR",
                                                                          REPO.parent / "shared" / "faces")))
    args = parser.parse_args()

    from monitor.adapters.storage import Database
    from monitor.adapters.tokens import issue_token
    from monitor.demo.simulator import ProvinceSimulator
    from monitor.settings import Settings

    data = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    settings = Settings(data_dir=data, database_url=args.database_url)
    db = Database(settings.sqlalchemy_url, settings.audit_keyring().current)
    db.migrate()
    with db.session() as s:
        admin = issue_token(s, __import__("models.domain", fromlist=["Role"]).Role.ADMIN, "bench")
    db.dispose()
    port = free_port()
    code = SERVER.format(repo=str(REPO), data=str(data), database_url=args.database_url,
                         redis_url=args.redis_url, port=port)
    pin = ["taskset", "-c", str(args.server_core)] if args.server_core is not None else []
    server = subprocess.Popen([*pin, sys.executable, "-c", code])
    if args.server_core is not None:
        os.sched_setaffinity(0, (os.sched_getaffinity(0) - {args.server_core}) or {args.server_core})
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(f"{base}/docs", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        sim = ProvinceSimulator(base, admin, args.faces, seed=1)
        world = sim.register(n_classes=1)
        demo = world.classes[0]
        photos = twelve_megapixel_selfies(args.faces, args.photo_px)
        print(f"server pid {server.pid}{f' on core {args.server_core}' if pin else ''}, "
              f"{'PostgreSQL' if args.database_url else 'SQLite'}, "
              f"{'Redis Streams' if args.redis_url else 'in-process bus'}; class {demo.id} with "
              f"{len(demo.trainees)} trainees; photos {', '.join(f'{len(p) / 1e6:.1f} MB' for p in photos)}")
        (user_before, kernel_before), wall_before = cpu_split_seconds(server.pid), time.monotonic()
        client_before = time.process_time()
        latencies, statuses, sent = asyncio.run(load(base, demo.site_token, demo.id, list(demo.trainees),
                                                     demo.venue_wgs84, photos, args.seconds, args.concurrency))
        wall = time.monotonic() - wall_before
        user_after, kernel_after = cpu_split_seconds(server.pid)
        user, kernel = user_after - user_before, kernel_after - kernel_before
        client_cpu = time.process_time() - client_before
        accepted = len(latencies)
        q = statistics.quantiles(latencies, n=100) if len(latencies) > 2 else [0.0] * 99
        print(f"{accepted} uploads accepted in {wall:.1f} s = {accepted / wall:.1f} uploads/s "
              f"({sent / wall / 1e6:.0f} MB/s received); statuses {dict(sorted(statuses.items()))}")
        print(f"latency p50 {q[49] * 1000:.0f} ms, p90 {q[89] * 1000:.0f} ms, p99 {q[98] * 1000:.0f} ms; "
              f"server CPU {(user + kernel) / wall * 100:.0f} % of one core (this client "
              f"{client_cpu / wall * 100:.0f} %, {os.cpu_count()} cores in all)")
        if accepted:
            per = 1000 / accepted
            print(f"server CPU per upload {(user + kernel) * per:.1f} ms: user {user * per:.1f} ms, "
                  f"kernel {kernel * per:.1f} ms")
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(data, ignore_errors=True)  # gigabytes of evidence photos


if __name__ == "__main__":
    main()
