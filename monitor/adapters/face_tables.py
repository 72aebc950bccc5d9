"""The 1:N index's tables: the float32 copy of each face template, and the record of each hit at enrolment."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import JSON, BigInteger, Float, ForeignKey, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from models.tables import Base, BigId, UTCDateTime


class FaceVector(Base):
    """The float32 copy of a template's encoding (little-endian, 512 bytes): what the index loads."""

    __tablename__ = "face_vectors"
    template_id: Mapped[int] = mapped_column(ForeignKey("face_templates.id"), primary_key=True)
    vector: Mapped[bytes] = mapped_column(LargeBinary)


def vector_bytes(encoding: Sequence[float]) -> bytes:
    return np.asarray(encoding, dtype="<f4").tobytes()


class IdentityMatch(Base):
    """The record of a 1:N hit at enrolment: who looked like whom, the decision and what became of it."""

    __tablename__ = "identity_matches"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    person_kind: Mapped[str] = mapped_column(String(10))
    person_id: Mapped[int] = mapped_column(Integer, index=True)
    other_kind: Mapped[str] = mapped_column(String(10))
    other_id: Mapped[int] = mapped_column(Integer, index=True)
    outcome: Mapped[str] = mapped_column(String(12))  # duplicate | review
    state: Mapped[str] = mapped_column(String(12))  # refused | accepted | overridden
    distance: Mapped[float] = mapped_column(Float)
    photo_sha256: Mapped[str] = mapped_column(ForeignKey("evidence.sha256"))
    other_photo_sha256: Mapped[str | None] = mapped_column(String(64))
    other_template_id: Mapped[int | None] = mapped_column(Integer)
    reasons: Mapped[list[Any]] = mapped_column(JSON)
    measured: Mapped[dict[str, Any]] = mapped_column(JSON)
    thresholds: Mapped[dict[str, Any]] = mapped_column(JSON)
    anomaly_id: Mapped[int | None] = mapped_column(BigInteger)
    decided_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # An operator's review of a look-alike (outcome review): distinct | same_person; None while open.
    review_state: Mapped[str | None] = mapped_column(String(12))
    reviewed_by: Mapped[str | None] = mapped_column(String(100))
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    review_note: Mapped[str | None] = mapped_column(Text)
