"""The audit chain for auditors (全程留痕可追溯): browse entries by actor, role, action, subject or time, export them
as Excel/CSV (the export itself recorded), and verify the whole chain."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, Depends, Query, Response
from pydantic import AwareDatetime

from models.clock import utc_now
from models.domain import Role
from models.errors import ApiError, errors, file_response
from models.params import Limit, UploadIdPath
from models.scope import Scope, access, public_route
from models.tables import AuditCheckRequest
from monitor.adapters.audit_keys import read_anchors
from monitor.adapters.spreadsheets import CSV, XLSX
from monitor.api.deps import Db, SettingsDep
from monitor.api.schemas.dispatch import (
    AuditAnchorsOut,
    AuditCheckOut,
    AuditCheckRequestOut,
    AuditEntryOut,
    AuditVerifyOut,
)
from monitor.services.audit import (
    check_audit,
    check_out,
    daily_anchors,
    recent_checks,
    request_check,
    request_out,
)
from monitor.services.audit_export import AuditFilter, check_window, export_audit, list_entries

router = APIRouter(prefix="/api/v1", tags=["audit"])
public = APIRouter(tags=["public"])

Auditors = Annotated[Scope, access(Role.AUDITOR, Role.ADMIN)]


ActorQuery = Annotated[str | None, Query(min_length=1, max_length=100,
                                         description="the actor's name exactly as recorded (e.g. 测试管理员, 系统)")]
RoleQuery = Annotated[str | None, Query(max_length=12, pattern=r"^[a-z_]+$",
                                        description="admin, operator, auditor, site, inspector or system")]
ActionQuery = Annotated[str | None, Query(max_length=60, pattern=r"^[a-z_.]+$",
                                          description="e.g. blacklist_decisions.insert, export")]
KindQuery = Annotated[str | None, Query(max_length=40, pattern=r"^[a-z_]+$",
                                        description="the table (entity kind), e.g. alerts, export")]
SubjectQuery = Annotated[str | None, Query(max_length=80, pattern=r"^[0-9A-Za-z_/-]+$")]
SinceQuery = Annotated[AwareDatetime | None, Query(description="from this time, inclusive (ISO 8601 with zone)")]
UntilQuery = Annotated[AwareDatetime | None, Query(description="before this time, exclusive (ISO 8601 with zone)")]
CursorQuery = Annotated[int, Query(ge=0, le=2**62, description="paging cursor: entries after this seq")]


def audit_filter(after_seq: CursorQuery = 0, actor: ActorQuery = None, actor_role: RoleQuery = None,
                 action: ActionQuery = None, subject_kind: KindQuery = None, subject_id: SubjectQuery = None,
                 since: SinceQuery = None, until: UntilQuery = None) -> AuditFilter:
    """The filters the listing and the export share; 422 on a time without zone, outside 2000-2099, or inverted."""
    start, end = check_window(since, until)
    return AuditFilter(actor=actor, actor_role=actor_role, action=action, subject_kind=subject_kind,
                       subject_id=subject_id, since=start, until=end, after_seq=after_seq)


Filters = Annotated[AuditFilter, Depends(audit_filter)]


@router.get("/audit", response_model=list[AuditEntryOut], responses=errors(422),
            summary="Audit chain entries, oldest first, filtered by actor (exact name), role, action, subject and "
                    "time window [since, until); page with after_seq = the last seq")
def list_audit(scope: Auditors, db: Db, where: Filters, limit: Limit = 50) -> list[dict[str, Any]]:
    with db.session() as session:
        return list_entries(session, where, limit)


@router.get("/audit/export", response_class=Response, responses={**errors(422), **file_response(
                XLSX, CSV, description="审计记录 Excel 或 CSV（UTF-8 带 BOM）文件，表头中文，时间为北京时间")},
            summary="The filtered audit entries as an Excel or CSV file (at most 100,000 rows); the export itself "
                    "is recorded in the chain: who, the filters, the row count and the file's SHA-256")
def export(scope: Auditors, db: Db, where: Filters,
           fmt: Annotated[Literal["xlsx", "csv"], Query(alias="format")] = "xlsx") -> Response:
    out = export_audit(db, where, fmt, utc_now())
    ascii_name = f"audit_{out.filename.split('_', 1)[1]}"
    return Response(out.data, media_type=out.media_type, headers={
        "Content-Disposition": f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(out.filename)}",
        "X-Audit-Rows": str(out.rows), "X-Content-SHA256": out.sha256})


@router.get("/audit/verify", response_model=AuditVerifyOut, summary="Verify the whole chain with its keys and "
            "against the anchors noted outside the database; name the first break and the head")
def verify(scope: Auditors, db: Db, settings: SettingsDep) -> dict[str, Any]:
    keys = settings.audit_keyring(create=False).keys
    return check_audit(db, keys, read_anchors(settings.audit_anchor_path)).as_json()


@router.post("/audit/check-requests", response_model=AuditCheckRequestOut, status_code=202,
             summary="Ask for a whole check of the chain and the records now: the scheduler runs it (within seconds "
                     "of being asked, however long it takes; a request already waiting is answered with it)")
def ask_check(scope: Auditors, db: Db) -> dict[str, Any]:
    with db.session() as session:
        request, _new = request_check(session, utc_now())
        return request_out(session, request)


@router.get("/audit/check-requests/{request_id}", response_model=AuditCheckRequestOut, responses=errors(404),
            summary="A requested check: requested, running, or done with its result")
def get_check_request(request_id: UploadIdPath, scope: Auditors, db: Db) -> dict[str, Any]:
    with db.session() as session:
        request = session.get(AuditCheckRequest, request_id)
        if request is None:
            raise ApiError(404, "UNKNOWN_CHECK_REQUEST", f"核验请求 {request_id} 不存在")
        return request_out(session, request)


@router.get("/audit/checks", response_model=list[AuditCheckOut],
            summary="The scheduler's periodic verifications of the chain and the records, newest first")
def list_checks(scope: Auditors, db: Db, limit: Limit = 50) -> list[dict[str, Any]]:
    with db.session() as session:
        return [check_out(row) for row in recent_checks(session, limit)]


@public.get("/public/audit-anchors.json", summary="审计链锚点公示：每日链头（序号与哈希），供核对",
            response_model=AuditAnchorsOut, dependencies=[public_route()])
def anchors(settings: SettingsDep) -> dict[str, Any]:
    """The chain's head as anchored outside the database, one per day for the last 30 days: published so that
    anyone can note it and compare later (a rewritten and re-hashed chain contradicts it)."""
    return {"anchors": [{"seq": a.seq, "hash": a.hash, "at": a.at_iso}
                        for a in daily_anchors(settings.audit_anchor_path)]}
