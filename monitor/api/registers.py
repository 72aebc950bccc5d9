"""Register extracts in (issue 20 item 1, clause 八/九), for admins: the sources and their expected columns, a
file previewed (counts, the first row errors, a masked sample), committed in full or not at all, and the imports
listed. ID numbers are stored only as keyed hashes; answers show them masked."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, File, Query, UploadFile
from pydantic import BaseModel, Field
from sqlalchemy import select

from ingest.adapters.multipart import InMemoryFormRoute
from models.clock import SHANGHAI, utc_now
from models.domain import InputModel
from models.errors import ApiError, errors
from models.tables import RegisterImport
from monitor.api.deps import Admin, Db, SettingsDep
from monitor.decisions.registers import SourceSpec, parse_period, period_is_future
from monitor.services.crosscheck import crosscheck_all
from monitor.services.registers import ROW_TABLES, commit_import, preview_import

router = APIRouter(prefix="/api/v1", tags=["registers"], route_class=InMemoryFormRoute)


class RegisterFieldOut(BaseModel):
    name: str
    headers: list[str] = Field(description="the Chinese headers accepted for it (the mapping file's aliases)")
    type: str
    required: bool


class RegisterSourceOut(BaseModel):
    source: str
    name: str
    fields: list[RegisterFieldOut]


class RowErrorOut(BaseModel):
    row: int = Field(description="the row number as the spreadsheet shows it")
    reason: str


class RegisterImportOut(BaseModel):
    id: int
    source: str
    period: str
    sha256: str
    filename: str
    file_kind: str
    rows_accepted: int
    rows_refused: int
    errors: list[RowErrorOut] = Field(description="the first 50 refused rows")
    sample: list[dict[str, str | int | None]] = Field(description="the first accepted rows, ID numbers masked")
    state: str = Field(description="staging (rows being stored) | preview | refused | committed | replaced | "
                                   "abandoned (its staging failed; rows removed)")
    created_by: str
    created_at: datetime
    committed_by: str | None
    committed_at: datetime | None
    replaced_by: int | None


class CommitIn(InputModel):
    import_id: int = Field(ge=1, le=2**31 - 1, description="the previewed import to commit")


def import_out(entry: RegisterImport) -> dict[str, Any]:
    return {c.key: getattr(entry, c.key) for c in RegisterImport.__table__.columns if c.key != "key_id"}


def source_spec(specs: dict[str, SourceSpec], source: str) -> SourceSpec:
    if source not in specs or source not in ROW_TABLES:
        raise ApiError(422, "UNKNOWN_REGISTER_SOURCE", f"未知的登记表类型 {source}（可选：{'、'.join(specs)}）")
    return specs[source]


@router.get("/registers/sources", response_model=list[RegisterSourceOut], summary="The register sources and the "
            "Chinese headers each field is recognised by (MONITOR_REGISTER_MAPPING)")
def list_sources(scope: Admin, settings: SettingsDep) -> list[dict[str, Any]]:
    return [{"source": s.source, "name": s.title,
             "fields": [{"name": f.name, "headers": list(f.aliases), "type": f.type, "required": f.required}
                        for f in s.fields]}
            for s in settings.register_specs().values() if s.source in ROW_TABLES]


@router.post("/registers/imports", status_code=201, response_model=RegisterImportOut, responses=errors(413, 422),
             summary="Preview a register extract (.xlsx or .csv, Chinese headers): every row validated, the first "
                     "row errors and a masked sample answered; nothing counts until committed")
def preview(scope: Admin, db: Db, settings: SettingsDep,
            file: Annotated[UploadFile, File(description="the extract (.xlsx, or .csv in UTF-8 or GB18030)")],
            source: Annotated[str, Query(max_length=20, description="insurance | employment | certificates | "
                                         "teachers | vouchers")],
            period: Annotated[str, Query(max_length=7, description="the extract's period, YYYY-MM")]) -> dict[str, Any]:
    spec = source_spec(settings.register_specs(), source)
    if parse_period(period) is None:
        raise ApiError(422, "INVALID_PERIOD", f"期间 {period} 无效，应为 YYYY-MM")
    this_month = utc_now().astimezone(SHANGHAI).date()
    if period_is_future(period, this_month):
        raise ApiError(422, "PERIOD_IN_FUTURE",
                       f"期间 {period} 尚未开始（当前为 {this_month:%Y-%m}），不能导入未来期间的数据")
    import_id = preview_import(db, file.file, file.filename or "", source, period, spec,
                               settings.register_hash_key(), scope.principal.name)
    with db.session() as session:
        entry = session.get(RegisterImport, import_id)
        assert entry is not None
        return import_out(entry)


@router.post("/registers/commits", response_model=RegisterImportOut, responses=errors(404, 409, 422),
             summary="Commit a previewed import in full (refused when any row was bad); it replaces the source's "
                     "imports of the same or an older period")
def commit(body: CommitIn, scope: Admin, db: Db, settings: SettingsDep, background: BackgroundTasks) -> dict[str, Any]:
    commit_import(db, body.import_id, settings.register_hash_key(), scope.principal.name)
    background.add_task(crosscheck_all, db, settings)  # the classes against the new extract, after the answer
    with db.session() as session:
        entry = session.get(RegisterImport, body.import_id)
        assert entry is not None
        return import_out(entry)


@router.get("/registers/imports", response_model=list[RegisterImportOut], summary="Register imports, newest first")
def list_imports(scope: Admin, db: Db,
                 source: Annotated[str | None, Query(max_length=20)] = None,
                 limit: Annotated[int, Query(ge=1, le=500)] = 100) -> list[dict[str, Any]]:
    with db.session() as session:
        query = select(RegisterImport).order_by(RegisterImport.id.desc()).limit(limit)
        if source:
            query = query.where(RegisterImport.source == source)
        return [import_out(e) for e in session.scalars(query)]
