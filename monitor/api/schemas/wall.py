"""Response shapes of the wall screen's own reads: the overview with today's trend and what is due, the latest
classroom frames, and a trainee's day in a class."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from ingest.schemas import ReasonOut
from monitor.api.schemas import center


class TrendOut(BaseModel):
    """Today (Asia/Shanghai) in buckets: check-ins received and anomalies raised; buckets still to come are null."""

    bucket_minutes: int
    labels: list[str] = Field(description="each bucket's local start, HH:MM")
    checkins: list[int | None]
    anomalies: list[int | None]


class StartingSessionOut(BaseModel):
    class_id: int
    class_name: str
    session_name: str
    start: str = Field(description="local HH:MM")


class DueOut(BaseModel):
    """What needs doing, not what happened."""

    short_of_inspections: int = Field(description="classes under way or ended with fewer inspections than required")
    inspections_required: int
    sessions_within_hour: int = Field(description="sessions of today's classes that start within the next hour")
    starting: list[StartingSessionOut] = Field(description="those sessions, soonest first (at most 20)")


class AlarmOut(BaseModel):
    code: str
    message: str


class OverviewOut(center.OverviewOut):
    """The province at a glance for the wall screen (today, local time), with today's trend and what is due."""

    trend: TrendOut
    due: DueOut
    alarms: list[AlarmOut] = Field(description="the center's own alarms for the wall (STORAGE_LOW …)")


class FrameOut(BaseModel):
    """The latest classroom frame (camera or phone snapshot) of one class in session."""

    snapshot_id: int
    class_id: int
    class_name: str
    class_code: str
    institution_name: str
    county_name: str
    prefecture_name: str
    camera_id: str
    captured_at: str
    received_at: str
    photo_sha256: str = Field(description="GET /api/v1/evidence/{sha256}")
    status: str = Field(description="pending | passed | failed | review")
    face_count: int | None = Field(description="faces counted in the frame; null until verified")
    signed_in: int = Field(description="trainees signed in (and not out) when the frame was verified, else now")
    verified: bool


class FramesOut(BaseModel):
    classes_in_session: int
    classes_with_frames: int = Field(description="classes in session with a frame today")
    frames: list[FrameOut]


class DayWindowOut(BaseModel):
    name: str
    start: str
    end: str


class DayItemOut(BaseModel):
    """One thing of the trainee's day: sign_in | sign_out | online_start | online_end | heartbeat | anomaly."""

    at: str
    kind: str
    status: str | None
    subject_id: int
    photo_sha256: str | None = None
    face_distance: float | None = None
    fence_result: str | None = None
    fence_distance_m: float | None = None
    fix: dict[str, Any] | None = None
    rule: str | None = None
    severity: str | None = None
    message: str | None = None
    reasons: list[ReasonOut] | None = Field(
        default=None, description="a heartbeat's reasons once judged (code, zh-CN message): why it failed or waits")


class TraineeDayOut(BaseModel):
    class_id: int
    class_name: str
    trainee_id: int
    trainee_name: str
    day: str
    sessions: list[DayWindowOut] = Field(description="the class's session windows that day (local HH:MM)")
    items: list[DayItemOut] = Field(description="in time order")
