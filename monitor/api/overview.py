"""The province at a glance for the wall screen: classes on the map, counters, prefectures, today's trend and what
is due; the latest classroom frames of the classes in session; a trainee's day in a class (the evidence view)."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter, Query, Request
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models.clock import SHANGHAI, local_day_start, utc_now
from models.errors import errors
from models.params import DayQuery, RecordIdPath
from models.scope import Scope, ensure_class, refuse_missing
from models.tables import (
    Alert,
    AlertPage,
    Anomaly,
    CheckIn,
    ClassStatus,
    Institution,
    Region,
    RosterEntry,
    Trainee,
    TrainingClass,
    Venue,
)
from models.terms import UploadStatus
from monitor.adapters.storage import Database
from monitor.api.deps import Center, Db, SettingsDep
from monitor.api.schemas.wall import FramesOut, OverviewOut, TraineeDayOut
from monitor.decisions.alert_lifecycle import WORKING, AlertState
from monitor.services.audit import audit_alarms
from monitor.services.events import prefecture_of
from monitor.services.evidence_health import evidence_alarms, storage_state
from monitor.services.wall import latest_frames, today_trend, trainee_day, what_is_due
from monitor.settings import Settings

router = APIRouter(prefix="/api/v1", tags=["center"])


def alert_counters(session: Session, scope: Scope, stale_before: datetime) -> dict[str, Any]:
    """What is actually waiting: active alerts by state, those returned to the center, those with no step since
    `stale_before`."""
    active = [AlertState.OPEN, AlertState.DISPATCHED, *WORKING]
    by_state = {state.value: 0 for state in active}
    for state, n in session.execute(select(Alert.state, func.count()).where(
            Alert.state.in_(active), scope.of_classes(Alert.class_id)).group_by(Alert.state)):
        by_state[state] = int(n)
    returned = int(session.scalar(select(func.count()).select_from(Alert).where(
        Alert.state == AlertState.OPEN, scope.of_classes(Alert.class_id),
        Alert.id.in_(select(AlertPage.alert_id)))) or 0)
    overdue = int(session.scalar(select(func.count()).select_from(Alert).where(
        Alert.state.in_(active), scope.of_classes(Alert.class_id), Alert.updated_at < stale_before)) or 0)
    return {"alerts_active": sum(by_state.values()), "alerts_by_state": by_state, "alerts_returned": returned,
            "alerts_overdue": overdue}


def system_alarms(settings: Settings, session: Session, db: Database, bus_up: bool = True) -> list[dict[str, str]]:
    """What the wall must show about the center itself: STORAGE_LOW before the evidence disk is full,
    AUDIT_UNTRUSTED once the sealer has chained an entry the product did not write, AUDIT_BROKEN when the latest
    periodic check found the chain or the records rewritten, EVIDENCE_ALTERED while a stored file is not what its
    digest says, BUS_DOWN while Redis does not answer."""
    storage = storage_state(settings.evidence_dir, settings.storage_low_free_mb * 2**20)
    alarms = [{"code": "STORAGE_LOW", "message": str(storage.as_json()["message"])}] if storage.low else []
    if not bus_up:
        alarms.append({"code": "BUS_DOWN", "message": "消息总线（Redis）无法连接：上传仍被受理并保存，总线恢复后"
                                                       "补发核验；实时推送和其他进程的核验暂停，请检查 Redis"})
    return alarms + audit_alarms(session, db) + evidence_alarms(session)


@router.get("/overview", summary="The province at a glance for the wall screen", response_model=OverviewOut)
def overview(scope: Center, db: Db, settings: SettingsDep, request: Request) -> dict[str, Any]:
    now = utc_now()
    since = local_day_start(now)
    with db.session() as session:
        trend = today_trend(session, scope, now)
        due = what_is_due(session, scope, now, settings.inspections_per_class_min,
                          visit_unit=settings.inspection_visit_unit)
        alerts = alert_counters(session, scope, utc_now() - timedelta(minutes=settings.alert_overdue_minutes))
        prefectures = session.scalars(select(Region).where(Region.level == "prefecture").order_by(Region.code))
        stats: dict[str, dict[str, Any]] = {
            p.code: {"code": p.code, "name": p.name, "classes": 0, "in_session": 0, "checkins": 0, "passed": 0,
                     "anomalies": 0} for p in prefectures}
        classes = []
        statuses = dict(session.execute(select(ClassStatus.class_id, ClassStatus.status)).all())
        today = utc_now().astimezone(SHANGHAI).date()
        rows = session.execute(
            select(TrainingClass, Venue, Institution)
            .join(Venue, Venue.id == TrainingClass.venue_id)
            .join(Institution, Institution.id == TrainingClass.institution_id)
            .where(TrainingClass.end_date >= today - timedelta(days=1), TrainingClass.start_date <= today,
                   scope.class_clause())
        ).all()
        class_pref: dict[int, str] = {}
        for cls, venue, inst in rows:
            pref = prefecture_of(venue.region_code)
            class_pref[cls.id] = pref
            status = statuses.get(cls.id, cls.status)
            stats[pref]["classes"] += 1
            stats[pref]["in_session"] += status == "in_session"
            classes.append({"id": cls.id, "name": cls.name, "code": cls.code, "institution": inst.name,
                            "lat": venue.center_lat, "lon": venue.center_lon, "status": status,
                            "prefecture_code": pref, "county_code": venue.region_code})
        for class_id, status, n in session.execute(
            select(CheckIn.class_id, CheckIn.status, func.count())
            .where(CheckIn.received_at >= since).group_by(CheckIn.class_id, CheckIn.status)
        ):
            if of_class := class_pref.get(class_id):
                stats[of_class]["checkins"] += n
                stats[of_class]["passed"] += n if status == UploadStatus.PASSED else 0
        open_anomalies = 0
        by_rule: Counter[str] = Counter()
        for class_id, rule, state, n in session.execute(
            select(Anomaly.class_id, Anomaly.rule, Anomaly.state, func.count())
            .where(Anomaly.created_at >= since).group_by(Anomaly.class_id, Anomaly.rule, Anomaly.state)
        ):
            if of_class := class_pref.get(class_id):
                stats[of_class]["anomalies"] += n
                by_rule[rule] += n
                open_anomalies += n if state == "open" else 0
        alarms = system_alarms(settings, session, db, request.app.state.bus.reachable())
    checkins = sum(s["checkins"] for s in stats.values())
    passed = sum(s["passed"] for s in stats.values())
    return {
        "generated_at": utc_now().isoformat(),
        "counters": {
            "classes_today": len(classes),
            "classes_in_session": sum(1 for c in classes if c["status"] == "in_session"),
            "checkins_today": checkins,
            "pass_rate": round(passed / checkins, 4) if checkins else None,
            "anomalies_today": sum(by_rule.values()),
            "anomalies_open": open_anomalies,
            **alerts,
        },
        "anomalies_by_rule": dict(by_rule),
        "prefectures": list(stats.values()),
        "classes": classes,
        "trend": trend,
        "due": due,
        "alarms": alarms,
    }


@router.get("/overview/frames", response_model=FramesOut,
            summary="The latest classroom frame of each class in session (camera or phone), newest first")
def frames(scope: Center, db: Db,
           limit: int = Query(12, ge=1, le=100, description="at most this many frames")) -> dict[str, Any]:
    with db.session() as session:
        return latest_frames(session, scope, utc_now(), limit)


@router.get("/classes/{class_id}/trainees/{trainee_id}/day", response_model=TraineeDayOut,
            responses=errors(404, 422),
            summary="A trainee's day in a class: sign-ins, sign-outs, online study and heartbeats, anomalies")
def day_of_trainee(class_id: RecordIdPath, trainee_id: RecordIdPath, scope: Center, db: Db,
                   day: DayQuery = None) -> dict[str, Any]:
    with db.session() as session:
        cls = ensure_class(session, scope, class_id)
        trainee = session.get(Trainee, trainee_id)
        on_roster = session.get(RosterEntry, (class_id, trainee_id)) is not None
        if trainee is None or not on_roster:
            raise refuse_missing("UNKNOWN_TRAINEE", "学员", trainee_id)
        return trainee_day(session, cls, trainee, day or utc_now().astimezone(SHANGHAI).date())
