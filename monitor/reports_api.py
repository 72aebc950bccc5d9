"""Ledger, daily reports and their Excel/CSV exports (auditors), and the public notice (公示)."""

from collections.abc import Callable
from datetime import date
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Response

from ingest.validation import SHANGHAI
from models.domain import Principal, Role
from models.errors import ApiError
from monitor.auth import require_role
from monitor.ledger import (
    DAILY_COLUMNS,
    LEDGER_COLUMNS,
    build_class_ledger,
    build_daily_report,
    online_minutes_report,
    public_notice,
    to_csv,
    to_xlsx,
)
from monitor.settings import Settings
from monitor.storage import Database, utc_now

REPORT_ROLES = (Role.AUDITOR, Role.ADMIN, Role.OPERATOR)
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def download(data: bytes, media_type: str, filename: str) -> Response:
    return Response(data, media_type=media_type,
                    headers={"Content-Disposition": f"attachment; filename*=UTF-8''{quote(filename)}"})


def build_reports_router(settings: Settings, db: Database, authenticate: Callable[..., Principal]) -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["reports"])
    authenticated = Annotated[Principal, Depends(authenticate)]

    def ledger(class_id: int, principal: Principal) -> dict[str, Any]:
        require_role(principal, *REPORT_ROLES)
        with db.session() as session:
            try:
                return build_class_ledger(session, class_id, utc_now())
            except LookupError:
                raise ApiError(404, "UNKNOWN_CLASS", f"班次 {class_id} 不存在") from None

    @router.get("/classes/{class_id}/ledger", summary="The class ledger: attendance, eligibility, evidence")
    def get_ledger(class_id: int, principal: authenticated) -> dict[str, Any]:
        return ledger(class_id, principal)

    @router.get("/classes/{class_id}/ledger.xlsx", summary="The class ledger as Excel")
    def get_ledger_xlsx(class_id: int, principal: authenticated) -> Response:
        data = ledger(class_id, principal)
        name = f"台账_{data['class']['code']}.xlsx"
        return download(to_xlsx("台账", LEDGER_COLUMNS, data["rows"]), XLSX, name)

    @router.get("/classes/{class_id}/ledger.csv", summary="The class ledger as CSV")
    def get_ledger_csv(class_id: int, principal: authenticated) -> Response:
        data = ledger(class_id, principal)
        return download(to_csv(LEDGER_COLUMNS, data["rows"]), "text/csv; charset=utf-8",
                        f"台账_{data['class']['code']}.csv")

    def daily(day: date | None, principal: Principal) -> dict[str, Any]:
        require_role(principal, *REPORT_ROLES)
        with db.session() as session:
            return build_daily_report(session, day or utc_now().astimezone(SHANGHAI).date())

    @router.get("/reports/daily", summary="Daily statistics per prefecture and county")
    def get_daily(principal: authenticated, day: date | None = None) -> dict[str, Any]:
        return daily(day, principal)

    @router.get("/reports/daily.xlsx", summary="Daily statistics as Excel")
    def get_daily_xlsx(principal: authenticated, day: date | None = None) -> Response:
        data = daily(day, principal)
        return download(to_xlsx("日报", DAILY_COLUMNS, data["rows"]), XLSX, f"日报_{data['day']}.xlsx")

    @router.get("/reports/daily.csv", summary="Daily statistics as CSV")
    def get_daily_csv(principal: authenticated, day: date | None = None) -> Response:
        data = daily(day, principal)
        return download(to_csv(DAILY_COLUMNS, data["rows"]), "text/csv; charset=utf-8", f"日报_{data['day']}.csv")

    @router.get("/online/minutes", summary="Verified online study minutes per trainee for a day (8-hour cap)")
    def online_minutes(class_id: int, principal: authenticated, day: date | None = None) -> dict[str, Any]:
        require_role(principal, *REPORT_ROLES)
        now = utc_now()
        with db.session() as session:
            return online_minutes_report(session, class_id, day or now.astimezone(SHANGHAI).date(),
                                         settings.online_max_gap_minutes, settings.online_daily_cap_minutes, now)

    return router


def build_public_router(db: Database) -> APIRouter:
    """The public notice: no token, as the notice requires publication; names masked, no ID numbers."""
    router = APIRouter(tags=["public"])

    @router.get("/public/notice.json", summary="培训补贴公示 (public, masked)")
    def notice() -> dict[str, Any]:
        with db.session() as session:
            return {"generated_at": utc_now().isoformat(), "classes": public_notice(session, utc_now())}

    return router
