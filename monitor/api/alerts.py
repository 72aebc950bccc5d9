"""Anomalies and the alerts that group their repeats (one rule on one class), newest first, in scope."""



from typing import Any, Literal

from fastapi import APIRouter
from sqlalchemy import select

from models.domain import AnomalyCode
from models.params import Limit
from models.tables import (
    Alert,
    AlertPage,
    Anomaly,
)
from monitor.api.deps import Center, Db
from monitor.api.schemas.center import AlertOut, AnomalyOut
from monitor.services.alerts import ACTIVE

router = APIRouter(prefix="/api/v1", tags=["center"])


StateFilter = Literal["open", "dispatched", "accepted", "on_site", "phoning", "closed", "resolved", "active",
                      "returned"]


@router.get("/anomalies", summary="Recent anomalies, newest first", response_model=list[AnomalyOut])
def list_anomalies(scope: Center, db: Db, limit: Limit = 50, rule: AnomalyCode | None = None) -> list[dict[str, Any]]:
    with db.session() as session:
        query = select(Anomaly).where(scope.of_classes(Anomaly.class_id)).order_by(Anomaly.id.desc()).limit(limit)
        if rule:
            query = query.where(Anomaly.rule == rule.value)
        return [
            {"id": a.id, "rule": a.rule, "severity": a.severity, "class_id": a.class_id,
             "trainee_id": a.trainee_id, "subject_kind": a.subject_kind, "subject_id": a.subject_id,
             "region_code": a.region_code, "message": a.message, "evidence": a.evidence,
             "thresholds": a.thresholds, "state": a.state, "created_at": a.created_at.isoformat()}
            for a in session.scalars(query)
        ]


@router.get("/alerts", summary="Alerts (repeats of one rule on one class grouped), newest first, with evidence",
            response_model=list[AlertOut])
def list_alerts(scope: Center, db: Db, state: StateFilter = "open", limit: Limit = 50) -> list[dict[str, Any]]:
    """`state=active`: every alert still being handled (open, dispatched, accepted, on site, phoning).
    `state=returned`: open alerts that were paged before, i.e. back at the center for a human to dispatch (nobody
    accepted, or handed back); the overview's `alerts_returned` counts the same."""
    wanted = [s.value for s in ACTIVE] if state == "active" else ["open"] if state == "returned" else [state]
    with db.session() as session:
        query = select(Alert).where(Alert.state.in_(wanted), scope.of_classes(Alert.class_id))
        if state == "returned":
            query = query.where(Alert.id.in_(select(AlertPage.alert_id)))
        alerts = session.scalars(query.order_by(Alert.last_at.desc()).limit(limit)).all()
        out = []
        for a in alerts:
            anomalies = session.scalars(select(Anomaly).where(Anomaly.alert_id == a.id).order_by(Anomaly.id))
            out.append({"id": a.id, "rule": a.rule, "class_id": a.class_id, "region_code": a.region_code,
                        "severity": a.severity, "count": a.count, "open_count": a.open_count, "state": a.state,
                        "first_at": a.first_at.isoformat(), "last_at": a.last_at.isoformat(),
                        "resolved_note": a.resolved_note,
                        "anomalies": [{"id": x.id, "trainee_id": x.trainee_id, "message": x.message,
                                       "state": x.state, "evidence": x.evidence, "thresholds": x.thresholds,
                                       "resolved_note": x.resolved_note, "created_at": x.created_at.isoformat()}
                                      for x in anomalies]})
        return out
