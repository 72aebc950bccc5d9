"""Expected failures of a command, printed as one zh-CN line and an English hint instead of a traceback."""

from __future__ import annotations

from typing import Any, NoReturn

import pydantic
import redis.exceptions
import sqlalchemy.exc
import typer
from typer.core import TyperGroup

from models.errors import ApiError
from monitor.adapters.face_models import ModelFileError
from monitor.cli.config import describe_database, loaded_settings


class CliError(Exception):
    """An expected failure of a command: one zh-CN line for people, an English hint, an exit code."""

    def __init__(self, message: str, hint: str = "", exit_code: int = 2) -> None:
        super().__init__(message)
        self.message, self.hint, self.exit_code = message, hint, exit_code


def fail(message: str, hint: str = "", exit_code: int = 2) -> NoReturn:
    """Print the error line (and the hint) to stderr and exit with `exit_code`."""
    typer.echo(f"错误：{message}", err=True)
    if hint:
        typer.echo(f"  hint: {hint}", err=True)
    raise typer.Exit(exit_code)


def _first_line(error: BaseException) -> str:
    text = str(getattr(error, "orig", None) or error).strip()
    return text.splitlines()[0] if text else type(error).__name__


class FriendlyGroup(TyperGroup):
    """Turns the errors a command is expected to meet into one clear line and exit code 2 (1 when a
    server is unreachable), instead of a traceback; anything else still raises with its traceback."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except CliError as e:
            fail(e.message, e.hint, e.exit_code)
        except ApiError as e:
            hints = {"UNKNOWN_REGION": "region codes are Yunnan's GB/T 2260 codes, e.g. 530100 (Kunming), 532900 "
                                       "(Dali); GET /api/v1/regions lists them"}
            fail(e.message, hints.get(e.code, e.code))
        except pydantic.ValidationError as e:
            problems = "；".join(
                f"MONITOR_{'_'.join(str(p) for p in err['loc']).upper()}：{err['msg']}" for err in e.errors()
            )
            fail(f"配置无效：{problems}", "fix the MONITOR_* environment variable(s) named above")
        except sqlalchemy.exc.ArgumentError as e:
            fail(f"数据库地址无效：{_first_line(e)}",
                 "MONITOR_DATABASE_URL must look like postgresql://user:password@host:5432/db")
        except (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError) as e:
            where = describe_database(loaded_settings[-1]) if loaded_settings else "MONITOR_DATABASE_URL"
            fail(f"无法连接数据库（{where}）：{_first_line(e)}",
                 "is the database server running and MONITOR_DATABASE_URL right?", exit_code=1)
        except redis.exceptions.ConnectionError as e:
            fail(f"无法连接 Redis：{_first_line(e)}",
                 "is redis-server running and MONITOR_REDIS_URL right?", exit_code=1)
        except PermissionError as e:
            fail(f"没有权限访问 {e.filename}：{e.strerror}", "choose another --data-dir / MONITOR_DATA_DIR")
        except ModelFileError as e:
            fail(f"人脸模型不可用：{e}", "run ./scripts/setup.sh (it fetches the model from its registry and checks "
                 "its SHA-256), or set MONITOR_FACE_MODEL / MONITOR_FACE_MODELS_DIR", exit_code=1)
