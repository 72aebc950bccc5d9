"""`monitor evidence verify`: hash stored evidence files against the digests that name them, recording (and alarming
on the wall) every file altered or missing, and closing faults whose genuine bytes are back; `monitor evidence
sweep`: remove files no record names (the worker's janitor, now)."""

from __future__ import annotations

from typing import Annotated

import typer

from ingest.adapters.evidence import EvidenceStore
from monitor.cli.admin import open_existing_database
from monitor.cli.config import DataDir, load_settings
from monitor.services.evidence_health import check_evidence, evidence_alarms, sweep_all_orphans, sweep_orphans


def evidence_verify(
    data_dir: DataDir = None,
    sample: Annotated[int | None, typer.Option("--sample", min=1, help="check this many files picked at random "
                                               "(default: every file, in digest order)")] = None,
) -> None:
    """Hash every stored evidence file (or --sample N of them) against its digest; exit 1 while any is altered or
    missing (each is recorded once and stays the wall's EVIDENCE_ALTERED until its genuine bytes are restored)."""
    settings = load_settings(data_dir)
    db = open_existing_database(settings)  # a fault is an audited row: written with the key, as the center writes
    try:
        result = check_evidence(db, EvidenceStore(settings.evidence_dir), sample)
        with db.session() as session:
            alarms = evidence_alarms(session)
    finally:
        db.dispose()
    typer.echo(f"已核对 {result.checked} 份证据文件：{result.faults} 份与登记的校验码不符或缺失，"
               f"{result.restored} 份此前告警的文件已恢复原件")
    if alarms:
        typer.echo(alarms[0]["message"], err=True)
        raise typer.Exit(1)


def evidence_sweep(
    data_dir: DataDir = None,
    whole: Annotated[bool, typer.Option("--all", help="walk every file of the store, not only those the write "
                                        "journals name (files from before the journals, or a journal cut short "
                                        "by a crash of the machine); slow at province size")] = False,
) -> None:
    """Remove evidence files no record names (written by a transaction that then rolled back) once they are older
    than MONITOR_EVIDENCE_SWEEP_MINUTES, as the worker does every as often."""
    settings = load_settings(data_dir)
    db = open_existing_database(settings, writing=False)
    try:
        sweep = sweep_all_orphans if whole else sweep_orphans
        removed = sweep(db, EvidenceStore(settings.evidence_dir), settings.evidence_sweep_minutes * 60)
    finally:
        db.dispose()
    typer.echo(f"已清理 {removed} 份没有任何记录引用的证据文件（写入后事务回滚所留）")
