"""Checking the audit chain: entries read in sequence, a page at a time, and the first break named."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from pathlib import Path

from sqlalchemy import func, select

from models.audit import AUDITED, columns_detail, key_of
from models.audit_chain import Anchor, Break, Link, canonical, verify_chain
from models.audit_rows import RowFinding, differing_columns, replay_entries
from models.tables import AuditEntry, AuditHead, Base
from monitor.adapters.audit_keys import append_anchor, read_anchors
from monitor.adapters.storage import Database

PAGE = 2000


def iter_links(db: Database) -> Iterator[Link]:
    """Every entry in sequence order, read a page at a time (the chain grows without bound)."""
    after = 0
    while True:
        with db.session() as session:
            rows = session.scalars(select(AuditEntry).where(AuditEntry.seq > after).order_by(AuditEntry.seq)
                                   .limit(PAGE)).all()
        for e in rows:
            assert e.seq is not None
            yield Link(e.seq, e.at.isoformat(), e.actor, e.actor_role, e.action, e.subject_kind, e.subject_id,
                       e.detail, e.prev_hash or "", e.hash or "", e.token_id, e.key_id)
        if len(rows) < PAGE:
            return
        after = rows[-1].seq or after


def pending_audit(db: Database) -> int:
    """Entries written but not sealed into the chain yet (the worker seals them within seconds)."""
    with db.session() as session:
        return int(session.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.seq.is_(None))) or 0)


def chain_head(db: Database) -> tuple[int, str]:
    """The chain's head: (last sealed seq, its hash); (0, "") before anything is sealed."""
    with db.session() as session:
        head = session.get(AuditHead, 1)
        return (head.seq, head.hash) if head else (0, "")


def verify_audit(db: Database, keys: Mapping[str, bytes] | None = None,
                 anchors: Iterable[Anchor] = ()) -> tuple[int, Break | None]:
    """(sealed entries checked, the first break or None), the head included; keyed entries with `keys`, and
    every anchor noted outside the database held against the entry it names."""
    head_seq, head_hash = chain_head(db)
    return verify_chain(iter_links(db), head_seq, head_hash, keys, anchors)


def anchor_head(db: Database, path: Path, now: datetime) -> Anchor | None:
    """Append the chain's head to the anchors file when it moved since the last anchor; returns what was written."""
    seq, digest = chain_head(db)
    if seq == 0:
        return None
    anchors = read_anchors(path)
    if anchors and anchors[-1].seq == seq and anchors[-1].hash == digest:
        return None
    with db.session() as session:
        key_id = session.scalar(select(AuditEntry.key_id).where(AuditEntry.seq == seq))
    append_anchor(path, seq, digest, now, key_id)
    return Anchor(seq, digest, now.isoformat())


def daily_anchors(path: Path, days: int = 30) -> list[Anchor]:
    """The last anchor of each of the latest `days` days (UTC dates), newest first: what is published."""
    by_day: dict[str, Anchor] = {}
    for anchor in read_anchors(path):
        by_day[anchor.at_iso[:10]] = anchor
    return [by_day[d] for d in sorted(by_day, reverse=True)[:days]]


def verify_rows(db: Database, tables: Iterable[str] | None = None) -> tuple[int, list[RowFinding]]:
    """(audited rows checked, every row not as the chain says): each audited table's rows against the values its
    entries leave them with (models/audit_rows.py); a row changed, inserted or deleted behind the product's back is
    named. Reads a table's entries and rows a page at a time; holds one table's replayed values."""
    tables_by_name = {t.name: t for t in Base.metadata.sorted_tables}
    checked, findings = 0, []
    for name in sorted(set(tables or AUDITED) & tables_by_name.keys()):
        table = tables_by_name[name]
        with db.connection() as conn:
            entries = conn.execute(select(AuditEntry.action, AuditEntry.subject_id, AuditEntry.detail).where(
                AuditEntry.subject_kind == name, AuditEntry.action.like(f"{name}.%")).order_by(AuditEntry.id)
                .execution_options(yield_per=PAGE))
            expected = replay_entries((action.rsplit(".", 1)[1], subject, detail or {})
                                      for action, subject, detail in entries)
            seen: set[str] = set()
            for row in conn.execute(select(table).execution_options(yield_per=PAGE)):
                mapping = row._mapping
                key = key_of(table, mapping.__getitem__)
                seen.add(key)
                checked += 1
                recorded = expected.get(key)
                if recorded is None:  # no entry made it, or its entries deleted it
                    findings.append(RowFinding(name, key, "unrecorded"))
                    continue
                stored = canonical(columns_detail(table, mapping.__getitem__))
                if columns := differing_columns(recorded, stored):
                    findings.append(RowFinding(name, key, "changed", columns))
            findings.extend(RowFinding(name, key, "missing") for key, values in expected.items()
                            if values is not None and key not in seen)
    return checked, findings
