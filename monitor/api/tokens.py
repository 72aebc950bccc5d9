"""Bearer tokens: issued by an admin and shown once; listed (holder and scope, never the token) and revoked."""

from typing import Annotated, Any

from fastapi import APIRouter, Query
from sqlalchemy import select

from models.clock import utc_now
from models.domain import ROLE_NAMES, Role, TokenIn, TokenRevokeIn
from models.errors import errors
from models.params import Limit, RecordIdPath
from models.scope import CAPABILITY_ROLES, AnyCaller, capabilities_of
from models.tables import ApiToken
from monitor.adapters.tokens import hash_token, issue_token, list_tokens, revoke_token
from monitor.api.deps import Admin, Db
from monitor.api.schemas.registration import MeOut, TokenInfoOut, TokenOut

router = APIRouter(prefix="/api/v1", tags=["registration"])


def token_info(token: ApiToken) -> dict[str, Any]:
    now = utc_now()
    return {"id": token.id, "role": token.role, "name": token.name, "institution_id": token.institution_id,
            "region_codes": list(token.region_codes or []), "staff_id": token.staff_id,
            "created_at": token.created_at, "expires_at": token.expires_at, "revoked_at": token.revoked_at,
            "revoked_reason": token.revoked_reason,
            "active": token.revoked_at is None and (token.expires_at is None or token.expires_at > now)}


@router.get("/me", response_model=MeOut, summary="Who the caller's token names: role and its zh-CN name, holder, scope")
def get_me(scope: AnyCaller) -> dict[str, Any]:
    p = scope.principal
    return {"role": p.role.value, "role_name": ROLE_NAMES[p.role], "name": p.name, "institution_id": p.institution_id,
            "region_codes": list(p.region_codes), "staff_id": p.staff_id, "may": capabilities_of(p.role),
            "capability_roles": {c.value: [ROLE_NAMES[r] for r in roles] for c, roles in CAPABILITY_ROLES.items()}}


@router.post("/tokens", status_code=201, summary="Issue a bearer token (shown once)", response_model=TokenOut)
def create_token(body: TokenIn, scope: Admin, db: Db) -> dict[str, Any]:
    with db.session() as session:
        token = issue_token(session, body.role, body.name, body.institution_id, body.region_codes, body.staff_id)
        token_id = session.scalar(select(ApiToken.id).where(ApiToken.token_hash == hash_token(token)))
    return {"id": token_id, "token": token, "role": body.role.value, "name": body.name}


@router.get("/tokens", response_model=list[TokenInfoOut],
            summary="Tokens by id, a page at a time: holder, scope, issued, expiry, revocation (never the token)")
def get_tokens(scope: Admin, db: Db, role: Role | None = None,
               active: Annotated[bool, Query(description="only tokens neither revoked nor expired")] = False,
               after_id: Annotated[int, Query(ge=0, le=2**31 - 1, description="the last id of the previous page")] = 0,
               limit: Limit = 100) -> list[dict[str, Any]]:
    with db.session() as session:
        return [token_info(t) for t in list_tokens(session, role, active, after_id, limit)]


@router.post("/tokens/{token_id}/revoke", response_model=TokenInfoOut, responses=errors(404, 409),
             summary="Revoke a token now (a lost phone, a person who left): its requests are refused from then on, "
                     "an open live feed with it is closed within seconds; recorded in the audit chain")
def post_revoke(token_id: RecordIdPath, body: TokenRevokeIn, scope: Admin, db: Db) -> dict[str, Any]:
    with db.session() as session:
        return token_info(revoke_token(session, token_id, body.reason))
