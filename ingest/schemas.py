"""Response shapes of the training sites' edge (pydantic): upload verdicts, liveness challenges, online study."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from models.errors import UPLOAD_RESPONSES


class ReasonOut(BaseModel):
    """Why an upload did not pass: a rule's code and a zh-CN sentence."""

    code: str
    message: str


class CheckInVerdictOut(BaseModel):
    """A check-in and its verdict. `notes`, `verification_id`, `face_distance`, the face model (`face_engine`,
    `face_model_sha256`, `face_threshold`) and `fence_result` are present once the check-in is verified (not while
    status is pending)."""

    id: int
    status: str = Field(description="pending | passed | failed | review")
    status_url: str = Field(description="where to ask for the verdict")
    photo_sha256: str
    reasons: list[ReasonOut]
    kind: str = Field(description="sign_in | sign_out")
    notes: list[str] = Field(default_factory=list, description="unreadable parts of the photo, ignored")
    verification_id: int | None = None
    face_distance: float | None = None
    face_engine: str | None = Field(default=None, description="the face model that judged it (manifest name)")
    face_model_sha256: str | None = Field(default=None, description="SHA-256 of that model's weights")
    face_threshold: float | None = Field(default=None, description="the 1:1 pass threshold, in the model's metric")
    face_mismatch_threshold: float | None = Field(
        default=None, description="the distance from which the face is judged another person's (FACE_MISMATCH, the "
                                  "threshold a refusal names); between the pass threshold and this: human review")
    fence_result: str | None = Field(default=None, description="inside | outside | uncertain")
    message: str = Field(description="what happened, in zh-CN, for the site")


class CheckInUploadOut(CheckInVerdictOut):
    """A check-in's answer: its verdict, or pending."""

    duplicate: bool = Field(description="true when an earlier upload with the same Idempotency-Key is returned")


class SnapshotVerdictOut(BaseModel):
    """A classroom snapshot and its verdict. `notes`, `verification_id`, `face_distance`, the face model
    (`face_engine`, `face_model_sha256`, `face_threshold`) and `fence_result` are present once the snapshot is
    verified (not while status is pending)."""

    id: int
    status: str = Field(description="pending | passed | failed")
    status_url: str = Field(description="where to ask for the verdict")
    photo_sha256: str
    reasons: list[ReasonOut]
    notes: list[str] = Field(default_factory=list, description="unreadable parts of the photo, ignored")
    verification_id: int | None = None
    face_distance: float | None = None
    face_engine: str | None = Field(default=None, description="the face model that judged it (manifest name)")
    face_model_sha256: str | None = Field(default=None, description="SHA-256 of that model's weights")
    face_threshold: float | None = Field(default=None, description="the 1:1 pass threshold, in the model's metric")
    face_mismatch_threshold: float | None = Field(
        default=None, description="the distance from which the face is judged another person's (FACE_MISMATCH, the "
                                  "threshold a refusal names); between the pass threshold and this: human review")
    fence_result: str | None = None
    message: str = Field(description="what happened, in zh-CN, for the site")


class SnapshotUploadOut(SnapshotVerdictOut):
    """A snapshot's answer: its verdict, or pending."""

    duplicate: bool = Field(description="true when an earlier upload with the same Idempotency-Key is returned")


def upload_responses(model: type[BaseModel], *statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` for an upload route: its 200/201/202 answers (UPLOAD_RESPONSES) carry `model`."""
    return {status: {**UPLOAD_RESPONSES[status], "model": model} for status in statuses or UPLOAD_RESPONSES}


class ChallengeOut(BaseModel):
    """A liveness challenge: the action to perform on camera and until when."""

    challenge_id: str
    action: str = Field(description="blink | turn_left | turn_right")
    instruction: str
    expires_at: str
    min_frames: int
    max_frames: int


class HeartbeatOut(BaseModel):
    id: int
    captured_at: str
    status: str = Field(description="pending | passed | failed | review (an operator decides; not counted until "
                        "confirmed)")
    face_distance: float | None
    reasons: list[ReasonOut] = Field(description="once judged: why it failed, or why it waits for an operator")


class OnlineSessionOut(BaseModel):
    """An online study session with its heartbeats."""

    id: int
    class_id: int
    trainee_id: int
    started_at: str
    ended_at: str | None
    heartbeats: list[HeartbeatOut]


class OnlineSessionStartedOut(OnlineSessionOut):
    """A new online study session and when to send the first face photo."""

    next_heartbeat_in_s: int


class HeartbeatAcceptedOut(BaseModel):
    """A heartbeat's answer, and when to send the next one."""

    id: int
    status: str = Field(description="pending | passed | failed | review (an operator decides; not counted until "
                        "confirmed)")
    message: str
    reasons: list[ReasonOut] = Field(description="once judged: why it failed, or why it waits for an operator")
    duplicate: bool = Field(description="true when an earlier heartbeat with the same Idempotency-Key is returned")
    next_heartbeat_in_s: int


class SiteSessionOut(BaseModel):
    name: str
    start: str = Field(description="HH:MM")
    end: str = Field(description="HH:MM")


class SiteTraineeOut(BaseModel):
    id: int
    name: str


class SiteClassOut(BaseModel):
    """A class of the site running today, with its sessions and roster."""

    id: int
    code: str
    name: str
    sessions: list[SiteSessionOut]
    trainees: list[SiteTraineeOut]
