"""Dispatch: every alert transition recorded (who, when, why), new alerts paged to an on-duty inspector drawn at
random, unanswered pages escalated (the next inspector, then the level above); deadlines live in the database, so
a restart loses no timer."""

from __future__ import annotations

import logging
import random
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from models.clock import utc_now
from models.dispatch import FixIn
from models.domain import Datum, Principal, Role, Severity
from models.errors import ApiError
from models.tables import (
    Alert,
    AlertPage,
    AlertTransition,
    Anomaly,
    Institution,
    PhoneCheck,
    Staff,
    StaffDuty,
    StaffTie,
    TrainingClass,
    Venue,
)
from models.terms import EventKind
from monitor.adapters.storage import Database, begin_write
from monitor.decisions.alert_lifecycle import (
    OUTCOME_NAMES,
    STATE_NAMES,
    WORKING,
    Action,
    AlertState,
    Outcome,
    Refusal,
    next_state,
)
from monitor.decisions.dispatch import LEVEL_NAMES, ClassPlace, Inspector, Level, Pick, next_page
from monitor.decisions.geodesy import classify_fix, convert_to_wgs84
from monitor.services.alerts import (
    HANDLED,
    counts_after_false_alarm,
    reopen_anomalies,
    resolve_anomaly,
    undo_false_alarm,
)
from monitor.services.checkins import venue_signed_distance_m
from monitor.services.events import add_event, class_context
from monitor.settings import Settings

log = logging.getLogger(__name__)

ROUTER = "调度系统"  # the actor of transitions the system makes


@dataclass(frozen=True)
class Actor:
    """Who takes an action: a token's name and role (and the inspector it names), or the router."""

    name: str
    role: str
    staff_id: int | None = None
    token_id: int | None = None

    @classmethod
    def of(cls, principal: Principal) -> Actor:
        return cls(principal.name, principal.role.value, principal.staff_id, principal.token_id)


SYSTEM = Actor(ROUTER, "system")


def person_of(session: Session, actor: Actor) -> str:
    """The name a record prints for who did it: the staff member's registered name when the token is bound to one
    (whoever issued the token chose its name), else the token's name."""
    if actor.staff_id is not None and (staff := session.get(Staff, actor.staff_id)) is not None:
        return staff.name
    return actor.name


def transition(session: Session, alert: Alert, action: Action, actor: Actor, note: str | None = None,
               outcome: Outcome | None = None, now: datetime | None = None,
               fix: dict[str, Any] | None = None) -> AlertTransition:
    """Move the alert by `action` and record the step; 409 with the reason when the lifecycle does not allow it."""
    now = now or utc_now()
    target = next_state(AlertState(alert.state), action, note, outcome)
    if isinstance(target, Refusal):
        raise ApiError(409 if target.code == "ALERT_STATE" else 422, target.code, target.message)
    step = AlertTransition(alert_id=alert.id, action=action.value, from_state=alert.state, to_state=target.value,
                           actor=actor.name, actor_role=actor.role, staff_id=actor.staff_id,
                           outcome=outcome.value if outcome else None, note=(note or "").strip() or None,
                           created_at=now, fix=fix)
    session.add(step)
    alert.state, alert.updated_at = target, now
    if action is Action.CLOSE or action is Action.DISMISS:
        alert.outcome = (outcome or Outcome.FALSE_ALARM).value
    if action in (Action.REOPEN, Action.RETURN):
        alert.outcome, alert.assignee_staff_id = None, None
    if action in (Action.CLOSE, Action.DISMISS):
        # Handled: its anomalies no longer wait (the wall's counters say what is actually waiting).
        outcome_name = OUTCOME_NAMES[Outcome(alert.outcome or Outcome.FALSE_ALARM)]
        handled = f"{HANDLED}（{outcome_name}，{actor.name}）：{step.note or ''}"
        for anomaly in session.scalars(select(Anomaly).where(Anomaly.alert_id == alert.id, Anomaly.state == "open")):
            resolve_anomaly(session, anomaly, handled[:500])
        if alert.outcome == Outcome.FALSE_ALARM:  # what the site is told, and attendance, follow the decision
            session.flush()
            counts_after_false_alarm(session, alert)
    if action in (Action.REOPEN, Action.RETURN) and step.from_state == AlertState.CLOSED:
        reopen_anomalies(session, alert)
        undo_false_alarm(session, alert)
    if action in (Action.CLOSE, Action.DISMISS, Action.REOPEN, Action.RETURN):
        withdraw_pages(session, alert, now)
        # A phone check left unfinished ends with its alert: nothing stays open once nobody will finish it.
        # (row by row, so that the audit chain records each)
        for check in session.scalars(select(PhoneCheck).where(PhoneCheck.alert_id == alert.id,
                                                              PhoneCheck.state == "open")):
            check.state, check.completed_at = "abandoned", now
    cls = session.get(TrainingClass, alert.class_id)
    assert cls is not None
    add_event(session, EventKind.ALERT, class_context(session, cls), {
        "alert_id": alert.id, "rule": alert.rule, "severity": alert.severity, "state": alert.state,
        "state_name": STATE_NAMES[target], "action": action.value, "actor": actor.name, "outcome": alert.outcome,
        "assignee_staff_id": alert.assignee_staff_id, "note": step.note, "at": now.isoformat()})
    return step


def withdraw_pages(session: Session, alert: Alert, now: datetime) -> None:
    for page in session.scalars(select(AlertPage).where(AlertPage.alert_id == alert.id, AlertPage.state == "paged")):
        page.state, page.answered_at = "withdrawn", now


# -- routing -------------------------------------------------------------------------------------------------------
def load_inspectors(session: Session, at: datetime) -> list[Inspector]:
    """Every active inspector with their duty periods still running at `at` and their declared ties."""
    duty: dict[int, list[tuple[datetime, datetime]]] = defaultdict(list)
    for staff_id, starts, ends in session.execute(
            select(StaffDuty.staff_id, StaffDuty.starts_at, StaffDuty.ends_at).where(StaffDuty.ends_at > at)):
        duty[staff_id].append((starts, ends))
    ties: dict[int, set[int]] = defaultdict(set)
    for staff_id, institution_id in session.execute(select(StaffTie.staff_id, StaffTie.institution_id)):
        ties[staff_id].add(institution_id)
    return [Inspector(s.id, Level(s.level), s.region_code, tuple(duty[s.id]), frozenset(ties[s.id]), s.active)
            for s in session.scalars(select(Staff).where(Staff.active.is_(True)))]


def place_of(session: Session, alert: Alert) -> ClassPlace:
    cls = session.get(TrainingClass, alert.class_id)
    assert cls is not None
    venue = session.get(Venue, cls.venue_id)
    assert venue is not None
    return ClassPlace(venue.region_code, cls.institution_id)


def page_alert(session: Session, alert: Alert, settings: Settings, rng: random.Random, now: datetime,
               actor: Actor = SYSTEM, only: int | None = None, restart: bool = False,
               inspectors: list[Inspector] | None = None) -> Pick:
    """Page the next inspector(s) of the alert (or `only`, an inspector an operator chose); dispatched or escalated.
    With nobody left on the ladder the alert goes back to the center (open) with a note. `restart` (an operator
    sends it again) climbs the ladder from the bottom."""
    pages = list(session.scalars(select(AlertPage).where(AlertPage.alert_id == alert.id)))
    history = [] if restart else pages
    place = place_of(session, alert)
    if inspectors is None:  # the clock loads the roster once per pass and hands it in
        inspectors = load_inspectors(session, now)
    if only is not None:
        chosen = next((i for i in inspectors if i.staff_id == only), None)
        if chosen is None or not next_page([chosen], place, now, frozenset(), {}, 1, 1, rng).staff_ids:
            raise ApiError(422, "INSPECTOR_NOT_ELIGIBLE",
                           "该抽查人员不在岗、不负责该班次所在地区，或与该机构有利害关系需回避")
        pick = Pick(chosen.level, (only,))
    else:
        rounds = Counter(level for level, _ in {(Level(p.level), p.round) for p in history})
        how_many = settings.dispatch_high_parallel if alert.severity == Severity.HIGH else 1
        pick = next_page(inspectors, place, now, frozenset(p.staff_id for p in history), dict(rounds),
                         settings.dispatch_tries_per_level, how_many, rng)
    if pick.level is None:
        if alert.state == AlertState.DISPATCHED:  # nobody on the ladder accepted: the operators' again
            transition(session, alert, Action.RETURN, SYSTEM,
                       "各级抽查人员均未在规定时间内接单，已退回监控中心人工派发", now=now)
        return pick
    action = Action.DISPATCH if alert.state == AlertState.OPEN else Action.ESCALATE
    names = dict(session.execute(select(Staff.id, Staff.name).where(Staff.id.in_(pick.staff_ids))).all())
    round_no = max((p.round for p in pages), default=0) + 1
    deadline = now + timedelta(minutes=settings.dispatch_accept_minutes)
    for staff_id in pick.staff_ids:
        session.add(AlertPage(alert_id=alert.id, staff_id=staff_id, level=pick.level.value, round=round_no,
                              paged_at=now, deadline=deadline, state="paged"))
    who = "、".join(names[s] for s in pick.staff_ids)
    transition(session, alert, action, actor, f"第 {round_no} 轮派发（{LEVEL_NAMES[pick.level]}）：{who}", now=now)
    cls = session.get(TrainingClass, alert.class_id)
    assert cls is not None
    context = class_context(session, cls)
    for staff_id in pick.staff_ids:
        add_event(session, EventKind.PAGE, context, {
            "alert_id": alert.id, "rule": alert.rule, "severity": alert.severity, "staff_id": staff_id,
            "deadline": deadline.isoformat(), "level": pick.level.value, "at": now.isoformat()}, staff_id=staff_id)
    return pick




def accept_alert(session: Session, alert: Alert, actor: Actor, now: datetime | None = None) -> None:
    """The inspector takes the alert: their page accepted, the others' withdrawn. The same inspector accepting again
    (a retry whose answer was lost) changes nothing and is answered as the first time."""
    if actor.staff_id is None:
        raise ApiError(403, "STAFF_TOKEN_REQUIRED", "区域令牌只能查看；接单须使用绑定到抽查人员本人的令牌")
    now = now or utc_now()
    if alert.assignee_staff_id == actor.staff_id and alert.state in WORKING:
        return
    page = session.scalar(select(AlertPage).where(AlertPage.alert_id == alert.id, AlertPage.staff_id == actor.staff_id,
                                                  AlertPage.state == "paged"))
    if page is None and alert.assignee_staff_id is not None and alert.state in WORKING:
        raise ApiError(409, "ALREADY_TAKEN", "该告警已由其他抽查人员接单")
    if page is None:
        raise ApiError(409, "NOT_PAGED", "该告警当前未派发给您，或已超时转派")
    page.state, page.answered_at = "accepted", now
    alert.assignee_staff_id = actor.staff_id
    withdraw_pages(session, alert, now)
    transition(session, alert, Action.ACCEPT, actor, now=now)


def hand_back_on_tie(session: Session, staff_id: int, institution_id: int, actor: Actor,
                     now: datetime | None = None) -> list[int]:
    """A tie declared while the inspector holds a task of that institution hands it back (clause 十六): an alert
    they work returns to the center with a transition saying why (its open phone check abandoned), and a page they
    hold is withdrawn (the alert returns too when no other page is live). Returns the alerts handed back."""
    now = now or utc_now()
    institution = session.get(Institution, institution_id)
    why = f"抽查人员申报与「{institution.name if institution else institution_id}」存在关联，依规回避，任务退回监控中心"
    of_institution = select(TrainingClass.id).where(TrainingClass.institution_id == institution_id)
    working = select(Alert.id).where(Alert.assignee_staff_id == staff_id, Alert.state.in_(WORKING),
                                     Alert.class_id.in_(of_institution))
    paged = select(AlertPage.alert_id).where(AlertPage.staff_id == staff_id, AlertPage.state == "paged")
    handed = []
    for alert_id in sorted(set(session.scalars(working)) | set(session.scalars(
            select(Alert.id).where(Alert.id.in_(paged), Alert.class_id.in_(of_institution))))):
        alert = session.scalar(select(Alert).where(Alert.id == alert_id).with_for_update())
        assert alert is not None
        for page in session.scalars(select(AlertPage).where(AlertPage.alert_id == alert_id,
                                                            AlertPage.staff_id == staff_id,
                                                            AlertPage.state == "paged")):
            page.state, page.answered_at = "withdrawn", now
        others = session.scalar(select(AlertPage.id).where(AlertPage.alert_id == alert_id,
                                                           AlertPage.state == "paged").limit(1))
        if alert.state in WORKING or (alert.state == AlertState.DISPATCHED and others is None):
            transition(session, alert, Action.RETURN, actor, why, now=now)
            handed.append(alert_id)
    return handed


def judge_arrival(session: Session, alert: Alert, fix: FixIn | None) -> dict[str, Any]:
    """Where the inspector's fix lies against the class's venue fence, with the same accuracy-aware rule as trainees'
    fixes: inside, outside (marked on the alert, never refused: they may be at the door) or uncertain; an arrival
    without a fix is recorded as unproven."""
    return judge_fix_at_class(session, alert.class_id, fix)


def judge_fix_at_class(session: Session, class_id: int, fix: FixIn | None) -> dict[str, Any]:
    """An inspector's fix judged against the class's venue fence (see `judge_arrival`)."""
    if fix is None:
        return {"fence_result": "unproven"}
    cls = session.get(TrainingClass, class_id)
    venue = session.get(Venue, cls.venue_id) if cls else None
    assert venue is not None
    lat, lon = convert_to_wgs84(fix.latitude, fix.longitude, Datum(fix.datum))
    signed = venue_signed_distance_m(venue, lat, lon)
    result = classify_fix(signed, fix.accuracy_m)
    return {"lat": round(lat, 7), "lon": round(lon, 7), "accuracy_m": fix.accuracy_m, "datum": fix.datum,
            "captured_at": fix.captured_at.isoformat(), "fence_result": result.value,
            "fence_signed_distance_m": round(signed, 1)}


def ensure_staff(principal: Principal) -> None:
    """Only a token bound to a staff member (a person, who can be recused) may accept, phone or inspect; a token
    bound only to regions reads."""
    if principal.role is Role.INSPECTOR and principal.staff_id is None:
        raise ApiError(403, "STAFF_TOKEN_REQUIRED", "区域令牌只能查看；接单、到场、电话抽查和填写检查表须使用绑定到"
                                                    "抽查人员本人的令牌")


def ensure_assignee(alert: Alert, principal: Principal) -> None:
    """Only the inspector who accepted the alert works it (operators and admins may act for them)."""
    ensure_staff(principal)
    if principal.role is Role.INSPECTOR and alert.assignee_staff_id != principal.staff_id:
        raise ApiError(403, "NOT_ASSIGNEE", "只有接单的抽查人员可以处理该告警")


class DispatchClock:
    """Routes new alerts and escalates unanswered pages; safe to run repeatedly and in several workers."""

    def __init__(self, settings: Settings, db: Database, rng: random.Random | None = None) -> None:
        self.settings, self.db = settings, db
        self.rng = rng or random.SystemRandom()

    def run(self, now: datetime | None = None) -> dict[str, Any]:
        """One pass: expired pages escalated, then never-dispatched alerts paged, one alert per transaction (each
        locks its alert row before its pages, the order the requests use, so no two writers wait on each other).
        Returns what it did."""
        now = now or utc_now()
        escalated = routed = 0
        with self.db.session() as session:
            due = sorted(set(session.scalars(select(AlertPage.alert_id).where(AlertPage.state == "paged",
                                                                              AlertPage.deadline <= now))))
            roster = load_inspectors(session, now) if due or self.settings.dispatch_auto else []
            fresh = list(session.scalars(select(Alert.id).where(
                Alert.state == AlertState.OPEN, ~Alert.id.in_(select(AlertPage.alert_id))).order_by(Alert.id))) \
                if self.settings.dispatch_auto else []
        for alert_id in due:
            with self.db.session() as session:
                begin_write(session)
                alert = session.scalar(select(Alert).where(Alert.id == alert_id).with_for_update())
                for page in session.scalars(select(AlertPage).where(
                        AlertPage.alert_id == alert_id, AlertPage.state == "paged", AlertPage.deadline <= now)):
                    page.state, page.answered_at = "expired", now
                if alert is not None and alert.state == AlertState.DISPATCHED and not session.scalar(
                        select(AlertPage.id).where(AlertPage.alert_id == alert_id, AlertPage.state == "paged")):
                    page_alert(session, alert, self.settings, self.rng, now, inspectors=roster)
                    escalated += 1
        for alert_id in fresh:
            with self.db.session() as session:
                begin_write(session)
                alert = session.scalar(select(Alert).where(Alert.id == alert_id).with_for_update())
                if alert is None or alert.state != AlertState.OPEN or session.scalar(
                        select(AlertPage.id).where(AlertPage.alert_id == alert_id).limit(1)):
                    continue  # an operator or another worker got there first
                if page_alert(session, alert, self.settings, self.rng, now, inspectors=roster).staff_ids:
                    routed += 1
        return {"escalated": escalated, "routed": routed}
