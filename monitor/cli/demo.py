"""`monitor demo`: the center on embedded defaults with the province simulator, and the banners that guide it."""

from __future__ import annotations

import logging
import shutil
import threading
import time
from pathlib import Path
from typing import Annotated

import httpx
import typer
import uvicorn

from models.domain import Role
from monitor.adapters.storage import Database
from monitor.adapters.tokens import issue_token
from monitor.cli.config import configure_logging, data_dir_exports, token_command
from monitor.settings import Settings


def run_demo(
    port: Annotated[int, typer.Option()] = 8000,
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    classes: Annotated[int, typer.Option(min=1, max=7)] = 6,
    interval: Annotated[float, typer.Option(help="seconds between simulated uploads")] = 2.0,
    keep: Annotated[bool, typer.Option(help="keep var/demo from an earlier run")] = False,
    seed: Annotated[int | None, typer.Option(help="the simulator's random seed (default: a new one, printed)")] = None,
) -> None:
    """Start the dispatch center on embedded defaults with a simulator of classes across Yunnan."""
    import secrets

    from sqlalchemy import select

    from models.tables import PhotoHash
    from monitor.adapters.server import server_config
    from monitor.app import create_app
    from monitor.demo.inspectors import InspectorCrew
    from monitor.demo.simulator import ProvinceSimulator
    from monitor.demo.world import DemoClass

    configure_logging()
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    settings = Settings()
    if "data_dir" not in settings.model_fields_set:
        settings.data_dir = settings.data_dir / "demo"
    if "dispatch_accept_minutes" not in settings.model_fields_set:
        settings.dispatch_accept_minutes = 1.0  # so that a lapsed page escalates while you watch
    if not settings.faces_dir.is_dir():
        raise typer.BadParameter(f"sample faces not found at {settings.faces_dir} (set MONITOR_FACES_DIR)")
    if not keep and settings.data_dir.exists() and not settings.database_url:
        shutil.rmtree(settings.data_dir)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    seed = secrets.randbelow(1_000_000) if seed is None else seed
    db = Database(settings.sqlalchemy_url)
    db.migrate()
    with db.session() as session:  # tokens straight into the database: the banner needs no API round trip
        admin_token = issue_token(session, Role.ADMIN, "演示管理员")
        operator_token = issue_token(session, Role.OPERATOR, "省监控调度中心值班员")
        inspector_token = issue_token(session, Role.INSPECTOR, "昆明市抽查员", None, ["530100"])
        stored_phashes = list(session.scalars(select(PhotoHash.phash)))  # a kept database's photos
    db.dispose()
    base = f"http://{host}:{port}"
    env_file = settings.data_dir / "demo-env.sh"
    env_file.unlink(missing_ok=True)  # written anew once the first class is registered
    server = uvicorn.Server(server_config(create_app(settings), host, port, log_level="warning"))
    stop = threading.Event()
    sim = ProvinceSimulator(base, admin_token, settings.faces_dir, seed=seed, known_phashes=stored_phashes)
    sim.world.operator_token, sim.world.inspector_token = operator_token, inspector_token
    bar = "=" * 72
    started = time.monotonic()

    def first_class_ready(first: DemoClass) -> None:
        if first.index != 0:
            typer.echo(f" 班次 {first.id} 已登记 (class {first.index + 1}/{classes} registered, "
                       f"{len(first.trainees)} trainees)")
            return
        obama_id = next(t.id for t in first.trainees.values() if t.enrol_photo == "obama.jpg")
        env_file.write_text(
            f"export BASE={base}\nexport ADMIN_TOKEN={admin_token}\nexport OPERATOR_TOKEN={operator_token}\n"
            f"export SITE_TOKEN={first.site_token}\nexport CLASS_ID={first.id}\nexport TRAINEE_ID={obama_id}\n"
            f"export VENUE_LAT={first.venue_wgs84[0]}\nexport VENUE_LON={first.venue_wgs84[1]}\n"
            f"export FAR_LAT={first.venue_wgs84[0] + 0.045:.6f}\n"
            f"export FACES={Path(settings.faces_dir).resolve()}\n" + data_dir_exports(settings),
            encoding="utf-8",
        )
        typer.echo(
            f"\n{bar}\n 第一个班次已登记，模拟开始 (class 1 registered after {time.monotonic() - started:.0f} s; "
            f"simulation running)\n"
            f" 机构签到页 site:    {base}/site#token={first.site_token}\n"
            f" site token:        {first.site_token} (class {first.id}, trainee {obama_id} enrolled with "
            f"people/obama/obama.jpg)\n"
            f" 命令行令牌 CLI token:  {token_command(settings)}\n"
            f" shell variables for the README's curl examples:  source {env_file}\n{bar}\n"
        )

    def register() -> None:
        try:
            sim.register(classes, on_class=first_class_ready)
        except (httpx.HTTPError, RuntimeError) as exc:
            logging.getLogger(__name__).error("demo registration failed: %s", exc)
            stop.set()
            server.should_exit = True

    def simulate() -> None:
        for _ in range(600):
            try:
                if httpx.get(f"{base}/wall", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        typer.echo(
            f"\n{bar}\n 监控调度中心演示已启动 (dispatch center demo is running, "
            f"{time.monotonic() - started:.1f} s)\n"
            f" 大屏 wall screen:   {base}/wall#token={operator_token}\n"
            f" 人工复核 reviews:   {base}/review#token={operator_token}\n"
            f" API docs:          {base}/docs\n"
            f" admin token:       {admin_token}\n operator token:    {operator_token}\n"
            f" inspector token:   {inspector_token} (昆明市)\n"
            f" simulator seed:    {seed}   (replay this morning: --seed {seed}{' --keep' if keep else ''})\n"
            f" 正在登记班次 registering {classes} classes{'' if keep else ' (enrolling faces)'}: the site page, "
            f"its token and {env_file} follow when class 1 is ready\n{bar}\n"
        )
        threading.Thread(target=register, name="simulator-registration", daemon=True).start()
        def hired(name: str, region: str, token: str) -> None:
            typer.echo(f" 抽查员手机页 inspector: {base}/inspector#token={token}   ({name}, {region}; simulated, "
                       f"it answers its own pages)")

        crew = InspectorCrew(httpx.Client(base_url=base, timeout=60), admin_token, seed, on_hired=hired)
        threading.Thread(target=crew.run, args=(stop,), name="simulated-inspectors", daemon=True).start()
        sim.run(stop, interval)

    threading.Thread(target=simulate, name="simulator", daemon=True).start()
    try:
        server.run()
    finally:
        stop.set()
