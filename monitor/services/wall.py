"""What the wall screen reads besides the overview: today's trend, what is due, the latest classroom frames of the
classes in session, and one trainee's day in a class (the evidence view's timeline). Read-only queries, scoped."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import and_, case, func, select
from sqlalchemy.orm import Session

from models.clock import SHANGHAI, local_day_start, minutes_of
from models.reasons import heartbeat_reasons
from models.scope import Scope
from models.tables import (
    Anomaly,
    CheckIn,
    ClassSession,
    ClassStatus,
    Institution,
    OnlineHeartbeat,
    OnlineSession,
    Region,
    Snapshot,
    Trainee,
    TrainingClass,
    Venue,
    Verification,
)
from models.terms import SubjectKind, UploadStatus
from monitor.services.events import prefecture_of
from monitor.services.inspections import shortfall

BUCKET_MINUTES = 30
IN_SESSION = "in_session"


def utc_text(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat() if moment else None


def today_trend(session: Session, scope: Scope, now: datetime, bucket_minutes: int = BUCKET_MINUTES) -> dict[str, Any]:
    """Check-ins received and anomalies raised per `bucket_minutes` of today (local), up to now; buckets still to
    come are null. One scan of each table over today's index range (portable SQL: one COUNT(CASE…) per bucket)."""
    start = local_day_start(now)
    n = 24 * 60 // bucket_minutes
    edges = [start + timedelta(minutes=bucket_minutes * k) for k in range(n + 1)]
    past = sum(1 for k in range(n) if edges[k] <= now)

    def counts(column: Any, class_column: Any) -> list[int | None]:
        if not past:
            return [None] * n
        row = session.execute(select(*[
            func.count(case((and_(column >= edges[k], column < edges[k + 1]), 1))) for k in range(past)
        ]).where(column >= start, column < edges[past], scope.of_classes(class_column))).one()
        return [int(v or 0) for v in row] + [None] * (n - past)

    labels = [e.astimezone(SHANGHAI).strftime("%H:%M") for e in edges[:n]]
    return {"bucket_minutes": bucket_minutes, "labels": labels,
            "checkins": counts(CheckIn.received_at, CheckIn.class_id),
            "anomalies": counts(Anomaly.created_at, Anomaly.class_id)}


def what_is_due(session: Session, scope: Scope, now: datetime, minimum: int, within_minutes: int = 60,
                limit: int = 20, visit_unit: str = "day") -> dict[str, Any]:
    """What needs doing, not what happened: classes short of their inspections (clause 十四) and sessions that start
    within the next `within_minutes` (local wall-clock; a window past midnight stops at 23:59)."""
    local = now.astimezone(SHANGHAI)
    today = local.date()
    short = shortfall(session, today, minimum, scope.class_ids(), visit_unit)
    begin = local.hour * 60 + local.minute
    end = min(begin + within_minutes, 24 * 60 - 1)
    rows = session.execute(
        select(ClassSession.start_local, ClassSession.name, TrainingClass.id, TrainingClass.name)
        .join(TrainingClass, TrainingClass.id == ClassSession.class_id)
        .where(TrainingClass.start_date <= today, TrainingClass.end_date >= today, scope.class_clause())
    ).all()
    starting = sorted(({"class_id": cid, "class_name": cname, "session_name": sname, "start": start}
                       for start, sname, cid, cname in rows if begin < minutes_of(start) <= end),
                      key=lambda s: (s["start"], s["class_id"]))
    return {"short_of_inspections": len(short), "inspections_required": minimum,
            "sessions_within_hour": len(starting), "starting": starting[:limit]}


def latest_frames(session: Session, scope: Scope, now: datetime, limit: int) -> dict[str, Any]:
    """The latest classroom frame (camera or phone snapshot, today) of each class in session, newest first, with the
    faces counted and the trainees signed in when it was verified (now, while it waits for its verification)."""
    status = func.coalesce(ClassStatus.status, TrainingClass.status)
    in_session = (select(TrainingClass.id).outerjoin(ClassStatus, ClassStatus.class_id == TrainingClass.id)
                  .where(status == IN_SESSION, scope.class_clause()))
    since = local_day_start(now)
    latest = (select(Snapshot.class_id, func.max(Snapshot.id).label("sid"))
              .where(Snapshot.received_at >= since, Snapshot.class_id.in_(in_session))
              .group_by(Snapshot.class_id).subquery())
    total = int(session.scalar(select(func.count()).select_from(latest)) or 0)
    classes_in_session = int(session.scalar(select(func.count()).select_from(in_session.subquery())) or 0)
    rows = session.execute(
        select(Snapshot, TrainingClass.name, TrainingClass.code, Institution.name, Venue.region_code,
               Verification.face_count, Verification.measured)
        .join(latest, Snapshot.id == latest.c.sid)
        .join(TrainingClass, TrainingClass.id == Snapshot.class_id)
        .join(Institution, Institution.id == TrainingClass.institution_id)
        .join(Venue, Venue.id == TrainingClass.venue_id)
        .outerjoin(Verification, and_(Verification.subject_kind == SubjectKind.SNAPSHOT,
                                      Verification.subject_id == Snapshot.id))
        .order_by(Snapshot.captured_at.desc(), Snapshot.id.desc()).limit(limit)
    ).all()
    names = region_names(session, {code for *_, code, _, _ in rows} | {prefecture_of(r[4]) for r in rows})
    waiting = [snap.class_id for snap, *_rest, measured in rows if not measured or "signed_in" not in measured]
    now_in = signed_in_now(session, waiting, since)
    frames = []
    for snap, class_name, class_code, institution, county, faces, measured in rows:
        verified = bool(measured) and "signed_in" in measured
        frames.append({
            "snapshot_id": snap.id, "class_id": snap.class_id, "class_name": class_name, "class_code": class_code,
            "institution_name": institution, "county_name": names.get(county, ""),
            "prefecture_name": names.get(prefecture_of(county), ""), "camera_id": snap.camera_id,
            "captured_at": utc_text(snap.captured_at), "received_at": utc_text(snap.received_at),
            "photo_sha256": snap.photo_sha256, "status": snap.status, "face_count": faces,
            "signed_in": int(measured["signed_in"]) if verified else now_in.get(snap.class_id, 0),
            "verified": verified,
        })
    return {"classes_in_session": classes_in_session, "classes_with_frames": total, "frames": frames}


def region_names(session: Session, codes: set[str]) -> dict[str, str]:
    if not codes:
        return {}
    return dict(session.execute(select(Region.code, Region.name).where(Region.code.in_(sorted(codes)))).all())


def signed_in_now(session: Session, class_ids: list[int], since: datetime) -> dict[int, int]:
    """Per class: trainees whose latest passed check-in today is a sign-in (as monitor/services/snapshots.py counts)."""
    if not class_ids:
        return {}
    latest: dict[tuple[int, int], str] = {}
    for class_id, trainee_id, kind in session.execute(
            select(CheckIn.class_id, CheckIn.trainee_id, CheckIn.kind).where(
                CheckIn.class_id.in_(class_ids), CheckIn.received_at >= since, CheckIn.status == UploadStatus.PASSED)
            .order_by(CheckIn.captured_at)):
        latest[(class_id, trainee_id)] = kind
    out: dict[int, int] = {}
    for (class_id, _), kind in latest.items():
        out[class_id] = out.get(class_id, 0) + (kind == "sign_in")
    return out


def trainee_day(session: Session, cls: TrainingClass, trainee: Trainee, day: date) -> dict[str, Any]:
    """One trainee's day in one class, in time order: sign-ins and sign-outs (with their verification), online-study
    sessions and heartbeats, and the anomalies that named the trainee; with the class's session windows."""
    start = datetime.combine(day, time(0), SHANGHAI).astimezone(UTC)
    end = start + timedelta(days=1)
    items: list[dict[str, Any]] = []
    checks = session.execute(
        select(CheckIn, Verification.face_distance, Verification.fence_result, Verification.fence_distance_m)
        .outerjoin(Verification, and_(Verification.subject_kind == SubjectKind.CHECKIN,
                                      Verification.subject_id == CheckIn.id))
        .where(CheckIn.class_id == cls.id, CheckIn.trainee_id == trainee.id, CheckIn.captured_at >= start,
               CheckIn.captured_at < end).order_by(CheckIn.captured_at, CheckIn.id)).all()
    for c, distance, fence, fence_m in checks:
        items.append({"at": utc_text(c.captured_at), "kind": c.kind, "status": c.status, "subject_id": c.id,
                      "photo_sha256": c.photo_sha256, "face_distance": distance, "fence_result": fence,
                      "fence_distance_m": fence_m,
                      "fix": {"lat": c.lat, "lon": c.lon, "accuracy_m": c.accuracy_m}})
    online = session.scalars(select(OnlineSession).where(
        OnlineSession.class_id == cls.id, OnlineSession.trainee_id == trainee.id, OnlineSession.started_at < end,
        func.coalesce(OnlineSession.ended_at, end) >= start)).all()
    for s in online:
        items.append({"at": utc_text(s.started_at), "kind": "online_start", "status": None, "subject_id": s.id})
        if s.ended_at is not None:
            items.append({"at": utc_text(s.ended_at), "kind": "online_end", "status": None, "subject_id": s.id})
    if online:
        beats = session.scalars(select(OnlineHeartbeat).where(
            OnlineHeartbeat.session_id.in_([s.id for s in online]), OnlineHeartbeat.captured_at >= start,
            OnlineHeartbeat.captured_at < end)).all()
        reasons = heartbeat_reasons(session, beats)  # why one failed or waits: not every reason raises an anomaly
        for beat in beats:
            items.append({"at": utc_text(beat.captured_at), "kind": "heartbeat", "status": beat.status,
                          "subject_id": beat.id, "photo_sha256": beat.photo_sha256,
                          "face_distance": beat.face_distance, "reasons": reasons.get(beat.id, [])})
    for a in session.scalars(select(Anomaly).where(
            Anomaly.class_id == cls.id, Anomaly.trainee_id == trainee.id, Anomaly.created_at >= start,
            Anomaly.created_at < end)):
        items.append({"at": utc_text(a.created_at), "kind": "anomaly", "status": a.state, "subject_id": a.id,
                      "rule": a.rule, "severity": a.severity, "message": a.message})
    items.sort(key=lambda i: (str(i["at"]), i["kind"] != "anomaly"))
    windows = session.scalars(select(ClassSession).where(ClassSession.class_id == cls.id)
                              .order_by(ClassSession.start_local)).all()
    in_term = cls.start_date <= day <= cls.end_date
    return {"class_id": cls.id, "class_name": cls.name, "trainee_id": trainee.id, "trainee_name": trainee.name,
            "day": day.isoformat(),
            "sessions": [{"name": w.name, "start": w.start_local, "end": w.end_local} for w in windows] if in_term
            else [],
            "items": items}
