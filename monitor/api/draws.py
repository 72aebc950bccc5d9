"""双随机一公开 over HTTP: the day's draw (operators), its redo from the seed, and its publication once the
inspection window has passed (public, seed included); inspectors see only their own assignments; sites nothing."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter
from sqlalchemy import select

from models.clock import SHANGHAI, utc_now
from models.domain import Role
from models.errors import ApiError, errors
from models.params import RecordIdPath
from models.scope import Scope, access, public_route
from models.tables import Draw
from monitor.api.deps import Db, SettingsDep
from monitor.api.schemas.dispatch import DrawIn, DrawOut, DrawRedoOut, MyDrawOut
from monitor.services.draws import draw_out, make_draw, redo_draw

router = APIRouter(prefix="/api/v1", tags=["dispatch"])
public = APIRouter(tags=["public"])

Operators = Annotated[Scope, access(Role.OPERATOR, Role.ADMIN)]
Viewers = Annotated[Scope, access(Role.OPERATOR, Role.ADMIN, Role.AUDITOR)]


@router.post("/draws", status_code=201, response_model=DrawOut, responses=errors(409),
             summary="Draw a day's classes and inspectors (once a day; the clock draws at MONITOR_DRAW_HOUR)")
def post_draw(body: DrawIn, scope: Operators, db: Db, settings: SettingsDep) -> dict[str, Any]:
    try:
        day = date.fromisoformat(body.day) if body.day else utc_now().astimezone(SHANGHAI).date()
    except ValueError as exc:
        raise ApiError(422, "INVALID_DAY", f"日期无效：{body.day}") from exc
    with db.session() as session:
        return draw_out(make_draw(session, settings, day, scope.principal.name))


@router.get("/draws", response_model=list[DrawOut], summary="The draws, newest first")
def list_draws(scope: Viewers, db: Db) -> list[dict[str, Any]]:
    with db.session() as session:
        return [draw_out(d) for d in session.scalars(select(Draw).order_by(Draw.day.desc()).limit(60))]


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
        for d in session.scalars(select(Draw).order_by(Draw.day.desc()).limit(14)):
            mine = [int(c) for c, s in d.inspectors.items() if s is not None and s == staff_id]
            if mine:
                out.append({"day": d.day.isoformat(), "class_ids": mine})
        return out


@public.get("/public/draws.json", response_model=list[DrawOut], dependencies=[public_route()],
            summary="双随机 draws whose inspection window has passed, with their seeds (public)")
def published_draws(db: Db) -> list[dict[str, Any]]:
    with db.session() as session:
        return [draw_out(d) for d in session.scalars(select(Draw).where(Draw.window_ends_at <= utc_now())
                                                     .order_by(Draw.day.desc()).limit(60))]
