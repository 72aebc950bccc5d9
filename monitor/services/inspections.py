"""Filing an inspection form: checklist checked, signature and photos stored as evidence, the PDF rendered and
stored with its digest; and which classes are short of their inspections."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ingest.acceptance import store_evidence
from ingest.adapters.evidence import EvidenceStore
from ingest.adapters.images import AcceptedImage
from models.clock import utc_now
from models.dispatch import FixIn
from models.errors import ApiError
from models.tables import (
    Alert,
    ClassSession,
    Inspection,
    InspectionPhoto,
    Institution,
    PhoneCall,
    PhoneCheck,
    RosterEntry,
    TrainingClass,
    Venue,
)
from monitor.adapters.inspection_pdf import FormContent, render_form
from monitor.decisions.inspection_form import (
    ClassTerm,
    check_form,
    explain_inspection_time,
    find_contradictions,
    inspections_short,
    visits_per_class,
)
from monitor.services.dispatch import Actor, judge_fix_at_class


@dataclass(frozen=True)
class FormIn:
    """A form as the inspector filled it."""

    class_id: int
    alert_id: int | None
    kind: str
    items: dict[str, dict[str, str]]
    headcount_present: int | None
    findings: str
    responsible_name: str
    inspected_at: datetime
    fix: FixIn | None = None  # the phone's position when filing


def document(data: bytes, media_type: str) -> AcceptedImage:
    """A stored file that is not a photo (the PDF): its digest and type; no pixel size."""
    return AcceptedImage(data, hashlib.sha256(data).hexdigest(), media_type, 0, 0)


def file_inspection(session: Session, evidence: EvidenceStore, form: FormIn, actor: Actor, signature: AcceptedImage,
                    photos: list[AcceptedImage], grace_min: int = 30) -> Inspection:
    """Store the filed form, its signature, photos and PDF, in the caller's transaction."""
    if problems := check_form(form.items, form.findings):
        raise ApiError(422, "FORM_INCOMPLETE", "检查表未填写完整：" + "；".join(problems))
    if signature.media_type != "image/png":
        raise ApiError(422, "SIGNATURE_NOT_PNG", "现场负责人签名须为手机上手写生成的 PNG 图片")
    cls = session.get(TrainingClass, form.class_id)
    assert cls is not None
    sessions = [(cs.start_local, cs.end_local) for cs in session.scalars(
        select(ClassSession).where(ClassSession.class_id == cls.id).order_by(ClassSession.start_local))]
    if why := explain_inspection_time(form.inspected_at, utc_now(), ClassTerm(cls.id, cls.start_date, cls.end_date),
                                      sessions, grace_min):
        raise ApiError(422, "INSPECTED_AT_OUTSIDE_CLASS", why)
    if form.alert_id is not None:
        alert = session.get(Alert, form.alert_id)
        if alert is None or alert.class_id != cls.id:
            raise ApiError(422, "ALERT_NOT_OF_CLASS", "所填告警不属于该班次")
    now = utc_now()
    for image in [signature, *photos]:
        store_evidence(session, evidence, image, now)
    registered = int(session.scalar(select(func.count()).select_from(RosterEntry)
                                    .where(RosterEntry.class_id == cls.id)) or 0)
    fix = judge_fix_at_class(session, cls.id, form.fix)
    row = Inspection(class_id=cls.id, alert_id=form.alert_id, staff_id=actor.staff_id, inspector=actor.name,
                     kind=form.kind, items=form.items, headcount_registered=registered,
                     headcount_present=form.headcount_present, findings=form.findings,
                     responsible_name=form.responsible_name, signature_sha256=signature.sha256,
                     photo_sha256s=[p.sha256 for p in photos],
                     pdf_sha256=signature.sha256,  # replaced below by the PDF's, which prints this row's id
                     inspected_at=form.inspected_at, created_at=now, fix=fix)
    session.add(row)
    session.flush()  # the id goes on the printed form
    institution = session.get(Institution, cls.institution_id)
    venue = session.get(Venue, cls.venue_id)
    pdf = document(render_form(FormContent(
        row.id, cls.code, cls.name, institution.name if institution else "", venue.name if venue else "", form.kind,
        actor.name, form.inspected_at, registered, form.headcount_present, form.items, form.findings,
        form.responsible_name, row.photo_sha256s, fix), signature.data), "application/pdf")
    store_evidence(session, evidence, pdf, now)
    row.pdf_sha256 = pdf.sha256
    for photo in photos:
        session.add(InspectionPhoto(inspection_id=row.id, sha256=photo.sha256))
    session.flush()
    return row


def alert_contradictions(session: Session, alert_id: int | None) -> list[str]:
    """Contradictions between an alert's records: its done phone checks' confirmed presences and its forms' counts."""
    if alert_id is None:
        return []
    present = {check_id: int(n) for check_id, n in session.execute(
        select(PhoneCheck.id, func.count(PhoneCall.id)).join(PhoneCall, PhoneCall.check_id == PhoneCheck.id)
        .where(PhoneCheck.alert_id == alert_id, PhoneCall.present.is_(True)).group_by(PhoneCheck.id))}
    forms = {form_id: counted for form_id, counted in session.execute(
        select(Inspection.id, Inspection.headcount_present).where(Inspection.alert_id == alert_id))} if present else {}
    return find_contradictions(present, forms)


def inspection_out(row: Inspection, contradictions: list[str] | None = None) -> dict[str, Any]:
    return {"id": row.id, "class_id": row.class_id, "alert_id": row.alert_id, "staff_id": row.staff_id,
            "inspector": row.inspector, "kind": row.kind, "items": row.items,
            "headcount_registered": row.headcount_registered, "headcount_present": row.headcount_present,
            "findings": row.findings, "responsible_name": row.responsible_name,
            "signature_sha256": row.signature_sha256, "photo_sha256s": list(row.photo_sha256s),
            "pdf_sha256": row.pdf_sha256, "pdf_url": f"/api/v1/inspections/{row.id}/form.pdf",
            "inspected_at": row.inspected_at.isoformat(), "created_at": row.created_at.isoformat(),
            "contradictions": contradictions or [], "fix": row.fix}


def shortfall(session: Session, today: date, minimum: int, class_ids: Any = None) -> list[tuple[int, int]]:
    """(class id, inspections filed) of the classes under way or ended that have fewer than `minimum`."""
    query = select(TrainingClass.id, TrainingClass.start_date, TrainingClass.end_date)
    if class_ids is not None:
        query = query.where(TrainingClass.id.in_(class_ids))
    terms = [ClassTerm(i, s, e) for i, s, e in session.execute(query)]
    rows = session.execute(select(Inspection.class_id, Inspection.inspected_at))
    visits = visits_per_class((class_id, at) for class_id, at in rows)
    return inspections_short(terms, visits, today, minimum)
