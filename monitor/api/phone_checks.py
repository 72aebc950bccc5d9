"""Phone spot checks over HTTP: drawn for an alert's class, calls recorded, completed with enough trainees reached."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from zoneinfo import available_timezones

from fastapi import APIRouter, File, Form, Response, UploadFile
from sqlalchemy import select
from sqlalchemy.orm import Session

from ingest.adapters.multipart import InMemoryFormRoute
from models.dispatch import CallIn
from models.domain import Role
from models.errors import ApiError, errors
from models.params import UploadIdPath
from models.scope import Scope, access
from models.tables import PhoneCheck
from monitor.adapters.cdr import read_cdrs
from monitor.api.common import get_in_scope_for_change
from monitor.api.deps import Center, Db, SettingsDep
from monitor.api.dispatch import load_alert
from monitor.api.schemas.dispatch import CdrImportOut, PhoneCheckOut
from monitor.decisions.alert_lifecycle import Action, AlertState
from monitor.services.dispatch import Actor, ensure_assignee, ensure_staff, transition
from monitor.services.phone_checks import (
    complete_phone_check,
    import_cdrs,
    phone_check_out,
    record_call,
    start_phone_check,
)

router = APIRouter(prefix="/api/v1", tags=["dispatch"], route_class=InMemoryFormRoute)

Workers = Annotated[Scope, access(Role.INSPECTOR, Role.OPERATOR, Role.ADMIN)]
CdrImporters = Annotated[Scope, access(Role.OPERATOR, Role.ADMIN)]
ERRORS = errors(404, 409)


def load_check(session: Session, scope: Scope, check_id: int, lock: bool = False) -> PhoneCheck:
    """The check, if the caller may see its class; else 404. `lock`: for a change (a call, the completion), the row
    is locked first, so that of several at once one completes it and the others find it done."""
    return get_in_scope_for_change(session, scope, PhoneCheck, check_id, "UNKNOWN_PHONE_CHECK", "电话抽查", lock)


def is_caller(check: PhoneCheck, scope: Scope) -> bool:
    """Whether `scope` is the inspector making this check's calls (the alert's assignee, from any of their tokens):
    the only reader of the trainees' whole numbers and the only one who records the calls and completes the check.
    A region-only inspector token is never the caller (None == None once gave one the whole numbers), and nobody is
    the caller of a check drawn before callers were kept that names no inspector."""
    return (scope.role is Role.INSPECTOR and check.staff_id is not None
            and check.staff_id == scope.principal.staff_id)


def ensure_caller(check: PhoneCheck, scope: Scope) -> None:
    """403 unless `scope` is the check's caller (a call is evidence of who phoned: nobody records calls for another,
    operators included); a check that names no inspector (drawn by the center before 0037) may be finished by the
    center, as then. 409 when the check is no longer open."""
    ensure_staff(scope.principal)
    legacy = check.staff_id is None
    if not (is_caller(check, scope) or legacy and scope.role in (Role.OPERATOR, Role.ADMIN)):
        raise ApiError(403, "NOT_CALLER", f"只有发起该电话抽查的人员（{check.inspector}）可以记录通话和完成抽查")
    if check.state != "open":
        raise ApiError(409, "PHONE_CHECK_DONE", "该电话抽查已完成或已随告警办结")


@router.post("/alerts/{alert_id}/phone-checks", status_code=201, response_model=PhoneCheckOut,
             responses={200: {"model": PhoneCheckOut, "description": "the alert's open phone check (never redrawn)"},
                        **ERRORS},
             summary="Draw trainees to phone from the class roster (with their state today), once per alert")
def start(alert_id: UploadIdPath, scope: Workers, db: Db, settings: SettingsDep, response: Response) -> dict[str, Any]:
    with db.session() as session:
        alert = load_alert(session, scope, alert_id, lock=True)
        ensure_assignee(alert, scope.principal)
        open_check = session.scalar(select(PhoneCheck).where(PhoneCheck.alert_id == alert.id,
                                                             PhoneCheck.state == "open"))
        if open_check is not None:  # drawing again until the list suits would defeat the draw
            response.status_code = 200
            return phone_check_out(session, open_check, settings.phone_check_min_trainees,
                                   with_phones=is_caller(open_check, scope))
        actor = Actor.of(scope.principal)
        if alert.state in (AlertState.ACCEPTED, AlertState.ON_SITE):
            transition(session, alert, Action.PHONE, actor)
        elif alert.state in (AlertState.CLOSED, AlertState.RESOLVED):
            raise ApiError(409, "ALERT_STATE", "告警已办结或已自动消除，不能再发起电话抽查")
        elif alert.state != AlertState.PHONING:
            raise ApiError(409, "ALERT_STATE", "告警须先接单，才能发起电话抽查")
        check = start_phone_check(session, alert, actor, settings.phone_check_draw)
        return phone_check_out(session, check, settings.phone_check_min_trainees,
                               with_phones=is_caller(check, scope))


@router.get("/phone-checks/{check_id}", response_model=PhoneCheckOut, responses=errors(404),
            summary="A phone check: whom to call, the calls, whether it is done")
def get_check(check_id: UploadIdPath, scope: Center, db: Db, settings: SettingsDep) -> dict[str, Any]:
    with db.session() as session:
        check = load_check(session, scope, check_id)
        return phone_check_out(session, check, settings.phone_check_min_trainees, with_phones=is_caller(check, scope))


@router.post("/phone-checks/{check_id}/calls", status_code=201, response_model=PhoneCheckOut, responses=ERRORS,
             summary="Record one call, timed by the page: reached or not, present or not, what was said")
def add_call(check_id: UploadIdPath, body: CallIn, scope: Workers, db: Db, settings: SettingsDep) -> dict[str, Any]:
    with db.session() as session:
        check = load_check(session, scope, check_id, lock=True)
        ensure_caller(check, scope)
        record_call(session, check, body, Actor.of(scope.principal))
        return phone_check_out(session, check, settings.phone_check_min_trainees,
                               with_phones=is_caller(check, scope))


@router.post("/phone-checks/{check_id}/complete", response_model=PhoneCheckOut, responses=ERRORS,
             summary="Finish the phone check (refused with fewer trainees reached than the minimum)")
def complete(check_id: UploadIdPath, scope: Workers, db: Db, settings: SettingsDep) -> dict[str, Any]:
    with db.session() as session:
        check = load_check(session, scope, check_id, lock=True)
        ensure_caller(check, scope)
        complete_phone_check(session, check, settings.phone_check_min_trainees)
        return phone_check_out(session, check, settings.phone_check_min_trainees,
                               with_phones=is_caller(check, scope))


@router.post("/phone-checks/cdr-imports", status_code=201, response_model=CdrImportOut, responses=errors(413, 422),
             summary="Import a call center's call detail records (CSV) and mark recorded calls confirmed or not")
def import_cdr_file(scope: CdrImporters, db: Db,
                    file: Annotated[UploadFile, File(description="the CDR export (CSV, UTF-8 or GB18030)")],
                    fmt: Annotated[Literal["asterisk", "freeswitch", "generic"],
                                   Form(alias="format", description="asterisk | freeswitch | generic")] = "generic",
                    zone: Annotated[str, Form(max_length=40, description="the PBX's time zone, for times "
                                              "written without one")] = "Asia/Shanghai") -> dict[str, Any]:
    if zone not in available_timezones():
        raise ApiError(422, "UNKNOWN_ZONE", f"未知的时区 {zone}")
    data = file.file.read()
    records = read_cdrs(data, fmt, zone)
    with db.session() as session:
        entry = import_cdrs(session, data, fmt, records, scope.principal.name)
        return {"id": entry.id, "sha256": entry.sha256, "format": entry.format, "rows": entry.rows,
                "confirmed": entry.confirmed, "unconfirmed": entry.unconfirmed,
                "imported_at": entry.imported_at.isoformat()}
