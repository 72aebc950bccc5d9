"""Spot-check staff (抽查人员): registration, on-duty periods and declared ties to institutions (clause 十六)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter
from sqlalchemy import select
from sqlalchemy.orm import Session

from models.clock import utc_now
from models.dispatch import DutyIn, SignInIn, SignInLinkIn, StaffIn, TieIn
from models.domain import Role
from models.errors import ApiError, errors
from models.params import RecordIdPath
from models.scope import Scope, access, public_route
from models.tables import Institution, Staff, StaffDuty, StaffTie
from monitor.adapters.qr import qr_svg
from monitor.adapters.tokens import issue_sign_in_link, redeem_sign_in_link
from monitor.api.common import check_region, get_or_404
from monitor.api.deps import Admin, Db, SettingsDep
from monitor.api.schemas.dispatch import DutyOut, SessionOut, SignInLinkOut, StaffOut, TieOut
from monitor.services.dispatch import Actor, hand_back_on_tie

router = APIRouter(prefix="/api/v1", tags=["dispatch"])

Managers = Annotated[Scope, access(Role.ADMIN, Role.OPERATOR)]  # who keeps the duty roster
Viewers = Annotated[Scope, access(Role.ADMIN, Role.OPERATOR, Role.AUDITOR)]
Declarers = Annotated[Scope, access(Role.ADMIN, Role.INSPECTOR)]  # ties: the admin, or the inspector themselves


def staff_out(session: Session, s: Staff) -> dict[str, Any]:
    now = utc_now()
    on_duty = session.scalar(select(StaffDuty.id).where(StaffDuty.staff_id == s.id, StaffDuty.starts_at <= now,
                                                        StaffDuty.ends_at > now).limit(1)) is not None
    ties = sorted(session.scalars(select(StaffTie.institution_id).where(StaffTie.staff_id == s.id)))
    return {"id": s.id, "name": s.name, "phone": s.phone, "level": s.level, "region_code": s.region_code,
            "active": s.active, "on_duty": on_duty, "tied_institution_ids": ties}


def check_staff_region(session: Session, level: str, code: str) -> None:
    if level == "province":
        if code != "530000":
            raise ApiError(422, "UNKNOWN_REGION", "省级抽查人员的区划代码为 530000")
        return
    check_region(session, code, level)


@router.post("/staff", status_code=201, response_model=StaffOut, summary="Register a spot-check inspector")
def create_staff(body: StaffIn, scope: Admin, db: Db) -> dict[str, Any]:
    with db.session() as session:
        check_staff_region(session, body.level, body.region_code)
        staff = Staff(name=body.name, phone=body.phone, level=body.level, region_code=body.region_code,
                      active=True, created_at=utc_now())
        session.add(staff)
        session.flush()
        return staff_out(session, staff)


@router.get("/staff", response_model=list[StaffOut], summary="Spot-check staff, with who is on duty now")
def list_staff(scope: Viewers, db: Db) -> list[dict[str, Any]]:
    with db.session() as session:
        return [staff_out(session, s) for s in session.scalars(select(Staff).order_by(Staff.id))]


@router.get("/staff/me", response_model=StaffOut, responses=errors(404), summary="The inspector this token names")
def get_me(scope: Annotated[Scope, access(Role.INSPECTOR)], db: Db) -> dict[str, Any]:
    with db.session() as session:
        staff = session.get(Staff, scope.principal.staff_id) if scope.principal.staff_id else None
        if staff is None:
            raise ApiError(404, "NO_STAFF", "该令牌未绑定抽查人员")
        return staff_out(session, staff)


@router.post("/staff/{staff_id}/duty", status_code=201, response_model=DutyOut, responses=errors(404),
             summary="Add an on-duty period")
def add_duty(staff_id: RecordIdPath, body: DutyIn, scope: Managers, db: Db) -> dict[str, Any]:
    with db.session() as session:
        get_or_404(session, Staff, staff_id, "UNKNOWN_STAFF", "抽查人员")
        duty = StaffDuty(staff_id=staff_id, starts_at=body.starts_at, ends_at=body.ends_at)
        session.add(duty)
        session.flush()
        return {"id": duty.id, "staff_id": staff_id, "starts_at": duty.starts_at.isoformat(),
                "ends_at": duty.ends_at.isoformat()}


@router.get("/staff/{staff_id}/duty", response_model=list[DutyOut], responses=errors(404),
            summary="The inspector's on-duty periods that have not ended")
def list_duty(staff_id: RecordIdPath, scope: Viewers, db: Db) -> list[dict[str, Any]]:
    with db.session() as session:
        get_or_404(session, Staff, staff_id, "UNKNOWN_STAFF", "抽查人员")
        rows = session.scalars(select(StaffDuty).where(StaffDuty.staff_id == staff_id,
                                                       StaffDuty.ends_at > utc_now()).order_by(StaffDuty.starts_at))
        return [{"id": d.id, "staff_id": staff_id, "starts_at": d.starts_at.isoformat(),
                 "ends_at": d.ends_at.isoformat()} for d in rows]


@router.post("/staff/{staff_id}/ties", status_code=201, response_model=TieOut, responses=errors(404, 409),
             summary="Declare a tie to an institution (own, spouse's, child's): recusal from its classes")
def declare_tie(staff_id: RecordIdPath, body: TieIn, scope: Declarers, db: Db) -> dict[str, Any]:
    if scope.role is Role.INSPECTOR and scope.principal.staff_id != staff_id:
        raise ApiError(404, "UNKNOWN_STAFF", f"抽查人员 {staff_id} 不存在")
    with db.session() as session:
        get_or_404(session, Staff, staff_id, "UNKNOWN_STAFF", "抽查人员")
        get_or_404(session, Institution, body.institution_id, "UNKNOWN_INSTITUTION", "培训机构")
        same = session.scalar(select(StaffTie.id).where(StaffTie.staff_id == staff_id,
                                                        StaffTie.institution_id == body.institution_id,
                                                        StaffTie.relation == body.relation))
        if same is not None:
            raise ApiError(409, "TIE_ALREADY_DECLARED", f"该关联关系已于此前申报（编号 {same}），无需重复申报")
        tie = StaffTie(staff_id=staff_id, institution_id=body.institution_id, relation=body.relation, note=body.note,
                       declared_at=utc_now())
        session.add(tie)
        session.flush()
        hand_back_on_tie(session, staff_id, body.institution_id, Actor.of(scope.principal))
        return {"id": tie.id, "staff_id": staff_id, "institution_id": tie.institution_id, "relation": tie.relation,
                "note": tie.note, "declared_at": tie.declared_at.isoformat()}


@router.post("/staff/{staff_id}/sign-in-links", status_code=201, response_model=SignInLinkOut,
             responses=errors(404, 409),
             summary="Issue a one-time sign-in link (and its QR code) for a staff member's phone: no token to paste")
def create_sign_in_link(staff_id: RecordIdPath, scope: Admin, db: Db, settings: SettingsDep,
                        body: SignInLinkIn | None = None) -> dict[str, Any]:
    minutes = body.valid_minutes if body and body.valid_minutes else settings.sign_in_link_minutes
    with db.session() as session:
        code, link = issue_sign_in_link(session, staff_id, scope.principal.name, timedelta(minutes=minutes))
        staff = session.get(Staff, staff_id)
        assert staff is not None
        url = f"{settings.public_url.rstrip('/')}/inspector#signin={code}"
        return {"staff_id": staff_id, "name": staff.name, "url": url, "code": code,
                "expires_at": link.expires_at.isoformat(), "qr_svg": qr_svg(url)}


# Outside /api/v1, where every route needs a token: the one-time code is this route's credential.
auth_router = APIRouter(tags=["dispatch"])


@auth_router.post("/auth/sign-in", response_model=SessionOut, responses=errors(401), dependencies=[public_route()],
             summary="Open a session with a one-time sign-in link's code (no token needed; the code works once)")
def sign_in(body: SignInIn, db: Db, settings: SettingsDep) -> dict[str, Any]:
    with db.session() as session:
        token, staff, expires_at = redeem_sign_in_link(session, body.code,
                                                       timedelta(hours=settings.staff_session_hours))
        return {"token": token, "staff_id": staff.id, "name": staff.name, "expires_at": expires_at.isoformat()}
