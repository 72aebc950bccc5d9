"""Phone spot checks: trainees drawn at random (a recorded seed) from the class's whole roster with each one's state
today, calls timed by the inspector's page and refused when they cannot be true, done only with enough trainees
reached (clause 十四), and calls confirmed or not by a call center's detail records."""

from __future__ import annotations

import hashlib
import secrets
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from models.clock import local_day_start, utc_now
from models.dispatch import CallIn
from models.errors import ApiError
from models.identity import mask_id_number, mask_phone
from models.tables import Alert, CdrImport, CheckIn, PhoneCall, PhoneCheck, RosterEntry, Trainee
from monitor.decisions.phone_check import (
    TRAINEE_STATES,
    Call,
    CdrRecord,
    PhoneCheckVerdict,
    RecordedCall,
    draw_trainees,
    judge_phone_check,
    match_cdrs,
    refuse_overlap,
    refuse_reached,
    state_of_trainee,
    time_call,
)
from monitor.services.dispatch import Actor, person_of


def roster_of(session: Session, class_id: int) -> list[int]:
    """Everyone on the class's roster (expected in class on any day it is in session)."""
    return sorted(session.scalars(select(RosterEntry.trainee_id).where(RosterEntry.class_id == class_id)))


def states_today(session: Session, class_id: int, trainee_ids: list[int], now: datetime) -> dict[int, str]:
    """Each trainee's sign-in state today (Asia/Shanghai): passed, review, pending, refused or absent."""
    statuses: dict[int, list[str]] = defaultdict(list)
    for trainee_id, status in session.execute(select(CheckIn.trainee_id, CheckIn.status).where(
            CheckIn.class_id == class_id, CheckIn.kind == "sign_in", CheckIn.trainee_id.in_(trainee_ids),
            CheckIn.received_at >= local_day_start(now), CheckIn.received_at < local_day_start(now)
            + timedelta(days=1))):
        statuses[trainee_id].append(status)
    return {t: state_of_trainee(statuses.get(t, [])) for t in trainee_ids}


def start_phone_check(session: Session, alert: Alert, actor: Actor, how_many: int, now: datetime | None = None
                      ) -> PhoneCheck:
    """Draw whom to call from the alert's class roster; the seed is kept, so the draw can be shown to be random. The
    caller is the alert's assignee, whoever draws (an operator may draw for them): the calls are theirs to make."""
    now = now or utc_now()
    seed = secrets.token_hex(16)
    drawn = draw_trainees(roster_of(session, alert.class_id), how_many, seed)
    if not drawn:
        raise ApiError(409, "EMPTY_ROSTER", "该班次名册中没有学员，无法电话抽查；请改为现场核查")
    caller = (Actor("", "inspector", alert.assignee_staff_id) if alert.assignee_staff_id is not None
              else actor)
    check = PhoneCheck(alert_id=alert.id, class_id=alert.class_id, staff_id=caller.staff_id,
                       inspector=person_of(session, caller), drawn_by=person_of(session, actor),
                       drawn_by_token_id=actor.token_id,
                       seed=seed, drawn=drawn, state="open", created_at=now)
    session.add(check)
    session.flush()
    return check


def record_call(session: Session, check: PhoneCheck, body: CallIn, actor: Actor, now: datetime | None = None
                ) -> PhoneCall:
    """One call recorded by `actor` (named on it), timed by the page (moved onto the server's clock); 422 when its
    times cannot be true or a trainee without a number on file is said to be reached."""
    now = now or utc_now()
    if body.trainee_id not in check.drawn:
        raise ApiError(422, "NOT_DRAWN", "只能记录抽取名单中学员的通话（抽取结果不可更改）")
    timing = time_call(body.started_at, body.ended_at, body.page_now, now, check.created_at)
    if isinstance(timing, str):
        raise ApiError(422, "CALL_TIMES", timing)
    earlier = [(start, end) for start, end in session.execute(
        select(PhoneCall.started_at, PhoneCall.ended_at).where(PhoneCall.check_id == check.id))
        if start is not None and end is not None]
    if why := refuse_overlap(timing, earlier):
        raise ApiError(422, "CALL_TIMES", why)
    trainee = session.get(Trainee, body.trainee_id)
    phone = trainee.phone if trainee is not None else ""
    if why := refuse_reached(body.reached, bool(phone), timing.duration_s):
        raise ApiError(422, "NOT_REACHABLE", why)
    call = PhoneCall(check_id=check.id, trainee_id=body.trainee_id, reached=body.reached, present=body.present,
                     answers=body.answers, duration_s=timing.duration_s, called_at=now,
                     started_at=timing.started_at, ended_at=timing.ended_at, timing="page", callee=phone,
                     cdr_state="unchecked", recorded_by=person_of(session, actor),
                     recorded_by_token_id=actor.token_id)
    session.add(call)
    session.flush()
    return call


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
    """The check with the trainees to call and their state today (whole numbers only for the inspector who calls,
    masked for everyone else) and the calls made."""
    people = {t.id: t for t in session.scalars(select(Trainee).where(Trainee.id.in_(check.drawn)))}
    calls = list(session.scalars(select(PhoneCall).where(PhoneCall.check_id == check.id).order_by(PhoneCall.id)))
    verdict = verdict_of(session, check, min_reached)
    states = states_today(session, check.class_id, list(check.drawn), check.created_at)

    def trainee(tid: int) -> dict[str, Any]:
        person = people.get(tid)
        phone = person.phone if person is not None else ""
        return {"trainee_id": tid, "name": person.name if person else "",
                "id_number_masked": mask_id_number(person.id_number) if person else "",
                "phone": (phone or None) if with_phones else None,
                "phone_masked": mask_phone(phone) if phone else None, "has_phone": bool(phone),
                "state": states[tid], "state_text": TRAINEE_STATES[states[tid]]}

    return {
        "id": check.id, "alert_id": check.alert_id, "class_id": check.class_id, "inspector": check.inspector,
        "drawn_by": check.drawn_by,
        "seed": check.seed, "state": check.state, "created_at": check.created_at.isoformat(),
        "completed_at": check.completed_at.isoformat() if check.completed_at else None,
        "min_reached": min_reached, "required": verdict.required, "reached": verdict.reached,
        "confirmed_present": verdict.confirmed_present, "done": verdict.done, "message": verdict.message,
        "trainees": [trainee(tid) for tid in check.drawn],
        "calls": [{"id": c.id, "trainee_id": c.trainee_id, "reached": c.reached, "present": c.present,
                   "answers": c.answers, "duration_s": c.duration_s, "called_at": c.called_at.isoformat(),
                   "started_at": c.started_at.isoformat() if c.started_at else None,
                   "ended_at": c.ended_at.isoformat() if c.ended_at else None, "timing": c.timing,
                   "cdr_state": c.cdr_state, "recorded_by": c.recorded_by}
                  for c in calls],
    }


def import_cdrs(session: Session, data: bytes, fmt: str, records: list[CdrRecord], actor: str,
                now: datetime | None = None) -> CdrImport:
    """Match a call center's detail records to the calls recorded in the time they cover, mark each call confirmed
    or unconfirmed (with the record that shows it), and keep the import's digest and counts (audited rows)."""
    now = now or utc_now()
    first = min(r.start for r in records) - timedelta(hours=1)
    last = max(r.start for r in records) + timedelta(hours=1)
    rows = list(session.scalars(select(PhoneCall).where(PhoneCall.started_at >= first, PhoneCall.started_at <= last,
                                                        PhoneCall.callee != "")))
    recorded = [RecordedCall(c.id, c.callee, c.reached, c.started_at, c.duration_s)
                for c in rows if c.started_at is not None]
    result = match_cdrs(recorded, records)
    entry = CdrImport(sha256=hashlib.sha256(data).hexdigest(), format=fmt, rows=len(records),
                      confirmed=sum(1 for s, _ in result.values() if s == "confirmed"),
                      unconfirmed=sum(1 for s, _ in result.values() if s == "unconfirmed"),
                      imported_by=actor, imported_at=now)
    session.add(entry)
    session.flush()
    by_id = {c.id: c for c in rows}
    for call_id, (state, record) in result.items():
        call = by_id[call_id]
        if call.cdr_state == "confirmed" and state == "unconfirmed":
            continue  # another file (another trunk) already showed it
        call.cdr_state = state
        call.cdr_ref = (f"cdr_import={entry.id} row={record.row} caller={mask_phone(record.caller)} "
                        f"start={record.start.isoformat()} talk={record.duration_s}s") if record else None
    session.flush()
    return entry
