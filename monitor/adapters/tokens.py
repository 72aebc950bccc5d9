"""Bearer tokens: issued once in plain text, stored as SHA-256, resolved to a role and its scope."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable, Iterable

from fastapi import Request
from sqlalchemy import Connection, bindparam, select
from sqlalchemy.orm import Session

from models.clock import utc_now
from models.domain import Principal, Role
from models.errors import ApiError
from models.tables import ApiToken, Institution, Region, Staff, StaffTie
from monitor.adapters.storage import Database


def hash_token(token: str) -> str:
    """The stored form of a token (tokens carry 256 random bits, so a plain SHA-256 suffices)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def issue_token(
    session: Session,
    role: Role,
    name: str,
    institution_id: int | None = None,
    region_codes: Iterable[str] = (),
    staff_id: int | None = None,
) -> str:
    """Create a token with its scope and return it in plain text (the only time it is seen).

    An inspector's token may name the staff member (`staff_id`): it then covers that member's region."""
    codes = sorted(set(region_codes))
    if staff_id is not None:
        staff = session.get(Staff, staff_id)
        if role is not Role.INSPECTOR or staff is None:
            raise ApiError(422, "STAFF_NOT_ALLOWED", "只有抽查人员令牌可以绑定已登记的抽查人员")
        codes = sorted(set(codes) | {staff.region_code})
    if role is Role.SITE:
        if institution_id is None or session.get(Institution, institution_id) is None:
            raise ApiError(422, "SITE_TOKEN_NEEDS_INSTITUTION", "培训机构令牌必须指定已登记的机构")
    elif institution_id is not None:
        raise ApiError(422, "SCOPE_NOT_ALLOWED", "只有培训机构令牌可以绑定机构")
    if role is Role.INSPECTOR:
        if not codes:
            raise ApiError(422, "INSPECTOR_NEEDS_REGIONS", "抽查人员令牌必须指定负责的州市或县区")
        known = set(session.scalars(select(Region.code).where(Region.code.in_(codes))))
        if unknown := [c for c in codes if c not in known]:
            raise ApiError(422, "UNKNOWN_REGION", f"未知的行政区划代码：{', '.join(unknown)}")
    token = "mon_" + secrets.token_urlsafe(32)
    session.add(
        ApiToken(
            token_hash=hash_token(token),
            role=role.value,
            name=name,
            institution_id=institution_id,
            region_codes=codes,
            staff_id=staff_id,
            created_at=utc_now(),
        )
    )
    session.flush()
    return token


TOKEN_BY_HASH = select(ApiToken.id, ApiToken.role, ApiToken.name, ApiToken.institution_id, ApiToken.region_codes,
                       ApiToken.staff_id, ApiToken.revoked_at).where(
    ApiToken.token_hash == bindparam("token_hash"))  # every request
TIES_OF_STAFF = select(StaffTie.institution_id).where(StaffTie.staff_id == bindparam("staff_id"))


def resolve_token(session: Session | Connection, token: str) -> Principal | None:
    """The principal a token stands for, or None if it is unknown or revoked."""
    row = session.execute(TOKEN_BY_HASH, {"token_hash": hash_token(token)}).first()
    if row is None or row.revoked_at is not None:
        return None
    return Principal(
        token_id=row.id,
        role=Role(row.role),
        name=row.name,
        institution_id=row.institution_id,
        region_codes=tuple(row.region_codes or ()),
        staff_id=row.staff_id,
        recused_institutions=frozenset(session.scalars(TIES_OF_STAFF, {"staff_id": row.staff_id}))
        if row.staff_id is not None else frozenset(),
    )


def bearer_from_header(value: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header value."""
    if not value:
        return None
    scheme, _, token = value.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def build_authenticator(db: Database) -> Callable[..., Principal]:
    """A FastAPI dependency that turns the request's bearer token into a Principal or a 401."""

    def authenticate(request: Request) -> Principal:
        token = bearer_from_header(request.headers.get("authorization"))
        if token is None:
            raise ApiError(401, "AUTH_REQUIRED", "缺少访问令牌（Authorization: Bearer …）")
        with db.connection() as connection:  # every request: a Core read, no ORM session
            principal = resolve_token(connection, token)
        if principal is None:
            raise ApiError(401, "AUTH_INVALID", "访问令牌无效或已被吊销")
        return principal

    return authenticate
