"""Anomalies grouped into alerts (one per rule and class within a window), their live events and self-resolution."""

from __future__ import annotations

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
from monitor.services.events import add_event, class_context

ALERT_WINDOW = timedelta(minutes=30)
# An alert that is still being handled takes new anomalies of its rule and class (the inspector sent sees them).
ACTIVE = (AlertState.OPEN, AlertState.DISPATCHED, *WORKING)


def add_anomaly(session: Session, context: dict[str, Any], finding: Finding, kind: str, subject_id: int,
                people: dict[str, Any], extra: dict[str, Any], default_thresholds: dict[str, Any]) -> Anomaly:
    """Store one anomaly in its alert, and its live event (the anomaly is inserted with its alert: one row written
    once, one audit entry, not an insert and then an update)."""
    anomaly = Anomaly(
        rule=finding.code.value, severity=finding.severity.value, class_id=context["class_id"],
        trainee_id=people.get("trainee_id"), subject_kind=kind, subject_id=subject_id,
        region_code=context["prefecture_code"], message=finding.message,
        evidence={**finding.evidence, **extra}, thresholds=finding.thresholds or default_thresholds,
        state="open", created_at=utc_now(),
    )
    alert = group_into_alert(session, anomaly)
    session.add(anomaly)
    session.flush()
    add_event(session, EventKind.ANOMALY, context, {
        "anomaly_id": anomaly.id, "rule": anomaly.rule, "severity": anomaly.severity,
        "message": anomaly.message, "subject_kind": kind, "subject_id": subject_id,
        "alert_id": alert.id, "alert_count": alert.count,
        "at": anomaly.created_at.isoformat(), **people, **extra,
    })
    return anomaly


def group_into_alert(session: Session, anomaly: Anomaly, window: timedelta = ALERT_WINDOW) -> Alert:
    """Add the anomaly (not yet stored) to the open alert of its rule and class seen within `window`, or open a new
    one that counts it from its insert."""
    alert = session.scalar(
        select(Alert).where(Alert.rule == anomaly.rule, Alert.class_id == anomaly.class_id,
                            Alert.state.in_(ACTIVE), Alert.last_at >= anomaly.created_at - window)
        .order_by(Alert.id.desc()).limit(1))
    if alert is None:
        cls = session.get(TrainingClass, anomaly.class_id)
        alert = Alert(rule=anomaly.rule, class_id=anomaly.class_id, region_code=anomaly.region_code,
                      institution_id=cls.institution_id if cls else None, severity=anomaly.severity, count=1,
                      open_count=1, first_at=anomaly.created_at, last_at=anomaly.created_at,
                      state=AlertState.OPEN, updated_at=anomaly.created_at)
        session.add(alert)
        session.flush()
    else:
        alert.count += 1
        alert.open_count += 1
        alert.last_at = anomaly.created_at
        if Severity(anomaly.severity).rank > Severity(alert.severity).rank:
            alert.severity = anomaly.severity
    anomaly.alert_id = alert.id
    return alert


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
