"""An institution's findings and its objections (异议) to them: what it may read of each anomaly, alert, inspection
form and blacklist decision about it; an objection submitted against an alert closed against it, and decided by a
second person of the center (upheld: the alert is reopened for the center to re-examine; rejected: it stands)."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from models.clock import SHANGHAI, utc_now
from models.domain import AnomalyCode, Principal
from models.errors import ApiError
from models.identity import mask_id_number
from models.tables import (
    Alert,
    AlertTransition,
    Anomaly,
    BlacklistDecision,
    Inspection,
    Institution,
    Objection,
    PhoneCheck,
    Teacher,
    Trainee,
    TrainingClass,
    Verification,
)
from models.terms import RULE_CATALOGUE
from monitor.decisions.alert_lifecycle import OUTCOME_NAMES, Action, AlertState, Outcome
from monitor.decisions.objections import (
    OBJECTABLE,
    OBJECTION_STATE_NAMES,
    Decision,
    ObjectionState,
    Person,
    decide_deadline,
    judge_decider,
    judge_decision_note,
    judge_objectable,
    judge_reason,
    site_figures,
    site_message,
    timer_text,
)
from monitor.services.alerts import SUBJECT_PHOTOS
from monitor.services.dispatch import Actor, transition

MAX_ANOMALIES_PER_ALERT = 50
SITE_STATE_NAMES = {"closed": "已办结", "resolved": "已自动消除", "in_progress": "处理中"}
VISIT_KIND_NAMES = {"on_site": "现场检查", "phone": "电话抽查"}


def beijing(moment: datetime | None) -> str | None:
    """An instant as the institution reads it: ISO 8601 in Beijing time (+08:00)."""
    return moment.astimezone(SHANGHAI).isoformat() if moment is not None else None


def rule_name(rule: str) -> str:
    try:
        return RULE_CATALOGUE[AnomalyCode(rule)][0]
    except (ValueError, KeyError):
        return rule


CLOSING_STEP = and_(AlertTransition.to_state == AlertState.CLOSED.value,
                    AlertTransition.action.in_([Action.CLOSE.value, Action.DISMISS.value]))
"""A transition that closes an alert (closed by its inspector, or dismissed by an operator)."""


def closing_of(session: Session, alert_id: int) -> AlertTransition | None:
    """The transition that last closed the alert."""
    return session.scalar(select(AlertTransition).where(AlertTransition.alert_id == alert_id, CLOSING_STEP)
                          .order_by(AlertTransition.id.desc()).limit(1))


def earlier_objections(session: Session, alert_id: int, closing: AlertTransition | None) -> list[ObjectionState]:
    """The states of the objections already made against this closing of the alert."""
    same_closing = Objection.closing_transition_id == closing.id if closing is not None \
        else Objection.closing_transition_id.is_(None)
    return [ObjectionState(s) for s in session.scalars(select(Objection.state).where(
        Objection.alert_id == alert_id, same_closing))]


def outcome_of(alert: Alert) -> Outcome | None:
    return Outcome(alert.outcome) if alert.outcome else None


# -- an objection's life -------------------------------------------------------------------------------------------
def submit_objection(session: Session, alert: Alert, reason: str, principal: Principal, decide_days: int,
                     now: datetime | None = None) -> Objection:
    """The institution objects to `alert` (already in its scope and locked): refused with 422 without a reason of
    substance, 409 unless it is closed against the institution and not objected to already for this closing."""
    now = now or utc_now()
    refusal = judge_reason(reason)
    if refusal is not None:
        raise ApiError(422, refusal.code, refusal.message)
    closing = closing_of(session, alert.id)
    refusal = judge_objectable(AlertState(alert.state), outcome_of(alert), earlier_objections(session, alert.id,
                                                                                              closing))
    if refusal is not None:
        raise ApiError(409, refusal.code, refusal.message)
    cls = session.get(TrainingClass, alert.class_id)
    assert cls is not None
    objection = Objection(alert_id=alert.id, class_id=alert.class_id, institution_id=cls.institution_id,
                          closing_transition_id=closing.id if closing is not None else None,
                          alert_outcome=alert.outcome or "", reason=reason.strip(),
                          state=ObjectionState.SUBMITTED.value, submitted_by=principal.name, submitted_at=now,
                          decide_by=decide_deadline(now, decide_days))
    try:
        with session.begin_nested():
            session.add(objection)
            session.flush()
    except IntegrityError as exc:  # another request objected to the same closing a moment before
        raise ApiError(409, "OBJECTION_OPEN", "该告警已有一份异议正在等待监控中心决定，请勿重复提出") from exc
    return objection


def people_on_alert(session: Session, alert_id: int) -> tuple[Person | None, list[Person]]:
    """Who closed the alert last, and everyone who acted on it: its transitions' actors (the system's own steps name
    nobody), the inspectors of its phone checks and forms."""
    steps = list(session.scalars(select(AlertTransition).where(AlertTransition.alert_id == alert_id)
                                 .order_by(AlertTransition.id)))
    closing = next((t for t in reversed(steps) if t.to_state == AlertState.CLOSED.value
                    and t.action in (Action.CLOSE.value, Action.DISMISS.value)), None)
    actors = [Person(t.actor, t.staff_id) for t in steps if t.actor_role != "system"]
    for name, staff_id in session.execute(select(Inspection.inspector, Inspection.staff_id)
                                          .where(Inspection.alert_id == alert_id)):
        actors.append(Person(name, staff_id))
    for name, staff_id in session.execute(select(PhoneCheck.inspector, PhoneCheck.staff_id)
                                          .where(PhoneCheck.alert_id == alert_id)):
        actors.append(Person(name, staff_id))
    return (Person(closing.actor, closing.staff_id) if closing is not None else None), actors


def decide_objection(session: Session, objection: Objection, alert: Alert, decision: Decision, note: str,
                     principal: Principal, now: datetime | None = None) -> None:
    """The center decides (both rows locked, the alert first): 409 once decided, 403 for the closer or anyone who
    acted on the alert, 422 without a note of substance. Upheld reopens the alert with a transition naming the
    objection; rejected leaves the finding as it stands."""
    now = now or utc_now()
    if objection.state != ObjectionState.SUBMITTED.value:
        name = OBJECTION_STATE_NAMES[ObjectionState(objection.state)]
        decided = objection.decided_at.astimezone(SHANGHAI) if objection.decided_at else None
        raise ApiError(409, "OBJECTION_DECIDED", f"该异议已于 {decided:%Y-%m-%d %H:%M}（北京时间）作出决定（{name}），"
                       "不能再次决定" if decided else f"该异议已作出决定（{name}），不能再次决定")
    closer, actors = people_on_alert(session, alert.id)
    refusal = judge_decider(Person(principal.name, principal.staff_id), closer, actors)
    if refusal is not None:
        raise ApiError(403, refusal.code, refusal.message)
    refusal = judge_decision_note(note)
    if refusal is not None:
        raise ApiError(422, refusal.code, refusal.message)
    reopened = None
    closing = closing_of(session, alert.id)
    still_disputed = (closing.id if closing is not None else None) == objection.closing_transition_id
    if decision is Decision.UPHELD and alert.state == AlertState.CLOSED.value and still_disputed:
        # (an alert reopened and closed again since is a new finding: upholding an objection to the old one does not
        # reopen it)
        why = f"机构异议（编号 {objection.id}）成立，告警重新打开，退回监控中心重新核查：{note.strip()}"
        reopened = transition(session, alert, Action.REOPEN, Actor.of(principal), why, now=now)
        session.flush()
    # The decision in one change of the row (one entry in the chain).
    objection.state = decision.value
    objection.decided_by, objection.decided_role = principal.name, principal.role.value
    objection.decided_staff_id, objection.decided_at, objection.decision_note = principal.staff_id, now, note.strip()
    objection.reopen_transition_id = reopened.id if reopened is not None else None


# -- what each caller reads ----------------------------------------------------------------------------------------
def objection_out(objection: Objection, alert: Alert | None, cls: TrainingClass | None,
                  institution: Institution | None, for_site: bool, now: datetime | None = None,
                  citing: list[int] | None = None) -> dict[str, Any]:
    state = ObjectionState(objection.state)
    overdue, timer = timer_text(state, objection.decide_by, now or utc_now())
    outcome = Outcome(objection.alert_outcome) if objection.alert_outcome else None
    return {
        "id": objection.id, "alert_id": objection.alert_id, "class_id": objection.class_id,
        "class_name": cls.name if cls else "", "institution_id": objection.institution_id,
        "institution_name": institution.name if institution else "",
        "rule": alert.rule if alert else "", "rule_name": rule_name(alert.rule) if alert else "",
        "alert_outcome": objection.alert_outcome, "alert_outcome_name": OUTCOME_NAMES[outcome] if outcome else "",
        # the site reads only closed or in progress (明察暗访: never whether anyone was sent or is on the way)
        "alert_state": (site_state(alert.state) if for_site else alert.state) if alert else "",
        "reason": objection.reason, "state": state.value,
        "state_name": OBJECTION_STATE_NAMES[state], "submitted_by": objection.submitted_by,
        "submitted_at": beijing(objection.submitted_at), "decide_by": beijing(objection.decide_by),
        "overdue": overdue, "timer": timer,
        # The center's staff are not named to the institution: the center decided.
        "decided_by": ("监控中心" if objection.decided_by else None) if for_site else objection.decided_by,
        "decided_role": None if for_site else objection.decided_role,
        "decided_at": beijing(objection.decided_at), "decision_note": objection.decision_note,
        "reopened": objection.reopen_transition_id is not None,
        # for the center: blacklist decisions that cite the alert (an objection upheld takes their ground away)
        "blacklist_decision_ids": [] if for_site else list(citing or []),
    }


def blacklist_citing(session: Session, alert_ids: set[int]) -> dict[int, list[int]]:
    """For each of `alert_ids`, the blacklist decisions that cite it as evidence (their `alert_ids`), newest first:
    one read of the decisions for a whole list (they are few: hundreds at province size)."""
    citing: dict[int, list[int]] = {}
    for decision_id, cited in session.execute(select(BlacklistDecision.id, BlacklistDecision.alert_ids)
                                              .order_by(BlacklistDecision.id.desc())):
        for alert_id in set(cited or []) & alert_ids:
            citing.setdefault(alert_id, []).append(decision_id)
    return citing


def objections_out(session: Session, objections: list[Objection], for_site: bool) -> list[dict[str, Any]]:
    alerts = {a.id: a for a in session.scalars(select(Alert).where(Alert.id.in_({o.alert_id for o in objections})))}
    classes = {c.id: c for c in session.scalars(select(TrainingClass).where(
        TrainingClass.id.in_({o.class_id for o in objections})))}
    institutions = {i.id: i for i in session.scalars(select(Institution).where(
        Institution.id.in_({o.institution_id for o in objections})))}
    now = utc_now()
    citing = {} if for_site else blacklist_citing(session, {o.alert_id for o in objections})
    return [objection_out(o, alerts.get(o.alert_id), classes.get(o.class_id), institutions.get(o.institution_id),
                          for_site, now, citing.get(o.alert_id)) for o in objections]


def site_state(state: str) -> str:
    """An alert's state as the institution reads it: closed or resolved, else only "in progress" (never whether
    anyone was sent, accepted or is on the way: 明察暗访)."""
    return state if state in (AlertState.CLOSED.value, AlertState.RESOLVED.value) else "in_progress"


def anomaly_findings(session: Session, anomalies: list[Anomaly], classes: dict[int, TrainingClass]
                     ) -> list[dict[str, Any]]:
    """Each anomaly as the institution reads it: the rule, the trainee (name, masked ID number), the figures, the
    thresholds and model version, and the photo it uploaded (never an enrolment photo)."""
    trainees = {t.id: t for t in session.scalars(select(Trainee).where(
        Trainee.id.in_({a.trainee_id for a in anomalies if a.trainee_id})))}
    photos: dict[tuple[str, int], str] = {}
    for kind, (key, column) in SUBJECT_PHOTOS.items():
        ids = {a.subject_id for a in anomalies if a.subject_kind == kind}
        if ids:
            photos |= {(kind, int(i)): sha for i, sha in session.execute(select(key, column).where(key.in_(ids)))}
    versions: dict[tuple[str, int], str] = {}
    for kind in ("checkin", "snapshot"):
        ids = {a.subject_id for a in anomalies if a.subject_kind == kind}
        if ids:
            versions |= {(kind, int(i)): v for i, v in session.execute(
                select(Verification.subject_id, Verification.model_version).where(
                    Verification.subject_kind == kind, Verification.subject_id.in_(ids)))}
    out = []
    for a in anomalies:
        person = trainees.get(a.trainee_id) if a.trainee_id else None
        photo = photos.get((a.subject_kind, a.subject_id))
        cls = classes.get(a.class_id)
        out.append({
            "id": a.id, "rule": a.rule, "rule_name": rule_name(a.rule), "severity": a.severity,
            "class_id": a.class_id, "class_name": cls.name if cls else "", "at": beijing(a.created_at),
            "state": a.state, "trainee_name": person.name if person else None,
            "id_number_masked": mask_id_number(person.id_number) if person else None,
            "message": site_message(a.rule, a.message), "measured": site_figures(a.evidence),
            "thresholds": {k: v for k, v in (a.thresholds or {}).items()
                           if isinstance(v, bool | int | float | str) or v is None},
            "model_version": versions.get((a.subject_kind, a.subject_id)), "photo_sha256": photo,
            "photo_url": f"/api/v1/evidence/{photo}" if photo else None,
        })
    return out


def objectable_now() -> ColumnElement[bool]:
    """`judge_objectable` in SQL, to list every alert the institution may object to now: closed with a finding
    that weighs against it, and no objection yet against its latest closing (`closing_of`)."""
    latest_closing = select(func.max(AlertTransition.id)).where(
        AlertTransition.alert_id == Alert.id, CLOSING_STEP).correlate(Alert).scalar_subquery()
    objected = exists().where(Objection.alert_id == Alert.id, or_(
        Objection.closing_transition_id == latest_closing,
        and_(Objection.closing_transition_id.is_(None), latest_closing.is_(None))))
    return and_(Alert.state == AlertState.CLOSED.value, Alert.outcome.in_([o.value for o in OBJECTABLE]), ~objected)


def latest_anomalies(session: Session, alert_ids: list[int], per_alert: int) -> tuple[dict[int, list[Anomaly]],
                                                                                    dict[int, int]]:
    """Each alert's newest `per_alert` anomalies (newest first) and how many it has in all: an alert that takes a
    camera's anomalies all day holds thousands, and a page of 100 alerts must not load every one of them."""
    ranked = select(Anomaly.id, func.row_number().over(partition_by=Anomaly.alert_id, order_by=Anomaly.id.desc())
                    .label("rank")).where(Anomaly.alert_id.in_(alert_ids)).subquery()
    latest: dict[int, list[Anomaly]] = defaultdict(list)
    for anomaly in session.scalars(select(Anomaly).join(ranked, ranked.c.id == Anomaly.id)
                                   .where(ranked.c.rank <= per_alert).order_by(Anomaly.id.desc())):
        assert anomaly.alert_id is not None
        latest[anomaly.alert_id].append(anomaly)
    totals = {alert_id: int(n) for alert_id, n in session.execute(
        select(Anomaly.alert_id, func.count()).where(Anomaly.alert_id.in_(alert_ids)).group_by(Anomaly.alert_id))
        if alert_id is not None}
    return latest, totals


def site_findings(session: Session, institution_id: int, page: int, per_page: int,
                  objectable: bool = False) -> dict[str, Any]:
    """The institution's findings, newest first, a page at a time (`objectable`: only those it may object to now,
    whichever page they are on): its alerts with their anomalies, filed forms and objections; the blacklist
    decisions about it and its teachers; its own standing."""
    institution = session.get(Institution, institution_id)
    class_ids = select(TrainingClass.id).where(TrainingClass.institution_id == institution_id)
    mine_only = and_(Alert.class_id.in_(class_ids), objectable_now()) if objectable else Alert.class_id.in_(class_ids)
    total = int(session.scalar(select(func.count()).select_from(Alert).where(mine_only)) or 0)
    alerts = list(session.scalars(select(Alert).where(mine_only)
                                  .order_by(Alert.last_at.desc(), Alert.id.desc())
                                  .offset((page - 1) * per_page).limit(per_page)))
    ids = [a.id for a in alerts]
    classes = {c.id: c for c in session.scalars(select(TrainingClass).where(
        TrainingClass.id.in_({a.class_id for a in alerts})))}
    anomalies, anomaly_totals = latest_anomalies(session, ids, MAX_ANOMALIES_PER_ALERT)
    forms: dict[int, list[Inspection]] = defaultdict(list)
    for form in session.scalars(select(Inspection).where(Inspection.alert_id.in_(ids)).order_by(Inspection.id)):
        assert form.alert_id is not None
        forms[form.alert_id].append(form)
    objections: dict[int, list[Objection]] = defaultdict(list)
    for objection in session.scalars(select(Objection).where(Objection.alert_id.in_(ids)).order_by(Objection.id)):
        objections[objection.alert_id].append(objection)
    out = []
    for alert in alerts:
        state = site_state(alert.state)
        closed = alert.state == AlertState.CLOSED.value
        closing = closing_of(session, alert.id) if closed else None
        outcome = outcome_of(alert) if closed else None
        refusal = judge_objectable(AlertState(alert.state), outcome_of(alert),
                                   earlier_objections(session, alert.id, closing)) if closed else None
        mine = anomalies[alert.id]
        out.append({
            "alert_id": alert.id, "rule": alert.rule, "rule_name": rule_name(alert.rule), "severity": alert.severity,
            "class_id": alert.class_id, "class_name": classes[alert.class_id].name if alert.class_id in classes
            else "", "count": alert.count, "first_at": beijing(alert.first_at), "last_at": beijing(alert.last_at),
            "state": state, "state_name": SITE_STATE_NAMES[state],
            "outcome": outcome.value if outcome else None, "outcome_name": OUTCOME_NAMES[outcome] if outcome else None,
            "closed_at": beijing(closing.created_at) if closing else None,
            "closing_note": (closing.note if closing else None) if closed else None,
            "resolved_note": alert.resolved_note if alert.state == AlertState.RESOLVED.value else None,
            "objectable": closed and refusal is None,
            "objection_refusal": refusal.message if closed and refusal is not None else None,
            "anomalies_total": anomaly_totals.get(alert.id, 0),
            "anomalies": anomaly_findings(session, mine, classes),
            "inspections": [{"id": f.id, "kind": f.kind, "kind_name": VISIT_KIND_NAMES.get(f.kind, f.kind),
                             "inspected_at": beijing(f.inspected_at), "findings": f.findings,
                             "record_sha256": f.record_sha256,
                             "verify_url": f"/verify/{f.record_sha256}" if f.record_sha256 else None}
                            for f in forms[alert.id]],
            "objections": objections_out(session, objections[alert.id], for_site=True),
        })
    return {"institution": {"id": institution_id, "name": institution.name if institution else "",
                            "blacklisted": bool(institution and institution.blacklisted),
                            "blacklist_reason": institution.blacklist_reason if institution else ""},
            "page": page, "per_page": per_page, "total": total, "alerts": out,
            "blacklist": blacklist_findings(session, institution_id)}


def blacklist_findings(session: Session, institution_id: int) -> list[dict[str, Any]]:
    """The blacklist decisions about the institution and the teachers of its classes, newest first, citing only the
    evidence of its own classes (a teacher's decision may cite another institution's, which is not shown)."""
    classes = set(session.scalars(select(TrainingClass.id).where(TrainingClass.institution_id == institution_id)))
    teacher_ids = set()
    for theory, practical in session.execute(select(TrainingClass.theory_teacher_id, TrainingClass.practical_teacher_id)
                                             .where(TrainingClass.institution_id == institution_id)):
        teacher_ids |= {theory, practical}
    teachers = dict(session.execute(select(Teacher.id, Teacher.name).where(Teacher.id.in_(teacher_ids))).all())
    decisions = list(session.scalars(select(BlacklistDecision).where(or_(
        (BlacklistDecision.subject_kind == "institution") & (BlacklistDecision.subject_id == institution_id),
        (BlacklistDecision.subject_kind == "teacher") & BlacklistDecision.subject_id.in_(teacher_ids)))
        .order_by(BlacklistDecision.id.desc())))
    cited_alerts = {i for d in decisions for i in d.alert_ids or []}
    cited_forms = {i for d in decisions for i in d.inspection_ids or []}
    own_alerts = set(session.scalars(select(Alert.id).where(Alert.id.in_(cited_alerts), Alert.class_id.in_(classes))))
    own_forms = set(session.scalars(select(Inspection.id).where(Inspection.id.in_(cited_forms),
                                                                Inspection.class_id.in_(classes))))
    institution = session.get(Institution, institution_id)
    out = []
    for d in decisions:
        name = (institution.name if institution else "") if d.subject_kind == "institution" \
            else teachers.get(d.subject_id, "")
        out.append({"id": d.id, "subject_kind": d.subject_kind, "subject_id": d.subject_id, "subject_name": name,
                    "blacklisted": d.blacklisted, "lifetime": d.lifetime, "reason": d.reason,
                    "decided_at": beijing(d.decided_at),
                    "alert_ids": [i for i in d.alert_ids or [] if i in own_alerts],
                    "inspection_ids": [i for i in d.inspection_ids or [] if i in own_forms]})
    return out
