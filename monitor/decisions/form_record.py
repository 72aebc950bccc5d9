"""The record of a filed inspection form as canonical JSON and its SHA-256: what the printed QR code carries and
`/verify` recomputes from the stored rows (a PDF's own digest cannot be printed inside it); pure functions."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

RECORD_VERSION = 1  # bump when the fields below change: a record is always re-hashed with the version it was made


def utc_text(at: datetime | None) -> str | None:
    """A time as the record writes it: ISO 8601 in UTC with microseconds, so that a re-read row gives the same text."""
    return None if at is None else at.astimezone(UTC).isoformat(timespec="microseconds")


def canonical_json(record: Mapping[str, Any]) -> bytes:
    """One byte string per record: keys sorted, no spaces, UTF-8, no NaN."""
    return json.dumps(record, sort_keys=True, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


def record_digest(record: Mapping[str, Any]) -> str:
    """The SHA-256 (hex) of the record's canonical JSON."""
    return hashlib.sha256(canonical_json(record)).hexdigest()


def is_sha256(text: str) -> bool:
    """64 lower-case hex digits (what /verify accepts)."""
    return len(text) == 64 and all(c in "0123456789abcdef" for c in text)
