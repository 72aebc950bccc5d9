"""An institution's findings and its objections (异议) over HTTP: the site reads what was found against it and
objects to an alert closed against it; a second person of the center decides."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from sqlalchemy import select

from models.clock import utc_now
from models.dispatch import ObjectionDecisionIn, ObjectionIn
from models.domain import Role
from models.errors import errors
from models.params import Limit, RecordIdPath
from models.scope import Scope, SiteCaller, access, get_in_scope
from models.tables import Alert, Objection
from monitor.adapters.storage import begin_write
from monitor.api.common import get_in_scope_for_change
from monitor.api.deps import Db, SettingsDep
from monitor.api.schemas.objections import ObjectionOut, SiteFindingsOut
from monitor.decisions.objections import Decision
from monitor.services.objections import decide_objection, objections_out, site_findings, submit_objection

router = APIRouter(prefix="/api/v1", tags=["objections"])

Readers = Annotated[Scope, access(Role.SITE, Role.OPERATOR, Role.ADMIN, Role.AUDITOR)]
Deciders = Annotated[Scope, access(Role.OPERATOR, Role.ADMIN)]


@router.get("/site/findings", response_model=SiteFindingsOut,
            summary="The institution's findings, newest first: its alerts with their anomalies (figures, thresholds, "
                    "model version, its own photos), filed forms (digest to verify), objections; blacklist decisions")
def findings(scope: SiteCaller, db: Db, page: Annotated[int, Query(ge=1, le=10_000)] = 1,
             per_page: Annotated[int, Query(ge=1, le=100)] = 20,
             objectable: Annotated[bool, Query(description="only the alerts it may object to now")] = False,
             ) -> dict[str, Any]:
    with db.session() as session:
        return site_findings(session, scope.institution_id or -1, page, per_page, objectable)


def one(session: Any, objection: Objection, scope: Scope) -> dict[str, Any]:
    return objections_out(session, [objection], for_site=scope.role is Role.SITE)[0]


@router.post("/objections", status_code=201, response_model=ObjectionOut, responses=errors(404, 409, 422),
             summary="Object to an alert of the institution's class closed as a confirmed violation or as could-not-"
                     "verify (a reason of substance; one per closing); the center must decide by the deadline")
def create_objection(body: ObjectionIn, scope: SiteCaller, db: Db, settings: SettingsDep) -> dict[str, Any]:
    with db.session() as session:
        alert = get_in_scope_for_change(session, scope, Alert, body.alert_id, "UNKNOWN_ALERT", "告警")
        objection = submit_objection(session, alert, body.reason, scope.principal, settings.objection_decide_days)
        return one(session, objection, scope)


@router.get("/objections", response_model=list[ObjectionOut],
            summary="Objections, newest first: a site its own, the center all (filter by state, or overdue ones)")
def list_objections(scope: Readers, db: Db, limit: Limit = 50,
                    state: Literal["submitted", "upheld", "rejected"] | None = None,
                    overdue: bool | None = None) -> list[dict[str, Any]]:
    with db.session() as session:
        query = select(Objection).where(scope.of_classes(Objection.class_id))
        if state:
            query = query.where(Objection.state == state)
        if overdue is not None:
            late = (Objection.state == "submitted") & (Objection.decide_by < utc_now())
            query = query.where(late if overdue else ~late)
        rows = list(session.scalars(query.order_by(Objection.id.desc()).limit(limit)))
        return objections_out(session, rows, for_site=scope.role is Role.SITE)


@router.get("/objections/{objection_id}", response_model=ObjectionOut, responses=errors(404),
            summary="One objection with its deadline and decision")
def get_objection(objection_id: RecordIdPath, scope: Readers, db: Db) -> dict[str, Any]:
    with db.session() as session:
        return one(session, get_in_scope(session, scope, Objection, objection_id, "UNKNOWN_OBJECTION", "异议"), scope)


@router.post("/objections/{objection_id}/decide", response_model=ObjectionOut, responses=errors(403, 404, 409, 422),
             summary="Decide an objection (a second person: never who closed the alert nor anyone who acted on it): "
                     "upheld reopens the alert for the center to re-examine, rejected lets the finding stand")
def decide(objection_id: RecordIdPath, body: ObjectionDecisionIn, scope: Deciders, db: Db) -> dict[str, Any]:
    with db.session() as session:
        begin_write(session)  # SQLite: the write lock before any read (PostgreSQL: the row locks below)
        found = get_in_scope(session, scope, Objection, objection_id, "UNKNOWN_OBJECTION", "异议")
        # The alert's row first, then the objection's (the order every alert change takes): of two decisions at
        # once, one decides and the other finds it decided.
        alert = get_in_scope_for_change(session, scope, Alert, found.alert_id, "UNKNOWN_ALERT", "告警")
        session.refresh(found, with_for_update=True)
        decide_objection(session, found, alert, Decision(body.decision), body.note, scope.principal)
        return one(session, found, scope)
