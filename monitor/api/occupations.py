"""Occupations (职业/工种) with whether a training standard, an evaluation standard and body exist."""


from typing import Any

from fastapi import APIRouter
from sqlalchemy import select

from models.domain import (
    OccupationIn,
)
from models.errors import errors
from models.tables import (
    Occupation,
)
from monitor.api.common import insert
from monitor.api.deps import Admin, Db, Reader
from monitor.api.schemas.registration import OccupationOut

router = APIRouter(prefix="/api/v1", tags=["registration"])


@router.post("/occupations", status_code=201, responses=errors(409), response_model=OccupationOut)
def create_occupation(body: OccupationIn, scope: Admin, db: Db) -> dict[str, Any]:
    with db.session() as session:
        row = insert(session, Occupation(**body.model_dump()), "DUPLICATE_OCCUPATION",
                     f"职业（工种）代码 {body.code} 已登记")
        return {"id": row.id, **body.model_dump()}


@router.get("/occupations", response_model=list[OccupationOut])
def list_occupations(scope: Reader, db: Db) -> list[dict[str, Any]]:
    with db.session() as session:
        return [{"id": o.id, "code": o.code, "name": o.name,
                 "has_training_standard": o.has_training_standard,
                 "has_evaluation_standard": o.has_evaluation_standard,
                 "has_evaluation_body": o.has_evaluation_body}
                for o in session.scalars(select(Occupation).order_by(Occupation.id))]
