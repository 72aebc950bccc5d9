"""Evidence photos, served only to those whose scope holds an upload or enrolment that shows them, and only as the
bytes their digest names: a file altered or gone on disk is a 410 and an alarm, never shown."""

from typing import Annotated

from fastapi import APIRouter, Response
from sqlalchemy import select

from ingest.adapters.evidence import EvidenceFault, EvidenceStore
from models.errors import ApiError, errors, file_response
from models.params import Sha256Path
from models.scope import Scope, access, evidence_visible, refuse_missing
from models.tables import (
    Evidence,
    FaceTemplate,
)
from monitor.adapters.storage import Database
from monitor.api.deps import Db, EvidenceDep
from monitor.services.evidence_health import record_fault

router = APIRouter(prefix="/api/v1", tags=["center"])


@router.get("/evidence/{sha256}", summary="An evidence photo (authorised roles only)", response_class=Response,
            responses={**file_response("image/jpeg", "image/png", "image/webp", description="证据照片原件"),
                       **errors(404, 410)})
def get_evidence(sha256: Sha256Path, scope: Annotated[Scope, access()], db: Db, evidence: EvidenceDep) -> Response:
    with db.session() as session:
        row = session.get(Evidence, sha256.lower())
        if row is None or not evidence_visible(session, scope, row.sha256):
            raise refuse_missing("UNKNOWN_EVIDENCE", "证据照片", sha256[:12] + "…")
        is_template = session.scalar(select(FaceTemplate.id).where(FaceTemplate.photo_sha256 == row.sha256))
    data = read_evidence(db, evidence, row.sha256, "serve")
    return Response(
        data, media_type=photo_media_type(data),
        headers={"Cache-Control": "private, max-age=3600", "X-Content-Type-Options": "nosniff",
                 "X-Evidence-Kind": "enrolment" if is_template else "upload"},
    )


def photo_media_type(data: bytes) -> str:
    """The media type a stored photo's own bytes show (the digest vouches for them), not the `evidence` row's column,
    which someone at the database could set to text/html to have a crafted upload rendered as a page."""
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return "application/octet-stream"


def read_evidence(db: Database, evidence: EvidenceStore, sha256: str, where: str) -> bytes:
    """A stored file's bytes for an answer, checked against its digest: altered or missing is recorded (the wall's
    EVIDENCE_ALTERED) and answered 410, so no one is shown a substituted photo or form as the original."""
    try:
        return evidence.get(sha256)
    except EvidenceFault as fault:
        record_fault(db, fault, where)
        if fault.kind == "missing":
            raise ApiError(410, "EVIDENCE_MISSING", "证据文件已不在存储中（已记录并告警），请联系监控中心从备份恢复",
                           sha256=sha256) from None
        raise ApiError(410, "EVIDENCE_ALTERED", "证据文件与登记的校验码不符，已被改动（已记录并告警），不予展示；"
                       "请联系监控中心从备份恢复原件", sha256=sha256) from None
