"""`monitor audit`: verify the chain with its keys and against anchors noted outside the database (naming the first
entry that was changed, removed, reordered or re-hashed), anchor its head now, and rotate its key."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from models.clock import utc_now
from monitor.adapters.audit_keys import read_anchors, rotate_key
from monitor.cli.admin import open_existing_database
from monitor.cli.config import DataDir, describe_database, load_settings
from monitor.cli.errors import CliError
from monitor.services.audit import anchor_head, chain_head, check_audit


def audit_verify(
    data_dir: DataDir = None,
    against: Annotated[Path | None, typer.Option("--against", help="an anchors file (JSON lines of seq, hash, at) "
                                                 "kept outside the database: every anchor must match the chain "
                                                 "(default: the center's own, MONITOR_AUDIT_ANCHOR_FILE)",
                                                 dir_okay=False)] = None,
) -> None:
    """Check every entry's HMAC, signature and link, and the anchors (the center's own anchors file unless
    --against names a copy kept elsewhere); print the head; exit 1 naming the first break."""
    settings = load_settings(data_dir)
    if against is not None and not against.is_file():
        raise CliError(f"锚点文件 {against} 不存在", "give the anchors file the worker appends to "
                       "(MONITOR_AUDIT_ANCHOR_FILE, default <data dir>/audit-anchors.jsonl) or a copy of it")
    anchors = read_anchors(against if against is not None else settings.audit_anchor_path)
    db = open_existing_database(settings, writing=False)  # no key file is made by checking
    try:
        result = check_audit(db, settings.audit_keyring(create=False).keys, anchors)  # as the API and scheduler
    finally:
        db.dispose()
    checked, broken, pending, findings = result.checked, result.broken, result.pending, result.findings
    head_seq, head_hash, rows_checked = result.head_seq, result.head_hash, result.rows_checked
    typer.echo(f"链头 head: 第 {head_seq} 条 {head_hash}")
    if broken is None:
        waiting = f"；另有 {pending} 条待封链（工作进程数秒内封入）" if pending else ""
        held = f"，与 {len(anchors)} 个库外锚点一致" if anchors else ""
        typer.echo(f"审计链完整：{checked} 条记录，哈希与链接均一致{held}{waiting}（{describe_database(settings)}）")
    else:
        typer.echo(f"审计链断裂：{broken.message}（第 {broken.seq} 条；此前 {checked} 条完好）", err=True)
    if not findings:
        typer.echo(f"记录与审计链一致：{rows_checked} 行（各表的行与其审计记录逐列相符）")
    else:
        typer.echo(f"记录与审计链不符：{len(findings)} 行（共查 {rows_checked} 行）", err=True)
        for finding in findings[:50]:
            typer.echo(f"  {finding.message}", err=True)
        if len(findings) > 50:
            typer.echo(f"  ……另有 {len(findings) - 50} 行", err=True)
    if broken is not None or findings:
        raise typer.Exit(1)


def audit_anchor(data_dir: DataDir = None) -> None:
    """Append the chain's head to the anchors file now (the worker does it on a schedule)."""
    settings = load_settings(data_dir)
    db = open_existing_database(settings)
    try:
        db.seal_audit()
        written = anchor_head(db, settings.audit_anchor_path, utc_now())
        seq, digest = chain_head(db)
    finally:
        db.dispose()
    what = "已记入" if written else "链头未变，无需重复记入"
    typer.echo(f"锚点 {what}：第 {seq} 条 {digest} → {settings.audit_anchor_path}")


def audit_rotate_key(data_dir: DataDir = None) -> None:
    """Add a fresh audit key and seal new entries with it (old keys stay, to verify what they sealed); restart the
    center afterwards."""
    settings = load_settings(data_dir)
    ring = rotate_key(settings.audit_keys_path)
    typer.echo(f"新密钥 {ring.current_id} 已启用（{settings.audit_keys_path}，共 {len(ring.keys)} 把）；"
               "重启调度中心后生效")
