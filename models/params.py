"""Typed path and query parameters shared by the routes: ids, days, limits, digests (bounded, so junk is a 422)."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import Path, Query

from models.domain import MAX_RECORD_ID, MAX_UPLOAD_ID

EARLIEST_DAY = date(2000, 1, 1)  # the platform holds nothing older; bounds keep day arithmetic in range
LATEST_DAY = date(2099, 12, 31)

RecordIdPath = Annotated[int, Path(ge=1, le=MAX_RECORD_ID, description="a record id (1 to 2^31-1)")]
RecordIdQuery = Annotated[int, Query(ge=1, le=MAX_RECORD_ID, description="a record id (1 to 2^31-1)")]
UploadIdPath = Annotated[int, Path(ge=1, le=MAX_UPLOAD_ID, description="an upload or event id (1 to 2^63-1)")]
Sha256Path = Annotated[str, Path(pattern="^[0-9a-fA-F]{64}$", description="SHA-256 of the photo, 64 hex digits")]
Limit = Annotated[int, Query(ge=1, le=500, description="at most this many, newest first")]
DayQuery = Annotated[date | None, Query(ge=EARLIEST_DAY, le=LATEST_DAY,
                                        description="a local (Asia/Shanghai) day, 2000-01-01 to 2099-12-31; "
                                                    "default today")]
