"""Ledger, daily reports and their Excel/CSV exports (auditors), and the public notice (公示)."""

import hashlib
import weakref
from collections import Counter
from datetime import date, timedelta
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Query, Response
from sqlalchemy import func, select

from models.audit import append_audit
from models.clock import SHANGHAI, utc_now
from models.errors import errors, file_response
from models.params import DayQuery, RecordIdPath, RecordIdQuery
from models.scope import CAPABILITY_ROLES, Capability, Scope, access, ensure_class, public_route
from models.tables import Alert, AlertTransition
from monitor.adapters.spreadsheets import CSV, XLSX, to_csv, to_xlsx
from monitor.adapters.storage import Database
from monitor.api.deps import Db, SettingsDep
from monitor.api.schemas.reports import (
    DailyReportOut,
    InspectorOutcomesOut,
    LedgerOut,
    OnlineMinutesOut,
    PublicNoticeOut,
)
from monitor.services.ledger import (
    DAILY_COLUMNS,
    LEDGER_COLUMNS,
    NoticeCache,
    build_class_ledger,
    build_daily_report,
    online_minutes_report,
)
from monitor.settings import Settings

REPORT_ROLES = CAPABILITY_ROLES[Capability.READ_REPORTS]


def download(db: Database, data: bytes, media_type: str, filename: str) -> Response:
    """The export as a file, its digest recorded in the audit chain (who exported what, when)."""
    with db.session() as session:
        append_audit(session, "export", "export", filename,
                     {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data), "media_type": media_type})
    return Response(data, media_type=media_type,
                    headers={"Content-Disposition": f"attachment; filename*=UTF-8''{quote(filename)}"})


router = APIRouter(prefix="/api/v1", tags=["reports"])
public = APIRouter(tags=["public"])
NOTICES: weakref.WeakKeyDictionary[Database, NoticeCache] = weakref.WeakKeyDictionary()  # one per database
Reader = Annotated[Scope, access(*REPORT_ROLES)]


def ledger(db: Database, class_id: int, scope: Scope, settings: Settings) -> dict[str, Any]:
    with db.session() as session:
        ensure_class(session, scope, class_id)
        return build_class_ledger(session, class_id, utc_now(), settings.min_attendance_rate)


@router.get("/classes/{class_id}/ledger", summary="The class ledger: attendance, eligibility, evidence",
            response_model=LedgerOut)
def get_ledger(class_id: RecordIdPath, scope: Reader, db: Db, settings: SettingsDep) -> dict[str, Any]:
    return ledger(db, class_id, scope, settings)


@router.get("/classes/{class_id}/ledger.xlsx", summary="The class ledger as Excel", response_class=Response,
            responses=file_response(XLSX, description="台账 Excel 文件"))
def get_ledger_xlsx(class_id: RecordIdPath, scope: Reader, db: Db, settings: SettingsDep) -> Response:
    data = ledger(db, class_id, scope, settings)
    return download(db, to_xlsx("台账", LEDGER_COLUMNS, data["rows"]), XLSX, f"台账_{data['class']['code']}.xlsx")


@router.get("/classes/{class_id}/ledger.csv", summary="The class ledger as CSV", response_class=Response,
            responses=file_response(CSV, description="台账 CSV 文件（UTF-8）"))
def get_ledger_csv(class_id: RecordIdPath, scope: Reader, db: Db, settings: SettingsDep) -> Response:
    data = ledger(db, class_id, scope, settings)
    return download(db, to_csv(LEDGER_COLUMNS, data["rows"]), CSV, f"台账_{data['class']['code']}.csv")


def daily(db: Database, day: date | None, settings: Settings) -> dict[str, Any]:
    with db.session() as session:
        return build_daily_report(session, day or utc_now().astimezone(SHANGHAI).date(),
                                  settings.inspections_per_class_min, settings.inspection_visit_unit)


@router.get("/reports/daily", summary="Daily statistics per prefecture and county", response_model=DailyReportOut)
def get_daily(scope: Reader, db: Db, settings: SettingsDep, day: DayQuery = None) -> dict[str, Any]:
    return daily(db, day, settings)


@router.get("/reports/daily.xlsx", summary="Daily statistics as Excel", response_class=Response,
            responses=file_response(XLSX, description="日报 Excel 文件"))
def get_daily_xlsx(scope: Reader, db: Db, settings: SettingsDep, day: DayQuery = None) -> Response:
    data = daily(db, day, settings)
    return download(db, to_xlsx("日报", DAILY_COLUMNS, data["rows"]), XLSX, f"日报_{data['day']}.xlsx")


@router.get("/reports/daily.csv", summary="Daily statistics as CSV", response_class=Response,
            responses=file_response(CSV, description="日报 CSV 文件（UTF-8）"))
def get_daily_csv(scope: Reader, db: Db, settings: SettingsDep, day: DayQuery = None) -> Response:
    data = daily(db, day, settings)
    return download(db, to_csv(DAILY_COLUMNS, data["rows"]), CSV, f"日报_{data['day']}.csv")


@router.get("/online/minutes", summary="Verified online study minutes per trainee for a day (8-hour cap)",
            responses=errors(404), response_model=OnlineMinutesOut)
def online_minutes(class_id: RecordIdQuery, scope: Reader, db: Db, settings: SettingsDep,
                   day: DayQuery = None) -> dict[str, Any]:
    now = utc_now()
    with db.session() as session:
        ensure_class(session, scope, class_id)
        return online_minutes_report(session, class_id, day or now.astimezone(SHANGHAI).date(),
                                     settings.online_max_gap_minutes, settings.online_daily_cap_minutes, now)


@public.get("/public/notice.json", summary="培训补贴公示 (public, masked)", dependencies=[public_route()],
            response_model=PublicNoticeOut, responses=errors(503))
def notice(db: Db, settings: SettingsDep) -> dict[str, Any]:
    """The public notice: no token, as the notice requires publication; names masked, no ID numbers."""
    cache = NOTICES.setdefault(db, NoticeCache(settings.public_notice_min_rebuild_seconds))
    classes, built_at = cache.get(db, utc_now(), settings.min_attendance_rate)
    return {"generated_at": built_at.isoformat(), "classes": classes}


@router.get("/reports/inspectors", response_model=list[InspectorOutcomesOut],
            summary="Alerts closed per inspector over the last days, by outcome (无法核实 counted, as a share)")
def inspector_outcomes(scope: Reader, db: Db, days: Annotated[int, Query(ge=1, le=366)] = 30) -> list[dict[str, Any]]:
    since = utc_now() - timedelta(days=days)
    with db.session() as session:
        counts: dict[tuple[int | None, str], Counter[str]] = {}
        for staff_id, actor, outcome, n in session.execute(
                select(AlertTransition.staff_id, AlertTransition.actor, AlertTransition.outcome, func.count())
                .join(Alert, Alert.id == AlertTransition.alert_id)
                .where(AlertTransition.action == "close", AlertTransition.created_at >= since,
                       scope.of_classes(Alert.class_id))
                .group_by(AlertTransition.staff_id, AlertTransition.actor, AlertTransition.outcome)):
            counts.setdefault((staff_id, actor), Counter())[outcome or ""] += int(n)
    rows = []
    for (staff_id, actor), c in sorted(counts.items(), key=lambda kv: (-sum(kv[1].values()), kv[0][1])):
        closed = sum(c.values())
        rows.append({"staff_id": staff_id, "inspector": actor, "closed": closed,
                     "violation_confirmed": c["violation_confirmed"], "false_alarm": c["false_alarm"],
                     "could_not_verify": c["could_not_verify"],
                     "could_not_verify_share": round(c["could_not_verify"] / closed, 4) if closed else 0.0})
    return rows
