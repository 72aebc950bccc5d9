"""Checking the audit chain: entries read in sequence, a page at a time, and the first break named."""

from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy import func, select

from models.audit_chain import Break, Link, verify_chain
from models.tables import AuditEntry, AuditHead
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
                       e.detail, e.prev_hash or "", e.hash or "", e.token_id)
        if len(rows) < PAGE:
            return
        after = rows[-1].seq or after


def pending_audit(db: Database) -> int:
    """Entries written but not sealed into the chain yet (the worker seals them within seconds)."""
    with db.session() as session:
        return int(session.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.seq.is_(None))) or 0)


def verify_audit(db: Database) -> tuple[int, Break | None]:
    """(sealed entries checked, the first break or None), the head included."""
    with db.session() as session:
        head = session.get(AuditHead, 1)
        head_seq, head_hash = (head.seq, head.hash) if head else (0, "")
    return verify_chain(iter_links(db), head_seq, head_hash)
