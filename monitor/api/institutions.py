"""Training institutions (培训机构): registration, the list in scope, the blacklist."""


from typing import Any

from fastapi import APIRouter
from sqlalchemy import select

from models.clock import utc_now
from models.domain import (
    BlacklistIn,
    InstitutionIn,
)
from models.errors import errors
from models.params import RecordIdPath
from models.scope import (
    institution_clause,
)
from models.tables import (
    Institution,
)
from monitor.api.common import check_region, get_or_404, insert
from monitor.api.deps import Admin, Db, Reader
from monitor.api.schemas.registration import InstitutionBlacklistOut, InstitutionCreatedOut, InstitutionOut
from monitor.services.blacklist import decide_blacklist

router = APIRouter(prefix="/api/v1", tags=["registration"])


@router.post("/institutions", status_code=201, responses=errors(409), response_model=InstitutionCreatedOut)
def create_institution(body: InstitutionIn, scope: Admin, db: Db) -> dict[str, Any]:
    with db.session() as session:
        check_region(session, body.region_code)
        row = insert(session, Institution(**body.model_dump(), blacklisted=False, blacklist_reason="",
                                          created_at=utc_now()),
                     "DUPLICATE_LICENCE", f"办学许可证号 {body.licence_no} 已登记")
        return {"id": row.id, **body.model_dump(), "blacklisted": False}


@router.get("/institutions", response_model=list[InstitutionOut])
def list_institutions(scope: Reader, db: Db) -> list[dict[str, Any]]:
    with db.session() as session:
        return [{"id": i.id, "name": i.name, "licence_no": i.licence_no, "region_code": i.region_code,
                 "contact_phone": i.contact_phone, "blacklisted": i.blacklisted, "blacklist_reason": i.blacklist_reason}
                for i in session.scalars(select(Institution).where(institution_clause(scope))
                                         .order_by(Institution.id))]


@router.put("/institutions/{institution_id}/blacklist", response_model=InstitutionBlacklistOut)
def set_institution_blacklist(institution_id: RecordIdPath, body: BlacklistIn, scope: Admin, db: Db) -> dict[str, Any]:
    with db.session() as session:
        row = get_or_404(session, Institution, institution_id, "UNKNOWN_INSTITUTION", "培训机构")
        decide_blacklist(session, row, body, scope.principal.name)
        return {"id": row.id, "blacklisted": row.blacklisted, "blacklist_reason": row.blacklist_reason}
