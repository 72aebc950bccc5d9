"""An alert's lifecycle over HTTP: its detail and history, dispatch, dismiss, reopen (operators); accept, arrive,
phone and close (the inspector who accepted it); the inspector's own alerts."""

from __future__ import annotations

import random
from typing import Annotated, Any

from fastapi import APIRouter
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from models.clock import utc_now
from models.dispatch import ArriveIn, CloseIn, DispatchIn, FixIn, NoteIn
from models.domain import Role
from models.errors import ApiError, errors
from models.params import Limit, UploadIdPath
from models.scope import CAPABILITY_ROLES, Capability, Scope, access
from models.tables import (
    Alert,
    AlertPage,
    AlertTransition,
    Inspection,
    Institution,
    PhoneCheck,
    Staff,
    TrainingClass,
    Venue,
)
from monitor.api.common import get_in_scope_for_change
from monitor.api.deps import Center, Db, SettingsDep
from monitor.api.schemas.dispatch import AlertDetailOut
from monitor.decisions.alert_lifecycle import STATE_NAMES, Action, AlertState, Outcome, judge_close
from monitor.services.alerts import alert_subjects
from monitor.services.dispatch import Actor, accept_alert, ensure_assignee, judge_arrival, page_alert, transition
from monitor.services.events import class_context
from monitor.services.inspections import alert_contradictions, close_evidence

router = APIRouter(prefix="/api/v1", tags=["dispatch"])

Operators = Annotated[Scope, access(*CAPABILITY_ROLES[Capability.DISPATCH_ALERTS])]
Workers = Annotated[Scope, access(Role.INSPECTOR, Role.OPERATOR, Role.ADMIN)]
Inspector = Annotated[Scope, access(Role.INSPECTOR)]
ERRORS = errors(404, 409)


def load_alert(session: Session, scope: Scope, alert_id: int, lock: bool = False) -> Alert:
    """The alert, if the caller may see its class (never a recused inspector); else 404. `lock`: for a change, the
    row is locked first (one writer at a time per alert: two accepts cannot both win)."""
    return get_in_scope_for_change(session, scope, Alert, alert_id, "UNKNOWN_ALERT", "告警", lock)


def arrival_of(steps: list[AlertTransition]) -> str | None:
    """How the alert's last arrival lies against the fence (None before any arrival), from its loaded history."""
    arrivals = [t for t in steps if t.action == Action.ARRIVE.value]
    if not arrivals:
        return None
    return str((arrivals[-1].fix or {}).get("fence_result", "unproven"))


def alert_detail(session: Session, alert: Alert) -> dict[str, Any]:
    cls = session.get(TrainingClass, alert.class_id)
    assert cls is not None
    context = class_context(session, cls)
    venue, institution = session.get(Venue, cls.venue_id), session.get(Institution, cls.institution_id)
    pages = list(session.scalars(select(AlertPage).where(AlertPage.alert_id == alert.id).order_by(AlertPage.id)))
    names = dict(session.execute(select(Staff.id, Staff.name).where(Staff.id.in_({p.staff_id for p in pages}))).all())
    steps = list(session.scalars(select(AlertTransition).where(AlertTransition.alert_id == alert.id)
                                 .order_by(AlertTransition.id)))
    check_ids = list(session.scalars(select(PhoneCheck.id).where(PhoneCheck.alert_id == alert.id)
                                     .order_by(PhoneCheck.id)))
    inspection_ids = list(session.scalars(select(Inspection.id).where(Inspection.alert_id == alert.id)
                                          .order_by(Inspection.id)))
    return {
        "id": alert.id, "rule": alert.rule, "severity": alert.severity, "class_id": alert.class_id,
        "class_name": context["class_name"], "institution_name": context["institution_name"],
        "venue": {"lat": context["venue"]["lat"], "lon": context["venue"]["lon"],
                  "radius_m": context["venue"]["radius_m"], "name": context["venue_name"],
                  "address": venue.address if venue else "", "county_name": context["county_name"]},
        "institution_phone": institution.contact_phone if institution else "",
        "subjects": alert_subjects(session, alert.id),
        "county_code": context["county_code"], "state": alert.state,
        "state_name": STATE_NAMES[AlertState(alert.state)], "outcome": alert.outcome,
        "assignee_staff_id": alert.assignee_staff_id, "count": alert.count, "open_count": alert.open_count,
        "first_at": alert.first_at.isoformat(), "last_at": alert.last_at.isoformat(),
        "transitions": [{"id": t.id, "action": t.action, "from_state": t.from_state, "to_state": t.to_state,
                         "actor": t.actor, "actor_role": t.actor_role, "staff_id": t.staff_id, "outcome": t.outcome,
                         "note": t.note, "at": t.created_at.isoformat(), "fix": t.fix} for t in steps],
        "phone_check_ids": check_ids,
        "inspection_ids": inspection_ids,
        # Only an alert with both a phone check and a form can contradict itself: no queries for the others.
        "contradictions": alert_contradictions(session, alert.id) if check_ids and inspection_ids else [],
        "arrival": arrival_of(steps),
        "pages": [{"id": p.id, "staff_id": p.staff_id, "staff_name": names.get(p.staff_id, ""), "level": p.level,
                   "round": p.round, "paged_at": p.paged_at.isoformat(), "deadline": p.deadline.isoformat(),
                   "state": p.state, "answered_at": p.answered_at.isoformat() if p.answered_at else None}
                  for p in pages],
    }


@router.get("/alerts/{alert_id}", response_model=AlertDetailOut, responses=errors(404),
            summary="An alert with its full history (who, when, why) and pages")
def get_alert(alert_id: UploadIdPath, scope: Center, db: Db) -> dict[str, Any]:
    with db.session() as session:
        return alert_detail(session, load_alert(session, scope, alert_id))


@router.post("/alerts/{alert_id}/dispatch", response_model=AlertDetailOut, responses=errors(404, 409),
             summary="Send the alert: to the inspector chosen, or to one drawn at random among the eligible")
def dispatch_alert(alert_id: UploadIdPath, body: DispatchIn, scope: Operators, db: Db,
                   settings: SettingsDep) -> dict[str, Any]:
    with db.session() as session:
        alert = load_alert(session, scope, alert_id, lock=True)
        if alert.state != AlertState.OPEN:
            raise ApiError(409, "ALERT_STATE", f"告警当前为「{STATE_NAMES[AlertState(alert.state)]}」，不能派发")
        pick = page_alert(session, alert, settings, random.SystemRandom(), utc_now(), Actor.of(scope.principal),
                          only=body.staff_id, restart=True)
        if not pick.staff_ids:
            raise ApiError(409, "NO_INSPECTOR", "当前没有在岗且无需回避的抽查人员可派")
        return alert_detail(session, alert)


def act(db: Any, scope: Scope, alert_id: int, action: Action, note: str | None = None,
        outcome: Outcome | None = None, fix: FixIn | None = None) -> dict[str, Any]:
    with db.session() as session:
        alert = load_alert(session, scope, alert_id, lock=True)
        if action in (Action.ARRIVE, Action.PHONE, Action.CLOSE):
            ensure_assignee(alert, scope.principal)
        arrival = judge_arrival(session, alert, fix) if action is Action.ARRIVE else None
        transition(session, alert, action, Actor.of(scope.principal), note, outcome, fix=arrival)
        return alert_detail(session, alert)


@router.post("/alerts/{alert_id}/dismiss", response_model=AlertDetailOut, responses=ERRORS,
             summary="Close the alert without sending anyone (a note is required)")
def dismiss_alert(alert_id: UploadIdPath, body: NoteIn, scope: Operators, db: Db) -> dict[str, Any]:
    return act(db, scope, alert_id, Action.DISMISS, body.note)


@router.post("/alerts/{alert_id}/reopen", response_model=AlertDetailOut, responses=ERRORS,
             summary="Reopen a closed alert (a note is required)")
def reopen_alert(alert_id: UploadIdPath, body: NoteIn, scope: Operators, db: Db) -> dict[str, Any]:
    return act(db, scope, alert_id, Action.REOPEN, body.note)


@router.post("/alerts/{alert_id}/accept", response_model=AlertDetailOut, responses=ERRORS,
             summary="The inspector paged accepts the alert")
def accept(alert_id: UploadIdPath, scope: Inspector, db: Db) -> dict[str, Any]:
    with db.session() as session:
        alert = load_alert(session, scope, alert_id, lock=True)
        accept_alert(session, alert, Actor.of(scope.principal))
        return alert_detail(session, alert)


@router.post("/alerts/{alert_id}/arrive", response_model=AlertDetailOut, responses=ERRORS,
             summary="The inspector is on site, with the phone's fix: judged against the venue's fence (a visit "
                     "from outside is marked on the alert, not refused; without a fix it is recorded as unproven)")
def arrive(alert_id: UploadIdPath, scope: Workers, db: Db, body: ArriveIn | None = None) -> dict[str, Any]:
    return act(db, scope, alert_id, Action.ARRIVE, fix=body.fix if body else None)


@router.post("/alerts/{alert_id}/phone", response_model=AlertDetailOut, responses=ERRORS,
             summary="The inspector starts phoning trainees")
def phone(alert_id: UploadIdPath, scope: Workers, db: Db) -> dict[str, Any]:
    return act(db, scope, alert_id, Action.PHONE)


@router.post("/alerts/{alert_id}/close", response_model=AlertDetailOut, responses=errors(403, 404, 409, 422),
             summary="Close the alert with its outcome and a note: a confirmed violation needs a done phone check, "
                     "a filed form, or the center's decision with a note of substance; could-not-verify a reason")
def close(alert_id: UploadIdPath, body: CloseIn, scope: Workers, db: Db) -> dict[str, Any]:
    outcome = Outcome(body.outcome)
    with db.session() as session:  # the alert locked while its records are judged and it is closed: a form or
        alert = load_alert(session, scope, alert_id, lock=True)  # call filed meanwhile waits, then finds it closed
        ensure_assignee(alert, scope.principal)
        done = len(session.scalars(select(PhoneCheck.id).where(PhoneCheck.alert_id == alert.id,
                                                               PhoneCheck.state == "done")).all())
        if alert.state == AlertState.PHONING and outcome is not Outcome.COULD_NOT_VERIFY and not done:
            raise ApiError(409, "PHONE_CHECK_NOT_DONE", "电话抽查尚未完成（须接通不少于规定人数），不能以该结果办结；"
                           "可继续抽查，或以「无法核实」办结")
        evidence = close_evidence(session, alert.id, done, scope.role in (Role.OPERATOR, Role.ADMIN))
        refusal = judge_close(outcome, body.note, evidence)
        if refusal is not None:
            raise ApiError(422, refusal.code, refusal.message)
        transition(session, alert, Action.CLOSE, Actor.of(scope.principal), body.note, outcome)
        return alert_detail(session, alert)


@router.get("/my/alerts", response_model=list[AlertDetailOut], summary="The inspector's pages and alerts")
def my_alerts(scope: Inspector, db: Db, limit: Limit = 50) -> list[dict[str, Any]]:
    staff_id = scope.principal.staff_id or -1
    with db.session() as session:
        paged = select(AlertPage.alert_id).where(AlertPage.staff_id == staff_id)
        alerts = session.scalars(select(Alert).where(
            or_(Alert.id.in_(paged), Alert.assignee_staff_id == staff_id), scope.of_classes(Alert.class_id))
            .order_by(Alert.updated_at.desc(), Alert.id.desc()).limit(limit))
        return [alert_detail(session, a) for a in alerts]
