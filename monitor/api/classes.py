"""Classes (培训班次): registration under the notice's rules, rosters, the liveness setting, reading in scope."""


from typing import Any

from fastapi import APIRouter
from sqlalchemy import select
from sqlalchemy.orm import Session

from models.clock import utc_now
from models.domain import (
    ClassIn,
    LivenessSettingIn,
    RosterIn,
)
from models.errors import ApiError, errors
from models.params import RecordIdPath
from models.scope import (
    AnyCaller,
    ensure_class,
)
from models.tables import (
    ClassSession,
    Institution,
    Occupation,
    RosterEntry,
    Teacher,
    Trainee,
    TrainingClass,
    Venue,
)
from monitor.api.common import get_or_404, insert
from monitor.api.deps import Admin, Db
from monitor.api.schemas.registration import ClassOut
from monitor.services.identity import (
    raise_pending_identity_anomalies,
)

router = APIRouter(prefix="/api/v1", tags=["registration"])


def check_class_rules(
    cls: ClassIn, institution: Institution, venue: Venue, occupation: Occupation, theory: Teacher, practical: Teacher
) -> None:
    """The registration rules of the notice: clauses 九 (teachers), 十三 (occupation), 十九 (blacklist)."""
    if cls.theory_teacher_id == cls.practical_teacher_id or theory.id_number == practical.id_number:
        raise ApiError(422, "SAME_TEACHER_BOTH", "理论教师与实操教师不得由同一人担任（通知第九条）")
    if institution.blacklisted:
        raise ApiError(
            422, "INSTITUTION_BLACKLISTED", f"培训机构“{institution.name}”已列入黑名单，不得开班（通知第十九条）"
        )
    for teacher in (theory, practical):
        if teacher.blacklisted:
            raise ApiError(422, "TEACHER_BLACKLISTED", f"教师“{teacher.name}”已列入黑名单，不得授课（通知第九条）")
    if venue.institution_id != institution.id:
        raise ApiError(422, "VENUE_NOT_OF_INSTITUTION", "培训场地不属于该培训机构")
    missing = [
        name
        for ok, name in (
            (occupation.has_training_standard, "培训标准"),
            (occupation.has_evaluation_standard, "评价标准"),
            (occupation.has_evaluation_body, "评价考核机构"),
        )
        if not ok
    ]
    if missing:
        raise ApiError(
            422,
            "CLASS_NOT_ALLOWED",
            f"职业（工种）“{occupation.name}”无{'、'.join(missing)}，不得批准开班（通知第十三条）",
        )


def class_out(session: Session, c: TrainingClass) -> dict[str, Any]:
    sessions = session.scalars(select(ClassSession).where(ClassSession.class_id == c.id)).all()
    roster = session.scalars(select(RosterEntry).where(RosterEntry.class_id == c.id)).all()
    return {"id": c.id, "code": c.code, "name": c.name, "institution_id": c.institution_id, "venue_id": c.venue_id,
            "occupation_id": c.occupation_id, "mode": c.mode, "start_date": c.start_date.isoformat(),
            "end_date": c.end_date.isoformat(), "theory_teacher_id": c.theory_teacher_id,
            "practical_teacher_id": c.practical_teacher_id, "status": c.status,
            "liveness_required": c.liveness_required,
            "sessions": [{"id": s.id, "name": s.name, "start": s.start_local, "end": s.end_local} for s in sessions],
            "level": c.level, "trainee_ids": sorted(r.trainee_id for r in roster),
            "declarations": [{"trainee_id": r.trainee_id, "category": r.category, "voucher_no": r.voucher_no}
                             for r in sorted(roster, key=lambda r: r.trainee_id) if r.category or r.voucher_no]}


def check_trainees(session: Session, ids: list[int]) -> None:
    if not ids:
        return
    known = set(session.scalars(select(Trainee.id).where(Trainee.id.in_(ids))))
    if unknown := [i for i in ids if i not in known]:
        raise ApiError(422, "UNKNOWN_TRAINEE", f"花名册中的学员不存在：{', '.join(map(str, unknown))}")


@router.post("/classes", status_code=201, responses=errors(404, 409), response_model=ClassOut)
def create_class(body: ClassIn, scope: Admin, db: Db) -> dict[str, Any]:
    with db.session() as session:
        institution = get_or_404(session, Institution, body.institution_id, "UNKNOWN_INSTITUTION", "培训机构")
        venue = get_or_404(session, Venue, body.venue_id, "UNKNOWN_VENUE", "培训场地")
        occupation = get_or_404(session, Occupation, body.occupation_id, "UNKNOWN_OCCUPATION", "职业（工种）")
        theory = get_or_404(session, Teacher, body.theory_teacher_id, "UNKNOWN_TEACHER", "教师")
        practical = get_or_404(session, Teacher, body.practical_teacher_id, "UNKNOWN_TEACHER", "教师")
        check_class_rules(body, institution, venue, occupation, theory, practical)
        check_trainees(session, body.trainee_ids)
        windows = sorted((s.start, s.end) for s in body.sessions)
        if any(a[1] > b[0] for a, b in zip(windows, windows[1:], strict=False)):
            raise ApiError(422, "SESSIONS_OVERLAP", "同一天的课时时间段不能重叠")
        row = insert(session, TrainingClass(
            code=body.code, name=body.name, institution_id=body.institution_id, venue_id=body.venue_id,
            occupation_id=body.occupation_id, mode=body.mode.value, start_date=body.start_date,
            end_date=body.end_date, theory_teacher_id=body.theory_teacher_id,
            practical_teacher_id=body.practical_teacher_id, status="scheduled",
            liveness_required=body.liveness_required, level=body.level, created_at=utc_now(),
        ), "DUPLICATE_CLASS", f"班次编号 {body.code} 已登记")
        for s in body.sessions:
            session.add(ClassSession(class_id=row.id, name=s.name, start_local=s.start.strftime("%H:%M"),
                                     end_local=s.end.strftime("%H:%M")))
        declared = {d.trainee_id: d for d in body.declarations}
        for trainee_id in body.trainee_ids:
            d = declared.get(trainee_id)
            session.add(RosterEntry(class_id=row.id, trainee_id=trainee_id, category=d.category if d else None,
                                    voucher_no=d.voucher_no if d else None))
        session.flush()
        raise_pending_identity_anomalies(session, [("teacher", body.theory_teacher_id),
                                                   ("teacher", body.practical_teacher_id)]
                                         + [("trainee", t) for t in body.trainee_ids])
        return class_out(session, row)


@router.post("/classes/{class_id}/roster", summary="Add trainees to a class roster", response_model=ClassOut)
def add_to_roster(class_id: RecordIdPath, body: RosterIn, scope: Admin, db: Db) -> dict[str, Any]:
    with db.session() as session:
        row = get_or_404(session, TrainingClass, class_id, "UNKNOWN_CLASS", "班次")
        check_trainees(session, body.trainee_ids)
        declared = {d.trainee_id: d for d in body.declarations}
        for trainee_id in body.trainee_ids:
            entry = session.get(RosterEntry, (class_id, trainee_id))
            if entry is None:
                entry = RosterEntry(class_id=class_id, trainee_id=trainee_id)
                session.add(entry)
            if (d := declared.get(trainee_id)) is not None:  # a declaration given again corrects the earlier one
                entry.category, entry.voucher_no = d.category, d.voucher_no
        session.flush()
        raise_pending_identity_anomalies(session, [("trainee", t) for t in body.trainee_ids])
        return class_out(session, row)


@router.put("/classes/{class_id}/liveness", summary="Whether sign-in requires the liveness challenge",
            response_model=ClassOut)
def set_liveness(class_id: RecordIdPath, body: LivenessSettingIn, scope: Admin, db: Db) -> dict[str, Any]:
    with db.session() as session:
        row = get_or_404(session, TrainingClass, class_id, "UNKNOWN_CLASS", "班次")
        row.liveness_required = body.required
        return class_out(session, row)


@router.get("/classes", summary="Classes, newest first (sites see their own)", response_model=list[ClassOut])
def list_classes(scope: AnyCaller, db: Db) -> list[dict[str, Any]]:
    with db.session() as session:
        query = select(TrainingClass).where(scope.class_clause()).order_by(TrainingClass.id.desc())
        return [class_out(session, c) for c in session.scalars(query)]


@router.get("/classes/{class_id}", response_model=ClassOut)
def get_class(class_id: RecordIdPath, scope: AnyCaller, db: Db) -> dict[str, Any]:
    with db.session() as session:
        return class_out(session, ensure_class(session, scope, class_id))
