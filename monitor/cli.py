"""The `monitor` command: serve, worker, demo, migrate and token management."""

from __future__ import annotations

import logging
import re
import shlex
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, NoReturn

import httpx
import pydantic
import redis.exceptions
import sqlalchemy.exc
import typer
import uvicorn
from sqlalchemy import inspect
from sqlalchemy.engine import make_url
from typer.core import TyperGroup

from models.domain import ROLE_NAMES, Role
from models.errors import ApiError
from models.tables import Institution
from monitor.adapters.logsafe import install_redaction
from monitor.adapters.storage import Database
from monitor.adapters.tokens import issue_token
from monitor.settings import Settings


class CliError(Exception):
    """An expected failure of a command: one zh-CN line for people, an English hint, an exit code."""

    def __init__(self, message: str, hint: str = "", exit_code: int = 2) -> None:
        super().__init__(message)
        self.message, self.hint, self.exit_code = message, hint, exit_code


def _fail(message: str, hint: str = "", exit_code: int = 2) -> NoReturn:
    typer.echo(f"错误：{message}", err=True)
    if hint:
        typer.echo(f"  hint: {hint}", err=True)
    raise typer.Exit(exit_code)


def _first_line(error: BaseException) -> str:
    text = str(getattr(error, "orig", None) or error).strip()
    return text.splitlines()[0] if text else type(error).__name__


class _FriendlyGroup(TyperGroup):
    """Turns the errors a command is expected to meet into one clear line and exit code 2 (1 when a
    server is unreachable), instead of a traceback; anything else still raises with its traceback."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except CliError as e:
            _fail(e.message, e.hint, e.exit_code)
        except ApiError as e:
            hints = {"UNKNOWN_REGION": "region codes are Yunnan's GB/T 2260 codes, e.g. 530100 (Kunming), 532900 "
                                       "(Dali); GET /api/v1/regions lists them"}
            _fail(e.message, hints.get(e.code, e.code))
        except pydantic.ValidationError as e:
            problems = "；".join(
                f"MONITOR_{'_'.join(str(p) for p in err['loc']).upper()}：{err['msg']}" for err in e.errors()
            )
            _fail(f"配置无效：{problems}", "fix the MONITOR_* environment variable(s) named above")
        except sqlalchemy.exc.ArgumentError as e:
            _fail(f"数据库地址无效：{_first_line(e)}",
                  "MONITOR_DATABASE_URL must look like postgresql://user:password@host:5432/db")
        except (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError) as e:
            where = _label(_loaded[-1]) if _loaded else "MONITOR_DATABASE_URL"
            _fail(f"无法连接数据库（{where}）：{_first_line(e)}",
                  "is the database server running and MONITOR_DATABASE_URL right?", exit_code=1)
        except redis.exceptions.ConnectionError as e:
            _fail(f"无法连接 Redis：{_first_line(e)}",
                  "is redis-server running and MONITOR_REDIS_URL right?", exit_code=1)
        except PermissionError as e:
            _fail(f"没有权限访问 {e.filename}：{e.strerror}", "choose another --data-dir / MONITOR_DATA_DIR")


app = typer.Typer(help="云南省职业技能培训监控调度中心 (dispatch center) command line", no_args_is_help=True,
                  cls=_FriendlyGroup, pretty_exceptions_enable=False)
token_app = typer.Typer(help="Bearer tokens", no_args_is_help=True, cls=_FriendlyGroup,
                        pretty_exceptions_enable=False)
app.add_typer(token_app, name="token")

DataDir = Annotated[
    Path | None,
    typer.Option("--data-dir", help="where the SQLite file and evidence live (default MONITOR_DATA_DIR or ./var; "
                 "the demo uses var/demo)", file_okay=False, show_default=False),
]


def load_settings(data_dir: Path | None = None) -> Settings:
    """The settings from MONITOR_* variables, with --data-dir taking precedence over MONITOR_DATA_DIR."""
    settings = Settings(data_dir=data_dir) if data_dir is not None else Settings()
    _loaded.append(settings)
    return settings


_loaded: list[Settings] = []  # what the running command uses, for error messages


def _program() -> str:
    return sys.argv[0] if Path(sys.argv[0]).name == "monitor" else ".venv/bin/monitor"


def token_command(settings: Settings, role: Role = Role.OPERATOR, name: str = "值班员",
                  extra: tuple[str, ...] = ()) -> str:
    """The exact `monitor token create` command that writes to `settings`' database (for banners and hints)."""
    args = [_program(), "token", "create"]
    if not settings.database_url:
        args += ["--data-dir", str(settings.data_dir.resolve())]
    return " ".join(_quote(a) for a in [*args, "--role", role.value, "--name", name, *extra])


def _quote(arg: str) -> str:
    """Shell quoting that leaves plain words alone, Chinese ones included (值班员, not '值班员')."""
    return arg if re.fullmatch(r"[\w@%+=:,./-]+", arg) else shlex.quote(arg)


def data_dir_exports(settings: Settings) -> str:
    """Shell lines that point the CLI at the same data as `settings` (for the demo's demo-env.sh)."""
    lines = f"export MONITOR_DATA_DIR={shlex.quote(str(settings.data_dir.resolve()))}\n"
    if settings.database_url:
        lines += f"export MONITOR_DATABASE_URL={shlex.quote(settings.database_url)}\n"
    return lines


def open_existing_database(settings: Settings, retry: Callable[[Settings], str] | None = None) -> Database:
    """The configured database, refusing (rather than creating an empty one) when nothing is there yet.

    `retry` gives the command line to suggest when the demo's database is found next to the one asked for.
    """
    if not settings.database_url:
        path = settings.data_dir / "monitor.sqlite3"
        if not path.is_file():
            demo = settings.model_copy(update={"data_dir": settings.data_dir / "demo"})
            if (demo.data_dir / "monitor.sqlite3").is_file():
                hint = (f"the demo keeps its data in {demo.data_dir.resolve()}: "
                        + (f"run  {retry(demo)}" if retry else f"add --data-dir {demo.data_dir.resolve()}")
                        + f"  (or: source {demo.data_dir.resolve() / 'demo-env.sh'})")
            else:
                hint = ("point --data-dir / MONITOR_DATA_DIR at the running center's data directory, "
                        "or create a database there first with `monitor migrate`")
            raise CliError(f"在 {path.resolve()} 没有数据库（调度中心或演示没有在这里运行过）", hint)
    db = Database(settings.sqlalchemy_url)
    if not inspect(db.engine).has_table("api_tokens"):
        db.dispose()
        raise CliError(f"数据库 {_label(settings)} 还没有建表", "run `monitor migrate` first")
    db.migrate()
    return db


def _label(settings: Settings) -> str:
    if settings.database_url:
        return make_url(settings.database_url).render_as_string(hide_password=True)
    return str((settings.data_dir / "monitor.sqlite3").resolve())


def _logging(verbose: bool = False) -> None:
    install_redaction()
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


@app.command()
def migrate(data_dir: DataDir = None) -> None:
    """Create or upgrade the database schema (regions are seeded on first run)."""
    settings = load_settings(data_dir)
    db = Database(settings.sqlalchemy_url)
    db.migrate()
    typer.echo(f"database ready: {db.engine.url.render_as_string(hide_password=True)}")


@token_app.command("create")
def token_create(
    role: Annotated[Role, typer.Option(help="site | operator | inspector | admin | auditor")],
    name: Annotated[str, typer.Option(help="who holds it")],
    institution_id: Annotated[int | None, typer.Option(help="for site tokens")] = None,
    region: Annotated[list[str] | None, typer.Option(help="region code(s) for inspectors, repeatable")] = None,
    data_dir: DataDir = None,
) -> None:
    """Issue a token and print it once (only its hash is stored) into an existing database.

    With the demo running: --data-dir var/demo (or `source var/demo/demo-env.sh` first).
    """
    regions = region or []
    label = f"{ROLE_NAMES[role]}（{role.value}）令牌"
    if not name.strip():
        raise CliError("--name 不能为空：写明令牌的持有人", "--name names who holds the token, e.g. --name 值班员")
    if role is Role.SITE and institution_id is None:
        raise CliError(f"{label}需要 --institution-id（已登记培训机构的编号）",
                       "a site token is bound to one institution: --institution-id <id>")
    if role is not Role.SITE and institution_id is not None:
        raise CliError(f"只有培训机构（site）令牌可以绑定机构，{label}不能用 --institution-id",
                       "drop --institution-id, or use --role site")
    if role is Role.INSPECTOR and not regions:
        raise CliError(f"{label}需要 --region（负责的州市或县区代码，如 530100 昆明市，可重复）",
                       "an inspector token is scoped to regions: --region 530100 [--region 532900 ...]")
    if role is not Role.INSPECTOR and regions:
        raise CliError(f"只有抽查人员（inspector）令牌可以指定负责区域，{label}不能用 --region",
                       "drop --region, or use --role inspector")
    settings = load_settings(data_dir)
    extra = ("--institution-id", str(institution_id)) if institution_id is not None else ()
    extra += tuple(arg for code in regions for arg in ("--region", code))
    db = open_existing_database(settings, retry=lambda other: token_command(other, role, name, extra))
    try:
        with db.session() as session:
            if institution_id is not None and session.get(Institution, institution_id) is None:
                raise CliError(f"培训机构 {institution_id} 没有在数据库 {_label(settings)} 中登记",
                               "register it first (POST /api/v1/institutions) or check --data-dir")
            token = issue_token(session, role, name, institution_id, regions)
    finally:
        db.dispose()
    typer.echo(token)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option()] = None,
    port: Annotated[int | None, typer.Option()] = None,
    worker: Annotated[
        bool, typer.Option(help="run the worker in this process (required for the in-process bus)")
    ] = True,
    data_dir: DataDir = None,
) -> None:
    """Run the API, pages and live feed (and by default the worker)."""
    from monitor.adapters.server import server_config
    from monitor.app import create_app

    _logging()
    settings = load_settings(data_dir)
    if not worker and not settings.redis_url:
        raise CliError("--no-worker 需要 MONITOR_REDIS_URL：进程内总线没有别的消费者",
                       "--no-worker needs MONITOR_REDIS_URL (run `monitor worker` processes on the same Redis)")
    uvicorn.Server(server_config(create_app(settings, run_worker=worker), host or settings.host,
                                 port or settings.port)).run()


@app.command("worker")
def run_worker(data_dir: DataDir = None) -> None:
    """Run a verification worker alone (Redis Streams bus; scale with one per core)."""
    from ingest.adapters.evidence import EvidenceStore
    from monitor.adapters.bus import create_bus
    from monitor.adapters.face_engine import create_face_engine
    from monitor.services.worker import Worker

    _logging()
    settings = load_settings(data_dir)
    if not settings.redis_url:
        raise CliError("单独运行的 worker 需要 MONITOR_REDIS_URL（进程内总线只在 `monitor serve` 里）",
                       "a separate worker needs MONITOR_REDIS_URL; without Redis `monitor serve` runs the worker")
    db = Database(settings.sqlalchemy_url)
    db.migrate()
    bus = create_bus(settings.redis_url)
    db.on_events_committed.append(bus.announce_events)  # the API processes' live feeds wake on it
    worker = Worker(settings, db, bus, EvidenceStore(settings.evidence_dir),
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
    seed: Annotated[int | None, typer.Option(help="the simulator's random seed (default: a new one, printed)")] = None,
) -> None:
    """Start the dispatch center on embedded defaults with a simulator of classes across Yunnan."""
    import secrets

    from sqlalchemy import select

    from models.tables import PhotoHash
    from monitor.adapters.server import server_config
    from monitor.app import create_app
    from monitor.demo.simulator import DemoClass, ProvinceSimulator

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
            f" API docs:          {base}/docs\n"
            f" admin token:       {admin_token}\n operator token:    {operator_token}\n"
            f" inspector token:   {inspector_token} (昆明市)\n"
            f" simulator seed:    {seed}   (replay this morning: --seed {seed}{' --keep' if keep else ''})\n"
            f" 正在登记班次 registering {classes} classes{'' if keep else ' (enrolling faces)'}: the site page, "
            f"its token and {env_file} follow when class 1 is ready\n{bar}\n"
        )
        threading.Thread(target=register, name="simulator-registration", daemon=True).start()
        sim.run(stop, interval)

    threading.Thread(target=simulate, name="simulator", daemon=True).start()
    try:
        server.run()
    finally:
        stop.set()

if __name__ == "__main__":
    app()
