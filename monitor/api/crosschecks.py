"""Cross-checks against the registers and payment (issue 20 items 2-4, clause 八/九): run the cross-check, a class's
results per trainee and teacher, today's cross-check alerts by prefecture (the wall), institutions' post-training
employment, marking a class payable, and its payment list (Excel) with the cross-check and register periods it
relied on."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import datetime, time
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, Field
from sqlalchemy import func, select

from models.clock import SHANGHAI, utc_now
from models.domain import CROSSCHECK_RULES, Distinct, InputModel, RecordId
from models.errors import errors, file_response
from models.params import RecordIdPath
from models.scope import CAPABILITY_ROLES, Capability, Scope, access, ensure_class
from models.tables import Alert, Institution, InstitutionEmployment, Region
from monitor.adapters.spreadsheets import XLSX, to_xlsx
from monitor.api.deps import Admin, Db, SettingsDep
from monitor.api.reports import REPORT_ROLES, download
from monitor.api.schemas.reports import CrossFindingOut, PaymentOut
from monitor.services.alerts import ACTIVE
from monitor.services.crosscheck import (
    crosscheck_results,
    latest_run,
    open_crosscheck_alerts,
    refresh_employment,
    run_crosscheck,
)
from monitor.services.payments import PAYMENT_COLUMNS, mark_payable, payment_list

router = APIRouter(prefix="/api/v1", tags=["cross-checks"])
Reader = Annotated[Scope, access(*REPORT_ROLES)]
Watcher = Reader  # today's cross-check alerts on the wall: whoever reads the reports
Payer = Annotated[Scope, access(*CAPABILITY_ROLES[Capability.MARK_PAYABLE])]


class CrossCheckIn(InputModel):
    class_ids: Annotated[list[RecordId], Field(max_length=5000, description="the classes to check; none: every "
                                               "class not yet payable within the look-back"), Distinct] | None = None


class CrossCheckRunOut(BaseModel):
    classes: int
    trainees: int
    findings: int
    raised: int = Field(description="new anomalies raised")
    resolved: int = Field(description="open anomalies a newer extract no longer shows, resolved")
    registers: dict[str, dict[str, str | int]] = Field(description="source → the committed extract relied on "
                                                       "(import id, period, SHA-256)")


class TraineeCrossOut(BaseModel):
    trainee_id: int
    findings: list[CrossFindingOut]


class ClassCrossOut(BaseModel):
    class_id: int
    ran_at: datetime | None = Field(description="the latest cross-check of the class (none yet: never checked)")
    registers: dict[str, dict[str, str | int]] = Field(description="source → the extract that run relied on (import "
                                                       "id, period, SHA-256)")
    trainees: list[TraineeCrossOut] = Field(description="trainees with findings (all of them, or the one asked for)")
    teachers: list[CrossFindingOut]
    open_alerts: list[int] = Field(description="cross-check alerts on the class still active (they hold payment)")


class PaymentIn(InputModel):
    note: Annotated[str, Field(max_length=500)] = ""


class PrefectureCrossOut(BaseModel):
    code: str
    name: str
    alerts: int = Field(description="cross-check alerts raised today in the prefecture")
    open: int = Field(description="of them, still active")
    by_rule: dict[str, int]


class CrossTodayOut(BaseModel):
    day: str
    total: int
    open: int
    prefectures: list[PrefectureCrossOut] = Field(description="all 16 prefectures, most alerts first")


class EmploymentOut(BaseModel):
    institution_id: int
    institution_name: str
    insurance_period: str
    completed: int = Field(description="completed (paid) trainees whose six months after the class are covered")
    employed: int = Field(description="of them, insured as employees within six months")
    rate: float | None
    median_rate: float | None = Field(description="the provincial median over institutions with enough trainees")
    shortfall: float = Field(description="below the median as a share of it; it weighs the institution's classes "
                             "in the 双随机 draw")
    computed_at: datetime


@router.post("/crosschecks", response_model=CrossCheckRunOut, summary="Cross-check classes against the committed "
             "register extracts now (the worker also does so periodically and after every commit)")
def run_now(body: CrossCheckIn, scope: Admin, db: Db, settings: SettingsDep) -> dict[str, Any]:
    summary = run_crosscheck(db, settings, body.class_ids)
    refresh_employment(db, settings)
    return summary.as_json()


@router.get("/classes/{class_id}/crosscheck", response_model=ClassCrossOut, responses=errors(404),
            summary="A class's cross-check results per trainee and teacher, and the extracts they rest on")
def class_crosscheck(class_id: RecordIdPath, scope: Reader, db: Db,
                     trainee_id: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None) -> dict[str, Any]:
    with db.session() as session:
        ensure_class(session, scope, class_id)
        run = latest_run(session, class_id)
        results = crosscheck_results(session, class_id)
        trainees = [{"trainee_id": t, "findings": f} for t, f in sorted(
            ((t, f) for t, f in results.items() if t is not None), key=lambda kv: kv[0])
            if trainee_id is None or t == trainee_id]
        return {"class_id": class_id, "ran_at": run.ran_at if run else None, "registers": run.imports if run else {},
                "trainees": trainees, "teachers": results.get(None, []),
                "open_alerts": [a.id for a in open_crosscheck_alerts(session, class_id)]}


@router.get("/crosschecks/today", response_model=CrossTodayOut,
            summary="Today's cross-check alerts by prefecture (the wall's panel)")
def today(scope: Watcher, db: Db) -> dict[str, Any]:
    now = utc_now()
    day = now.astimezone(SHANGHAI).date()
    start = datetime.combine(day, time(0), SHANGHAI)
    rules = [r.value for r in CROSSCHECK_RULES]
    with db.session() as session:
        names = dict(session.execute(select(Region.code, Region.name).where(Region.level == "prefecture")).all())
        counts: dict[str, Counter[str]] = defaultdict(Counter)
        active: Counter[str] = Counter()
        for region, rule, state, n in session.execute(
                select(Alert.region_code, Alert.rule, Alert.state, func.count())
                .where(Alert.rule.in_(rules), Alert.first_at >= start)
                .group_by(Alert.region_code, Alert.rule, Alert.state)):
            counts[region][rule] += int(n)
            if state in ACTIVE:
                active[region] += int(n)
    prefectures: list[dict[str, Any]] = [
        {"code": code, "name": name, "alerts": sum(counts[code].values()), "open": active[code],
         "by_rule": dict(counts[code])} for code, name in names.items()]
    prefectures.sort(key=lambda p: (-p["alerts"], -p["open"], p["code"]))
    return {"day": day.isoformat(), "total": sum(p["alerts"] for p in prefectures),
            "open": sum(p["open"] for p in prefectures), "prefectures": prefectures}


@router.get("/reports/employment", response_model=list[EmploymentOut],
            summary="Post-training employment per institution against the provincial median (clause 八)")
def employment(scope: Reader, db: Db,
               institution_id: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None) -> list[dict[str, Any]]:
    with db.session() as session:
        query = select(InstitutionEmployment, Institution.name).join(
            Institution, Institution.id == InstitutionEmployment.institution_id).order_by(
            InstitutionEmployment.shortfall.desc(), InstitutionEmployment.institution_id)
        if institution_id is not None:
            query = query.where(InstitutionEmployment.institution_id == institution_id)
        return [{"institution_id": e.institution_id, "institution_name": name, "insurance_period": e.insurance_period,
                 "completed": e.completed, "employed": e.employed,
                 "rate": round(e.employed / e.completed, 4) if e.completed else None, "median_rate": e.median_rate,
                 "shortfall": e.shortfall, "computed_at": e.computed_at} for e, name in session.execute(query)]


@router.post("/classes/{class_id}/payment", status_code=201, response_model=PaymentOut, responses=errors(404, 409),
             summary="Mark an ended class payable: cross-checked once more; refused while a cross-check alert on it "
                     "is open or a trainee's eligibility awaits review")
def mark(class_id: RecordIdPath, body: PaymentIn, scope: Payer, db: Db, settings: SettingsDep) -> dict[str, Any]:
    return mark_payable(db, settings, class_id, scope.principal.name, body.note)


@router.get("/classes/{class_id}/payment-list.xlsx", response_class=Response, responses={
    **file_response(XLSX, description="拨付清单 Excel 文件"), **errors(404, 409)},
    summary="The payable class's payment list, stating the cross-check date and the register periods relied on")
def payment_xlsx(class_id: RecordIdPath, scope: Reader, db: Db, settings: SettingsDep) -> Response:
    with db.session() as session:
        ensure_class(session, scope, class_id)
    cls, statement, rows = payment_list(db, settings, class_id)
    data = to_xlsx("拨付清单", PAYMENT_COLUMNS, rows, preamble=statement)
    return download(db, data, XLSX, f"拨付清单_{cls['code']}.xlsx")

