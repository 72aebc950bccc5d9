"""`monitor demo`: the center on embedded defaults with the province simulator, and the banners that guide it."""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
import uvicorn
from sqlalchemy import select
from sqlalchemy.orm import Session

from models.clock import utc_now
from models.domain import Role
from models.tables import Staff, StaffDuty
from monitor.adapters.storage import Database
from monitor.adapters.tokens import issue_sign_in_link, issue_token
from monitor.cli.config import configure_logging, data_dir_exports, serve_at, token_command
from monitor.cli.errors import CliError
from monitor.settings import Settings

LOCK_NAME = "demo.lock"
# The demo's one human inspector (a county inspector of 五华区, where class 1 sits): the banner signs you in as them.
HUMAN_INSPECTOR = ("演示抽查员（人工）", "17400009999", "county", "530102")  # a demo_phone() number


DEMO_VIDEO = Path("video") / "short_hamilton_clip.mp4"  # in the faces folder (../shared/faces)
DEMO_CAMERA = "演示摄像头（教室前）"


def demo_camera(base: str, admin_token: str, class_id: int, faces_dir: Path) -> str:
    """A classroom camera at the venue of the demo's last class, playing the sample video as a live feed (a `file`
    camera): its frames reach the wall as the class's snapshots. Registered once (a kept database has it); "" when
    the sample video is missing."""
    video = faces_dir / DEMO_VIDEO
    if not video.is_file():
        return ""
    auth = {"Authorization": f"Bearer {admin_token}"}
    with httpx.Client(base_url=base, headers=auth, timeout=30) as http:
        venue_id = http.get(f"/api/v1/classes/{class_id}").raise_for_status().json()["venue_id"]
        cameras = http.get(f"/api/v1/venues/{venue_id}/cameras").raise_for_status().json()
        if not any(c["name"] == DEMO_CAMERA for c in cameras):
            http.post(f"/api/v1/venues/{venue_id}/cameras", json={
                "name": DEMO_CAMERA, "stream_url": str(video.resolve()), "kind": "file", "interval_seconds": 60,
            }).raise_for_status()
    return f"{DEMO_CAMERA} → {video.name}"


def human_inspector_link(session: Session, base_url: str) -> str:
    """Register (or find, on a kept database) the human inspector, on duty for the next 24 h, and a one-time sign-in
    link for them, valid as long."""
    name, phone, level, region = HUMAN_INSPECTOR
    now = utc_now()
    staff = session.scalars(select(Staff).where(Staff.name == name)).first()
    if staff is None:
        staff = Staff(name=name, phone=phone, level=level, region_code=region, active=True, created_at=now)
        session.add(staff)
        session.flush()
    session.add(StaffDuty(staff_id=staff.id, starts_at=now - timedelta(minutes=5), ends_at=now + timedelta(hours=24)))
    code, _ = issue_sign_in_link(session, staff.id, "演示管理员", timedelta(hours=24))
    return f"{base_url}/inspector#signin={code}"


def hold_data_dir(data_dir: Path) -> Any:
    """An exclusive lock on the data directory for this process's life (released when it exits, however it
    exits); a second demo on the same directory is refused with a clear message instead of wiping its data."""
    data_dir.mkdir(parents=True, exist_ok=True)
    handle = (data_dir / LOCK_NAME).open("a+")
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "?"
        handle.close()
        raise CliError(f"数据目录 {data_dir.resolve()} 正被另一个运行中的演示使用（进程 {holder}）",
                       "stop that demo first, or give this one another directory: MONITOR_DATA_DIR=… or --port "
                       "with a different MONITOR_DATA_DIR") from None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    return handle


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

    from models.tables import PhotoHash
    from monitor.adapters.server import server_config
    from monitor.app import create_app
    from monitor.demo.inspectors import InspectorCrew
    from monitor.demo.registers import seed_crosschecks
    from monitor.demo.simulator import ProvinceSimulator
    from monitor.demo.world import DemoClass

    configure_logging()
    logging.getLogger("httpx").setLevel(logging.WARNING)
    for quiet in ("uvicorn.access", "monitor.access"):  # the demo banner stays readable
        logging.getLogger(quiet).setLevel(logging.WARNING)
    settings = Settings()
    if "data_dir" not in settings.model_fields_set:
        settings.data_dir = settings.data_dir / "demo"
    if "dispatch_accept_minutes" not in settings.model_fields_set:
        settings.dispatch_accept_minutes = 1.0  # so that a lapsed page escalates while you watch
    if not settings.faces_dir.is_dir():
        raise typer.BadParameter(f"sample faces not found at {settings.faces_dir} (set MONITOR_FACES_DIR)")
    _held = hold_data_dir(settings.data_dir)  # before anything is wiped: one demo per data directory
    if not keep and not settings.database_url:
        for child in settings.data_dir.iterdir():
            if child.name != LOCK_NAME:
                shutil.rmtree(child) if child.is_dir() else child.unlink()
    serve_at(settings, host, port)  # sign-in links and form QR codes point at this demo, the CLI's too
    seed = secrets.randbelow(1_000_000) if seed is None else seed
    db = Database(settings.sqlalchemy_url, settings.audit_keyring().current)  # the demo's tokens are signed entries
    db.migrate()
    with db.session() as session:  # tokens straight into the database: the banner needs no API round trip
        admin_token = issue_token(session, Role.ADMIN, "演示管理员")
        operator_token = issue_token(session, Role.OPERATOR, "省监控调度中心值班员")
        inspector_token = issue_token(session, Role.INSPECTOR, "昆明市抽查员（只读）", None, ["530100"])
        human_link = human_inspector_link(session, base_url=f"http://{host}:{port}")
        stored_phashes = list(session.scalars(select(PhotoHash.phash)))  # a kept database's photos
    db.dispose()
    base = f"http://{host}:{port}"
    env_file = settings.data_dir / "demo-env.sh"
    env_file.unlink(missing_ok=True)  # written anew once the first class is registered
    app = create_app(settings)
    server = uvicorn.Server(server_config(app, host, port, log_level="warning"))
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
            camera = demo_camera(base, admin_token, sim.world.classes[-1].id, Path(settings.faces_dir))
            if camera:
                typer.echo(f" 课堂摄像头 camera: {camera} (class {sim.world.classes[-1].id}; a frame a minute, "
                           f"shown on the wall's frame grid)")
            first = sim.world.classes[0]
            seeded = seed_crosschecks(app.state.db, settings, first.id)
            typer.echo(f" 登记数据比对 register cross-checks: class {first.id} against the demo's extracts "
                       f"({', '.join(seeded.imported) or 'already imported'}); {seeded.crosscheck.findings} findings "
                       f"on {seeded.crosscheck.classes} classes, {seeded.crosscheck.raised} new "
                       f"(/api/v1/classes/{first.id}/crosscheck)")
        except Exception as exc:  # noqa: BLE001 - a failed registration must never take the center down
            if stop.is_set() or server.should_exit:
                return  # the demo is stopping: an interrupted registration resumes on the next --keep
            logging.getLogger(__name__).error("demo registration failed: %s", exc)
            typer.echo(f"\n 演示数据登记失败（{str(exc)[:200]}）；调度中心仍在运行，可用上面的令牌继续使用，"
                       f"或以 --keep 重新启动以续登（registration failed; the center keeps running）\n", err=True)

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
            f" 抽查员登录 inspector (a person: you): {human_link}\n"
            f"   ({HUMAN_INSPECTOR[0]}, 五华区, on duty for 24 h; opens once on a phone or a 360 px window; pages for "
            f"class 1 come to you or to a simulated inspector)\n"
            f" inspector token:   {inspector_token} (昆明市, read only: a region token cannot accept)\n"
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
