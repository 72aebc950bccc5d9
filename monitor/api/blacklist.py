"""The blacklist's history: every decision with its evidence, who made it and when (clauses 九, 十三, 十九)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter
from sqlalchemy import select

from models.domain import Role
from models.params import Limit
from models.scope import Scope, access
from models.tables import BlacklistDecision
from monitor.api.deps import Db
from monitor.api.schemas.dispatch import BlacklistDecisionOut
from monitor.services.blacklist import decision_out

router = APIRouter(prefix="/api/v1", tags=["registration"])

Viewers = Annotated[Scope, access(Role.ADMIN, Role.OPERATOR, Role.AUDITOR)]


@router.get("/blacklist", response_model=list[BlacklistDecisionOut], summary="Blacklist decisions, newest first")
def list_decisions(scope: Viewers, db: Db, limit: Limit = 50,
                   subject_kind: Literal["institution", "teacher"] | None = None) -> list[dict[str, Any]]:
    with db.session() as session:
        query = select(BlacklistDecision).order_by(BlacklistDecision.id.desc()).limit(limit)
        if subject_kind:
            query = query.where(BlacklistDecision.subject_kind == subject_kind)
        return [decision_out(d) for d in session.scalars(query)]
