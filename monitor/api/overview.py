"""The province at a glance for the wall screen: classes on the map, counters, prefectures."""



from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models.clock import SHANGHAI, local_day_start, utc_now
from models.scope import Scope
from models.tables import (
    Alert,
    AlertPage,
    Anomaly,
    CheckIn,
    ClassStatus,
    Institution,
    Region,
    TrainingClass,
    Venue,
)
from models.terms import UploadStatus
from monitor.api.deps import Center, Db, SettingsDep
from monitor.api.schemas.center import OverviewOut
from monitor.decisions.alert_lifecycle import WORKING, AlertState
from monitor.services.events import prefecture_of

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


@router.get("/overview", summary="The province at a glance for the wall screen", response_model=OverviewOut)
def overview(scope: Center, db: Db, settings: SettingsDep) -> dict[str, Any]:
    since = local_day_start(utc_now())
    with db.session() as session:
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
    }
