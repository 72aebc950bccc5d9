"""Writing the audit chain: who is acting (set per request), each change's entry written and signed in its own
transaction without any lock (a global lock held while other rows are locked would deadlock writers), then sealed
into the hash chain, one sealer at a time, under the head row's lock."""

from __future__ import annotations

import hashlib
import json
import secrets
import weakref
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Column, Connection, Engine, Table, func, insert, inspect, select, update
from sqlalchemy.orm import Session

from models.audit_chain import canonical, entry_hash, sealer_doubts, sign_entry, signature_key_id
from models.clock import utc_now
from models.identity import mask_id_number
from models.tables import AuditEntry, AuditHead


@dataclass(frozen=True)
class AuditActor:
    name: str
    role: str  # a token's role, or "system"
    token_id: int | None = None  # the token the write was made with


SYSTEM = AuditActor("系统", "system")
AUDIT_INSERT = insert(AuditEntry)  # built once, its values bound per call: construction costs more than the row
current_actor: ContextVar[AuditActor] = ContextVar("audit_actor", default=SYSTEM)
# The audit key (id, bytes) each engine's writers sign entries with, set where a process is composed
# (`Database.audit_key`); an engine without one writes unsigned entries, which verification flags once the chain
# holds a signed one.
WRITER_KEYS: weakref.WeakKeyDictionary[Engine, tuple[str, bytes]] = weakref.WeakKeyDictionary()


def set_writer_key(engine: Engine, key: tuple[str, bytes] | None) -> None:
    """Have every entry written through `engine` signed with `key` (None: unsigned)."""
    if key is None:
        WRITER_KEYS.pop(engine, None)
    else:
        WRITER_KEYS[engine] = key


def append_audit(conn: Session | Connection, action: str, subject_kind: str, subject_id: object,
                 detail: dict[str, Any], actor: AuditActor | None = None, at: datetime | None = None) -> None:
    """Write one entry in the caller's transaction (so it exists exactly when the change does), signed with the
    engine's audit key. It takes no lock: `seal_audit` chains it moments later."""
    conn.execute(AUDIT_INSERT, audit_values(conn, action, subject_kind, subject_id, detail, actor, at))


def audit_values(conn: Session | Connection, action: str, subject_kind: str, subject_id: object,
                 detail: dict[str, Any], actor: AuditActor | None = None, at: datetime | None = None
                 ) -> dict[str, Any]:
    """The row of one entry as `append_audit` writes it, signed with the engine's audit key (a flush of many rows
    writes all its entries in one executemany)."""
    who = actor or current_actor.get()
    when = at or utc_now()
    when = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)  # as the column reads it back
    stored = canonical(detail)
    subject = str(subject_id)
    key = WRITER_KEYS.get((conn.get_bind() if isinstance(conn, Session) else conn).engine)
    signature = None
    if key is not None:
        signature = sign_entry(key[0], key[1], secrets.token_hex(8), when.isoformat(), who.name, who.role,
                               who.token_id, action, subject_kind, subject, stored)
    return {"at": when, "actor": who.name, "actor_role": who.role, "token_id": who.token_id, "action": action,
            "subject_kind": subject_kind, "subject_id": subject, "detail": stored, "signature": signature}


def seal_audit(conn: Connection, limit: int = 5000, key: tuple[str, bytes] | None = None,
               sealed_before: tuple[int, str] | None = None,
               keyring: Callable[[set[str]], Mapping[str, bytes]] | None = None) -> tuple[int, tuple[int, str]]:
    """Chain the committed entries not sealed yet, oldest first, under the head's lock; returns how many. `key`
    (its id and bytes, kept outside the database) makes each digest an HMAC; without one (tools on a bare
    database) the digest is plain SHA-256, as before keys.

    Every entry is chained, so that none can be taken out afterwards unnoticed; one whose writer signature the
    sealer can tell is missing or wrong (`sealer_doubts`) is also counted on the head and named in an entry of
    the sealer's own (`audit.untrusted`): the wall raises the alarm within seconds, not at the next verify.

    `sealed_before` is the head this sealer left last time: a head now behind it, or whose entry no longer has
    that hash, was rolled back in the database (sealed entries unsealed to be dropped or reordered and sealed
    again): counted and noted the same way (`audit.rolled_back`). Returns (entries sealed, the head now).

    `keyring(key_ids)` gives every audit key the center has, given the key ids this pass's entries name (so that a
    caller can read its key file again when one is new to it, after a rotation): an entry signed in the name of a
    key the center never had is then doubted too."""
    key_id, secret = key if key is not None else (None, None)
    head = conn.execute(update(AuditHead).where(AuditHead.id == 1).values(seq=AuditHead.seq)
                        .returning(AuditHead.seq, AuditHead.hash)).one()  # the lock: one sealer at a time
    seq, prev = int(head.seq), str(head.hash)
    rolled_back = sealed_before is not None and (seq < sealed_before[0] or conn.scalar(
        select(AuditEntry.hash).where(AuditEntry.seq == sealed_before[0])) != sealed_before[1])
    signed = conn.scalar(select(AuditEntry.signature.is_not(None)).where(AuditEntry.seq == seq)) or False
    rows = conn.execute(select(AuditEntry).where(AuditEntry.seq.is_(None)).order_by(AuditEntry.id)
                        .limit(limit)).all()
    doubted: list[int] = []
    signatures = [e.signature for e in rows if e.signature is not None]
    repeated = set(conn.scalars(select(AuditEntry.signature).where(AuditEntry.signature.in_(signatures)).group_by(
        AuditEntry.signature).having(func.count() > 1))) if signatures else set()  # copies (index dropped first)
    known = keyring({signature_key_id(sig) for sig in signatures}) if keyring is not None and key is not None \
        else None
    for e in rows:
        seq += 1
        digest = entry_hash(prev, seq, e.at.isoformat(), e.actor, e.actor_role, e.action, e.subject_kind,
                            e.subject_id, e.detail, e.token_id, secret, key_id, e.signature)
        conn.execute(update(AuditEntry).where(AuditEntry.id == e.id).values(seq=seq, prev_hash=prev, hash=digest,
                                                                           key_id=key_id))
        if e.signature in repeated or key is not None and sealer_doubts(
                e.signature, key, signed, e.at.isoformat(), e.actor, e.actor_role, e.token_id, e.action,
                e.subject_kind, e.subject_id, e.detail, known):
            doubted.append(seq)
        signed = signed or e.signature is not None
        prev = digest
    if rows:
        conn.execute(update(AuditHead).where(AuditHead.id == 1).values(seq=seq, hash=prev))
    if doubted or rolled_back:  # the wall's count: each doubted entry, and a rollback
        conn.execute(update(AuditHead).where(AuditHead.id == 1).values(
            untrusted=func.coalesce(AuditHead.untrusted, 0) + len(doubted) + int(rolled_back),
            untrusted_seq=doubted[-1] if doubted else int(head.seq) + 1))
    if doubted:
        append_audit(conn, "audit.untrusted", "audit_entries", doubted[-1], {"seqs": doubted}, actor=SYSTEM)
    if rolled_back:
        assert sealed_before is not None
        append_audit(conn, "audit.rolled_back", "audit_head", 1, {"was_seq": sealed_before[0],
                                                                  "was_hash": sealed_before[1],
                                                                  "found_seq": int(head.seq)}, actor=SYSTEM)
    return len(rows), (seq, prev)


# What the chain records of each table's rows: every table that holds a decision, a registration or what a decision
# reads (regions, replay hashes, a rule's fired keys, liveness frames, inspection photos, employment figures); not
# plumbing rows (live events, outbox, idempotent answers, leases) nor the chain itself. Register extracts' rows
# (millions) are held by their import's `rows_sha256` instead (`verify_extracts`).
AUDITED = {
    "institutions", "venues", "occupations", "trainees", "teachers", "classes", "class_sessions", "roster",
    "face_templates", "api_tokens", "checkins", "snapshots", "verifications", "anomalies", "alerts",
    "alert_transitions", "alert_pages", "review_items", "session_reviews", "staff", "staff_duty", "staff_ties",
    "phone_checks", "phone_calls", "identity_matches", "liveness_challenges", "online_sessions",
    "online_heartbeats", "class_status", "inspections", "draws", "blacklist_decisions", "sign_in_links",
    "cdr_imports", "cameras", "register_imports", "crosscheck_runs", "class_payments", "evidence_faults",
    "audit_check_requests",
    "objections",
    "regions", "rule_subjects", "photo_hashes", "checkin_frames", "inspection_photos", "institution_employment",
}
LEFT_OUT = {"encoding", "face_encoding", "measured", "thresholds", "vector", "payload", "original", "evidence",
            "credentials_encrypted"}
"""Large figures and secrets: not copied into the chain, which records `<column>_sha256` instead (the SHA-256 of the
value's canonical JSON, None for None), so a cited distance, a threshold or a face vector rewritten in the
database is still a `changed` row."""
NOT_SHOWN = {"token_hash", "code_hash"}
"""Recorded in the chain, so a row check names a token's or sign-in link's hash swapped for another's (which would hand
one holder another's role), but never shown (browse, export): each is the SHA-256 of a 256- or 128-bit random
secret, which reveals nothing of it, and still no one needs to see it."""


def row_detail(row: Any, only: set[str] | None = None) -> dict[str, Any]:
    """A row's columns as the chain records them: ID numbers masked, large figures and secrets left out."""
    return columns_detail(type(row).__table__, lambda column: getattr(row, column.key, None), only)


def columns_detail(table: Table, value_of: Callable[[Column[Any]], Any], only: set[str] | None = None
                   ) -> dict[str, Any]:
    """`row_detail` of any row of `table` whose column values `value_of` gives (an object, a Core row)."""
    detail: dict[str, Any] = {}
    for column in table.columns:
        key = column.key
        if only is not None and key not in only:
            continue
        value = value_of(column)
        if key in LEFT_OUT:
            detail[f"{key}_sha256"] = value_digest(value)
        else:
            detail[key] = mask_id_number(value) if key == "id_number" and isinstance(value, str) else value
    return detail


def value_digest(value: Any) -> str | None:
    """The SHA-256 of a column value's canonical JSON (keys as text, sorted), the same for the value written and the
    value read back from either database's JSON column; None for None."""
    if value is None:
        return None
    if isinstance(value, list) and all(type(v) is float or type(v) is int for v in value):  # a face vector: as is
        text = json.dumps(value, separators=(",", ":"))  # (4x faster than the round trip below, same text)
    else:
        text = json.dumps(canonical(value), ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def key_of(table: Table, value_of: Callable[[Column[Any]], Any]) -> str:
    """The chain's subject id of a row: its primary key's values joined with '/'."""
    return "/".join(str(value_of(c)) for c in table.primary_key.columns)


def _key_of(row: Any) -> str:
    return key_of(type(row).__table__, lambda column: getattr(row, column.key))


def record_flush(session: Session, _context: Any) -> None:
    """After each ORM flush: one chain entry per audited row inserted, changed or deleted, in the same transaction."""
    changes: list[tuple[str, Any, set[str] | None]] = []
    for row in session.new:
        changes.append(("insert", row, None))
    for row in session.dirty:
        if session.is_modified(row, include_collections=False):
            changed = {attr.key for attr in inspect(row).attrs if attr.history.has_changes()}
            changes.append(("update", row, changed))
    for row in session.deleted:
        changes.append(("delete", row, None))
    conn = session.connection()
    entries = [audit_values(conn, f"{table}.{verb}", table, _key_of(row), row_detail(row, only))
               for verb, row, only in changes if (table := getattr(type(row), "__tablename__", None)) in AUDITED]
    if entries:
        conn.execute(AUDIT_INSERT, entries)  # in order: one executemany, as many ids as entries
