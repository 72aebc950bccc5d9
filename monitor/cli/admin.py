"""The administrator's commands: create or upgrade the schema, issue, list and revoke tokens and issue one-time
sign-in links in an existing database."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Annotated

import typer
from sqlalchemy import inspect

from models.audit import AuditActor, current_actor
from models.clock import SHANGHAI, utc_now
from models.domain import ROLE_NAMES, Role, visible_name
from models.errors import ApiError
from models.tables import Institution
from monitor.adapters.storage import Database
from monitor.adapters.tokens import issue_sign_in_link, issue_token, list_tokens, revoke_token
from monitor.cli.config import DataDir, describe_database, load_settings, public_base, token_command
from monitor.cli.errors import CliError
from monitor.settings import Settings


def open_existing_database(settings: Settings, retry: Callable[[Settings], str] | None = None,
                           writing: bool = True) -> Database:
    """The configured database, refusing (rather than creating an empty one) when nothing is there yet; `writing`
    commands hold the audit key, as the center's processes do, so that what they change is signed in the chain.

    A command that only reads (`writing` False) creates no key file, but still holds the center's key when there
    is one: the first command after an upgrade runs its migrations, whose entries must be signed like the rest.

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
    ring = settings.audit_keyring(create=writing)
    db = Database(settings.sqlalchemy_url, ring.current if ring.current_id else None)
    if not inspect(db.engine).has_table("api_tokens"):
        db.dispose()
        raise CliError(f"数据库 {describe_database(settings)} 还没有建表", "run `monitor migrate` first")
    db.migrate()
    return db


def migrate(data_dir: DataDir = None) -> None:
    """Create or upgrade the database schema (regions are seeded on first run)."""
    settings = load_settings(data_dir)
    db = Database(settings.sqlalchemy_url, settings.audit_keyring().current)  # a migration's entries are signed too
    db.migrate()
    typer.echo(f"database ready: {db.engine.url.render_as_string(hide_password=True)}")


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
    try:
        visible_name(name)  # as the API's tokens: a name that reads as another's would pass as a second person
    except ValueError as exc:
        raise CliError(f"--name {exc}", "--name holds visible letters or digits only, e.g. --name 值班员") from None
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
    extra: tuple[str, ...] = ("--institution-id", str(institution_id)) if institution_id is not None else ()
    extra += tuple(arg for code in regions for arg in ("--region", code))
    db = open_existing_database(settings, retry=lambda other: token_command(other, role, name, extra))
    try:
        with db.session() as session:
            if institution_id is not None and session.get(Institution, institution_id) is None:
                raise CliError(f"培训机构 {institution_id} 没有在数据库 {describe_database(settings)} 中登记",
                               "register it first (POST /api/v1/institutions) or check --data-dir")
            token = issue_token(session, role, name, institution_id, regions)
    finally:
        db.dispose()
    typer.echo(token)


def token_sign_in_link(
    staff_id: Annotated[int, typer.Option(help="the staff member (抽查人员) the link signs in")],
    minutes: Annotated[int | None, typer.Option(min=1, max=7 * 24 * 60, help="how long the link stays valid")] = None,
    base_url: Annotated[str | None, typer.Option(help="the center's address as the phone opens it, e.g. "
                                                 "http://192.168.1.20:8000 (default: MONITOR_PUBLIC_URL, else the "
                                                 "address the center last started on the data directory)")] = None,
    data_dir: DataDir = None,
) -> None:
    """Print a one-time sign-in link for a staff member's phone (valid once, briefly; opens a working-day session).

    With the demo running: --data-dir var/demo. Which address the link starts with, and why, is said on stderr.
    """
    if base_url is not None and not base_url.startswith(("http://", "https://")):
        raise CliError(f"--base-url 须以 http:// 或 https:// 开头：{base_url}",
                       "give the address a phone opens the center at, e.g. --base-url http://192.168.1.20:8000")
    settings = load_settings(data_dir)
    base, source = public_base(settings, base_url)
    db = open_existing_database(settings)
    try:
        with db.session() as session:
            try:
                code, link = issue_sign_in_link(session, staff_id, "命令行管理员",
                                                timedelta(minutes=minutes or settings.sign_in_link_minutes))
            except ApiError as e:
                raise CliError(e.message, "list staff with GET /api/v1/staff, then pass --staff-id <id>") from None
    finally:
        db.dispose()
    typer.echo(f"{base}/inspector#signin={code}")
    typer.echo(f"有效至 {link.expires_at.astimezone(SHANGHAI):%Y-%m-%d %H:%M}（北京时间），仅可使用一次", err=True)
    typer.echo(f"链接地址 {base} 取自{source}；手机打不开时，用 --base-url http://主机:端口 或环境变量 "
               f"MONITOR_PUBLIC_URL 指定调度中心的实际地址", err=True)


def token_list(
    role: Annotated[Role | None, typer.Option(help="only this role")] = None,
    show_all: Annotated[bool, typer.Option("--all", help="revoked and expired tokens too")] = False,
    data_dir: DataDir = None,
) -> None:
    """List tokens: id, role, holder, scope, issued, state (never the token itself; only its hash is stored)."""
    settings = load_settings(data_dir)
    db = open_existing_database(settings, writing=False)
    try:
        with db.session() as session:
            rows = list_tokens(session, role, not show_all, 0, 10**6)
    finally:
        db.dispose()
    now = utc_now()
    for t in rows:
        scope = (f"机构 {t.institution_id}" if t.institution_id is not None
                 else "区域 " + ",".join(t.region_codes) if t.region_codes else "全省")
        if t.revoked_at is not None:
            state = f"已吊销 {t.revoked_at.astimezone(SHANGHAI):%Y-%m-%d %H:%M}（{t.revoked_reason or ''}）"
        elif t.expires_at is not None and t.expires_at <= now:
            state = "已过期"
        else:
            state = "有效"
        typer.echo(f"{t.id}\t{t.role}\t{t.name}\t{scope}\t{t.created_at.astimezone(SHANGHAI):%Y-%m-%d %H:%M}\t{state}")
    if not rows:
        typer.echo("没有令牌" if show_all else "没有有效的令牌（--all 列出已吊销和已过期的）")


def token_revoke(
    token_id: Annotated[int, typer.Argument(help="the token's id (`monitor token list`)", min=1, max=2**31 - 1)],
    reason: Annotated[str, typer.Option(help="why, e.g. 手机遗失 (recorded with the revocation)")],
    data_dir: DataDir = None,
) -> None:
    """Revoke a token now: its requests are refused, an open live feed with it is closed within seconds."""
    if not reason.strip() or len(reason.strip()) > 200:
        raise CliError("--reason 不能为空，且不超过 200 字：写明吊销原因", "--reason says why, e.g. --reason 手机遗失")
    settings = load_settings(data_dir)
    db = open_existing_database(settings)
    held = current_actor.set(AuditActor("命令行管理员", "admin"))  # the chain's entry names who revoked it
    try:
        with db.session() as session:
            try:
                token = revoke_token(session, token_id, reason)
            except ApiError as e:
                raise CliError(e.message, "list tokens with `monitor token list --all`") from None
            name, role = token.name, token.role
    finally:
        current_actor.reset(held)
        db.dispose()
    typer.echo(f"已吊销令牌 {token_id}（{role}，{name}）：原因 {reason.strip()}")
