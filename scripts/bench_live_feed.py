"""Benchmark: the live feed's fan-out — N WebSocket clients of one API process, E events per second each.

Usage: .venv/bin/python scripts/bench_live_feed.py [--clients 500] [--rate 30] [--seconds 20]
                                                    [--stalled 0]

Starts one API process (uvicorn as `monitor serve` configures it) whose own thread stores `rate` events per
second (about 600 bytes each, as an anomaly with its evidence is), committed one by one the way the worker
does, so the feed wakes on each commit. This process opens `clients` operator connections (plus `stalled`
ones that authenticate and never read) and measures, for every event every client receives, the time from
its commit to its arrival. Prints deliveries per second, latency percentiles, the server's CPU and how many
clients were dropped as too slow. Both processes share this machine's cores.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_ingest import cpu_split_seconds  # the same /proc reading as the acceptance benchmark

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SERVER = """
import sys, threading, time
sys.path.insert(0, {repo!r})
import uvicorn
from datetime import datetime, UTC
from models.tables import Event
from monitor.app import create_app
from monitor.adapters.server import server_config
from monitor.settings import Settings
settings = Settings(data_dir={data!r}, clock_rules=False, face_processes=1)
app = create_app(settings, run_worker=False)
PAD = "证" * 150

def produce() -> None:
    time.sleep({delay})
    interval, n, t0 = 1.0 / {rate}, 0, time.monotonic()
    while True:
        n += 1
        with app.state.db.session() as s:
            s.add(Event(kind="anomaly", region_code="530102", class_id=1, created_at=datetime.now(UTC),
                        payload={{"n": n, "sent_at": time.time(), "rule": "FACE_MISMATCH", "pad": PAD}}))
        time.sleep(max(0.0, t0 + n * interval - time.monotonic()))

threading.Thread(target=produce, daemon=True).start()
uvicorn.Server(server_config(app, "127.0.0.1", {port}, log_level="warning")).run()
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def client(url: str, token: str, latencies: list[float], measure_from: list[float], stop_at: float) -> int:
    from websockets.asyncio.client import connect

    received = 0
    async with connect(url, max_size=2**20, compression=None, open_timeout=60) as ws:
        await ws.send(json.dumps({"type": "auth", "token": token}))
        while time.time() < stop_at:
            try:
                async with asyncio.timeout(max(0.1, stop_at - time.time())):
                    raw = await ws.recv()
            except TimeoutError:
                break
            at = time.time()
            i = raw.find('"sent_at":')
            if i < 0:
                continue
            sent = float(raw[i + 10:raw.index(",", i)])
            if sent >= measure_from[0]:
                latencies.append(at - sent)
                received += 1
    return received


async def stalled_client(host: str, port: int, token: str) -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((host, port))
    sock.sendall((f"GET /api/v1/live HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    sock.recv(1024)
    payload = json.dumps({"type": "auth", "token": token}).encode()
    mask = b"\x01\x02\x03\x04"
    sock.sendall(bytes([0x81, 0x80 | len(payload)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))
    return sock


async def run(args: argparse.Namespace, url: str, token: str, server_pid: int) -> None:
    latencies: list[float] = []
    started = time.time()
    warm = started + 8.0  # connect everyone, let the first events flow
    measure_from = [warm]
    stop_at = warm + args.seconds
    host, port = url.removeprefix("ws://").split("/")[0].split(":")
    stalled = [await stalled_client(host, int(port), token) for _ in range(args.stalled)]
    tasks = [asyncio.create_task(client(url, token, latencies, measure_from, stop_at)) for _ in range(args.clients)]
    await asyncio.sleep(max(0.0, warm - time.time()))
    cpu0, client0, t0 = sum(cpu_split_seconds(server_pid)), time.process_time(), time.monotonic()
    counts = await asyncio.gather(*tasks, return_exceptions=True)
    wall = time.monotonic() - t0
    cpu, client_cpu = sum(cpu_split_seconds(server_pid)) - cpu0, time.process_time() - client0
    failed = [c for c in counts if isinstance(c, BaseException)]
    delivered = sum(c for c in counts if isinstance(c, int))
    q = statistics.quantiles(latencies, n=1000) if len(latencies) > 10 else [float("nan")] * 999
    print(f"{args.clients} clients ({len(failed)} failed), {args.stalled} stalled, {args.rate} events/s for "
          f"{args.seconds:.0f} s: {delivered} deliveries = {delivered / wall:.0f}/s "
          f"(expected {args.clients * args.rate}/s)")
    print(f"event commit -> client latency: p50 {q[499] * 1000:.0f} ms, p90 {q[899] * 1000:.0f} ms, "
          f"p99 {q[989] * 1000:.0f} ms, max {max(latencies, default=0) * 1000:.0f} ms")
    print(f"server CPU {cpu / wall * 100:.0f} % of one core, this client {client_cpu / wall * 100:.0f} % "
          f"({os.cpu_count()} cores in all)")
    for sock in stalled:
        sock.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=500)
    parser.add_argument("--rate", type=float, default=30.0, help="events per second")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--stalled", type=int, default=0, help="extra clients that never read")
    args = parser.parse_args()

    from models.domain import Role
    from monitor.adapters.storage import Database
    from monitor.adapters.tokens import issue_token
    from monitor.settings import Settings

    data = Path(tempfile.mkdtemp(prefix="bench-live-"))
    settings = Settings(data_dir=data)
    db = Database(settings.sqlalchemy_url, settings.audit_keyring().current)
    db.migrate()
    with db.session() as s:
        token = issue_token(s, Role.OPERATOR, "bench")
    db.dispose()
    port = free_port()
    code = SERVER.format(repo=str(REPO), data=str(data), port=port, rate=args.rate, delay=3.0)
    server = subprocess.Popen([sys.executable, "-c", code])
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                time.sleep(0.2)
        asyncio.run(run(args, f"ws://127.0.0.1:{port}/api/v1/live", token, server.pid))
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
