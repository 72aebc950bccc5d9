"""Response shapes of the dispatch wing: staff, duty, ties, alert detail with its history and pages."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field, JsonValue


class StaffOut(BaseModel):
    id: int
    name: str
    phone: str
    level: str = Field(description="county | prefecture | province")
    region_code: str
    active: bool
    on_duty: bool
    tied_institution_ids: list[int]


class DutyOut(BaseModel):
    id: int
    staff_id: int
    starts_at: str
    ends_at: str


class TieOut(BaseModel):
    id: int
    staff_id: int
    institution_id: int
    relation: str
    note: str | None
    declared_at: str


class ArrivalFixOut(BaseModel):
    """The inspector's fix at arrival (converted to WGS-84) judged against the venue's fence."""

    fence_result: str = Field(description="inside | outside | uncertain | unproven (no fix given)")
    lat: float | None = None
    lon: float | None = None
    accuracy_m: float | None = None
    datum: str | None = Field(default=None, description="the datum the phone reported it in")
    captured_at: str | None = None
    fence_signed_distance_m: float | None = Field(default=None, description="metres to the fence, negative inside")


class TransitionOut(BaseModel):
    """One step of an alert's life: who, when, why."""

    id: int
    action: str
    from_state: str
    to_state: str
    actor: str
    actor_role: str
    staff_id: int | None
    outcome: str | None
    note: str | None
    at: str
    fix: ArrivalFixOut | None = Field(default=None, description="at arrival: the inspector's fix and how it lies "
                                      "against the venue's fence")


class PageOut(BaseModel):
    """The alert sent to one inspector, and what became of it."""

    id: int
    staff_id: int
    staff_name: str
    level: str
    round: int
    paged_at: str
    deadline: str
    state: str = Field(description="paged | accepted | expired | withdrawn")
    answered_at: str | None


class VenueOut(BaseModel):
    """Where the class is: the fence's centre (WGS-84) and radius, its name, street address and county."""

    lat: float
    lon: float
    radius_m: float | None
    name: str
    address: str
    county_name: str


class SubjectOut(BaseModel):
    """One anomaly of the alert: whom it names and the photos to recognise them by (both behind authorisation)."""

    anomaly_id: int
    rule: str
    message: str
    at: str
    state: str
    trainee_id: int | None
    trainee_name: str | None
    id_number_masked: str | None
    photo_sha256: str | None = Field(description="the photo the anomaly was raised on (GET /api/v1/evidence/{sha})")
    enrolled_sha256: str | None = Field(description="one enrolled photo of the trainee")


class AlertDetailOut(BaseModel):
    """An alert with its class, state, outcome, assignee, full history and pages."""

    id: int
    rule: str
    severity: str
    class_id: int
    class_name: str
    institution_name: str
    venue: VenueOut
    institution_phone: str = Field(description="the institution's contact phone, for the inspector sent there")
    subjects: list[SubjectOut] = Field(description="whom and what the alert is about, newest first (up to 12)")
    county_code: str
    state: str
    state_name: str
    outcome: str | None
    assignee_staff_id: int | None
    count: int
    open_count: int
    first_at: str
    last_at: str
    transitions: list[TransitionOut]
    pages: list[PageOut]
    phone_check_ids: list[int]
    inspection_ids: list[int]
    contradictions: list[str] = Field(default_factory=list, description="records of this alert that cannot both "
                                      "be true, flagged for the center")
    arrival: str | None = Field(default=None, description="how the last arrival lies against the venue's fence: "
                                "inside | outside | uncertain | unproven; null before any arrival")


class SignInLinkOut(BaseModel):
    """A one-time sign-in link for one staff member: shown this once (only the code's hash is stored)."""

    staff_id: int
    name: str
    url: str = Field(description="open on the inspector's phone (or scan its QR code): signs them in once")
    code: str
    expires_at: str
    qr_svg: str = Field(description="the URL as a QR code (SVG) to show on the admin's screen")


class SessionOut(BaseModel):
    """The session a sign-in link opened: a token bound to the staff member, expiring after a working day."""

    token: str
    staff_id: int
    name: str
    expires_at: str


class DrawnTraineeOut(BaseModel):
    trainee_id: int
    name: str
    id_number_masked: str
    phone: str | None = Field(description="only for the inspector who makes the calls")
    phone_masked: str | None = Field(description="the number masked (138****5678), null when none is on file")
    has_phone: bool = Field(description="a number is on file: without one the trainee cannot be reached")
    state: str = Field(description="today's sign-in: passed | review | pending | refused | absent")
    state_text: str


class CallOut(BaseModel):
    id: int
    trainee_id: int
    reached: bool
    present: bool | None
    answers: str | None
    duration_s: int = Field(description="ended_at - started_at, measured by the page")
    called_at: str = Field(description="when the server recorded the call")
    started_at: str | None = Field(description="the page opened the tel: link (server clock)")
    ended_at: str | None = Field(description="the page was shown again after the call (server clock)")
    timing: str = Field(description="page (timed by the page's events) | typed (recorded before page timing)")
    cdr_state: str = Field(description="unchecked | confirmed | unconfirmed by a call center's detail records")
    recorded_by: str | None = Field(description="who recorded the call (the check's caller); null for calls "
                                                "recorded before callers were named")


class PhoneCheckOut(BaseModel):
    """A phone spot check: whom to call (drawn from the recorded seed), the calls made, whether it is done."""

    id: int
    alert_id: int | None
    class_id: int
    inspector: str = Field(description="the caller: the alert's assignee, who alone records the calls")
    drawn_by: str | None = Field(description="who drew the trainees (the assignee, or an operator for them); null "
                                             "for checks drawn before this was kept")
    seed: str
    state: str = Field(description="open | done | abandoned (its alert ended before it was done)")
    created_at: str
    completed_at: str | None
    min_reached: int
    required: int = Field(description="trainees to reach: min_reached, or all drawn when the roster is smaller")
    reached: int
    confirmed_present: int
    done: bool
    message: str
    trainees: list[DrawnTraineeOut]
    calls: list[CallOut]


class CdrImportOut(BaseModel):
    """One imported file of call detail records and what it confirmed."""

    id: int
    sha256: str
    format: str
    rows: int
    confirmed: int
    unconfirmed: int
    imported_at: str


class AuditEntryOut(BaseModel):
    """One entry of the audit chain."""

    seq: int
    at: str
    actor: str
    actor_role: str
    token_id: int | None = Field(description="the token the write was made with (null: the system)")
    action: str
    subject_kind: str
    subject_id: str
    detail: dict[str, JsonValue]  # the row's recorded columns (ID numbers masked)
    prev_hash: str
    hash: str
    key_id: str | None = Field(description="the audit key its HMAC was made with (null: sealed before keys, SHA-256)")


class AuditVerifyOut(BaseModel):
    intact: bool
    checked: int
    pending: int = Field(description="entries written but not sealed into the chain yet (sealed within seconds)")
    broken_seq: int | None
    broken_kind: str | None = Field(description="changed | missing | out_of_order | head | key | anchor | unsigned "
                                    "| forged | copied (an entry the product did not write, or a copy of one); "
                                    "row when the chain is whole but a record is not as it says")
    message: str
    head_seq: int = Field(description="the chain's head: note it (with head_hash) to compare later")
    head_hash: str
    anchors_checked: int = Field(description="anchors from the anchors file held against the chain")
    rows_checked: int = Field(description="rows of the audited tables held against the values their entries give")
    rows_intact: bool = Field(description="every audited row is as the chain says (none changed, inserted or "
                              "deleted outside the product)")
    row_findings: list[AuditRowFindingOut] = Field(description="rows not as the chain says (the first 100)")
    row_findings_total: int


class AuditCheckOut(BaseModel):
    """One periodic verification the scheduler ran (`MONITOR_AUDIT_CHECK_INTERVAL_SECONDS`)."""

    id: int
    started_at: datetime
    finished_at: datetime
    intact: bool = Field(description="the chain and every audited row as written")
    entries_checked: int
    head_seq: int
    broken_seq: int | None
    broken_kind: str | None = Field(description="as in /audit/verify; row when only records differ")
    rows_checked: int
    row_findings: int
    message: str = Field(description="zh-CN")


class AuditCheckRequestOut(BaseModel):
    """An auditor's request for a whole check, run by the scheduler (POST /audit/check-requests)."""

    id: int
    state: Literal["requested", "running", "done"]
    requested_at: datetime
    started_at: datetime | None = Field(description="when the scheduler began the check that answers it")
    status_url: str
    check: AuditCheckOut | None = Field(description="the check's result once done")


class AuditRowFindingOut(BaseModel):
    table: str
    key: str = Field(description="the row's primary key, as the chain names it")
    kind: str = Field(description="changed | unrecorded | missing | unsigned_entry (an entry about the row that the "
                      "product did not write: not believed) | extract_changed (a register extract's rows) | "
                      "copy_differs (a face template's search copy in face_vectors is not its encoding) | "
                      "trigger | rule | policy (put in the database, runs on its own; key: its name) | "
                      "dangling (columns name a row of another table that is no longer there)")
    columns: list[str] = Field(description="the columns that differ (changed)")
    entry: int | None = Field(None, description="the audit entry's id (unsigned_entry)")
    message: str


class AuditAnchorOut(BaseModel):
    seq: int
    hash: str
    at: str


class AuditAnchorsOut(BaseModel):
    """The audit chain's head as anchored outside the database, the last anchor of each day (newest first)."""

    anchors: list[AuditAnchorOut]


class InspectionItemOut(BaseModel):
    result: str = Field(description="ok | problem | not_checked")
    note: str | None = None


class InspectionPhotoOut(BaseModel):
    """A form photo: its digest, when the page took it, the phone's fix then, and its EXIF time."""

    sha256: str
    captured_at: str | None = Field(description="when the inspector's page took it (with its zone)")
    fix: ArrivalFixOut | None = Field(description="the phone's fix when it was taken, against the venue's fence")
    exif_taken_at: str | None = Field(description="the photo's EXIF DateTimeOriginal (camera local time, no zone)")


class InspectionOut(BaseModel):
    """A filed inspection form (检查表) with both signatures, photos, the record's and the signed PDF's digests."""

    id: int
    class_id: int
    alert_id: int | None
    staff_id: int | None
    inspector: str
    kind: str = Field(description="on_site | phone")
    items: dict[str, InspectionItemOut]
    headcount_registered: int
    headcount_present: int | None
    findings: str
    responsible_name: str
    signature_sha256: str
    inspector_signature_sha256: str | None = Field(description="the inspector's own signature (null on forms filed "
                                                   "before it was asked for)")
    photo_sha256s: list[str]
    photos: list[InspectionPhotoOut] = Field(default_factory=list)
    record_sha256: str | None = Field(description="SHA-256 of the form's record (canonical JSON), printed as the "
                                      "QR code: /verify/{record_sha256}")
    pdf_sha256: str = Field(description="SHA-256 of the PDF signed by the center (also accepted by /verify)")
    pdf_url: str
    inspected_at: str
    created_at: str
    contradictions: list[str] = Field(default_factory=list, description="what contradicts this form among its "
                                      "alert's records (e.g. a phone check confirming more trainees present)")
    fix: ArrivalFixOut | None = Field(default=None, description="the inspector's fix when filing, against the fence")


class ShortfallOut(BaseModel):
    """A class with fewer inspections than each class must have (clause 十四: at least 2)."""

    class_id: int
    class_code: str
    class_name: str
    institution_name: str
    filed: int
    required: int


class BlacklistDecisionOut(BaseModel):
    """A blacklist decision with its evidence, author and time."""

    id: int
    subject_kind: str = Field(description="institution | teacher")
    subject_id: int
    blacklisted: bool
    lifetime: bool
    reason: str
    alert_ids: list[int]
    inspection_ids: list[int]
    decided_by: str
    decided_at: str
