"""`monitor audit verify`: walk the audit chain and name the first entry that was changed, removed or reordered."""

from __future__ import annotations

import typer

from monitor.cli.admin import open_existing_database
from monitor.cli.config import DataDir, describe_database, load_settings
from monitor.services.audit import pending_audit, verify_audit


def audit_verify(data_dir: DataDir = None) -> None:
    """Check every entry's hash and link; exit 1 naming the first break."""
    settings = load_settings(data_dir)
    db = open_existing_database(settings)
    try:
        checked, broken = verify_audit(db)
        pending = pending_audit(db)
    finally:
        db.dispose()
    if broken is None:
        waiting = f"；另有 {pending} 条待封链（工作进程数秒内封入）" if pending else ""
        typer.echo(f"审计链完整：{checked} 条记录，哈希与链接均一致{waiting}（{describe_database(settings)}）")
        return
    typer.echo(f"审计链断裂：{broken.message}（第 {broken.seq} 条；此前 {checked} 条完好）", err=True)
    raise typer.Exit(1)
