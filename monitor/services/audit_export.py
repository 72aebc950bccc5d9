"""The audit chain filtered and exported (全程留痕可追溯): entries by actor, role, action, subject and time window, a
page at a time or as an Excel/CSV file for auditors, with personal numbers masked and the export itself recorded in
the chain (who exported, with which filters, how many rows, the file's SHA-256)."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from models.audit import LEFT_OUT, NOT_SHOWN, append_audit
from models.clock import SHANGHAI
from models.errors import ApiError
from models.identity import mask_id_number, mask_phone
from models.tables import AuditEntry
from monitor.adapters.spreadsheets import CSV, XLSX, to_csv, to_xlsx
from monitor.adapters.storage import Database

# Times an audit query may name: the platform holds nothing older, and both bounds stay far from datetime's year 1
# and year 9999, so converting any offset to UTC cannot overflow.
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)
EXPORT_CAP = 100_000  # rows in one file; a larger selection must be narrowed (by time, actor, ...)
PAGE = 2000
HASH_PREFIX = 16

EXPORT_COLUMNS = [
    ("seq", "序号"), ("at", "时间（北京时间）"), ("actor", "操作人"), ("actor_role", "角色"), ("token_id", "令牌编号"),
    ("action", "操作"), ("subject_kind", "对象类型"), ("subject_id", "对象编号"), ("detail", "详情（JSON）"),
    ("hash_prefix", f"哈希（前{HASH_PREFIX}位）"), ("key_id", "密钥编号"),
]


@dataclass(frozen=True)
class AuditFilter:
    """Which sealed entries: `actor` is the exact name recorded (a token's or staff member's name, or 系统);
    `since` inclusive, `until` exclusive; `after_seq` the paging cursor."""

    actor: str | None = None
    actor_role: str | None = None
    action: str | None = None
    subject_kind: str | None = None
    subject_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    after_seq: int = 0

    def clauses(self) -> list[ColumnElement[bool]]:
        out: list[ColumnElement[bool]] = [AuditEntry.seq > self.after_seq]  # sealed entries only
        for column, value in ((AuditEntry.actor, self.actor), (AuditEntry.actor_role, self.actor_role),
                              (AuditEntry.action, self.action), (AuditEntry.subject_kind, self.subject_kind),
                              (AuditEntry.subject_id, self.subject_id)):
            if value:
                out.append(column == value)
        if self.since is not None:
            out.append(AuditEntry.at >= self.since)
        if self.until is not None:
            out.append(AuditEntry.at < self.until)
        return out

    def as_detail(self) -> dict[str, Any]:
        """The filters as the export's audit entry records them (times in UTC, ISO 8601; unset ones left out)."""
        out: dict[str, Any] = {}
        for key, value in asdict(self).items():
            if isinstance(value, datetime):
                out[key] = value.isoformat()
            elif value:
                out[key] = value
        return out


def check_window(since: datetime | None, until: datetime | None) -> tuple[datetime | None, datetime | None]:
    """The window in UTC, or 422: times must carry a zone (parsing checked that), lie in 2000-2099 and not be
    inverted. A far-off time (year 1 or 9999 with an offset) is a 422, never an overflow."""
    out: list[datetime | None] = []
    for name, value in (("since", since), ("until", until)):
        if value is None:
            out.append(None)
            continue
        if value.tzinfo is None or value.utcoffset() is None:
            raise ApiError(422, "NAIVE_TIME", f"{name} 须带时区（ISO 8601，例如 2026-01-05T08:00:00+08:00）")
        try:
            utc = value.astimezone(UTC)
        except (OverflowError, ValueError):
            utc = None
        if utc is None or not EARLIEST <= utc < LATEST:
            raise ApiError(422, "TIME_OUT_OF_RANGE", f"{name} 须在 2000-01-01 至 2099-12-31 之间")
        out.append(utc)
    start, end = out
    if start is not None and end is not None and start >= end:
        raise ApiError(422, "INVERTED_RANGE", "起始时间（since）须早于截止时间（until）")
    return start, end


def entry_out(e: AuditEntry) -> dict[str, Any]:
    """One entry as the API lists it."""
    return {"seq": e.seq, "at": e.at.isoformat(), "actor": e.actor, "actor_role": e.actor_role,
            "token_id": e.token_id, "action": e.action, "subject_kind": e.subject_kind, "subject_id": e.subject_id,
            "detail": scrub(e.detail), "prev_hash": e.prev_hash, "hash": e.hash, "key_id": e.key_id}


def list_entries(session: Session, where: AuditFilter, limit: int) -> list[dict[str, Any]]:
    """A page of sealed entries matching the filter, oldest first (the next page: after_seq = the last seq)."""
    query = select(AuditEntry).where(*where.clauses()).order_by(AuditEntry.seq).limit(limit)
    return [entry_out(e) for e in session.scalars(query)]


def count_entries(session: Session, where: AuditFilter) -> int:
    return int(session.scalar(select(func.count()).select_from(AuditEntry).where(*where.clauses())) or 0)


def iter_entries(db: Database, where: AuditFilter, cap: int) -> Iterator[AuditEntry]:
    """Every matching entry in sequence order, a page at a time, at most `cap` of them."""
    after, given = where.after_seq, 0
    while given < cap:
        with db.session() as session:
            rows = session.scalars(select(AuditEntry).where(*AuditFilter(**{**asdict(where), "after_seq": after})
                                                            .clauses())
                                   .order_by(AuditEntry.seq).limit(min(PAGE, cap - given))).all()
            session.expunge_all()
        yield from rows
        given += len(rows)
        if len(rows) < PAGE:
            return
        after = rows[-1].seq or after


# -- what leaves the system in a file: personal numbers masked wherever they appear, secrets left out -----------
_ID_NUMBER = re.compile(r"(?<![0-9A-Za-z])\d{17}[\dXx](?![0-9A-Za-z])")
_MOBILE = re.compile(r"(?<![0-9A-Za-z])1[3-9]\d{9}(?![0-9A-Za-z])")


def mask_text(text: str) -> str:
    """A string with any whole ID number or mainland mobile number in it masked (hashes and codes untouched)."""
    text = _ID_NUMBER.sub(lambda m: mask_id_number(m.group(0)), text)
    return _MOBILE.sub(lambda m: mask_phone(m.group(0)), text)


def scrub(value: Any) -> Any:
    """A detail as exported: keys of secrets and large figures (LEFT_OUT, NOT_SHOWN) dropped at any depth, ID and phone
    numbers masked in any string (the chain masks ID numbers when written; phone numbers it keeps for auditors)."""
    if isinstance(value, dict):
        return {k: scrub(v) for k, v in value.items() if k not in LEFT_OUT and k not in NOT_SHOWN}
    if isinstance(value, list):
        return [scrub(v) for v in value]
    if isinstance(value, str):
        return mask_text(value)
    return value


def local_time(at: datetime) -> str:
    return at.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")


def export_row(e: AuditEntry) -> dict[str, Any]:
    return {"seq": e.seq, "at": local_time(e.at), "actor": mask_text(e.actor), "actor_role": e.actor_role,
            "token_id": e.token_id, "action": e.action, "subject_kind": e.subject_kind,
            "subject_id": mask_text(e.subject_id),
            "detail": json.dumps(scrub(e.detail), ensure_ascii=False, sort_keys=True, separators=(",", ":")),
            "hash_prefix": (e.hash or "")[:HASH_PREFIX], "key_id": e.key_id or ""}


@dataclass(frozen=True)
class AuditExport:
    data: bytes
    media_type: str
    filename: str
    rows: int
    sha256: str


def export_audit(db: Database, where: AuditFilter, fmt: str, now: datetime, cap: int | None = None) -> AuditExport:
    """The filtered entries as a file, or 422 EXPORT_TOO_LARGE over the cap; the export is recorded in the chain
    (the caller, the filters, the row count, the file's SHA-256) in its own transaction before the file is given."""
    limit = EXPORT_CAP if cap is None else cap
    with db.session() as session:
        total = count_entries(session, where)
    if total > limit:
        raise ApiError(422, "EXPORT_TOO_LARGE", f"符合条件的审计记录有 {total} 条，超过单次导出上限 {limit} 条；"
                       "请缩小时间范围或按操作人等条件筛选后分批导出", rows=total, cap=limit)
    rows = [export_row(e) for e in iter_entries(db, where, limit)]
    widths = {"at": 20, "detail": 80, "actor": 16, "action": 26, "hash_prefix": 20}
    data, media_type = ((to_xlsx("审计记录", EXPORT_COLUMNS, rows, widths), XLSX) if fmt == "xlsx"
                        else (to_csv(EXPORT_COLUMNS, rows), CSV))
    digest = hashlib.sha256(data).hexdigest()
    filename = f"审计记录_{now.astimezone(SHANGHAI):%Y%m%d-%H%M%S}.{fmt}"
    with db.session() as session:
        append_audit(session, "export", "export", filename,
                     {"what": "audit", "format": fmt, "filters": where.as_detail(), "rows": len(rows),
                      "first_seq": rows[0]["seq"] if rows else None, "last_seq": rows[-1]["seq"] if rows else None,
                      "sha256": digest, "bytes": len(data), "media_type": media_type})
    return AuditExport(data, media_type, filename, len(rows), digest)
