"""The `monitor` command: serve, worker, demo, migrate and token management."""

from __future__ import annotations

import logging
import shutil
import signal
import threading
import time
from pathlib import Path
from typing import Annotated

import httpx
import typer
import uvicorn

from models.domain import Role
from monitor.auth import issue_token
from monitor.settings import Settings
from monitor.storage import Database

app = typer.Typer(help="云南省职业技能培训监控调度中心 (dispatch center) command line", no_args_is_help=True)
token_app = typer.Typer(help="Bearer tokens", no_args_is_help=True)
app.add_typer(token_app, name="token")


def _logging(verbose: bool = False) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


@app.command()
def migrate() -> None:
    """Create or upgrade the database schema (regions are seeded on first run)."""
    settings = Settings()
    db = Database(settings.sqlalchemy_url)
    db.migrate()
    typer.echo(f"database ready: {db.engine.url.render_as_string(hide_password=True)}")


@token_app.command("create")
def token_create(
    role: Annotated[Role, typer.Option(help="site | operator | inspector | admin | auditor")],
    name: Annotated[str, typer.Option(help="who holds it")],
    institution_id: Annotated[int | None, typer.Option(help="for site tokens")] = None,
    region: Annotated[list[str] | None, typer.Option(help="region code(s) for inspectors, repeatable")] = None,
) -> None:
    """Issue a token and print it once (only its hash is stored)."""
    settings = Settings()
    db = Database(settings.sqlalchemy_url)
    db.migrate()
    with db.session() as session:
        token = issue_token(session, role, name, institution_id, region or [])
    typer.echo(token)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option()] = None,
    port: Annotated[int | None, typer.Option()] = None,
    worker: Annotated[
        bool, typer.Option(help="run the worker in this process (required for the in-process bus)")
    ] = True,
) -> None:
    """Run the API, pages and live feed (and by default the worker)."""
    from monitor.app import create_app

    _logging()
    settings = Settings()
    if not worker and not settings.redis_url:
        raise typer.BadParameter("--no-worker needs MONITOR_REDIS_URL: the in-process bus has no other consumer")
    uvicorn.run(create_app(settings, run_worker=worker), host=host or settings.host, port=port or settings.port)


@app.command("worker")
def run_worker() -> None:
    """Run a verification worker alone (Redis Streams bus; scale with one per core)."""
    from ingest.evidence import EvidenceStore
    from monitor.bus import create_bus
    from monitor.face_engine import create_face_engine
    from monitor.worker import Worker

    _logging()
    settings = Settings()
    if not settings.redis_url:
        raise typer.BadParameter("a separate worker needs MONITOR_REDIS_URL (the in-process bus lives in `serve`)")
    db = Database(settings.sqlalchemy_url)
    db.migrate()
    worker = Worker(settings, db, create_bus(settings.redis_url), EvidenceStore(settings.evidence_dir),
                    create_face_engine(settings.face_processes))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    worker.start()
    typer.echo("worker running; Ctrl-C to stop")
    stop.wait()
    worker.stop()


@app.command()
def demo(
    port: Annotated[int, typer.Option()] = 8000,
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    classes: Annotated[int, typer.Option(min=1, max=7)] = 6,
    interval: Annotated[float, typer.Option(help="seconds between simulated uploads")] = 2.0,
    keep: Annotated[bool, typer.Option(help="keep var/demo from an earlier run")] = False,
) -> None:
    """Start the dispatch center on embedded defaults with a simulator of classes across Yunnan."""
    from monitor.app import create_app
    from monitor.simulator import ProvinceSimulator

    _logging()
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    settings = Settings()
    if "data_dir" not in settings.model_fields_set:
        settings.data_dir = settings.data_dir / "demo"
    if not settings.faces_dir.is_dir():
        raise typer.BadParameter(f"sample faces not found at {settings.faces_dir} (set MONITOR_FACES_DIR)")
    if not keep and settings.data_dir.exists() and not settings.database_url:
        shutil.rmtree(settings.data_dir)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(settings.sqlalchemy_url)
    db.migrate()
    with db.session() as session:
        admin_token = issue_token(session, Role.ADMIN, "演示管理员")
    db.dispose()
    base = f"http://{host}:{port}"
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host=host, port=port, log_level="warning"))
    stop = threading.Event()

    def simulate() -> None:
        for _ in range(600):
            try:
                if httpx.get(f"{base}/wall", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        sim = ProvinceSimulator(base, admin_token, settings.faces_dir)
        world = sim.register(classes)
        first = world.classes[0]
        env_file = settings.data_dir / "demo-env.sh"
        obama_id = next(t for t, p in first.trainees.items() if p == "obama")
        env_file.write_text(
            f"export BASE={base}\nexport ADMIN_TOKEN={admin_token}\nexport OPERATOR_TOKEN={world.operator_token}\n"
            f"export SITE_TOKEN={first.site_token}\nexport CLASS_ID={first.id}\nexport TRAINEE_ID={obama_id}\n"
            f"export VENUE_LAT={first.venue_wgs84[0]}\nexport VENUE_LON={first.venue_wgs84[1]}\n"
            f"export FAR_LAT={first.venue_wgs84[0] + 0.045:.6f}\n"
            f"export FACES={Path(settings.faces_dir).resolve()}\n",
            encoding="utf-8",
        )
        bar = "=" * 72
        typer.echo(
            f"\n{bar}\n 监控调度中心演示已启动 (dispatch center demo is running)\n"
            f" 大屏 wall screen:   {base}/wall#token={world.operator_token}\n"
            f" 机构签到页 site:    {base}/site#token={first.site_token}\n"
            f" API docs:          {base}/docs\n"
            f" admin token:       {admin_token}\n operator token:    {world.operator_token}\n"
            f" inspector token:   {world.inspector_token} (昆明市)\n site token:        {first.site_token} "
            f"(class {first.id}, trainee {obama_id} enrolled with people/obama/obama.jpg)\n"
            f" shell variables for the README's curl examples:  source {env_file}\n{bar}\n"
        )
        sim.run(stop, interval)

    threading.Thread(target=simulate, name="simulator", daemon=True).start()
    try:
        server.run()
    finally:
        stop.set()


if __name__ == "__main__":
    app()
