"""Trainees and teachers: registration with a checked ID number (GB 11643), reading, the teachers' blacklist."""


from typing import Any

from fastapi import APIRouter
from sqlalchemy import select
from sqlalchemy.orm import Session

from models.clock import utc_now
from models.domain import (
    BlacklistIn,
    TeacherIn,
    TraineeIn,
)
from models.errors import ApiError, errors
from models.identity import explain_id_number_problem, mask_id_number, mask_phone, normalise_id_number
from models.params import RecordIdPath
from models.scope import (
    refuse_missing,
    trainee_visible,
)
from models.tables import (
    Teacher,
    Trainee,
)
from monitor.api.common import get_or_404, insert
from monitor.api.deps import Admin, Db, Reader
from monitor.api.schemas.registration import TeacherOut, TraineeOut
from monitor.services.blacklist import decide_blacklist
from monitor.services.identity import (
    count_templates,
)


def refuse_duplicate(session: Session, model: type[Trainee] | type[Teacher], id_number: str, what: str) -> None:
    """409 for a number already registered, asked before inserting: the unique constraint stays the guard against a
    race, but a refused insert would put the whole number into PostgreSQL's log (`Key (id_number)=(…)`). The answer
    names the record that holds the number (`detail.other`: kind, id, name), so that an administrator, or a resumed
    registration, goes on with that person instead of registering him again under another number."""
    row = session.execute(select(model.id, model.name).where(model.id_number == id_number)).first()
    if row is not None:
        held_by, name = row
        kind = "trainee" if model is Trainee else "teacher"
        raise ApiError(409, "DUPLICATE_ID_NUMBER",
                       f"身份证号 {mask_id_number(id_number)} 的{what}已登记（编号 {held_by}）",
                       other={"kind": kind, "id": held_by, "name": name})


router = APIRouter(prefix="/api/v1", tags=["registration"])


def validated_id_number(raw: str) -> str:
    problem = explain_id_number_problem(raw)
    if problem:
        raise ApiError(422, "INVALID_ID_NUMBER", problem)
    return normalise_id_number(raw)


def person_out(p: Trainee | Teacher, templates: int) -> dict[str, Any]:
    out = {"id": p.id, "name": p.name, "id_number_masked": mask_id_number(p.id_number), "face_templates": templates}
    if isinstance(p, Teacher):
        out |= {"qualifications": p.qualifications, "blacklisted": p.blacklisted}
    else:
        out["phone_masked"] = mask_phone(p.phone) if p.phone else None
    return out


@router.post("/trainees", status_code=201, responses=errors(409), response_model=TraineeOut)
def create_trainee(body: TraineeIn, scope: Admin, db: Db) -> dict[str, Any]:
    id_number = validated_id_number(body.id_number)
    with db.session() as session:
        refuse_duplicate(session, Trainee, id_number, "学员")
        row = insert(session, Trainee(id_number=id_number, name=body.name, phone=body.phone,
                                      created_at=utc_now()),
                     "DUPLICATE_ID_NUMBER", f"身份证号 {mask_id_number(id_number)} 的学员已登记")
        return person_out(row, 0)


@router.get("/trainees/{trainee_id}", response_model=TraineeOut)
def get_trainee(trainee_id: RecordIdPath, scope: Reader, db: Db) -> dict[str, Any]:
    with db.session() as session:
        row = session.get(Trainee, trainee_id)
        if row is None or not trainee_visible(session, scope, trainee_id):
            raise refuse_missing("UNKNOWN_TRAINEE", "学员", trainee_id)
        return person_out(row, count_templates(session, "trainee", row.id))


@router.post("/teachers", status_code=201, responses=errors(409), response_model=TeacherOut)
def create_teacher(body: TeacherIn, scope: Admin, db: Db) -> dict[str, Any]:
    id_number = validated_id_number(body.id_number)
    with db.session() as session:
        refuse_duplicate(session, Teacher, id_number, "教师")
        row = insert(session, Teacher(id_number=id_number, name=body.name, phone=body.phone,
                                      qualifications=body.qualifications, blacklisted=False,
                                      created_at=utc_now()),
                     "DUPLICATE_ID_NUMBER", f"身份证号 {mask_id_number(id_number)} 的教师已登记")
        return person_out(row, 0)


@router.put("/teachers/{teacher_id}/blacklist", response_model=TeacherOut)
def set_teacher_blacklist(teacher_id: RecordIdPath, body: BlacklistIn, scope: Admin, db: Db) -> dict[str, Any]:
    with db.session() as session:
        row = get_or_404(session, Teacher, teacher_id, "UNKNOWN_TEACHER", "教师")
        decide_blacklist(session, row, body, scope.principal.name)
        return person_out(row, count_templates(session, "teacher", row.id))
