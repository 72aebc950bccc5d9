"""Anomalies grouped into alerts (one per rule and class within a window), their live events and self-resolution."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models.clock import utc_now
from models.domain import Severity
from models.identity import mask_id_number
from models.tables import (
    Alert,
    Anomaly,
    CheckIn,
    FaceTemplate,
    OnlineHeartbeat,
    Snapshot,
    Trainee,
    TrainingClass,
    Verification,
)
from models.terms import EventKind, SubjectKind
from monitor.decisions.alert_lifecycle import WORKING, AlertState
from monitor.decisions.verdicts import Finding
from monitor.services.events import add_event, add_events, class_context

ALERT_WINDOW = timedelta(minutes=30)
# An alert that is still being handled takes new anomalies of its rule and class (the inspector sent sees them).
ACTIVE = (AlertState.OPEN, AlertState.DISPATCHED, *WORKING)


@dataclass(frozen=True)
class NewAnomaly:
    """One finding to store as an anomaly: the class's names (`class_context`, whose institution a new alert is
    filed under), the subject it was raised on, the people it names, extra evidence, and thresholds recorded when
    the finding carries none."""

    context: dict[str, Any]
    finding: Finding
    kind: str
    subject_id: int
    people: dict[str, Any]
    extra: dict[str, Any]
    default_thresholds: dict[str, Any]


def add_anomaly(session: Session, context: dict[str, Any], finding: Finding, kind: str, subject_id: int,
                people: dict[str, Any], extra: dict[str, Any], default_thresholds: dict[str, Any]) -> Anomaly:
    """Store one anomaly in its alert, and its live event."""
    return add_anomalies(session, [NewAnomaly(context, finding, kind, subject_id, people, extra,
                                              default_thresholds)])[0]


def add_anomalies(session: Session, items: Sequence[NewAnomaly], window: timedelta = ALERT_WINDOW) -> list[Anomaly]:
    """Store anomalies, each in the open alert of its rule and class seen within `window` or in a new one, with a
    live event each, in order. Each row is written once (an anomaly with its alert's id, a new alert with its counts):
    a clock tick recording thousands costs a few statements per batch, not several per anomaly."""
    if not items:
        return []
    anomalies = [Anomaly(
        rule=i.finding.code.value, severity=i.finding.severity.value, class_id=i.context["class_id"],
        trainee_id=i.people.get("trainee_id"), subject_kind=i.kind, subject_id=i.subject_id,
        region_code=i.context["prefecture_code"], message=i.finding.message,
        evidence={**i.finding.evidence, **i.extra}, thresholds=i.finding.thresholds or i.default_thresholds,
        state="open", created_at=utc_now(),
    ) for i in items]
    alerts = open_alerts_of(session, anomalies, window)
    opened: list[Alert] = []
    for item, anomaly in zip(items, anomalies, strict=True):
        pair = (anomaly.rule, anomaly.class_id)
        if pair not in alerts:
            alerts[pair] = Alert(rule=anomaly.rule, class_id=anomaly.class_id, region_code=anomaly.region_code,
                                 institution_id=item.context["institution_id"], severity=anomaly.severity, count=0,
                                 open_count=0, first_at=anomaly.created_at, last_at=anomaly.created_at,
                                 state=AlertState.OPEN, updated_at=anomaly.created_at)
            opened.append(alerts[pair])
    running: list[int] = []
    for anomaly in anomalies:
        alert = alerts[(anomaly.rule, anomaly.class_id)]
        alert.count += 1
        alert.open_count += 1
        alert.last_at = anomaly.created_at
        if Severity(anomaly.severity).rank > Severity(alert.severity).rank:
            alert.severity = anomaly.severity
        running.append(alert.count)
    if opened:
        session.add_all(opened)
        session.flush()  # the new alerts' ids, inserted with their counts
    for anomaly in anomalies:
        anomaly.alert_id = alerts[(anomaly.rule, anomaly.class_id)].id
    session.add_all(anomalies)
    session.flush()
    add_events(session, [(EventKind.ANOMALY, item.context, {
        "anomaly_id": anomaly.id, "rule": anomaly.rule, "severity": anomaly.severity,
        "message": anomaly.message, "subject_kind": item.kind, "subject_id": item.subject_id,
        "alert_id": anomaly.alert_id, "alert_count": count,
        "at": anomaly.created_at.isoformat(), **item.people, **item.extra,
    }, None) for item, anomaly, count in zip(items, anomalies, running, strict=True)])
    return anomalies


def open_alerts_of(session: Session, anomalies: Sequence[Anomaly], window: timedelta) -> dict[tuple[str, int], Alert]:
    """The alert each anomaly's rule and class would join: the newest still being handled whose last anomaly is
    within `window` of the anomaly (classes looked up 500 at a time)."""
    found: dict[tuple[str, int], Alert] = {}
    since = min(a.created_at for a in anomalies) - window
    rules = {a.rule for a in anomalies}
    class_ids = sorted({a.class_id for a in anomalies})
    for start in range(0, len(class_ids), 500):
        for alert in session.scalars(select(Alert).where(
                Alert.class_id.in_(class_ids[start:start + 500]), Alert.rule.in_(rules), Alert.state.in_(ACTIVE),
                Alert.last_at >= since).order_by(Alert.id.desc())):
            found.setdefault((alert.rule, alert.class_id), alert)
    joined: dict[tuple[str, int], Alert] = {}
    for a in anomalies:
        candidate = found.get((a.rule, a.class_id))
        if candidate is not None and candidate.last_at >= a.created_at - window:
            joined[(a.rule, a.class_id)] = candidate
    return joined


def resolve_anomaly(session: Session, anomaly: Anomaly, note: str) -> None:
    """Close an anomaly that cleared (e.g. the trainee signed in after all); the alert closes with its last one."""
    if anomaly.state != "open":
        return
    anomaly.state, anomaly.resolved_at, anomaly.resolved_note = "resolved", utc_now(), note
    alert = session.get(Alert, anomaly.alert_id) if anomaly.alert_id else None
    if alert is not None:
        alert.open_count = max(0, alert.open_count - 1)
        if alert.open_count == 0:
            alert.resolved_note = note
            if alert.state == AlertState.OPEN:  # nobody sent yet: nothing left to send anyone for
                alert.state, alert.updated_at = AlertState.RESOLVED, utc_now()
    cls = session.get(TrainingClass, anomaly.class_id)
    assert cls is not None
    add_event(session, EventKind.ANOMALY_RESOLVED, class_context(session, cls), {
        "anomaly_id": anomaly.id, "rule": anomaly.rule, "alert_id": anomaly.alert_id, "note": note,
        "alert_state": alert.state if alert else None, "at": utc_now().isoformat(),
        "trainee_id": anomaly.trainee_id,
    })


SUBJECT_PHOTOS: dict[str, Any] = {SubjectKind.CHECKIN.value: (CheckIn.id, CheckIn.photo_sha256),
                                  SubjectKind.SNAPSHOT.value: (Snapshot.id, Snapshot.photo_sha256),
                                  SubjectKind.HEARTBEAT.value: (OnlineHeartbeat.id, OnlineHeartbeat.photo_sha256)}
MAX_SUBJECTS = 12


def alert_subjects(session: Session, alert_id: int) -> list[dict[str, Any]]:
    """Who and what the alert is about, newest first: each anomaly's trainee (name, masked ID), its message, the
    photo it was raised on and one enrolled photo of that trainee, so the inspector knows whom to look for."""
    anomalies = list(session.scalars(select(Anomaly).where(Anomaly.alert_id == alert_id)
                                     .order_by(Anomaly.id.desc()).limit(MAX_SUBJECTS)))
    trainees = {t.id: t for t in session.scalars(select(Trainee).where(
        Trainee.id.in_({a.trainee_id for a in anomalies if a.trainee_id})))}
    enrolled = dict(session.execute(select(FaceTemplate.person_id, func.min(FaceTemplate.photo_sha256)).where(
        FaceTemplate.person_kind == "trainee", FaceTemplate.person_id.in_(trainees)).group_by(FaceTemplate.person_id)
    ).all())
    photos: dict[tuple[str, int], str] = {}  # one query per kind of subject, not one per anomaly
    for kind, (key, column) in SUBJECT_PHOTOS.items():
        ids = {a.subject_id for a in anomalies if a.subject_kind == kind}
        if ids:
            photos |= {(kind, int(i)): sha for i, sha in session.execute(select(key, column).where(key.in_(ids)))}
    out = []
    for a in anomalies:
        photo = photos.get((a.subject_kind, a.subject_id))
        person = trainees.get(a.trainee_id) if a.trainee_id else None
        out.append({"anomaly_id": a.id, "rule": a.rule, "message": a.message, "at": a.created_at.isoformat(),
                    "state": a.state, "trainee_id": a.trainee_id, "trainee_name": person.name if person else None,
                    "id_number_masked": mask_id_number(person.id_number) if person else None,
                    "photo_sha256": photo, "enrolled_sha256": enrolled.get(person.id) if person else None})
    return out


HANDLED = "告警已办结"
"""How the note of an anomaly resolved by its alert's close begins (reopening the alert reopens those)."""


def reopen_anomalies(session: Session, alert: Alert) -> int:
    """The alert reopened (or returned): the anomalies its close had resolved wait again, counted on the alert and
    the wall, and no longer say they were handled. Returns how many."""
    reopened = 0
    for anomaly in session.scalars(select(Anomaly).where(Anomaly.alert_id == alert.id, Anomaly.state == "resolved",
                                                         Anomaly.resolved_note.like(f"{HANDLED}%"))):
        anomaly.state, anomaly.resolved_at, anomaly.resolved_note = "open", None, None
        reopened += 1
    alert.open_count += reopened
    return reopened


def checkins_of_alert(session: Session, alert_id: int) -> list[CheckIn]:
    ids = select(Anomaly.subject_id).where(Anomaly.alert_id == alert_id, Anomaly.subject_kind == SubjectKind.CHECKIN)
    return list(session.scalars(select(CheckIn).where(CheckIn.id.in_(ids)).order_by(CheckIn.id)))


def counts_after_false_alarm(session: Session, alert: Alert) -> list[int]:
    """An alert closed as a false alarm: each of its check-ins that failed only on findings now all closed as false
    alarms counts as a valid sign-in (status passed; the machine's verdict stays as it was, and the site is told a
    person cleared it). A check-in with a finding still open, or confirmed elsewhere, stays failed. The ids passed."""
    cleared = []
    for checkin in checkins_of_alert(session, alert.id):
        if checkin.status != "failed":
            continue
        standing = session.scalar(select(func.count()).select_from(Anomaly).outerjoin(
            Alert, Alert.id == Anomaly.alert_id).where(
            Anomaly.subject_kind == SubjectKind.CHECKIN, Anomaly.subject_id == checkin.id,
            (Anomaly.alert_id.is_(None)) | (Alert.state != AlertState.CLOSED) | (Alert.outcome != "false_alarm")))
        if not standing:
            checkin.status = "passed"
            cleared.append(checkin.id)
    return cleared


def undo_false_alarm(session: Session, alert: Alert) -> list[int]:
    """The alert reopened: its check-ins that counted only because it was closed as a false alarm fail again
    (passed now, though the machine's verdict did not pass them). The ids failed again."""
    undone = []
    for checkin in checkins_of_alert(session, alert.id):
        machine = session.scalar(select(Verification.passed).where(
            Verification.subject_kind == SubjectKind.CHECKIN, Verification.subject_id == checkin.id))
        if checkin.status == "passed" and machine is False:
            checkin.status = "failed"
            undone.append(checkin.id)
    return undone
