"""Response shapes of an institution's findings and its objections (异议); times in Beijing time (+08:00)."""

from __future__ import annotations

from pydantic import BaseModel, Field, JsonValue


class ObjectionOut(BaseModel):
    """An objection to an alert closed against the institution, its deadline and the center's decision."""

    id: int
    alert_id: int
    class_id: int
    class_name: str
    institution_id: int
    institution_name: str
    rule: str
    rule_name: str
    alert_outcome: str = Field(description="the outcome objected to: violation_confirmed | could_not_verify")
    alert_outcome_name: str
    alert_state: str = Field(description="the alert's state now (open again once an objection is upheld)")
    reason: str
    state: str = Field(description="submitted | upheld | rejected")
    state_name: str
    submitted_by: str
    submitted_at: str | None
    decide_by: str | None = Field(description="the decision is due before this moment (Beijing time)")
    overdue: bool = Field(description="still undecided past its deadline")
    timer: str = Field(description="计时: 剩余 … / 已超期 … / 已决定")
    decided_by: str | None = Field(description="who decided (the institution reads 监控中心)")
    decided_role: str | None
    decided_at: str | None
    decision_note: str | None
    reopened: bool = Field(description="upheld: the alert was reopened for the center to re-examine")
    blacklist_decision_ids: list[int] = Field(default_factory=list, description="for the center: blacklist decisions "
                                              "citing the alert as evidence (an objection upheld takes their ground "
                                              "away: decide them again); empty for the institution")


class AnomalyFindingOut(BaseModel):
    """One anomaly raised against the institution's class, with the figures it rests on."""

    id: int
    rule: str
    rule_name: str
    severity: str
    class_id: int
    class_name: str
    at: str | None
    state: str
    trainee_name: str | None
    id_number_masked: str | None
    message: str
    measured: dict[str, JsonValue] = Field(description="the measured values it rests on (no record ids, no names)")
    thresholds: dict[str, JsonValue]
    model_version: str | None
    photo_sha256: str | None = Field(description="the photo the institution uploaded (never an enrolment photo)")
    photo_url: str | None


class InspectionFindingOut(BaseModel):
    """What the institution may know of a filed inspection form: check it at the public /verify/{record_sha256}."""

    id: int
    kind: str
    kind_name: str
    inspected_at: str | None
    findings: str
    record_sha256: str | None
    verify_url: str | None


class AlertFindingOut(BaseModel):
    alert_id: int
    rule: str
    rule_name: str
    severity: str
    class_id: int
    class_name: str
    count: int
    first_at: str | None
    last_at: str | None
    state: str = Field(description="closed | resolved | in_progress (never whether anyone was sent)")
    state_name: str
    outcome: str | None
    outcome_name: str | None
    closed_at: str | None
    closing_note: str | None
    resolved_note: str | None
    objectable: bool
    objection_refusal: str | None
    anomalies_total: int
    anomalies: list[AnomalyFindingOut]
    inspections: list[InspectionFindingOut]
    objections: list[ObjectionOut]


class BlacklistFindingOut(BaseModel):
    id: int
    subject_kind: str
    subject_id: int
    subject_name: str
    blacklisted: bool
    lifetime: bool
    reason: str
    decided_at: str | None
    alert_ids: list[int] = Field(description="cited alerts of the institution's own classes")
    inspection_ids: list[int]


class SiteInstitutionOut(BaseModel):
    id: int
    name: str
    blacklisted: bool
    blacklist_reason: str


class SiteFindingsOut(BaseModel):
    institution: SiteInstitutionOut
    page: int
    per_page: int
    total: int = Field(description="alerts of the institution's classes in all")
    alerts: list[AlertFindingOut]
    blacklist: list[BlacklistFindingOut]
