"""双随机一公开 over HTTP: draws (center), redo, inspectors' assignments, publication after the window."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter
from sqlalchemy import select

from models.clock import SHANGHAI, utc_now
from models.domain import Role
from models.errors import ApiError, errors
from models.params import EARLIEST_DAY, LATEST_DAY, RecordIdPath
from models.scope import Scope, access, public_route
from models.tables import Draw, TrainingClass
from monitor.api.deps import Db, SettingsDep
from monitor.api.schemas.draws import AssignmentOut, DrawIn, DrawOut, DrawRedoOut, MyDrawOut, PublicDrawOut
from monitor.services.dispatch import ensure_staff
from monitor.services.draws import assignments_for, draw_out, make_draw, public_draw, redo_draw

router = APIRouter(prefix="/api/v1", tags=["dispatch"])
public = APIRouter(tags=["public"])

Operators = Annotated[Scope, access(Role.OPERATOR, Role.ADMIN)]
Viewers = Annotated[Scope, access(Role.OPERATOR, Role.ADMIN, Role.AUDITOR)]


@router.post("/draws", status_code=201, response_model=DrawOut, responses=errors(409),
             summary="Draw a day's classes and inspectors: the daily draw (once; the clock draws at MONITOR_DRAW_AT), "
                     "or a supplementary draw over the classes in session that no earlier draw of the day had")
def post_draw(body: DrawIn, scope: Operators, db: Db, settings: SettingsDep) -> dict[str, Any]:
    today = utc_now().astimezone(SHANGHAI).date()
    try:
        day = date.fromisoformat(body.day) if body.day else today
    except ValueError as exc:
        raise ApiError(422, "INVALID_DAY", f"日期无效：{body.day}") from exc
    if not EARLIEST_DAY <= day <= LATEST_DAY:
        raise ApiError(422, "INVALID_DAY", f"日期 {day.isoformat()} 超出范围（{EARLIEST_DAY} 至 {LATEST_DAY}）")
    if day != today:  # a later day's draw told its targets in advance (and took that day's one daily draw); an
        # earlier day's could not be inspected and was published at once, its window starting after its end
        why = ("提前抽取会让抽查对象提前泄露" if day > today else "该日已过去，抽中的班次已无法当天检查")
        raise ApiError(422, "DRAW_DAY_NOT_TODAY",
                       f"只能抽取今天（北京时间 {today.isoformat()}）的检查对象，不能抽取 {day.isoformat()}：{why}")
    with db.session() as session:
        return draw_out(make_draw(session, settings, day, scope.principal.name, kind=body.kind))


@router.get("/draws", response_model=list[DrawOut], summary="The draws, newest first")
def list_draws(scope: Viewers, db: Db) -> list[dict[str, Any]]:
    with db.session() as session:
        return [draw_out(d) for d in session.scalars(select(Draw).order_by(Draw.day.desc(), Draw.seq)
                                                        .limit(60))]


@router.get("/draws/{draw_id}/redo", response_model=DrawRedoOut, responses=errors(404),
            summary="Redo the draw from its stored seed, candidates and roster")
def get_redo(draw_id: RecordIdPath, scope: Viewers, db: Db) -> dict[str, Any]:
    with db.session() as session:
        draw = session.get(Draw, draw_id)
        if draw is None:
            raise ApiError(404, "UNKNOWN_DRAW", f"抽取记录 {draw_id} 不存在")
        return redo_draw(draw)


@router.get("/my/draws", response_model=list[MyDrawOut], summary="The inspector's drawn classes")
def my_draws(scope: Annotated[Scope, access(Role.INSPECTOR)], db: Db) -> list[dict[str, Any]]:
    staff_id = scope.principal.staff_id
    with db.session() as session:
        out = []
        draws = list(session.scalars(select(Draw).order_by(Draw.day.desc(), Draw.seq).limit(14)))
        drawn = {int(c) for d in draws for c, s in d.inspectors.items() if s is not None and s == staff_id}
        recused = set(session.scalars(select(TrainingClass.id).where(
            TrainingClass.id.in_(drawn), TrainingClass.institution_id.in_(scope.recused)))) if scope.recused else set()
        for d in draws:  # (a class of an institution the inspector declared a tie to since is not theirs to see)
            mine = [int(c) for c, s in d.inspectors.items() if s is not None and s == staff_id
                    and int(c) not in recused]
            if mine:
                out.append({"day": d.day.isoformat(), "class_ids": mine})
        return out


@router.get("/my/assignments", response_model=list[AssignmentOut], responses=errors(403),
            summary="The inspector's 双随机 assignments still open: class, institution, venue, until when, what to do")
def my_assignments(scope: Annotated[Scope, access(Role.INSPECTOR)], db: Db) -> list[dict[str, Any]]:
    ensure_staff(scope.principal)  # a draw names a person; a region token has none
    staff_id = scope.principal.staff_id
    assert staff_id is not None
    with db.session() as session:
        return assignments_for(session, staff_id, scope.recused, utc_now())


@public.get("/public/draws.json", response_model=list[PublicDrawOut], dependencies=[public_route()],
            summary="双随机 draws whose inspection window has passed (public): classes and institutions drawn, "
                    "the forms filed on them, seed, candidates and algorithm version to re-run them "
                    "(scripts/rerun_draw.py)")
def published_draws(db: Db) -> list[dict[str, Any]]:
    with db.session() as session:
        return [public_draw(session, d) for d in session.scalars(
            select(Draw).where(Draw.window_ends_at <= utc_now()).order_by(Draw.day.desc(), Draw.seq).limit(60))]
