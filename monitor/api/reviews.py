"""The review queue: verdicts left to an operator (faces in the grey zone, look-alikes at enrolment), oldest first
with their service level, and the operator's decisions, one at a time or several at once."""

from typing import Annotated, Any, Literal

from fastapi import APIRouter

from models.clock import utc_now
from models.domain import IdentityReviewIn, ReviewBatchIn, ReviewDecisionIn
from models.errors import errors
from models.params import Limit, UploadIdPath
from models.scope import CAPABILITY_ROLES, Capability, Scope, access
from monitor.adapters.storage import begin_write
from monitor.api.deps import Center, Db, SettingsDep
from monitor.api.schemas.center import ReviewBatchOut, ReviewDecisionOut, ReviewOut
from monitor.services.reviews import (
    QueueQuery,
    decide_identity_review,
    decide_many,
    decide_upload_review,
    review_queue,
)

router = APIRouter(prefix="/api/v1", tags=["center"])

ReviewState = Literal["open", "confirmed", "rejected"]
ReviewKind = Literal["all", "checkin", "heartbeat", "identity"]
Decider = Annotated[Scope, access(*CAPABILITY_ROLES[Capability.DECIDE_REVIEWS])]


@router.get("/reviews", summary="The review queue, oldest first: faces in the grey zone (check-ins, online-study "
            "heartbeats) and look-alikes found at enrolment, each with its service level",
            response_model=list[ReviewOut])
def list_reviews(scope: Center, db: Db, settings: SettingsDep, state: ReviewState = "open", kind: ReviewKind = "all",
                 limit: Limit = 100) -> list[dict[str, Any]]:
    query = QueueQuery(state, kind, limit, settings.review_sla_minutes, utc_now())
    with db.session() as session:
        return review_queue(session, scope, query)


@router.post("/reviews/{review_id}/decision", summary="Confirm the trainee, or reject as FACE_MISMATCH (a check-in's "
             "or a heartbeat's review)", responses=errors(409), response_model=ReviewDecisionOut)
def decide_review(review_id: UploadIdPath, body: ReviewDecisionIn, scope: Decider, db: Db) -> dict[str, Any]:
    with db.session() as session:
        return decide_upload_review(session, scope, review_id, body.decision, body.note)


@router.post("/reviews/decisions", summary="One decision for several reviews at once (each decided on its own; "
             "those already decided or out of scope are listed as skipped)", response_model=ReviewBatchOut)
def decide_reviews(body: ReviewBatchIn, scope: Decider, db: Db) -> dict[str, Any]:
    with db.session() as session:
        # SQLite: the write lock first. Each item is read inside its own savepoint, which on SQLite opens a deferred
        # transaction; a write committed by the worker meanwhile would make its first write fail at once as locked.
        begin_write(session)
        decided, skipped = decide_many(session, scope, body.review_ids, body.decision, body.note)
    return {"decided": decided, "skipped": skipped}


@router.post("/identity-matches/{match_id}/review", summary="An operator's finding on a look-alike found at "
             "enrolment: distinct people, or the same person under two ID numbers (冒名/多领)",
             responses=errors(409), response_model=ReviewDecisionOut)
def review_identity_match(match_id: UploadIdPath, body: IdentityReviewIn, scope: Decider, db: Db) -> dict[str, Any]:
    with db.session() as session:  # operators and admins see the whole province: people are not bound to a region
        return decide_identity_review(session, scope.principal, match_id, body.decision, body.note)
