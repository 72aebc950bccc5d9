"""Response shapes of the monitoring center: the wall screen's overview, anomalies, alerts and reviews."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class OverviewCountersOut(BaseModel):
    classes_today: int
    classes_in_session: int
    checkins_today: int
    pass_rate: float | None = Field(description="passed / check-ins today; null without check-ins")
    anomalies_today: int
    anomalies_open: int
    alerts_active: int = Field(description="alerts waiting for someone: open, dispatched, accepted, on site, phoning")
    alerts_by_state: dict[str, int] = Field(description="active alerts per state")
    alerts_returned: int = Field(description="open alerts that were paged and came back to the center (nobody "
                                 "accepted, or the inspector was recused)")
    alerts_overdue: int = Field(description="active alerts with no step for MONITOR_ALERT_OVERDUE_MINUTES")


class PrefectureStatsOut(BaseModel):
    """Today's figures of one prefecture."""

    code: str
    name: str
    classes: int
    in_session: int
    checkins: int
    passed: int
    anomalies: int


class MapClassOut(BaseModel):
    """A class running today, placed on the map at its venue."""

    id: int
    name: str
    code: str
    institution: str
    lat: float
    lon: float
    status: str
    prefecture_code: str
    county_code: str


class OverviewOut(BaseModel):
    """The province at a glance for the wall screen (today, local time)."""

    generated_at: str
    counters: OverviewCountersOut
    anomalies_by_rule: dict[str, int]
    prefectures: list[PrefectureStatsOut]
    classes: list[MapClassOut]


class AnomalyOut(BaseModel):
    """One anomaly: the rule that fired, its evidence and the thresholds it was judged with."""

    id: int
    rule: str
    severity: str
    class_id: int
    trainee_id: int | None
    subject_kind: str
    subject_id: int
    region_code: str
    message: str
    evidence: dict[str, Any]
    thresholds: dict[str, Any]
    state: str = Field(description="open | resolved")
    created_at: str


class AlertAnomalyOut(BaseModel):
    """One of the anomalies an alert groups."""

    id: int
    trainee_id: int | None
    message: str
    state: str
    evidence: dict[str, Any]
    thresholds: dict[str, Any]
    resolved_note: str | None
    created_at: str


class AlertOut(BaseModel):
    """Repeats of one rule on one class, grouped, with their anomalies."""

    id: int
    rule: str
    class_id: int
    region_code: str
    severity: str
    count: int
    open_count: int
    state: str = Field(description="open | dispatched | accepted | on_site | phoning | closed | resolved")
    first_at: str
    last_at: str
    resolved_note: str | None
    anomalies: list[AlertAnomalyOut]


class ReviewOut(BaseModel):
    """A verdict left to an operator (a check-in's or an online-study heartbeat's face, or a look-alike found at
    enrolment), with both photos, what was measured, the thresholds and its service level."""

    id: int
    kind: str = Field(description="checkin | heartbeat | identity (ids are unique within a kind)")
    subject_id: int
    checkin_id: int | None = Field(description="the check-in (kind checkin)")
    class_id: int | None
    class_name: str | None
    trainee_id: int | None
    trainee_name: str | None
    reason_code: str = Field(description="FACE_GREY_ZONE | FACE_AMBIGUOUS | FACE_NOT_ENROLLED | IDENTITY_LOOKALIKE")
    message: str
    measured: dict[str, Any]
    thresholds: dict[str, Any]
    state: str = Field(description="open | confirmed | rejected")
    photo_sha256: str = Field(description="the photo being judged")
    reference_photo_sha256: str | None = Field(description="the enrolment photo it is compared with")
    captured_at: str
    created_at: str
    due_at: str = Field(description="when the service level (MONITOR_REVIEW_SLA_MINUTES) runs out")
    overdue: bool
    age_minutes: int
    decided_by: str | None
    note: str | None


class ReviewDecisionOut(BaseModel):
    """The review after the operator's decision, and the upload's (or match's) resulting status."""

    id: int
    kind: str
    state: str
    checkin_status: str | None
    subject_status: str
    decided_by: str


class ReviewSkippedOut(BaseModel):
    id: int
    code: str
    message: str


class ReviewBatchOut(BaseModel):
    decided: list[ReviewDecisionOut]
    skipped: list[ReviewSkippedOut]
