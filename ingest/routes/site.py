"""The site's phone page's first question: my classes running today, with their sessions and rosters."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from sqlalchemy import select

from ingest.context import Ingest
from ingest.routes.uploads import site_institution
from ingest.schemas import SiteClassOut
from models.clock import SHANGHAI, utc_now
from models.scope import SiteCaller
from models.tables import ClassSession, RosterEntry, Trainee, TrainingClass

router = APIRouter(prefix="/api/v1", tags=["ingest"])


@router.get("/site/classes", summary="The site's classes running today, with sessions and roster",
            response_model=list[SiteClassOut])
def site_classes(scope: SiteCaller, ctx: Ingest) -> list[dict[str, Any]]:
    institution_id = site_institution(scope)
    today = utc_now().astimezone(SHANGHAI).date()
    with ctx.db.session() as session:
        classes = session.scalars(
            select(TrainingClass).where(
                TrainingClass.institution_id == institution_id,
                TrainingClass.start_date <= today,
                TrainingClass.end_date >= today,
            ).order_by(TrainingClass.id)
        ).all()
        out = []
        for cls in classes:
            trainees = session.execute(
                select(Trainee.id, Trainee.name).join(RosterEntry, RosterEntry.trainee_id == Trainee.id)
                .where(RosterEntry.class_id == cls.id).order_by(Trainee.id)
            ).all()
            sessions = session.scalars(select(ClassSession).where(ClassSession.class_id == cls.id)).all()
            out.append({
                "id": cls.id, "code": cls.code, "name": cls.name,
                "sessions": [{"name": s.name, "start": s.start_local, "end": s.end_local} for s in sessions],
                "trainees": [{"id": t.id, "name": t.name} for t in trainees],
            })
        return out
