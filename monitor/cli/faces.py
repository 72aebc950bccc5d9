"""`monitor faces`: the face models (manifests, weights checked by SHA-256, licences) and re-enrolment."""

from __future__ import annotations

from typing import Annotated

import typer

from ingest.adapters.evidence import EvidenceStore
from monitor.adapters.face_engine import create_face_engine
from monitor.adapters.face_models import ModelFileError, load_face_model, load_manifest, manifest_names
from monitor.cli.admin import open_existing_database
from monitor.cli.config import DataDir, describe_database, load_settings
from monitor.cli.errors import CliError
from monitor.services.reenrol import ReenrolProgress, reenrol, template_counts


def faces_models() -> None:
    """List the shipped face models: source, weights' state, metric, operating points and licence."""
    settings = load_settings()
    for name in manifest_names():
        m = load_manifest(name)
        try:
            load_face_model(name, settings.face_models_dir)
            state = "权重已就绪，SHA-256 一致"
        except ModelFileError as exc:
            state = f"不可用：{exc}"
        mark = "（当前使用）" if name == settings.face_model else ""
        typer.echo(f"{name}{mark}: {m.title}")
        typer.echo(f"  source   {m.source.registry} {m.source.package}@{m.source.version} {m.source.path}")
        typer.echo(f"  sha256   {m.source.sha256}")
        typer.echo(f"  weights  {state}")
        typer.echo(f"  vectors  {m.dimension}-d, {m.metric}; thresholds {m.operating_points.model_dump()}")
        typer.echo(f"  licence  {m.licence.declared}")
        for unknown in m.licence.unknown:
            typer.echo(f"           unknown: {unknown}")


def faces_reenrol(
    model: Annotated[str | None, typer.Option(help="manifest to enrol with (default MONITOR_FACE_MODEL)")] = None,
    batch: Annotated[int, typer.Option(min=1, max=1000, help="photos per transaction")] = 50,
    data_dir: DataDir = None,
) -> None:
    """Embed every stored enrolment photo with the model (resumable: photos already done are skipped).

    Run it before switching MONITOR_FACE_MODEL (the center keeps running on the old model meanwhile), and once
    more after the switch for enrolments made in between.
    """
    settings = load_settings(data_dir)
    name = model or settings.face_model
    try:
        face_model = load_face_model(name, settings.face_models_dir)
    except ModelFileError as exc:
        raise CliError(f"人脸模型不可用：{exc}", "run scripts/setup.sh to fetch the weights") from None
    db = open_existing_database(settings)
    engine = create_face_engine(settings.face_processes, face_model)

    def show(p: ReenrolProgress) -> None:
        typer.echo(f"  {p.done}/{p.total} 张登记照片，新增模板 {p.added}，未能提取 {len(p.refused)}，"
                   f"{p.rate:.1f} 张/秒，预计还需 {p.eta_seconds:.0f} 秒")

    try:
        typer.echo(f"以 {face_model.model_version} 重新提取登记模板（{describe_database(settings)}）")
        progress = reenrol(db, EvidenceStore(settings.evidence_dir), engine, batch, show)
        for photo, reason in progress.refused:
            typer.echo(f"  未能提取：{photo.person_kind} {photo.person_id} 照片 {photo.photo_sha256[:12]}…：{reason}")
        counts = template_counts(db)
    finally:
        engine.close()
        db.dispose()
    typer.echo(f"完成：{progress.done} 张照片，新增 {progress.added} 个模板，用时 {progress.seconds:.1f} 秒；"
               f"各模型模板数 {counts}")
    if progress.refused:
        raise typer.Exit(1)
