"""Filing an inspection form: checklist checked, both signatures and the photos (with their capture time and fix)
stored as evidence, the record's digest computed, the PDF rendered, signed by the center and stored with its digest;
verifying a digest; and which classes are short of their inspections."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from PIL import Image
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ingest.acceptance import store_evidence
from ingest.adapters.evidence import EvidenceStore
from ingest.adapters.images import AcceptedImage
from models.clock import utc_now
from models.dispatch import FixIn
from models.errors import ApiError
from models.identity import mask_id_number
from models.tables import (
    Alert,
    ClassSession,
    Inspection,
    InspectionPhoto,
    Institution,
    PhoneCall,
    PhoneCheck,
    RosterEntry,
    Trainee,
    TrainingClass,
    Venue,
)
from monitor.adapters.form_signing import SigningKey, ensure_key, sign_pdf
from monitor.adapters.inspection_pdf import (
    CallLine,
    FormContent,
    PhoneCheckLines,
    PhotoLine,
    render_form,
)
from monitor.adapters.photo_decode import read_exif_facts
from monitor.decisions.alert_lifecycle import CloseEvidence
from monitor.decisions.form_record import RECORD_VERSION, is_sha256, record_digest, utc_text
from monitor.decisions.inspection_form import (
    ClassTerm,
    check_form,
    explain_inspection_time,
    find_contradictions,
    inspections_short,
    visits_per_class,
)
from monitor.services.dispatch import Actor, judge_fix_at_class, person_of
from monitor.settings import Settings


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


@dataclass(frozen=True)
class PhotoIn:
    """A form photo with what the page said about it: when it was taken and the phone's fix then."""

    image: AcceptedImage
    captured_at: datetime | None = None
    fix: FixIn | None = None


@dataclass(frozen=True)
class FormArchive:
    """How filed forms are printed and sealed: the embedded font, the center's signing key, the verify link's base."""

    font_file: Path
    font_index: int
    signing_key: SigningKey
    public_url: str

    @classmethod
    def of(cls, settings: Settings) -> FormArchive:
        key, cert, dev_allowed = settings.form_signing_paths
        return cls(settings.form_font_file, settings.form_font_index, ensure_key(key, cert, dev_allowed),
                   settings.public_url)

    def verify_url(self, sha256: str) -> str:
        return f"{self.public_url.rstrip('/')}/verify/{sha256}"


def exif_taken_at(data: bytes) -> str | None:
    """A photo's EXIF DateTimeOriginal (camera local time, ISO 8601 without zone), when it has a sound one."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            when, _, _ = read_exif_facts(image)
    except (OSError, ValueError):
        return None
    return when


def record_of(row: Inspection, photos: Sequence[InspectionPhoto]) -> dict[str, Any]:
    """The form's record as hashed: every field filed, both signatures' and every photo's digest with its capture
    time and fix; not the PDF (whose digest cannot be inside it) and not what other tables say later."""
    return {"version": RECORD_VERSION, "kind": "inspection_form", "id": row.id, "class_id": row.class_id,
            "alert_id": row.alert_id, "staff_id": row.staff_id, "inspector": row.inspector, "visit": row.kind,
            "items": row.items, "headcount_registered": row.headcount_registered,
            "headcount_present": row.headcount_present, "findings": row.findings,
            "responsible_name": row.responsible_name, "signature_sha256": row.signature_sha256,
            "inspector_signature_sha256": row.inspector_signature_sha256,
            "photos": [{"sha256": p.sha256, "captured_at": utc_text(p.captured_at), "fix": p.fix,
                        "exif_taken_at": p.exif_taken_at} for p in photos],
            "inspected_at": utc_text(row.inspected_at), "created_at": utc_text(row.created_at), "fix": row.fix}


def photos_of(session: Session, inspection_id: int) -> list[InspectionPhoto]:
    return list(session.scalars(select(InspectionPhoto).where(InspectionPhoto.inspection_id == inspection_id)
                                .order_by(InspectionPhoto.id)))


def phone_check_lines(session: Session, alert_id: int | None) -> list[PhoneCheckLines]:
    """The alert's phone checks as printed: each drawn trainee's name and masked ID with the last call's result."""
    if alert_id is None:
        return []
    out = []
    for check in session.scalars(select(PhoneCheck).where(PhoneCheck.alert_id == alert_id).order_by(PhoneCheck.id)):
        drawn = [int(d["trainee_id"] if isinstance(d, dict) else d) for d in check.drawn]
        people = {t.id: t for t in session.scalars(select(Trainee).where(Trainee.id.in_(drawn)))}
        last: dict[int, PhoneCall] = {}
        for made in session.scalars(select(PhoneCall).where(PhoneCall.check_id == check.id).order_by(PhoneCall.id)):
            last[made.trainee_id] = made
        lines = []
        for trainee_id in drawn:
            person, call = people.get(trainee_id), last.get(trainee_id)
            lines.append(CallLine(person.name if person else f"学员 {trainee_id}",
                                  mask_id_number(person.id_number) if person else "",
                                  call.reached if call else None, call.present if call else None))
        out.append(PhoneCheckLines(check.id, check.state, lines, check.inspector))
    return out


def document(data: bytes, media_type: str) -> AcceptedImage:
    """A stored file that is not a photo (the PDF): its digest and type; no pixel size."""
    return AcceptedImage(data, hashlib.sha256(data).hexdigest(), media_type, 0, 0)


def file_inspection(session: Session, evidence: EvidenceStore, form: FormIn, actor: Actor, signature: AcceptedImage,
                    inspector_signature: AcceptedImage, photos: Sequence[PhotoIn], archive: FormArchive,
                    grace_min: int = 30) -> Inspection:
    """Store the filed form, both signatures, the photos and the signed PDF, in the caller's transaction."""
    if problems := check_form(form.items, form.findings):
        raise ApiError(422, "FORM_INCOMPLETE", "检查表未填写完整：" + "；".join(problems))
    if signature.media_type != "image/png":
        raise ApiError(422, "SIGNATURE_NOT_PNG", "现场负责人签名须为手机上手写生成的 PNG 图片")
    if inspector_signature.media_type != "image/png":
        raise ApiError(422, "SIGNATURE_NOT_PNG", "检查人员签名须为手机上手写生成的 PNG 图片")
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
    for image in [signature, inspector_signature, *(p.image for p in photos)]:
        store_evidence(session, evidence, image, now)
    registered = int(session.scalar(select(func.count()).select_from(RosterEntry)
                                    .where(RosterEntry.class_id == cls.id)) or 0)
    fix = judge_fix_at_class(session, cls.id, form.fix)
    inspector = person_of(session, actor)  # the staff record's name, not the token's free text
    row = Inspection(class_id=cls.id, alert_id=form.alert_id, staff_id=actor.staff_id, inspector=inspector,
                     kind=form.kind, items=form.items, headcount_registered=registered,
                     headcount_present=form.headcount_present, findings=form.findings,
                     responsible_name=form.responsible_name, signature_sha256=signature.sha256,
                     inspector_signature_sha256=inspector_signature.sha256,
                     photo_sha256s=[p.image.sha256 for p in photos],
                     pdf_sha256=signature.sha256,  # replaced below by the PDF's, which prints this row's id
                     inspected_at=form.inspected_at, created_at=now, fix=fix)
    session.add(row)
    session.flush()  # the id goes on the printed form
    shots = [InspectionPhoto(inspection_id=row.id, sha256=p.image.sha256, captured_at=p.captured_at,
                             fix=judge_fix_at_class(session, cls.id, p.fix) if p.fix else None,
                             exif_taken_at=exif_taken_at(p.image.data)) for p in photos]
    session.add_all(shots)
    record_sha256 = record_digest(record_of(row, shots))
    institution = session.get(Institution, cls.institution_id)
    venue = session.get(Venue, cls.venue_id)
    content = FormContent(
        row.id, cls.code, cls.name, institution.name if institution else "", venue.name if venue else "", form.kind,
        inspector, form.inspected_at, registered, form.headcount_present, form.items, form.findings,
        form.responsible_name, [PhotoLine(s.sha256, s.captured_at, s.exif_taken_at, s.fix) for s in shots], fix,
        class_id=cls.id, alert_id=form.alert_id, venue_address=venue.address if venue else "",
        phone_checks=phone_check_lines(session, form.alert_id), filed_at=now,
        contradictions=alert_contradictions(session, form.alert_id), record_sha256=record_sha256,
        verify_url=archive.verify_url(record_sha256))
    unsigned = render_form(content, signature.data, inspector_signature.data, archive.font_file, archive.font_index)
    pdf = document(sign_pdf(unsigned, archive.signing_key, reason=f"职业技能培训班检查表第 {row.id} 号归档"),
                   "application/pdf")
    store_evidence(session, evidence, pdf, now)
    row.record_sha256, row.pdf_sha256 = record_sha256, pdf.sha256  # one update of the row (one audit entry)
    session.flush()
    return row


def verify_digest(session: Session, evidence: EvidenceStore, sha256: str) -> dict[str, Any] | None:
    """What a digest printed on (or taken of) a form proves, with nothing personal: the record it names, if the
    stored record still hashes to it (a form's record digest), or the stored signed PDF still has it (a PDF's); either
    way only while every file the form names (PDF, signatures, photos) is as filed: one altered or gone raises
    EvidenceFault."""
    if not is_sha256(sha256):
        return None
    row = session.scalar(select(Inspection).where(Inspection.record_sha256 == sha256).limit(1))
    matched = "record"
    if row is not None:
        photos = photos_of(session, row.id)
        if record_digest(record_of(row, photos)) != sha256:
            return None  # the stored record was changed after filing: the printed digest no longer names it
    else:
        row = session.scalar(select(Inspection).where(Inspection.pdf_sha256 == sha256).limit(1))
        if row is None:
            return None
        photos = photos_of(session, row.id)
        matched = "pdf"
    # Vouched for only with every file it names as filed: the signed PDF, both signatures, the photos (each read
    # hashes it against its digest, or raises EvidenceFault, which the caller records).
    for digest in (row.pdf_sha256, row.signature_sha256, row.inspector_signature_sha256, *(p.sha256 for p in photos)):
        if digest:
            evidence.get(digest)
    return {"status": "genuine", "kind": "inspection_form", "id": row.id, "matched": matched,
            "visit": row.kind, "inspected_at": row.inspected_at.isoformat(), "filed_at": row.created_at.isoformat(),
            "record_sha256": row.record_sha256, "pdf_sha256": row.pdf_sha256}


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


def close_evidence(session: Session, alert_id: int, checks_done: int, by_center: bool) -> CloseEvidence:
    """What an alert's done phone checks and filed forms found, for judging the outcome it is closed with."""
    calls = session.execute(
        select(PhoneCall.present, func.count(PhoneCall.id)).join(PhoneCheck, PhoneCheck.id == PhoneCall.check_id)
        .where(PhoneCheck.alert_id == alert_id, PhoneCheck.state == "done", PhoneCall.reached.is_(True))
        .group_by(PhoneCall.present))
    said = {present: int(n) for present, n in calls}
    forms = list(session.scalars(select(Inspection.items).where(Inspection.alert_id == alert_id)))
    with_problems = sum(1 for items in forms if any(
        isinstance(v, dict) and v.get("result") == "problem" for v in (items or {}).values()))
    return CloseEvidence(checks_done, len(forms), by_center, absences_confirmed=said.get(False, 0),
                         presences_confirmed=said.get(True, 0), forms_with_problems=with_problems)


def photo_out(photo: InspectionPhoto) -> dict[str, Any]:
    return {"sha256": photo.sha256, "captured_at": photo.captured_at.isoformat() if photo.captured_at else None,
            "fix": photo.fix, "exif_taken_at": photo.exif_taken_at}


def inspection_out(row: Inspection, contradictions: list[str] | None = None,
                   photos: Sequence[InspectionPhoto] = ()) -> dict[str, Any]:
    return {"photos": [photo_out(p) for p in photos],
            "id": row.id, "class_id": row.class_id, "alert_id": row.alert_id, "staff_id": row.staff_id,
            "inspector": row.inspector, "kind": row.kind, "items": row.items,
            "headcount_registered": row.headcount_registered, "headcount_present": row.headcount_present,
            "findings": row.findings, "responsible_name": row.responsible_name,
            "signature_sha256": row.signature_sha256, "photo_sha256s": list(row.photo_sha256s),
            "inspector_signature_sha256": row.inspector_signature_sha256, "record_sha256": row.record_sha256,
            "pdf_sha256": row.pdf_sha256, "pdf_url": f"/api/v1/inspections/{row.id}/form.pdf",
            "inspected_at": row.inspected_at.isoformat(), "created_at": row.created_at.isoformat(),
            "contradictions": contradictions or [], "fix": row.fix}


def class_sessions(session: Session, class_ids: Any = None) -> dict[int, list[tuple[str, str]]]:
    """Each class's daily sessions (HH:MM local start and end), in the order of their start."""
    query = select(ClassSession.class_id, ClassSession.start_local, ClassSession.end_local)
    if class_ids is not None:
        query = query.where(ClassSession.class_id.in_(class_ids))
    out: dict[int, list[tuple[str, str]]] = {}
    for class_id, start, end in session.execute(query.order_by(ClassSession.class_id, ClassSession.start_local)):
        out.setdefault(class_id, []).append((start, end))
    return out


def class_visits(session: Session, unit: str = "day", class_ids: Any = None,
                 until: datetime | None = None) -> dict[int, int]:
    """Visits counted toward each class's minimum (clause 十四): its forms on different days, or sessions (`unit`)."""
    query = select(Inspection.class_id, Inspection.inspected_at)
    if class_ids is not None:
        query = query.where(Inspection.class_id.in_(class_ids))
    if until is not None:
        query = query.where(Inspection.inspected_at <= until)
    rows = session.execute(query).all()
    sessions = class_sessions(session, {c for c, _ in rows}) if unit == "session" else None
    return visits_per_class(((class_id, at) for class_id, at in rows), unit, sessions)


def shortfall(session: Session, today: date, minimum: int, class_ids: Any = None,
              unit: str = "day") -> list[tuple[int, int]]:
    """(class id, visits counted) of the classes under way or ended that have fewer than `minimum`; visits on
    different days or sessions as `unit` says (MONITOR_INSPECTION_VISIT_UNIT)."""
    query = select(TrainingClass.id, TrainingClass.start_date, TrainingClass.end_date)
    if class_ids is not None:
        query = query.where(TrainingClass.id.in_(class_ids))
    terms = [ClassTerm(i, s, e) for i, s, e in session.execute(query)]
    return inspections_short(terms, class_visits(session, unit, class_ids), today, minimum)
