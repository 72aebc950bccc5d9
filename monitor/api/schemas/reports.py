"""Response shapes of the ledger (台账), the daily report, online study minutes and the public notice (公示)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field, WithJsonSchema

# A figure that is a whole number when it is one (e.g. 0 minutes): kept as the handler computed it.
Number = Annotated[int | float, WithJsonSchema({"type": "number"})]


class LedgerClassOut(BaseModel):
    id: int
    code: str
    name: str
    institution: str
    start_date: str
    end_date: str


class LedgerSessionOut(BaseModel):
    """One ended session (day and window) of a trainee."""

    day: str
    session: str
    signed_in: bool
    signed_out: bool
    minutes: int
    attended: bool


class LedgerEvidenceOut(BaseModel):
    """A verified check-in the ledger rests on."""

    checkin_id: int
    kind: str
    at: str
    verification_id: int | None
    photo_sha256: str


class CrossFindingOut(BaseModel):
    """One cross-check finding (clause 八/九) and where it stands."""

    anomaly_id: int
    alert_id: int | None
    rule: str
    message: str
    state: str = Field(description="open (待核查) | confirmed (已确认) | cleared (已排除)")
    state_text: str
    source: str | None = Field(description="the register it rests on: insurance | certificates | teachers | vouchers")
    register_period: str | None
    at: str


class PaymentOut(BaseModel):
    """A class marked payable: by whom, when, whom it pays, and the cross-check and register periods relied on."""

    id: int
    marked_by: str
    marked_at: str
    note: str
    eligible: int
    eligible_trainee_ids: list[int]
    crosscheck_run_id: int
    crosscheck_at: str
    register_periods: dict[str, str]
    ledger_sha256: str = Field(description="SHA-256 of the ledger rows the decision was made on")


class LedgerCrossOut(BaseModel):
    ran_at: str | None = Field(description="the class's latest cross-check (none: never checked)")
    registers: dict[str, dict[str, str | int]] = Field(description="source → the extract relied on")
    open_alerts: list[dict[str, str | int]] = Field(description="cross-check alerts still active: they hold payment")
    teachers: list[CrossFindingOut]


class LedgerRowOut(BaseModel):
    """One trainee of the class: attendance, valid hours, subsidy eligibility and evidence."""

    index: int
    trainee_id: int
    name: str
    id_number_masked: str
    scheduled: int
    attended: int
    rate: float | None
    rate_percent: float | None
    valid_hours: float
    eligible: bool
    eligible_text: str = Field(description="符合 | 不符合 | 待复核 (eligibility depends on check-ins awaiting review "
                               "or on open cross-check findings: not payable until they are decided)")
    undecided: bool
    reason: str
    crosscheck: list[CrossFindingOut] = Field(description="the trainee's cross-check findings against the registers")
    crosscheck_text: str = Field(description="通过 | 尚未比对 | the findings and their state (as exported)")
    pending_review: int = Field(description="sessions whose check-ins await an operator's review; not counted")
    sessions: list[LedgerSessionOut]
    evidence: list[LedgerEvidenceOut]
    verification_ids: str = Field(description="the verification ids, space-separated (as exported)")
    photo_sha256s: str = Field(description="the photo hashes, space-separated (as exported)")


class LedgerInspectionOut(BaseModel):
    """A filed inspection form of the class, with its PDF."""

    id: int
    kind: str = Field(description="on_site | phone")
    inspected_at: str
    inspector: str
    responsible_name: str
    pdf_sha256: str
    pdf_url: str
    fence_result: str = Field(default="unproven", description="where the inspector's fix lay when filing: inside | "
                              "outside | uncertain | unproven (no fix)")


class LedgerOut(BaseModel):
    """The class ledger."""

    class_: LedgerClassOut = Field(alias="class")
    generated_at: str
    sessions_scheduled: int
    trainees: int
    eligible: int
    rows: list[LedgerRowOut]
    inspections: list[LedgerInspectionOut]
    crosscheck: LedgerCrossOut
    payment: PaymentOut | None = Field(description="the payment decision, once the class is marked payable")


class DailyRowOut(BaseModel):
    """One prefecture or county on the day."""

    level: str = Field(description="prefecture | county")
    level_name: str
    code: str
    name: str
    classes: int
    checkins: int
    passed: int
    pass_rate: float | None
    pass_rate_percent: float | None
    anomalies: int
    anomalies_by_rule: dict[str, int]
    anomalies_by_rule_text: str
    inspections: int = Field(description="inspection forms filed that day")
    classes_short: int = Field(description="running classes with fewer inspections than required")


class ShortClassOut(BaseModel):
    class_id: int
    class_code: str
    county_code: str
    filed: int


class DailyReportOut(BaseModel):
    """Daily statistics per prefecture and county, and the classes short of inspections (clause 十四)."""

    day: str
    rows: list[DailyRowOut]
    inspections_required: int
    classes_short: list[ShortClassOut]


class OnlineMinutesRowOut(BaseModel):
    trainee_id: int
    name: str
    verified_minutes: Number = Field(description="minutes vouched for by passed heartbeats in this class's sessions")
    counted_minutes: Number = Field(description="of those, the minutes within the trainee's daily cap (the day's "
                                    "first minutes count, in the order studied, in whichever class)")
    over_cap: bool = Field(description="the trainee's whole day, in every class, is over the daily cap")
    day_verified_minutes: Number = Field(description="the trainee's verified minutes on the day in every class")


class OnlineMinutesOut(BaseModel):
    """Verified and counted online study minutes per rostered trainee for a day."""

    class_id: int
    day: str
    daily_cap_minutes: Number
    rows: list[OnlineMinutesRowOut]


class NoticeClassOut(BaseModel):
    """One class on the public notice: counts and the masked names of the eligible, no ID numbers."""

    class_code: str
    class_name: str
    institution: str
    start_date: str
    end_date: str
    trainees: int
    eligible: int
    subsidy_status: str
    eligible_names: list[str]


class PublicNoticeOut(BaseModel):
    """培训补贴公示."""

    generated_at: str
    classes: list[NoticeClassOut]


class InspectorOutcomesOut(BaseModel):
    """One inspector's closed alerts over the period, by outcome."""

    staff_id: int | None = Field(description="null when the center closed it")
    inspector: str
    closed: int
    violation_confirmed: int
    false_alarm: int
    could_not_verify: int = Field(description="无法核实: each with a reason of substance")
    could_not_verify_share: float
