"""Blacklist decisions (clauses 九, 十九): recorded with their evidence, author and time; a lifetime ban stays."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from models.clock import utc_now
from models.domain import BlacklistIn
from models.errors import ApiError
from models.tables import Alert, BlacklistDecision, Inspection, Institution, Teacher


def decide_blacklist(session: Session, subject: Institution | Teacher, body: BlacklistIn, by: str) -> BlacklistDecision:
    """Apply and record the decision; 409 for lifting a lifetime ban, 422 for evidence that does not exist."""
    kind = "teacher" if isinstance(subject, Teacher) else "institution"
    if body.for_fraud and kind != "teacher":
        raise ApiError(422, "LIFETIME_FOR_TEACHERS", "终身禁入只适用于教师（通知第九条）")
    if body.for_fraud and not body.blacklisted:
        raise ApiError(422, "LIFETIME_NEEDS_BLACKLIST", "终身禁入须同时列入黑名单")
    lifetime = session.scalar(select(BlacklistDecision.id).where(
        BlacklistDecision.subject_kind == kind, BlacklistDecision.subject_id == subject.id,
        BlacklistDecision.lifetime.is_(True))) is not None
    if lifetime and not body.blacklisted:
        raise ApiError(409, "LIFETIME_BAN", "该教师因弄虚作假被终身禁入，不能移出黑名单（通知第九条）")
    if body.blacklisted and not body.reason.strip():
        raise ApiError(422, "REASON_REQUIRED", "列入黑名单须写明原因")
    for ident, model, label in [(a, Alert, "告警") for a in body.alert_ids] + [
            (i, Inspection, "检查记录") for i in body.inspection_ids]:
        if session.get(model, ident) is None:
            raise ApiError(422, "UNKNOWN_EVIDENCE", f"作为证据的{label} {ident} 不存在")
    subject.blacklisted = body.blacklisted
    if isinstance(subject, Institution):
        subject.blacklist_reason = body.reason
    decision = BlacklistDecision(subject_kind=kind, subject_id=subject.id, blacklisted=body.blacklisted,
                                 lifetime=body.for_fraud or lifetime, reason=body.reason,
                                 alert_ids=list(body.alert_ids), inspection_ids=list(body.inspection_ids),
                                 decided_by=by, decided_at=utc_now())
    session.add(decision)
    session.flush()
    return decision


def decision_out(d: BlacklistDecision) -> dict[str, Any]:
    return {"id": d.id, "subject_kind": d.subject_kind, "subject_id": d.subject_id, "blacklisted": d.blacklisted,
            "lifetime": d.lifetime, "reason": d.reason, "alert_ids": list(d.alert_ids),
            "inspection_ids": list(d.inspection_ids), "decided_by": d.decided_by,
            "decided_at": d.decided_at.isoformat()}
