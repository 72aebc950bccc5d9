"""Bearer tokens: issued once in plain text, stored as SHA-256, resolved to a role and its scope."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta

from fastapi import Request
from sqlalchemy import Connection, bindparam, select, update
from sqlalchemy.orm import Session

from models.audit import append_audit
from models.clock import utc_now
from models.domain import Principal, Role
from models.errors import ApiError
from models.tables import ApiToken, Institution, Region, SignInLink, Staff, StaffTie
from monitor.adapters.storage import Database, begin_write


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
    expires_at: datetime | None = None,
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
    if role is not Role.INSPECTOR and codes:  # no other role is scoped by regions: it would read as limited, not be
        raise ApiError(422, "SCOPE_NOT_ALLOWED",
                       "只有抽查人员令牌可以指定负责区域（region_codes）：监控调度员、管理员、审计员的令牌覆盖全省，"
                       "培训机构令牌绑定机构")
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
            expires_at=expires_at,
        )
    )
    session.flush()
    return token


def revoke_token(session: Session, token_id: int, reason: str) -> ApiToken:
    """Revoke a token now, with the reason (who did it is the audit chain's entry for the change): every request
    and open live feed made with it is refused from then on. Of two revocations at once, one revokes and the other
    finds it revoked (the row locked first). 404 UNKNOWN_TOKEN, 409 TOKEN_ALREADY_REVOKED."""
    begin_write(session)
    token = session.get(ApiToken, token_id, with_for_update=True)
    if token is None:
        raise ApiError(404, "UNKNOWN_TOKEN", f"令牌 {token_id} 不存在")
    if token.revoked_at is not None:
        raise ApiError(409, "TOKEN_ALREADY_REVOKED", f"令牌 {token_id} 已于先前吊销")
    token.revoked_at, token.revoked_reason = utc_now(), reason.strip()
    session.flush()
    return token


def list_tokens(session: Session, role: Role | None, active_only: bool, after_id: int, limit: int) -> list[ApiToken]:
    """Tokens by id (a page after `after_id`), of one role or all; `active_only`: neither revoked nor expired."""
    query = select(ApiToken).where(ApiToken.id > after_id).order_by(ApiToken.id).limit(limit)
    if role is not None:
        query = query.where(ApiToken.role == role.value)
    if active_only:
        now = utc_now()
        query = query.where(ApiToken.revoked_at.is_(None),
                            ApiToken.expires_at.is_(None) | (ApiToken.expires_at > now))
    return list(session.scalars(query))


TOKEN_BY_HASH = select(ApiToken.id, ApiToken.role, ApiToken.name, ApiToken.institution_id, ApiToken.region_codes,
                       ApiToken.staff_id, ApiToken.revoked_at, ApiToken.expires_at).where(
    ApiToken.token_hash == bindparam("token_hash"))  # every request
TIES_OF_STAFF = select(StaffTie.institution_id).where(StaffTie.staff_id == bindparam("staff_id"))


def resolve_token(session: Session | Connection, token: str) -> Principal | None:
    """The principal a token stands for, or None if it is unknown or revoked."""
    row = session.execute(TOKEN_BY_HASH, {"token_hash": hash_token(token)}).first()
    if row is None or row.revoked_at is not None or (row.expires_at is not None and row.expires_at <= utc_now()):
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


SIGN_IN_REFUSED = ApiError(401, "SIGN_IN_LINK_INVALID", "登录链接无效、已使用或已过期，请联系管理员重新发放")


def issue_sign_in_link(session: Session, staff_id: int, issued_by: str, valid_for: timedelta) -> tuple[str, SignInLink]:
    """A one-time sign-in code for a staff member (128 random bits, stored as its SHA-256), valid for `valid_for`."""
    staff = session.get(Staff, staff_id)
    if staff is None:
        raise ApiError(404, "UNKNOWN_STAFF", f"抽查人员 {staff_id} 不存在")
    if not staff.active:
        raise ApiError(409, "STAFF_INACTIVE", "该抽查人员已停用，不能发放登录链接")
    code = secrets.token_urlsafe(16)
    now = utc_now()
    link = SignInLink(code_hash=hash_token(code), staff_id=staff_id, issued_by=issued_by, created_at=now,
                      expires_at=now + valid_for)
    session.add(link)
    session.flush()
    return code, link


def redeem_sign_in_link(session: Session, code: str, session_for: timedelta) -> tuple[str, Staff, datetime]:
    """Exchange a one-time code for a session token bound to its staff member, expiring after `session_for`; the
    code is claimed by a conditional UPDATE, so two phones racing with one link get one session between them."""
    now = utc_now()
    claimed = session.execute(
        update(SignInLink).where(SignInLink.code_hash == hash_token(code), SignInLink.used_at.is_(None),
                                 SignInLink.expires_at > now).values(used_at=now)
        .execution_options(synchronize_session=False))
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        raise SIGN_IN_REFUSED
    link = session.scalars(select(SignInLink).where(SignInLink.code_hash == hash_token(code))).one()
    append_audit(session, "sign_in_links.update", "sign_in_links", link.id, {"used_at": now})  # a Core update
    staff = session.get(Staff, link.staff_id)
    if staff is None or not staff.active:
        raise SIGN_IN_REFUSED
    expires_at = now + session_for
    token = issue_token(session, Role.INSPECTOR, staff.name, staff_id=staff.id, expires_at=expires_at)
    link.used_at = now  # (the identity map's copy, as the row now holds)
    link.token_id = session.scalars(select(ApiToken.id).where(ApiToken.token_hash == hash_token(token))).one()
    session.flush()
    return token, staff, expires_at


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
            raise ApiError(401, "AUTH_INVALID", "访问令牌无效、已过期或已被吊销")
        return principal

    return authenticate
