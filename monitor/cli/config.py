"""The commands' settings: --data-dir, the database they point at, logging, and command lines to suggest."""

from __future__ import annotations

import logging
import os
import re
import shlex
import sys
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.engine import make_url

from models.domain import Role
from monitor.adapters.logsafe import JsonLines, install_redaction
from monitor.settings import Settings

DataDir = Annotated[
    Path | None,
    typer.Option("--data-dir", help="where the SQLite file and evidence live (default MONITOR_DATA_DIR or ./var; "
                 "the demo uses var/demo)", file_okay=False, show_default=False),
]

loaded_settings: list[Settings] = []  # what the running command uses, for error messages


def load_settings(data_dir: Path | None = None) -> Settings:
    """The settings from MONITOR_* variables, with --data-dir taking precedence over MONITOR_DATA_DIR."""
    settings = Settings(data_dir=data_dir) if data_dir is not None else Settings()
    loaded_settings.append(settings)
    return settings


def describe_database(settings: Settings) -> str:
    """The database `settings` point at, for people: the URL without its password, or the SQLite file."""
    if settings.database_url:
        return make_url(settings.database_url).render_as_string(hide_password=True)
    return str((settings.data_dir / "monitor.sqlite3").resolve())


def configure_logging(verbose: bool = False) -> None:
    """Log lines with time, level, logger and request id, secrets redacted; one JSON object per line when
    MONITOR_LOG_FORMAT=json (read here: logging starts before the settings are loaded)."""
    install_redaction()
    handler = logging.StreamHandler()
    if os.environ.get("MONITOR_LOG_FORMAT", "text").lower() == "json":
        handler.setFormatter(JsonLines())
    else:
        handler.setFormatter(RequestIdText("%(asctime)s %(levelname)s %(name)s%(rid)s: %(message)s"))
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, handlers=[handler])


class RequestIdText(logging.Formatter):
    """The text format, with ` [request id]` after the logger name for lines written for a request."""

    def format(self, record: logging.LogRecord) -> str:
        rid = getattr(record, "request_id", None)
        record.rid = f" [{rid}]" if rid else ""
        return super().format(record)


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
    """Shell lines that point the CLI at the same data as `settings` (for the demo's demo-env.sh), and at the same
    address when one was set (the links it prints)."""
    lines = f"export MONITOR_DATA_DIR={shlex.quote(str(settings.data_dir.resolve()))}\n"
    if settings.database_url:
        lines += f"export MONITOR_DATABASE_URL={shlex.quote(settings.database_url)}\n"
    if "public_url" in settings.model_fields_set:
        lines += f"export MONITOR_PUBLIC_URL={shlex.quote(settings.public_url)}\n"
    return lines


PUBLIC_URL_FILE = "public-url"
"""In the data directory: the address the center last started there answers at (`monitor serve`, `monitor demo`), for
commands run later in another shell, without MONITOR_PUBLIC_URL, that print links to it."""


def local_public_url(host: str, port: int) -> str:
    """The address of a center served on `host`:`port` as this machine opens it (a wildcard or loopback bind is
    localhost)."""
    if host in ("127.0.0.1", "0.0.0.0", "::", "::1", ""):
        host = "localhost"
    elif ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def serve_at(settings: Settings, host: str, port: int) -> None:
    """A center about to serve on `host`:`port`: without MONITOR_PUBLIC_URL its links (sign-in links, the forms'
    verify link and QR code) point at that port, not the default's; the address used is noted in the data directory
    for the command line (see public_base)."""
    if "public_url" not in settings.model_fields_set:
        settings.public_url = local_public_url(host, port)
    try:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        path = settings.data_dir / PUBLIC_URL_FILE
        partial = path.with_name(f".{PUBLIC_URL_FILE}.{os.getpid()}")
        partial.write_text(settings.public_url.rstrip("/") + "\n", encoding="utf-8")
        partial.replace(path)
    except OSError as exc:  # a read-only data directory: the center still runs, commands fall back to the default
        logging.getLogger(__name__).warning("could not note the public URL in %s: %s", settings.data_dir, exc)


def public_base(settings: Settings, given: str | None = None) -> tuple[str, str]:
    """The base of links a command prints, and where it came from (zh-CN, for the line that says so): --base-url,
    else MONITOR_PUBLIC_URL, else the address the center last started on this data directory noted, else the
    default."""
    if given:
        return given.rstrip("/"), "--base-url"
    if "public_url" in settings.model_fields_set:
        return settings.public_url.rstrip("/"), "环境变量 MONITOR_PUBLIC_URL"
    path = settings.data_dir / PUBLIC_URL_FILE
    try:
        noted = path.read_text(encoding="utf-8").strip()
    except OSError:
        noted = ""
    if noted.startswith(("http://", "https://")):
        return noted.rstrip("/"), f"在 {settings.data_dir.resolve()} 上最近启动的调度中心（{path.name}）"
    return settings.public_url.rstrip("/"), "默认值（未设置 MONITOR_PUBLIC_URL，该数据目录也没有运行过调度中心）"
