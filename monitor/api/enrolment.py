"""Face enrolment with its 1:N duplicate-identity check, the matches it found, and the index's state."""


from typing import Annotated, Any

from fastapi import APIRouter, File, Form, UploadFile
from sqlalchemy import select

from ingest.adapters.multipart import InMemoryFormRoute
from models.domain import (
    Role,
)
from models.errors import errors
from models.params import Limit, RecordIdPath
from models.scope import (
    Scope,
    access,
)
from monitor.adapters.face_tables import IdentityMatch
from monitor.api.deps import Admin, Db, EnrolmentDep
from monitor.api.schemas.identity import EnrolmentOut, FaceIndexOut, IdentityMatchOut
from monitor.services.identity import (
    identity_match_out,
)

router = APIRouter(prefix="/api/v1", tags=["registration"], route_class=InMemoryFormRoute)


CONFIRM_DISTINCT = ("true after checking the papers that the person is not the one the 1:N search cites "
                    "(e.g. twins): the enrolment is stored, the match kept with the admin's name")


@router.post("/trainees/{trainee_id}/faces", status_code=201, summary="Enrol one or more face photos",
             responses=errors(409), response_model=EnrolmentOut, response_model_exclude_unset=True)
def enrol_trainee(trainee_id: RecordIdPath, scope: Admin, enrolment: EnrolmentDep,
                  photos: Annotated[list[UploadFile], File()],
                  confirm_distinct: Annotated[bool, Form(description=CONFIRM_DISTINCT)] = False) -> dict[str, Any]:
    return enrolment.enrol("trainee", trainee_id, [(p.filename, p.file.read()) for p in photos], scope.principal,
                          confirm_distinct)


@router.post("/teachers/{teacher_id}/faces", status_code=201, responses=errors(409), response_model=EnrolmentOut,
             response_model_exclude_unset=True)
def enrol_teacher(teacher_id: RecordIdPath, scope: Admin, enrolment: EnrolmentDep,
                  photos: Annotated[list[UploadFile], File()],
                  confirm_distinct: Annotated[bool, Form(description=CONFIRM_DISTINCT)] = False) -> dict[str, Any]:
    return enrolment.enrol("teacher", teacher_id, [(p.filename, p.file.read()) for p in photos], scope.principal,
                          confirm_distinct)


@router.get("/identity-matches", summary="1:N hits at enrolment (DUPLICATE_IDENTITY), newest first",
            response_model=list[IdentityMatchOut])
def list_identity_matches(scope: Annotated[Scope, access(Role.ADMIN, Role.OPERATOR, Role.AUDITOR)], db: Db,
                          limit: Limit = 100) -> list[dict[str, Any]]:
    with db.session() as session:
        rows = session.scalars(select(IdentityMatch).order_by(IdentityMatch.id.desc()).limit(limit)).all()
        return [identity_match_out(session, m) for m in rows]


@router.get("/face-index", summary="The 1:N face index of this process: size, kind, bytes",
            response_model=FaceIndexOut)
def face_index_stats(scope: Admin, db: Db, enrolment: EnrolmentDep) -> dict[str, Any]:
    with db.session() as session:
        enrolment.face_index.refresh(session)
    stats = enrolment.face_index.stats()
    return {"templates": stats.templates, "kind": stats.kind, "index_bytes": stats.index_bytes,
            "last_template_id": stats.last_id, "thresholds": enrolment.thresholds.as_dict()}
