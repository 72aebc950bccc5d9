"""Evidence photos, served only to those whose scope holds an upload or enrolment that shows them."""



from typing import Annotated

from fastapi import APIRouter, Response
from sqlalchemy import select

from models.errors import file_response
from models.params import Sha256Path
from models.scope import Scope, access, evidence_visible, refuse_missing
from models.tables import (
    Evidence,
    FaceTemplate,
)
from monitor.api.deps import Db, EvidenceDep

router = APIRouter(prefix="/api/v1", tags=["center"])


@router.get("/evidence/{sha256}", summary="An evidence photo (authorised roles only)", response_class=Response,
            responses=file_response("image/jpeg", "image/png", "image/webp", description="证据照片原件"))
def get_evidence(sha256: Sha256Path, scope: Annotated[Scope, access()], db: Db, evidence: EvidenceDep) -> Response:
    with db.session() as session:
        row = session.get(Evidence, sha256.lower())
        if row is None or not evidence_visible(session, scope, row.sha256):
            raise refuse_missing("UNKNOWN_EVIDENCE", "证据照片", sha256[:12] + "…")
        is_template = session.scalar(select(FaceTemplate.id).where(FaceTemplate.photo_sha256 == row.sha256))
        media_type = row.media_type
    return Response(
        evidence.get(row.sha256), media_type=media_type,
        headers={"Cache-Control": "private, max-age=3600", "X-Content-Type-Options": "nosniff",
                 "X-Evidence-Kind": "enrolment" if is_template else "upload"},
    )
