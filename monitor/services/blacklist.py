"""Blacklist decisions (clauses 九, 十九): recorded with their evidence, author and time; a lifetime ban stays."""

from __future__ import annotations

from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from models.clock import utc_now
from models.domain import BlacklistIn
from models.errors import ApiError
from models.tables import Alert, BlacklistDecision, Inspection, Institution, Teacher, TrainingClass
from monitor.decisions.alert_lifecycle import AlertState, Outcome
from monitor.decisions.inspection_form import CHECKLIST

TEACHER_RULES = "TEACHER_"  # the rules about a class's teacher (AnomalyCode.TEACHER_…: absent, mismatch, not in pool…)
TEACHER_ITEM = "teachers"  # the form's teacher item (教师资质)


def classes_of_subject(session: Session, kind: str, subject_id: int) -> set[int]:
    """The classes an institution ran, or a teacher taught."""
    if kind == "institution":
        query = select(TrainingClass.id).where(TrainingClass.institution_id == subject_id)
    else:
        query = select(TrainingClass.id).where(or_(TrainingClass.theory_teacher_id == subject_id,
                                                   TrainingClass.practical_teacher_id == subject_id))
    return set(session.scalars(query))


def check_evidence(session: Session, kind: str, subject_id: int, alert_ids: list[int],
                   inspection_ids: list[int]) -> None:
    """A blacklisting stands on evidence of that institution or teacher (clauses 九, 十九), every citation of theirs:
    at least one cited alert closed as a confirmed violation, or a filed inspection form that found a problem. For a
    teacher, the evidence must be about the teacher: an alert of a teacher rule (TEACHER_…), a form whose teacher
    item (教师资质) did not comply; a class's proxy sign-ins are its institution's doing, not its teacher's."""
    classes = classes_of_subject(session, kind, subject_id)
    who = "该机构" if kind == "institution" else "该教师"
    grounds = 0
    for alert_id in alert_ids:
        alert = session.get(Alert, alert_id)
        assert alert is not None
        if alert.class_id not in classes:
            raise ApiError(422, "EVIDENCE_NOT_OF_SUBJECT", f"告警 {alert_id} 不属于{who}的班次，不能作为证据")
        if alert.state != AlertState.CLOSED or alert.outcome != Outcome.VIOLATION_CONFIRMED:
            raise ApiError(422, "EVIDENCE_NOT_CONFIRMED",
                           f"告警 {alert_id} 尚未以「确认违规」办结，不能作为列入黑名单的证据")
        if kind == "teacher" and not alert.rule.startswith(TEACHER_RULES):
            raise ApiError(422, "EVIDENCE_NOT_OF_SUBJECT", f"告警 {alert_id} 涉及的是培训机构的违规，不是教师本人的，"
                                                           "不能作为该教师列入黑名单的证据")
        grounds += 1
    for inspection_id in inspection_ids:
        inspection = session.get(Inspection, inspection_id)
        assert inspection is not None
        if inspection.class_id not in classes:
            raise ApiError(422, "EVIDENCE_NOT_OF_SUBJECT", f"检查记录 {inspection_id} 不属于{who}的班次，不能作为证据")
        items = inspection.items or {}
        found = [k for k, v in items.items() if isinstance(v, dict) and v.get("result") == "problem"]
        if kind == "teacher" and found and TEACHER_ITEM not in found:
            raise ApiError(422, "EVIDENCE_NOT_OF_SUBJECT", f"检查记录 {inspection_id} 的「{CHECKLIST[TEACHER_ITEM]}」"
                                                           "一项为符合，不能作为该教师列入黑名单的证据")
        grounds += bool(found)
    if not grounds:
        raise ApiError(422, "EVIDENCE_REQUIRED", f"列入黑名单须引用{who}至少一条以「确认违规」办结的告警，或一份"
                                                 "发现不符合项的检查表（通知第九条、第十九条）")


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
    if body.blacklisted:
        check_evidence(session, kind, subject.id, body.alert_ids, body.inspection_ids)
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
