"""The monitoring center's read API: province overview, anomalies, classes, and evidence photos."""


from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Response, params
from sqlalchemy import func, select

from ingest.adapters.evidence import EvidenceStore
from models.clock import SHANGHAI, local_day_start, utc_now
from models.domain import AnomalyCode, ReviewDecisionIn, Role, Severity
from models.errors import ApiError, errors, file_response
from models.params import Limit, Sha256Path, UploadIdPath
from models.scope import CENTER_ROLES, Scope, ensure_in_class, evidence_visible, refuse_missing
from models.tables import (
    Alert,
    Anomaly,
    CheckIn,
    ClassStatus,
    Evidence,
    FaceTemplate,
    Institution,
    Region,
    ReviewItem,
    Trainee,
    TrainingClass,
    Venue,
)
from monitor.adapters.storage import Database
from monitor.decisions.verdicts import Finding
from monitor.services.alerts import add_anomaly, add_event, class_context, prefecture_of

AlertState = Literal["open", "resolved"]
ReviewState = Literal["open", "confirmed", "rejected"]


def build_center_router(db: Database, evidence: EvidenceStore, access: Callable[..., params.Depends]) -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["center"])
    center = Annotated[Scope, access(*CENTER_ROLES)]

    @router.get("/overview", summary="The province at a glance for the wall screen")
    def overview(scope: center) -> dict[str, Any]:
        since = local_day_start(utc_now())
        with db.session() as session:
            prefectures = session.scalars(select(Region).where(Region.level == "prefecture").order_by(Region.code))
            stats = {p.code: {"code": p.code, "name": p.name, "classes": 0, "in_session": 0, "checkins": 0,
                              "passed": 0, "anomalies": 0} for p in prefectures}
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
                pref = class_pref.get(class_id)
                if pref:
                    stats[pref]["checkins"] += n
                    stats[pref]["passed"] += n if status == "passed" else 0
            open_anomalies = 0
            by_rule: Counter[str] = Counter()
            for class_id, rule, state, n in session.execute(
                select(Anomaly.class_id, Anomaly.rule, Anomaly.state, func.count())
                .where(Anomaly.created_at >= since).group_by(Anomaly.class_id, Anomaly.rule, Anomaly.state)
            ):
                pref = class_pref.get(class_id)
                if pref:
                    stats[pref]["anomalies"] += n
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
            },
            "anomalies_by_rule": dict(by_rule),
            "prefectures": list(stats.values()),
            "classes": classes,
        }

    @router.get("/anomalies", summary="Recent anomalies, newest first")
    def list_anomalies(scope: center, limit: Limit = 50, rule: AnomalyCode | None = None) -> list[dict[str, Any]]:
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

    @router.get("/alerts", summary="Alerts (repeats of one rule on one class grouped), newest first, with evidence")
    def list_alerts(scope: center, state: AlertState = "open", limit: Limit = 50) -> list[dict[str, Any]]:
        with db.session() as session:
            alerts = session.scalars(select(Alert).where(Alert.state == state, scope.of_classes(Alert.class_id))
                                     .order_by(Alert.last_at.desc()).limit(limit)).all()
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

    @router.get("/reviews", summary="Verdicts left to an operator (face distance in the grey zone)")
    def list_reviews(scope: center, state: ReviewState = "open", limit: Limit = 100) -> list[dict[str, Any]]:
        with db.session() as session:
            rows = session.execute(
                select(ReviewItem, CheckIn).join(CheckIn, CheckIn.id == ReviewItem.subject_id)
                .where(ReviewItem.subject_kind == "checkin", ReviewItem.state == state,
                       scope.of_classes(ReviewItem.class_id))
                .order_by(ReviewItem.id.desc()).limit(limit)
            ).all()
            return [{"id": r.id, "checkin_id": c.id, "class_id": r.class_id, "trainee_id": r.trainee_id,
                     "reason_code": r.reason_code, "message": r.message, "measured": r.measured,
                     "thresholds": r.thresholds, "state": r.state, "photo_sha256": c.photo_sha256,
                     "created_at": r.created_at.isoformat(), "decided_by": r.decided_by, "note": r.note}
                    for r, c in rows]

    @router.post("/reviews/{review_id}/decision", summary="Confirm the trainee, or reject as FACE_MISMATCH",
                 responses=errors(409))
    def decide_review(review_id: UploadIdPath, body: ReviewDecisionIn,
                      scope: Annotated[Scope, access(Role.OPERATOR, Role.ADMIN)]) -> dict[str, Any]:
        principal = scope.principal
        with db.session() as session:
            item = session.get(ReviewItem, review_id)
            if item is None or item.subject_kind != "checkin":
                raise refuse_missing("UNKNOWN_REVIEW", "复核事项", review_id)
            ensure_in_class(session, scope, item.class_id, "UNKNOWN_REVIEW", "复核事项", review_id)
            if item.state != "open":
                raise ApiError(409, "REVIEW_ALREADY_DECIDED", f"该复核事项已由 {item.decided_by} 处理")
            item.state, item.note = body.decision, body.note
            item.decided_by, item.decided_at = principal.name, utc_now()
            checkin = session.get(CheckIn, item.subject_id)
            cls = session.get(TrainingClass, item.class_id)
            assert checkin is not None and cls is not None
            context = class_context(session, cls)
            trainee = session.get(Trainee, checkin.trainee_id)
            people = {"trainee_id": checkin.trainee_id, "trainee_name": trainee.name if trainee else None}
            reasons = []
            if body.decision == "confirmed":
                checkin.status = "passed" if checkin.status == "review" else checkin.status
            else:
                checkin.status = "failed"
                finding = Finding(AnomalyCode.FACE_MISMATCH, Severity.HIGH,
                                  f"人工复核认定人脸与登记照片不符（{principal.name}：{body.note}）",
                                  {**item.measured, "review_id": item.id, "decided_by": principal.name},
                                  item.thresholds)
                add_anomaly(session, context, finding, "checkin", checkin.id, people,
                            {"photo_sha256": checkin.photo_sha256}, item.thresholds)
                reasons.append(finding.as_reason())
            add_event(session, "verdict", context, {
                "subject_kind": "checkin", "subject_id": checkin.id, "status": checkin.status,
                "kind": checkin.kind, "reasons": reasons, "review_id": item.id, "decided_by": principal.name,
                "at": utc_now().isoformat(), **people, "photo_sha256": checkin.photo_sha256,
            })
            return {"id": item.id, "state": item.state, "checkin_status": checkin.status,
                    "decided_by": item.decided_by}

    @router.get("/evidence/{sha256}", summary="An evidence photo (authorised roles only)", response_class=Response,
                responses=file_response("image/jpeg", "image/png", "image/webp", description="证据照片原件"))
    def get_evidence(sha256: Sha256Path, scope: Annotated[Scope, access()]) -> Response:
        with db.session() as session:
            row = session.get(Evidence, sha256.lower())
            if row is None or not evidence_visible(session, scope, row.sha256):
                raise refuse_missing("UNKNOWN_EVIDENCE", "证据照片", sha256[:12] + "…")
            is_template = session.scalar(select(FaceTemplate.id).where(FaceTemplate.photo_sha256 == row.sha256))
            media_type = row.media_type
        return Response(
            evidence.get(row.sha256), media_type=media_type,
            headers={"Cache-Control": "private, max-age=3600", "X-Content-Type-Options": "nosniff",
                     "X-Evidence-Kind": "enrolment" if is_template else "upload"},
        )

    return router
