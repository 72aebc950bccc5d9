"""Running the center: the API, pages and live feed (`monitor serve`) and a verification worker alone."""

from __future__ import annotations

import signal
import socket
import threading
from typing import Annotated

import typer
import uvicorn

from monitor.adapters.storage import Database
from monitor.cli.config import DataDir, configure_logging, load_settings, serve_at
from monitor.cli.errors import CliError


def serve(
    host: Annotated[str | None, typer.Option()] = None,
    port: Annotated[int | None, typer.Option()] = None,
    worker: Annotated[
        bool, typer.Option(help="run the worker in this process (required for the in-process bus)")
    ] = True,
    reuse_port: Annotated[bool, typer.Option(help="bind with SO_REUSEPORT, so that several API processes share one "
                                                  "port and the kernel spreads connections (scripts/cluster.sh)")
                          ] = False,
    data_dir: DataDir = None,
) -> None:
    """Run the API, pages and live feed (and by default the worker)."""
    from monitor.adapters.server import server_config
    from monitor.app import create_app

    configure_logging()
    settings = load_settings(data_dir)
    if not worker and not settings.redis_url:
        raise CliError("--no-worker 需要 MONITOR_REDIS_URL：进程内总线没有别的消费者",
                       "--no-worker needs MONITOR_REDIS_URL (run `monitor worker` processes on the same Redis)")
    host, port = host or settings.host, port or settings.port
    serve_at(settings, host, port)
    server = uvicorn.Server(server_config(create_app(settings, run_worker=worker), host, port))
    if not reuse_port:
        server.run()
        return
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    server.run(sockets=[sock])


def run_worker(
    scheduler: Annotated[bool, typer.Option(help="also compete for the scheduler's lease (one process of the "
                                                 "cluster runs the scheduler at a time)")] = True,
    data_dir: DataDir = None,
) -> None:
    """Run a verification worker alone (Redis Streams bus; scale with one per core)."""
    run_role(data_dir, verify=True, scheduler=scheduler)


def run_scheduler(data_dir: DataDir = None) -> None:
    """Run the scheduler alone (clock rules, escalation, draws, cross-checks, audit sealing and anchors): it holds
    the lease while alive; start two for a standby that takes over within seconds."""
    run_role(data_dir, verify=False, scheduler=True)


def run_role(data_dir: DataDir, verify: bool, scheduler: bool) -> None:
    """A worker process: verification (the bus's consumers) and/or the scheduler."""
    from ingest.adapters.evidence import EvidenceStore
    from monitor.adapters.bus import create_bus
    from monitor.adapters.face_engine import create_face_engine
    from monitor.services.worker import Worker

    configure_logging()
    settings = load_settings(data_dir).model_copy(update={"scheduler": scheduler})
    if not settings.redis_url:
        raise CliError("单独运行的 worker 需要 MONITOR_REDIS_URL（进程内总线只在 `monitor serve` 里）",
                       "a separate worker needs MONITOR_REDIS_URL; without Redis `monitor serve` runs the worker")
    db = Database(settings.sqlalchemy_url, settings.audit_keyring().current,  # the key lives outside the database
                  audit_keyring=lambda: settings.audit_keyring(create=False).keys)  # the sealer knows every key
    db.migrate()
    bus = create_bus(settings.redis_url, settings.bus_claim_idle_seconds)
    db.on_events_committed.append(bus.announce_events)  # the API processes' live feeds wake on it
    engine = create_face_engine(settings.face_processes if verify else 0, settings.load_face_model())
    worker = Worker(settings, db, bus, EvidenceStore(settings.evidence_dir), engine, verify=verify)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    worker.start()
    typer.echo(("worker" if verify else "scheduler") + " running; Ctrl-C to stop")
    stop.wait()
    worker.stop()
