"""Bearer tokens, issued by an admin and shown once."""


from typing import Any

from fastapi import APIRouter

from models.domain import (
    TokenIn,
)
from monitor.adapters.tokens import issue_token
from monitor.api.deps import Admin, Db
from monitor.api.schemas.registration import TokenOut

router = APIRouter(prefix="/api/v1", tags=["registration"])


@router.post("/tokens", status_code=201, summary="Issue a bearer token (shown once)", response_model=TokenOut)
def create_token(body: TokenIn, scope: Admin, db: Db) -> dict[str, Any]:
    with db.session() as session:
        token = issue_token(session, body.role, body.name, body.institution_id, body.region_codes, body.staff_id)
    return {"token": token, "role": body.role.value, "name": body.name}
