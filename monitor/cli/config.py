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
    """Shell lines that point the CLI at the same data as `settings` (for the demo's demo-env.sh)."""
    lines = f"export MONITOR_DATA_DIR={shlex.quote(str(settings.data_dir.resolve()))}\n"
    if settings.database_url:
        lines += f"export MONITOR_DATABASE_URL={shlex.quote(settings.database_url)}\n"
    return lines
