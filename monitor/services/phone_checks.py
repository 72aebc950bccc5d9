"""Phone spot checks: trainees drawn at random (a recorded seed) from those who signed in today, each call recorded,
done only with enough trainees reached (clause 十四)."""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from models.clock import local_day_start, utc_now
from models.errors import ApiError
from models.identity import mask_id_number
from models.tables import Alert, CheckIn, PhoneCall, PhoneCheck, Trainee
from models.terms import UploadStatus
from monitor.decisions.phone_check import Call, PhoneCheckVerdict, draw_trainees, judge_phone_check
from monitor.services.dispatch import Actor


def signed_in_today(session: Session, class_id: int, now: datetime) -> list[int]:
    """Trainees of the class with a verified sign-in today (Asia/Shanghai)."""
    return sorted(set(session.scalars(select(CheckIn.trainee_id).where(
        CheckIn.class_id == class_id, CheckIn.kind == "sign_in", CheckIn.status == UploadStatus.PASSED,
        CheckIn.received_at >= local_day_start(now)))))


def start_phone_check(session: Session, alert: Alert, actor: Actor, how_many: int, now: datetime | None = None
                      ) -> PhoneCheck:
    """Draw whom to call for the alert's class; the seed is kept, so the draw can be shown to be random."""
    now = now or utc_now()
    seed = secrets.token_hex(16)
    drawn = draw_trainees(signed_in_today(session, alert.class_id, now), how_many, seed)
    if not drawn:
        raise ApiError(409, "NOBODY_SIGNED_IN", "该班次今日没有已核验签到的学员，无法电话抽查；请改为现场核查")
    check = PhoneCheck(alert_id=alert.id, class_id=alert.class_id, staff_id=actor.staff_id, inspector=actor.name,
                       seed=seed, drawn=drawn, state="open", created_at=now)
    session.add(check)
    session.flush()
    return check


def verdict_of(session: Session, check: PhoneCheck, min_reached: int) -> PhoneCheckVerdict:
    calls = [Call(c.trainee_id, c.reached, c.present) for c in session.scalars(
        select(PhoneCall).where(PhoneCall.check_id == check.id).order_by(PhoneCall.id))]
    return judge_phone_check(check.drawn, calls, min_reached)


def complete_phone_check(session: Session, check: PhoneCheck, min_reached: int, now: datetime | None = None) -> None:
    """Mark the check done; 409 with what is missing when too few trainees were reached."""
    verdict = verdict_of(session, check, min_reached)
    if not verdict.done:
        raise ApiError(409, "TOO_FEW_REACHED", verdict.message)
    check.state, check.completed_at = "done", now or utc_now()


def phone_check_out(session: Session, check: PhoneCheck, min_reached: int, with_phones: bool) -> dict[str, Any]:
    """The check with the trainees to call (phone numbers only for the inspector who calls) and the calls made."""
    people = {t.id: t for t in session.scalars(select(Trainee).where(Trainee.id.in_(check.drawn)))}
    calls = list(session.scalars(select(PhoneCall).where(PhoneCall.check_id == check.id).order_by(PhoneCall.id)))
    verdict = verdict_of(session, check, min_reached)
    return {
        "id": check.id, "alert_id": check.alert_id, "class_id": check.class_id, "inspector": check.inspector,
        "seed": check.seed, "state": check.state, "created_at": check.created_at.isoformat(),
        "completed_at": check.completed_at.isoformat() if check.completed_at else None,
        "min_reached": min_reached, "reached": verdict.reached, "confirmed_present": verdict.confirmed_present,
        "done": verdict.done, "message": verdict.message,
        "trainees": [{"trainee_id": tid, "name": people[tid].name if tid in people else "",
                      "id_number_masked": mask_id_number(people[tid].id_number) if tid in people else "",
                      "phone": (people[tid].phone or None) if with_phones and tid in people else None}
                     for tid in check.drawn],
        "calls": [{"id": c.id, "trainee_id": c.trainee_id, "reached": c.reached, "present": c.present,
                   "answers": c.answers, "duration_s": c.duration_s, "called_at": c.called_at.isoformat()}
                  for c in calls],
    }
