"""Inspection forms (《职业技能培训班检查表》) over HTTP: filed from the inspector's phone with photos (their capture
time and fix), the responsible person's and the inspector's handwritten signatures, listed per class, printed as a
PDF signed by the center; classes short of inspections."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, Form, Response, UploadFile
from pydantic import AwareDatetime, BaseModel, Field, ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from ingest.adapters.images import AcceptedImage, inspect_image
from ingest.adapters.multipart import InMemoryFormRoute
from models.clock import SHANGHAI, utc_now
from models.dispatch import FixIn
from models.domain import MAX_RECORD_ID, MAX_UPLOAD_ID, Role
from models.errors import ApiError, errors
from models.params import Limit, RecordIdQuery, UploadIdPath
from models.scope import Scope, access, get_in_scope, refuse_missing
from models.tables import Alert, Inspection, Institution, TrainingClass
from monitor.adapters.form_signing import FormSigningKeyMissing
from monitor.adapters.inspection_pdf import FormFontMissing, check_signature
from monitor.adapters.storage import begin_write
from monitor.api.deps import Center, Db, EvidenceDep, SettingsDep
from monitor.api.evidence import read_evidence
from monitor.api.schemas.dispatch import InspectionOut, ShortfallOut
from monitor.decisions.alert_lifecycle import STATE_NAMES, WORKING, AlertState
from monitor.decisions.inspection_form import CHECKLIST
from monitor.services.dispatch import Actor, ensure_assignee, ensure_staff
from monitor.services.draws import ensure_class_or_drawn
from monitor.services.inspections import (
    FormArchive,
    FormIn,
    PhotoIn,
    alert_contradictions,
    file_inspection,
    inspection_out,
    photos_of,
    shortfall,
)
from monitor.settings import Settings

log = logging.getLogger(__name__)

router = APIRouter(prefix="/api/v1", tags=["dispatch"], route_class=InMemoryFormRoute)

Inspector = Annotated[Scope, access(Role.INSPECTOR)]
MAX_SIGNATURE_BYTES = 2 * 1024 * 1024
MAX_PHOTOS = 10


class ItemIn(BaseModel):
    result: Literal["ok", "problem", "not_checked"]
    note: Annotated[str, Field(max_length=1000)] | None = None


def parse_fix(text: str | None) -> FixIn | None:
    if not text:
        return None
    try:
        return FixIn.model_validate_json(text)
    except ValidationError as exc:
        raise ApiError(422, "FIX_INVALID", f"定位须为 JSON：{{latitude, longitude, accuracy_m, datum, captured_at}}"
                       f"（{exc.errors()[0].get('msg', '')}）"[:300]) from None


class PhotoMetaIn(BaseModel):
    """What the page knows of one photo: when it was taken, and the phone's fix then."""

    captured_at: AwareDatetime | None = None
    fix: FixIn | None = None


def parse_photo_meta(text: str | None, photos: int) -> list[PhotoMetaIn]:
    """One entry per photo, in the photos' order (none given: nothing known of any)."""
    if not text:
        return [PhotoMetaIn() for _ in range(photos)]
    try:
        raw = json.loads(text)
        if not isinstance(raw, list):
            raise ValueError("not a list")
        meta = [PhotoMetaIn.model_validate(m or {}) for m in raw]
    except (ValueError, ValidationError) as exc:
        raise ApiError(422, "PHOTO_META_INVALID", f"照片信息须为 JSON 数组：[{{captured_at, fix}}]（{exc}）"[:300]
                       ) from None
    if len(meta) != photos:
        raise ApiError(422, "PHOTO_META_INVALID", f"照片信息 {len(meta)} 条，与照片 {photos} 张不符")
    now = utc_now()
    for m in meta:
        if m.captured_at and not now - timedelta(days=7) <= m.captured_at <= now + timedelta(minutes=5):
            raise ApiError(422, "PHOTO_META_INVALID", "照片拍摄时间须在过去 7 天内")
    return meta


def form_archive(settings: Settings) -> FormArchive:
    """The font, key and link forms are sealed with; a deployment missing one cannot file (and says why)."""
    try:
        return FormArchive.of(settings)
    except FormSigningKeyMissing as exc:
        log.error("%s", exc)
        raise ApiError(503, "FORM_SIGNING_KEY_MISSING", "检查表签章密钥未配置或无法读取，暂不能归档检查表，请联系管理员"
                       ) from exc


def parse_items(text: str) -> dict[str, dict[str, str]]:
    try:
        raw = json.loads(text)
        if not isinstance(raw, dict):
            raise ValueError("not an object")
        items = {str(k): ItemIn.model_validate(v) for k, v in raw.items()}
    except (ValueError, ValidationError) as exc:
        message = f"检查项目须为 JSON 对象：{{项目: {{result, note}}}}（{exc}）"
        raise ApiError(422, "ITEMS_INVALID", message[:300]) from exc
    return {k: {"result": v.result, "note": v.note or ""} for k, v in items.items()}


@router.post("/inspections", status_code=201, response_model=InspectionOut, responses=errors(404, 409, 413, 415),
             summary="File an inspection form with photos and the on-site responsible person's signature")
async def post_inspection(
    scope: Inspector, db: Db, evidence: EvidenceDep, settings: SettingsDep,
    class_id: Annotated[int, Form(ge=1, le=MAX_RECORD_ID)],
    kind: Annotated[Literal["on_site", "phone"], Form()],
    items: Annotated[str, Form(max_length=20_000, description=f"JSON: {', '.join(CHECKLIST)} → {{result, note}}")],
    responsible_name: Annotated[str, Form(min_length=1, max_length=50, pattern=r"^[^\x00-\x1f\x7f]+$")],
    signature: Annotated[UploadFile, File(description="the responsible person's handwritten signature drawn on the "
                                          "phone (PNG)")],
    inspector_signature: Annotated[UploadFile, File(description="the inspector's own handwritten signature (PNG)")],
    findings: Annotated[str, Form(max_length=4000, description="required when an item does not comply")] = "",
    alert_id: Annotated[int | None, Form(ge=1, le=MAX_UPLOAD_ID)] = None,
    headcount_present: Annotated[int | None, Form(ge=0, le=10_000)] = None,
    inspected_at: Annotated[datetime | None, Form(description="when (with its zone); default now")] = None,
    fix: Annotated[str | None, Form(max_length=1000, description="JSON: the phone's fix when filing "
                                    "{latitude, longitude, accuracy_m, datum, captured_at}; judged against the "
                                    "venue's fence (outside is marked, not refused)")] = None,
    photos: Annotated[list[UploadFile] | None, File(description=f"up to {MAX_PHOTOS} photos")] = None,
    photo_meta: Annotated[str | None, Form(max_length=20_000, description="JSON list, one per photo in order: "
                                           "{captured_at, fix} (when the page took it and the phone's fix then)")
                          ] = None,
) -> dict[str, Any]:
    ensure_staff(scope.principal)  # a form counts toward clause 十四 only with a person (who can be recused) behind it
    if "\x00" in findings:  # PostgreSQL cannot store a NUL character in text
        raise ApiError(422, "INVALID_TEXT", "检查发现中含有不可见的空字符（NUL），请删除后重新提交")
    photos = photos or []
    if len(photos) > MAX_PHOTOS:
        raise ApiError(422, "TOO_MANY_PHOTOS", f"一次最多上传 {MAX_PHOTOS} 张现场照片")
    now = utc_now()
    when = inspected_at or now
    if when.tzinfo is None or not now - timedelta(days=7) <= when <= now + timedelta(minutes=5):
        raise ApiError(422, "INSPECTED_AT_INVALID", "检查时间须带时区，且在过去 7 天内")
    parsed = parse_items(items)
    meta = parse_photo_meta(photo_meta, len(photos))
    signatures: list[AcceptedImage] = []
    for upload in (signature, inspector_signature):
        raw_signature = await upload.read()
        if len(raw_signature) > MAX_SIGNATURE_BYTES:
            raise ApiError(413, "SIGNATURE_TOO_LARGE", "签名图片过大")
        try:
            signatures.append(await run_in_threadpool(inspect_image, raw_signature, settings.max_image_pixels))
        except ApiError as exc:  # a damaged file is a signature to draw again, said as such
            if exc.code != "CORRUPT_IMAGE":
                raise
            raise ApiError(422, "SIGNATURE_UNREADABLE", "签名图片已损坏，无法读取，请重新签名") from None
        await run_in_threadpool(check_signature, signatures[-1].data)
    signed, inspector_signed = signatures
    shots = [PhotoIn(await run_in_threadpool(inspect_image, await p.read(), settings.max_image_pixels),
                     m.captured_at, m.fix) for p, m in zip(photos, meta, strict=True)]
    archive = await run_in_threadpool(form_archive, settings)
    form = FormIn(class_id, alert_id, kind, parsed, headcount_present, findings.strip(), responsible_name.strip(),
                  when, parse_fix(fix))

    def store() -> dict[str, Any]:
        with db.session() as session:
            ensure_class_or_drawn(session, scope, class_id, now)  # a drawn cross-county inspector may file it
            if alert_id is not None:
                begin_write(session)  # the alert locked: a close judging its records waits for this form, or it
                alert = session.get(Alert, alert_id, with_for_update=True)  # finds the alert closed (and refuses)
                if alert is None or alert.class_id != class_id:  # another class's alert: possibly out of scope,
                    raise refuse_missing("UNKNOWN_ALERT", "告警", alert_id)  # so it reads as missing (no oracle)
                ensure_assignee(alert, scope.principal)
                if alert.state not in WORKING:  # accepted, on site or phoning: in an inspector's hands
                    raise ApiError(409, "ALERT_NOT_IN_HAND", f"告警当前为「{STATE_NAMES[AlertState(alert.state)]}」，"
                                   "不能再为它归档检查表：检查表须在办结前提交（可不关联告警单独归档，"
                                   "或请监控中心重新打开告警）")
            try:
                row = file_inspection(session, evidence, form, Actor.of(scope.principal), signed, inspector_signed,
                                      shots, archive, settings.session_grace_minutes)
            except FormFontMissing as exc:
                log.error("%s", exc)
                raise ApiError(503, "FORM_FONT_MISSING", "检查表字体未安装，暂不能归档检查表，请联系管理员") from exc
            return inspection_out(row, alert_contradictions(session, row.alert_id), photos_of(session, row.id))

    return await run_in_threadpool(store)


@router.get("/inspections", response_model=list[InspectionOut], summary="Filed inspection forms, newest first")
def list_inspections(scope: Center, db: Db, class_id: RecordIdQuery | None = None,
                     limit: Limit = 50) -> list[dict[str, Any]]:
    with db.session() as session:
        query = select(Inspection).where(scope.of_classes(Inspection.class_id)).order_by(Inspection.id.desc())
        if class_id is not None:
            query = query.where(Inspection.class_id == class_id)
        rows = session.scalars(query.limit(limit)).all()
        return [inspection_out(r, alert_contradictions(session, r.alert_id), photos_of(session, r.id))
                for r in rows]


@router.get("/inspections/shortfall", response_model=list[ShortfallOut],
            summary="Classes with fewer inspections than each must have (at least 2, clause 十四)")
def list_shortfall(scope: Center, db: Db, settings: SettingsDep) -> list[dict[str, Any]]:
    today = utc_now().astimezone(SHANGHAI).date()
    with db.session() as session:
        short = shortfall(session, today, settings.inspections_per_class_min, scope.class_ids(),
                          settings.inspection_visit_unit)
        out = []
        for class_id, filed in short:
            cls = session.get(TrainingClass, class_id)
            assert cls is not None
            inst = session.get(Institution, cls.institution_id)
            out.append({"class_id": class_id, "class_code": cls.code, "class_name": cls.name,
                        "institution_name": inst.name if inst else "", "filed": filed,
                        "required": settings.inspections_per_class_min})
        return out


def load_inspection(session: Session, scope: Scope, inspection_id: int) -> Inspection:
    """The form, if the caller may see its class; or if the caller filed it (an inspector drawn across counties
    reads back the form they signed, whatever region the class lies in; recusal still hides it)."""
    row = session.get(Inspection, inspection_id)
    own = (row is not None and scope.role is Role.INSPECTOR and scope.principal.staff_id is not None
           and row.staff_id == scope.principal.staff_id)
    if own and row is not None:
        institution = session.scalar(select(TrainingClass.institution_id).where(TrainingClass.id == row.class_id))
        if institution not in scope.principal.recused_institutions:
            return row
    return get_in_scope(session, scope, Inspection, inspection_id, "UNKNOWN_INSPECTION", "检查记录")


@router.get("/inspections/{inspection_id}", response_model=InspectionOut, responses=errors(404),
            summary="One filed inspection form")
def get_inspection(inspection_id: UploadIdPath, scope: Center, db: Db) -> dict[str, Any]:
    with db.session() as session:
        row = load_inspection(session, scope, inspection_id)
        return inspection_out(row, alert_contradictions(session, row.alert_id), photos_of(session, row.id))


@router.get("/inspections/{inspection_id}/form.pdf", response_class=Response, responses={
    200: {"content": {"application/pdf": {"schema": {"type": "string", "format": "binary"}}},
          "description": "检查表 PDF（响应头 X-Content-SHA256 为其摘要）"}, **errors(404, 410)},
    summary="The filled form as a printable PDF, with its SHA-256")
def get_form_pdf(inspection_id: UploadIdPath, scope: Center, db: Db, evidence: EvidenceDep) -> Response:
    with db.session() as session:
        row = load_inspection(session, scope, inspection_id)
        sha = row.pdf_sha256
    return Response(read_evidence(db, evidence, sha, "form_pdf"), media_type="application/pdf",
                    headers={"X-Content-SHA256": sha,
                             "Content-Disposition": f'inline; filename="inspection-{inspection_id}.pdf"'})
