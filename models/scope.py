"""Who may see what: the caller's scope (roles, institution, regions), declared by every route, and its SQL."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any, Protocol, TypeVar

from fastapi import Depends, Request, params
from sqlalchemy import ColumnElement, Select, and_, exists, false, or_, select, true
from sqlalchemy.orm import InstrumentedAttribute, Session
from starlette.concurrency import run_in_threadpool

from models.audit import AuditActor, current_actor
from models.domain import ROLE_NAMES, Principal, Role
from models.errors import ApiError
from models.tables import (
    CheckIn,
    CheckInFrame,
    FaceTemplate,
    Inspection,
    InspectionPhoto,
    Institution,
    OnlineHeartbeat,
    OnlineSession,
    RosterEntry,
    Snapshot,
    TrainingClass,
    Venue,
)


class OfAClass(Protocol):
    """A row that belongs to a class (alerts, inspections, phone checks, online sessions…)."""

    @property
    def class_id(self) -> int: ...


T = TypeVar("T", bound=OfAClass)
ALL_ROLES = tuple(Role)
CENTER_ROLES = (Role.OPERATOR, Role.ADMIN, Role.AUDITOR, Role.INSPECTOR)


class Capability(StrEnum):
    """What a desk page may offer: each names the roles its routes admit (the routes and GET /api/v1/me read
    CAPABILITY_ROLES, so a page never keeps its own list of roles)."""

    READ_REPORTS = "read_reports"  # the ledger, the daily report, cross-checks and their exports
    DECIDE_REVIEWS = "decide_reviews"  # confirm or reject an item of the review queue
    MARK_PAYABLE = "mark_payable"  # mark an ended class payable (the payment decision)
    DISPATCH_ALERTS = "dispatch_alerts"  # page, assign, escalate or close an alert from the wall


CAPABILITY_ROLES: dict[Capability, tuple[Role, ...]] = {
    Capability.READ_REPORTS: (Role.AUDITOR, Role.ADMIN, Role.OPERATOR),
    Capability.DECIDE_REVIEWS: (Role.OPERATOR, Role.ADMIN),
    Capability.MARK_PAYABLE: (Role.ADMIN,),
    Capability.DISPATCH_ALERTS: (Role.OPERATOR, Role.ADMIN),
}


def capabilities_of(role: Role) -> list[str]:
    """The capabilities a role has, by name."""
    return [c.value for c, roles in CAPABILITY_ROLES.items() if role in roles]


def region_prefix(code: str) -> str:
    """The code prefix shared by a region and everything in it: 530000 -> 53, 530100 -> 5301."""
    if code.endswith("0000"):
        return code[:2]
    if code.endswith("00"):
        return code[:4]
    return code


@dataclass(frozen=True)
class Scope:
    """What one caller may see: everything, one institution's objects (sites) or some regions' (inspectors)."""

    principal: Principal
    institution_id: int | None = None
    region_prefixes: tuple[str, ...] | None = None
    recused: frozenset[int] = frozenset()  # institutions an inspector is tied to: their classes do not exist for them

    @classmethod
    def of(cls, principal: Principal) -> Scope:
        if principal.role is Role.SITE:
            return cls(principal, institution_id=principal.institution_id if principal.institution_id else -1)
        if principal.role is Role.INSPECTOR:
            return cls(principal, region_prefixes=tuple(region_prefix(c) for c in principal.region_codes),
                       recused=principal.recused_institutions)
        return cls(principal)

    @property
    def role(self) -> Role:
        return self.principal.role

    @property
    def unrestricted(self) -> bool:
        return self.institution_id is None and self.region_prefixes is None

    def allows_region(self, region_code: str | None) -> bool:
        """Whether an object in `region_code` (a prefecture or county code) is within the regions."""
        if self.region_prefixes is None:
            return True
        return any((region_code or "").startswith(p) for p in self.region_prefixes)

    def allows(self, institution_id: int | None, region_code: str | None) -> bool:
        """Whether an object of `institution_id` located in `region_code` is visible to this caller."""
        if self.institution_id is not None and institution_id != self.institution_id:
            return False
        if institution_id is not None and institution_id in self.recused:
            return False
        return self.allows_region(region_code)

    def allows_event(self, region_code: str | None, institution_id: int | None, staff_id: int | None) -> bool:
        """Whether a live event reaches this caller: its region, no recused institution, and an event addressed to
        one inspector (a page) only to that inspector (and the province's center roles)."""
        if staff_id is not None and self.role is Role.INSPECTOR and staff_id != self.principal.staff_id:
            return False
        return self.allows(institution_id, region_code)

    def event_clause(self, region: Any, institution: Any, staff: Any) -> ColumnElement[bool]:
        """SQL over events (their region, institution and addressee columns): what `allows_event` lets through."""
        clauses = [self.region_clause(region)]
        if self.recused:
            clauses.append(or_(institution.is_(None), institution.not_in(sorted(self.recused))))
        if self.role is Role.INSPECTOR:
            clauses.append(or_(staff.is_(None), staff == (self.principal.staff_id or -1)))
        return and_(*clauses)

    def region_clause(self, column: InstrumentedAttribute[str] | Any) -> ColumnElement[bool]:
        """SQL: `column` (a region code) lies within the caller's regions."""
        if self.region_prefixes is None:
            return true()
        if not self.region_prefixes:
            return false()
        return or_(*[column.startswith(p, autoescape=True) for p in self.region_prefixes])

    def class_clause(self) -> ColumnElement[bool]:
        """SQL over TrainingClass: the classes this caller may see."""
        clauses: list[ColumnElement[bool]] = []
        if self.institution_id is not None:
            clauses.append(TrainingClass.institution_id == self.institution_id)
        if self.region_prefixes is not None:
            clauses.append(TrainingClass.venue_id.in_(select(Venue.id).where(self.region_clause(Venue.region_code))))
        if self.recused:
            clauses.append(TrainingClass.institution_id.not_in(sorted(self.recused)))
        return true() if not clauses else and_(*clauses)

    def class_ids(self) -> Select[Any]:
        """SQL: the ids of the classes this caller may see (for `column.in_(...)`)."""
        return select(TrainingClass.id).where(self.class_clause())

    def of_classes(self, column: InstrumentedAttribute[int] | Any) -> ColumnElement[bool]:
        """SQL: `column` (a class id) names a class this caller may see."""
        return true() if self.unrestricted else column.in_(self.class_ids())


def refuse_missing(code: str, what: str, ident: object) -> ApiError:
    """The 404 for an object that does not exist or lies outside the caller's scope (the two look the same)."""
    return ApiError(404, code, f"{what} {ident} 不存在")


def ensure_class(session: Session, scope: Scope, class_id: int) -> TrainingClass:
    """The class, if it exists and the caller may see it; else 404 UNKNOWN_CLASS."""
    row = session.get(TrainingClass, class_id)
    if row is None or not (scope.unrestricted or session.scalar(select(scope.of_classes(TrainingClass.id))
                                                                 .where(TrainingClass.id == class_id))):
        raise refuse_missing("UNKNOWN_CLASS", "班次", class_id)
    return row


def ensure_in_class(session: Session, scope: Scope, class_id: int, code: str, what: str, ident: object) -> None:
    """404 (`code`) unless the caller may see class `class_id`, which the object `ident` belongs to."""
    if scope.unrestricted:
        return
    if not session.scalar(select(scope.of_classes(TrainingClass.id)).where(TrainingClass.id == class_id)):
        raise refuse_missing(code, what, ident)


def get_in_scope(session: Session, scope: Scope, model: type[T], ident: int, code: str, what: str) -> T:
    """The row of `model` (anything with a `class_id`) with id `ident`, if the caller may see its class; else the
    404 `code` (a missing row and one outside the scope look the same)."""
    row = session.get(model, ident)
    if row is None:
        raise refuse_missing(code, what, ident)
    ensure_in_class(session, scope, row.class_id, code, what, ident)
    return row


def trainee_visible(session: Session, scope: Scope, trainee_id: int) -> bool:
    """Whether the trainee is on the roster of a class the caller may see (everyone for unrestricted roles)."""
    if scope.unrestricted:
        return True
    return bool(session.scalar(select(exists().where(
        RosterEntry.trainee_id == trainee_id, scope.of_classes(RosterEntry.class_id)))))


def institution_clause(scope: Scope) -> ColumnElement[bool]:
    """SQL over Institution: a site sees its own; an inspector those registered in or running classes in its regions."""
    clauses: list[ColumnElement[bool]] = []
    if scope.institution_id is not None:
        clauses.append(Institution.id == scope.institution_id)
    if scope.region_prefixes is not None:
        clauses.append(or_(scope.region_clause(Institution.region_code),
                           Institution.id.in_(select(TrainingClass.institution_id).where(scope.class_clause()))))
    if scope.recused:  # an inspector's declared ties: the institution does not exist for them
        clauses.append(Institution.id.not_in(sorted(scope.recused)))
    return true() if not clauses else and_(*clauses)


def venue_clause(scope: Scope) -> ColumnElement[bool]:
    """SQL over Venue: a site sees its institution's venues; an inspector the venues in its regions."""
    clauses: list[ColumnElement[bool]] = []
    if scope.institution_id is not None:
        clauses.append(Venue.institution_id == scope.institution_id)
    if scope.region_prefixes is not None:
        clauses.append(scope.region_clause(Venue.region_code))
    if scope.recused:
        clauses.append(Venue.institution_id.not_in(sorted(scope.recused)))
    return true() if not clauses else and_(*clauses)


def evidence_visible(session: Session, scope: Scope, sha256: str) -> bool:
    """Whether a photo belongs to an upload, frame, heartbeat, inspection or enrolment the caller may see."""
    if scope.unrestricted:
        return True
    frames = select(CheckIn.class_id).join(CheckInFrame, CheckInFrame.checkin_id == CheckIn.id).where(
        CheckInFrame.sha256 == sha256)
    beats = select(OnlineSession.class_id).join(OnlineHeartbeat, OnlineHeartbeat.session_id == OnlineSession.id).where(
        OnlineHeartbeat.photo_sha256 == sha256)
    inspected = select(Inspection.class_id).where(or_(
        Inspection.signature_sha256 == sha256, Inspection.pdf_sha256 == sha256,
        Inspection.id.in_(select(InspectionPhoto.inspection_id).where(InspectionPhoto.sha256 == sha256))))
    owners = [select(CheckIn.class_id).where(CheckIn.photo_sha256 == sha256),
              select(Snapshot.class_id).where(Snapshot.photo_sha256 == sha256), frames, beats]
    if scope.institution_id is None:
        owners.append(inspected)  # inspection records are the center's, never the inspected site's
    for query in owners:
        if session.scalar(select(exists().where(TrainingClass.id.in_(query), scope.class_clause()))):
            return True
    if scope.institution_id is not None:
        return False  # sites see only their own uploads, not enrolment photos
    template = session.scalar(select(FaceTemplate).where(FaceTemplate.photo_sha256 == sha256).limit(1))
    return template is not None and template.person_kind == "trainee" and trainee_visible(
        session, scope, template.person_id)


def forbid_role(principal: Principal, roles: tuple[Role, ...]) -> ApiError:
    names = "、".join(ROLE_NAMES[r] for r in roles)
    return ApiError(403, "FORBIDDEN_ROLE", f"当前身份（{ROLE_NAMES[principal.role]}）无权访问，需要：{names}")


TOKEN_FRESH_S = 1.0
"""A token looked up before its request's body arrived is looked up again when the body took longer than this: a
token revoked while a photo trickled in does not store it."""


def access(*roles: Role) -> params.Depends:
    """The dependency every route declares: the caller's Scope, or 401 (no valid token) / 403 (another role).

    The token is checked by `request.app.state.authenticate`, which the composition root provides."""
    allowed = roles or ALL_ROLES

    async def scope_of_caller(request: Request) -> Scope:
        state = request.scope.get("state", {})
        checked = state.get("principal")  # looked up before the body was read (monitor/api/http.py)
        if isinstance(checked, Principal) and time.monotonic() - state.get("principal_at", 0.0) < TOKEN_FRESH_S:
            principal = checked
        else:  # the database read off the event loop (again after a slow body: a token revoked meanwhile is refused)
            state.pop("principal", None)
            authenticate: Callable[[Request], Principal] = request.app.state.authenticate
            principal = await run_in_threadpool(authenticate, request)
        if principal.role not in allowed:
            raise forbid_role(principal, allowed)
        return Scope.of(principal)

    async def acting_caller(scope: Scope = Depends(scope_of_caller)) -> Scope:  # noqa: B008
        # On the request's own task (not a worker thread), so the route and its threads see who acts.
        current_actor.set(AuditActor(scope.principal.name, scope.role.value, scope.principal.token_id))
        return scope

    acting_caller.__scope_roles__ = allowed  # type: ignore[attr-defined]  # what the route matrix test reads
    return Depends(acting_caller)  # type: ignore[no-any-return]


# The declarations routes share: a training site's caller, and any caller with a valid token.
SiteCaller = Annotated[Scope, access(Role.SITE)]
AnyCaller = Annotated[Scope, access()]


def public_route() -> params.Depends:
    """The declaration of a route anyone may read without a token (the public notice)."""

    def no_scope() -> None:
        return None

    no_scope.__scope_roles__ = ()  # type: ignore[attr-defined]
    return Depends(no_scope)  # type: ignore[no-any-return]


def declared_roles(dependant: Any) -> tuple[Role, ...] | None:
    """The roles a route's access() declaration admits (() for a public route), or None if it declares none.

    `dependant` is the route's FastAPI `Dependant` (its `route.dependant`)."""
    pending = list(dependant.dependencies)
    while pending:
        dep = pending.pop()
        roles = getattr(dep.call, "__scope_roles__", None)
        if roles is not None:
            return tuple(roles)
        pending.extend(dep.dependencies)
    return None
