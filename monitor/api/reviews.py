"""Verdicts left to an operator (faces in the grey zone) and the operator's decision."""



from typing import Annotated, Any, Literal

from fastapi import APIRouter
from sqlalchemy import select

from models.clock import utc_now
from models.domain import AnomalyCode, ReviewDecisionIn, Role, Severity
from models.errors import ApiError, errors
from models.params import Limit, UploadIdPath
from models.scope import Scope, access, ensure_in_class, refuse_missing
from models.tables import (
    CheckIn,
    ReviewItem,
    TrainingClass,
)
from models.terms import SubjectKind, UploadStatus
from monitor.api.deps import Center, Db
from monitor.api.schemas.center import ReviewDecisionOut, ReviewOut
from monitor.decisions.verdicts import Finding
from monitor.services.alerts import add_anomaly
from monitor.services.events import class_context, people_of
from monitor.services.recorder import Verdict, add_verdict

router = APIRouter(prefix="/api/v1", tags=["center"])


ReviewState = Literal["open", "confirmed", "rejected"]


@router.get("/reviews", summary="Verdicts left to an operator (face distance in the grey zone)",
            response_model=list[ReviewOut])
def list_reviews(scope: Center, db: Db, state: ReviewState = "open", limit: Limit = 100) -> list[dict[str, Any]]:
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
             responses=errors(409), response_model=ReviewDecisionOut)
def decide_review(review_id: UploadIdPath, body: ReviewDecisionIn,
                  scope: Annotated[Scope, access(Role.OPERATOR, Role.ADMIN)], db: Db) -> dict[str, Any]:
    principal = scope.principal
    with db.session() as session:
        item = session.get(ReviewItem, review_id)
        if item is None or item.subject_kind != SubjectKind.CHECKIN:
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
        people = people_of(session, checkin.trainee_id)
        reasons = []
        if body.decision == "confirmed":
            checkin.status = UploadStatus.PASSED if checkin.status == UploadStatus.REVIEW else checkin.status
        else:
            checkin.status = UploadStatus.FAILED
            finding = Finding(AnomalyCode.FACE_MISMATCH, Severity.HIGH,
                              f"人工复核认定人脸与登记照片不符（{principal.name}：{body.note}）",
                              {**item.measured, "review_id": item.id, "decided_by": principal.name},
                              item.thresholds)
            add_anomaly(session, context, finding, "checkin", checkin.id, people,
                        {"photo_sha256": checkin.photo_sha256}, item.thresholds)
            reasons.append(finding.as_reason())
        add_verdict(session, context, Verdict(
            SubjectKind.CHECKIN, checkin.id, UploadStatus(checkin.status), checkin.kind, reasons, utc_now(), people,
            {"review_id": item.id, "decided_by": principal.name, "photo_sha256": checkin.photo_sha256}))
        return {"id": item.id, "state": item.state, "checkin_status": checkin.status,
                "decided_by": item.decided_by}
