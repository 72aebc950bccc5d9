"""Response shapes of face enrolment and its 1:N duplicate-identity check (DUPLICATE_IDENTITY)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class CitedPersonOut(BaseModel):
    """A trainee or teacher a 1:N match cites, ID number masked."""

    kind: str = Field(description="trainee | teacher")
    kind_name: str
    id: int
    name: str
    id_number_masked: str


class IdentityCheckOut(BaseModel):
    """The 1:N search of an enrolment. The fields after `measured` are present only when it found someone
    (outcome duplicate or review)."""

    outcome: str = Field(description="none | duplicate | review")
    thresholds: dict[str, Any]
    measured: dict[str, Any]
    identity_match_id: int | None = None
    other: CitedPersonOut | None = None
    distance: float | None = None
    state: str | None = Field(default=None, description="accepted | overridden")
    message: str | None = None
    anomaly_id: int | None = Field(default=None, description="null while neither person is on a class")


class EnrolmentOut(BaseModel):
    """Face templates stored for a trainee or teacher, with the 1:N check that preceded them."""

    person_id: int
    added: int
    face_templates: int
    model_version: str
    identity_check: IdentityCheckOut


class IdentityMatchOut(BaseModel):
    """A 1:N hit at enrolment: who looked like whom, the decision and what became of it."""

    id: int
    outcome: str = Field(description="duplicate | review")
    state: str = Field(description="refused | accepted | overridden")
    distance: float
    person: CitedPersonOut
    other: CitedPersonOut
    reasons: list[str]
    message: str
    measured: dict[str, Any]
    thresholds: dict[str, Any]
    photo_sha256: str
    other_photo_sha256: str | None
    anomaly_id: int | None
    decided_by: str
    created_at: str


class FaceIndexOut(BaseModel):
    """The 1:N face index of this process."""

    templates: int
    kind: str
    index_bytes: int
    last_template_id: int
    thresholds: dict[str, Any]
