"""Random, short-lived, single-use liveness challenges (blink, turn left, turn right), rate-limited."""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any

from fastapi import APIRouter
from sqlalchemy import func, select

from ingest.acceptance import check_rostered
from ingest.checks.limits import WINDOW_S, RecentCounts, refuse_over_limit
from ingest.context import Ingest
from ingest.routes.uploads import site_institution
from ingest.schemas import ChallengeOut
from models.clock import SHANGHAI, utc_now
from models.domain import LIVENESS_ACTIONS, LIVENESS_MAX_FRAMES, LIVENESS_MIN_FRAMES, TraineeInClassIn
from models.errors import errors
from models.scope import SiteCaller
from models.tables import LivenessChallenge

router = APIRouter(prefix="/api/v1", tags=["ingest"])


@router.post("/liveness/challenges", status_code=201, summary="A random single-use liveness challenge",
             responses=errors(404, 409, 429), response_model=ChallengeOut)
def create_challenge(body: TraineeInClassIn, scope: SiteCaller, ctx: Ingest) -> dict[str, Any]:
    institution_id = site_institution(scope)
    now = utc_now()
    with ctx.db.session() as session:
        check_rostered(session, body.class_id, body.trainee_id, institution_id, now.astimezone(SHANGHAI).date())
        since = now - timedelta(seconds=WINDOW_S)
        recent = select(func.count()).select_from(LivenessChallenge).where(
            LivenessChallenge.institution_id == institution_id, LivenessChallenge.issued_at >= since)
        counts = RecentCounts(
            device=int(session.scalar(recent.where(LivenessChallenge.device_id == body.device_id)) or 0)
            if body.device_id else 0,
            site=int(session.scalar(recent) or 0),
            open_for_trainee=int(session.scalar(select(func.count()).select_from(LivenessChallenge).where(
                LivenessChallenge.trainee_id == body.trainee_id, LivenessChallenge.expires_at > now,
                LivenessChallenge.used_by_checkin_id.is_(None))) or 0))
        if refusal := refuse_over_limit("活体挑战", counts, ctx.limits.challenge_limits):
            raise refusal
        action = secrets.choice(sorted(LIVENESS_ACTIONS))
        challenge = LivenessChallenge(
            id=secrets.token_hex(16), institution_id=institution_id, class_id=body.class_id,
            trainee_id=body.trainee_id, action=action, issued_at=now, device_id=body.device_id,
            expires_at=now + timedelta(seconds=ctx.limits.challenge_ttl_s))
        session.add(challenge)
    return {"challenge_id": challenge.id, "action": action, "instruction": LIVENESS_ACTIONS[action],
            "expires_at": challenge.expires_at.isoformat(), "min_frames": LIVENESS_MIN_FRAMES,
            "max_frames": LIVENESS_MAX_FRAMES}
