"""Checking the audit chain: entries read in sequence, a page at a time, and the first break named; the records held
to it; the result of each check kept (the scheduler checks on its own every hour) and alarmed on the wall."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import groupby
from operator import attrgetter
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, Connection, String, Table, cast, collate, func, select, text
from sqlalchemy.orm import Session

from models.audit import AUDITED, append_audit, columns_detail
from models.audit_chain import (
    Anchor,
    Break,
    Link,
    SignedSince,
    canonical,
    entry_trusted,
    seal_holds,
    seal_record,
    verify_chain,
)
from models.audit_rows import RowFinding, differing_columns, inserted_again, replay_entries
from models.tables import (
    CHECKS_WHERE,
    SEALER_FINDINGS_WHERE,
    AuditCheckRequest,
    AuditCheckRow,
    AuditEntry,
    AuditHead,
    Base,
    FaceTemplate,
)
from monitor.adapters.audit_keys import append_anchor, read_anchors
from monitor.adapters.face_tables import FaceVector, vector_bytes
from monitor.adapters.storage import Database, begin_snapshot
from monitor.services.registers import verify_extracts

PAGE = 2000


def iter_links(db: Database, upto: int | None = None) -> Iterator[Link]:
    """Every entry in sequence order up to seq `upto` (the head as read when the check began: the sealer goes on
    sealing meanwhile), read a page at a time (the chain grows without bound)."""
    after = 0
    while True:
        with db.session() as session:
            query = select(AuditEntry).where(AuditEntry.seq > after)
            if upto is not None:
                query = query.where(AuditEntry.seq <= upto)
            rows = session.scalars(query.order_by(AuditEntry.seq).limit(PAGE)).all()
        for e in rows:
            assert e.seq is not None
            yield Link(e.seq, e.at.isoformat(), e.actor, e.actor_role, e.action, e.subject_kind, e.subject_id,
                       e.detail, e.prev_hash or "", e.hash or "", e.token_id, e.key_id, e.signature)
        if len(rows) < PAGE:
            return
        after = rows[-1].seq or after


def sealer_findings(session: Session) -> tuple[int, int | None]:
    """What the sealer's own entries in the chain count (each entry it did not believe, each rollback it found) and
    the last such entry's seq; read from the chain, not from the head's counter, which is a plain column."""
    count, last = 0, 0
    for action, detail in session.execute(select(AuditEntry.action, AuditEntry.detail)
                                          .where(text(SEALER_FINDINGS_WHERE))):
        detail = detail or {}
        if action == "audit.untrusted":  # the seqs it doubted
            seqs = [x for x in detail.get("seqs", []) if isinstance(x, int)]
        else:  # audit.rolled_back: the chain went on after the head it found
            seqs = [int(detail.get("found_seq") or 0) + 1]
        count += max(len(seqs), 1)
        last = max([last, *seqs])
    return count, last or None


def untrusted_alarm(session: Session) -> dict[str, Any] | None:
    """The alarm when the sealer has chained entries it did not believe (written by someone at the database, not
    by the product) or found the chain rolled back: how many, the last one's seq, and what to do, in zh-CN; None
    when there are none. Counted from the sealer's own entries as well as the head's counter: a counter set back
    to zero in the database still leaves the alarm (and says so)."""
    head = session.get(AuditHead, 1)
    counted = int(head.untrusted or 0) if head is not None else 0
    noted, noted_seq = sealer_findings(session)
    if not counted and not noted:
        return None
    if noted > counted:
        return {"untrusted": noted, "untrusted_seq": noted_seq,
                "message": f"审计链中记有 {noted} 处不是本系统所为的写入或回退（最近一处在第 {noted_seq} 条），"
                           f"但链头的告警计数为 {counted}：计数已在数据库中被绕过系统改写，"
                           "请运行 monitor audit verify 核查"}
    assert head is not None
    return {"untrusted": counted, "untrusted_seq": head.untrusted_seq,
            "message": f"审计链中发现 {counted} 处不是本系统所为的写入或回退"
                       f"（最近一处在第 {head.untrusted_seq} 条）：数据库可能被绕过系统改写，"
                       "请运行 monitor audit verify 核查"}


def pending_audit(db: Database) -> int:
    """Entries written but not sealed into the chain yet (the worker seals them within seconds)."""
    with db.session() as session:
        return int(session.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.seq.is_(None))) or 0)


def chain_head(db: Database) -> tuple[int, str]:
    """The chain's head: (last sealed seq, its hash); (0, "") before anything is sealed."""
    with db.session() as session:
        head = session.get(AuditHead, 1)
        return (head.seq, head.hash) if head else (0, "")


def copied_entries(db: Database) -> dict[int, int | None]:
    """Entries that repeat an earlier entry's writer signature, by id, with their seq: copies, since every entry the
    product writes has a nonce of its own (the unique index refuses them, unless someone dropped it first)."""
    with db.connection() as conn:
        repeated = select(AuditEntry.signature).where(AuditEntry.signature.is_not(None)).group_by(
            AuditEntry.signature).having(func.count() > 1)
        rows = conn.execute(select(AuditEntry.id, AuditEntry.seq, AuditEntry.signature).where(
            AuditEntry.signature.in_(repeated)).order_by(AuditEntry.id)).all()
    seen: set[str] = set()
    copies: dict[int, int | None] = {}
    for entry_id, seq, signature in rows:
        if signature in seen:
            copies[entry_id] = seq
        seen.add(str(signature))
    return copies


def verify_audit(db: Database, keys: Mapping[str, bytes] | None = None,
                 anchors: Iterable[Anchor] = ()) -> tuple[int, Break | None]:
    """(sealed entries checked, the first break or None), the head included; keyed entries with `keys`, every
    entry's writer signature, no entry a copy of another, and every anchor noted outside the database held against
    the entry it names."""
    head_seq, head_hash = chain_head(db)
    checked, broken = verify_chain(iter_links(db, head_seq), head_seq, head_hash, keys, anchors)
    sealed_copies = [seq for seq in copied_entries(db).values() if seq is not None and seq <= head_seq]
    if sealed_copies and (broken is None or min(sealed_copies) < broken.seq):
        seq = min(sealed_copies)
        return seq - 1, Break(seq, "copied", f"第 {seq} 条记录是此前一条记录的复制（写入签名重复）：不是本系统写入的")
    return checked, broken


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


def believed_entries(entries: Iterable[Any], table: str, keys: Mapping[str, bytes] | None, signed: SignedSince,
                     copies: Mapping[int, int | None], findings: list[RowFinding]) -> Iterator[tuple[str, str, Any]]:
    """(verb, row key, detail) of each of `table`'s entries the product wrote; one it did not (no valid signature,
    or a copy) is noted in `findings` and skipped. Without `keys` every entry is believed."""
    for e in entries:
        if keys is not None and (e.id in copies or not entry_trusted(
                e.signature, signed.legacy_place(e.seq, e.id), keys, e.at.isoformat(), e.actor, e.actor_role,
                e.token_id, e.action, e.subject_kind, e.subject_id, e.detail)):
            findings.append(RowFinding(table, e.subject_id, "unsigned_entry", entry=e.id))
            continue
        yield e.action.rsplit(".", 1)[1], e.subject_id, e.detail or {}


def signed_since(conn: Connection) -> SignedSince:
    """Where signed entries begin, read in `conn`'s snapshot."""
    first_seq = conn.scalar(select(func.min(AuditEntry.seq)).where(AuditEntry.signature.is_not(None)))
    first_pending = None if first_seq is not None else conn.scalar(select(func.min(AuditEntry.id)).where(
        AuditEntry.seq.is_(None), AuditEntry.signature.is_not(None)))
    return SignedSince(first_seq, first_pending)


def chain_key(table: Table) -> ColumnElement[str]:
    """A row's chain subject id in SQL: its primary key's values as text joined with '/' (`key_of`'s form)."""
    parts: list[ColumnElement[str]] = [cast(column, String) for column in table.primary_key.columns]
    key = parts[0]
    for part in parts[1:]:
        key = key + "/" + part
    return key


def verify_rows(db: Database, tables: Iterable[str] | None = None, keys: Mapping[str, bytes] | None = None
                ) -> tuple[int, list[RowFinding]]:
    """(audited rows checked, every row not as the chain says): each audited table's rows against the values its
    entries leave them with (models/audit_rows.py); a row changed, inserted or deleted behind the product's back is
    named. With the audit `keys`, only entries the product wrote are believed (`entry_trusted`), sealed or not: one
    inserted straight into the database is named and left out.

    A row's entries are replayed in the chain's order (`seq`; the pending ones after, in the order the sealer
    will take them): an entry's `id` is not in its hash, and swapping two entries' ids must not change the replay.

    Entries and rows are both read in order of the row's key (byte order, the same in both databases and in
    Python) and merged, one row's entries replayed at a time: memory stays flat however large the table."""
    tables_by_name = {t.name: t for t in Base.metadata.sorted_tables}
    checked = 0
    findings: list[RowFinding] = []
    copies = copied_entries(db) if keys is not None else {}
    byte_order = "C" if db.engine.dialect.name == "postgresql" else "BINARY"
    signed: SignedSince | None = None
    for name in sorted(set(tables or AUDITED) & tables_by_name.keys()):
        table = tables_by_name[name]
        row_key = chain_key(table).label("chain_key")
        with db.engine.connect().execution_options(isolation_level="REPEATABLE READ" if byte_order == "C"
                                                    else "SERIALIZABLE") as conn, conn.begin():
            begin_snapshot(conn)
            # one snapshot for the entries and the rows (PostgreSQL reads each statement afresh otherwise): a row
            # committed with its entry while the check runs is seen with both or with neither, and where signed
            # entries begin as the sealer left it then (once one is sealed, that place is fixed: read it once)
            if signed is None or signed.seq is None:
                signed = signed_since(conn)
            entries = conn.execute(select(AuditEntry).where(
                AuditEntry.subject_kind == name, AuditEntry.action.like(f"{name}.%"))
                .order_by(collate(AuditEntry.subject_id, byte_order), AuditEntry.seq.is_(None), AuditEntry.seq,
                          AuditEntry.id)
                .execution_options(yield_per=PAGE))
            rows = conn.execute(select(table, row_key).order_by(collate(row_key, byte_order))
                                .execution_options(yield_per=PAGE))
            by_key = groupby(entries, key=attrgetter("subject_id"))
            group, row = next(by_key, None), next(rows, None)
            while group is not None or row is not None:
                if row is None or (group is not None and group[0] < row.chain_key):
                    assert group is not None
                    key = group[0]
                else:
                    key = row.chain_key
                recorded = None
                if group is not None and group[0] == key:
                    believed = list(believed_entries(group[1], name, keys, signed, copies, findings))
                    recorded = replay_entries(believed).get(key)
                    if key in inserted_again(believed):
                        findings.append(RowFinding(name, key, "reused"))
                    group = next(by_key, None)
                if row is None or row.chain_key != key:  # entries, no row
                    if recorded is not None:
                        findings.append(RowFinding(name, key, "missing"))
                    continue
                checked += 1
                if recorded is None:  # no entry made it, or its entries deleted it
                    findings.append(RowFinding(name, key, "unrecorded"))
                else:
                    mapping = row._mapping
                    stored = canonical(columns_detail(table, mapping.__getitem__))
                    if columns := differing_columns(recorded, stored):
                        findings.append(RowFinding(name, key, "changed", columns))
                row = next(rows, None)
    return checked, findings


ROW_FINDINGS_SHOWN = 100
DANGLING_NAMED = 100  # per reference: enough to act on, bounded however many rows a deletion left pointing nowhere


def dangling_references(db: Database) -> list[RowFinding]:
    """Every row that refers to a row no longer there (each foreign key, as an anti-join): the database refuses
    such a deletion, unless someone turned the check off first (the sqlite3 shell does by default; PostgreSQL's
    `session_replication_role = replica`). A check-in whose evidence row was deleted, an alert whose class was.
    Plumbing and the chain's own tables included: nothing the product writes points nowhere."""
    findings: list[RowFinding] = []
    with db.connection() as conn:
        for table in Base.metadata.sorted_tables:
            for fk in sorted(table.foreign_keys, key=lambda f: f.parent.name):
                column, target = fk.parent, fk.column
                other = target.table.alias("referred")
                query = (select(*table.primary_key.columns, column)
                         .where(column.is_not(None), ~select(other.c[target.name]).where(
                             other.c[target.name] == column).exists())
                         .order_by(*table.primary_key.columns).limit(DANGLING_NAMED))
                for row in conn.execute(query):
                    key = "/".join(str(row._mapping[c]) for c in table.primary_key.columns)
                    findings.append(RowFinding(table.name, key, "dangling", (column.name,),
                                               referred=f"{target.table.name}.{target.name}"))
    return findings


@dataclass(frozen=True)
class AuditCheck:
    """One verification of the chain (with its keys and anchors) and of the records against it."""

    checked: int
    broken: Break | None
    pending: int
    head_seq: int
    head_hash: str
    anchors_checked: int
    rows_checked: int
    findings: list[RowFinding]

    @property
    def intact(self) -> bool:
        return self.broken is None and not self.findings

    @property
    def message(self) -> str:
        rows = (f"；记录与审计链一致（{self.rows_checked} 行）" if not self.findings
                else f"；但有 {len(self.findings)} 行记录与审计链不符，首个：{self.findings[0].message}")
        if self.broken is not None:
            return self.broken.message + rows
        return (f"审计链完整：{self.checked} 条记录，链头第 {self.head_seq} 条 {self.head_hash}"
                + (f"，另有 {self.pending} 条待封链" if self.pending else "") + rows)

    def as_json(self) -> dict[str, Any]:
        """The answer of GET /api/v1/audit/verify."""
        return {"intact": self.intact, "checked": self.checked, "pending": self.pending,
                "broken_seq": self.broken.seq if self.broken else None,
                "broken_kind": self.broken.kind if self.broken else "row" if self.findings else None,
                "message": self.message, "head_seq": self.head_seq, "head_hash": self.head_hash,
                "anchors_checked": self.anchors_checked, "rows_checked": self.rows_checked,
                "rows_intact": not self.findings,
                "row_findings": [{"table": f.table, "key": f.key, "kind": f.kind, "columns": list(f.columns),
                                  "entry": f.entry, "message": f.message} for f in self.findings[:ROW_FINDINGS_SHOWN]],
                "row_findings_total": len(self.findings)}


VECTOR_BATCH = 5_000


def verify_face_vectors(db: Database) -> tuple[int, list[RowFinding]]:
    """(vectors checked, each face template whose float32 copy in `face_vectors` is not its audited encoding): the 1:N
    index picks its candidates from those copies, so a copy swapped at the database would hide a duplicate
    enrolment (冒名/多领) from the search while the audited encoding stays as it was."""
    checked, after = 0, 0
    findings: list[RowFinding] = []
    while True:
        with db.connection() as conn:
            rows = conn.execute(select(FaceVector.template_id, FaceVector.vector, FaceTemplate.encoding)
                                .join(FaceTemplate, FaceTemplate.id == FaceVector.template_id)
                                .where(FaceVector.template_id > after).order_by(FaceVector.template_id)
                                .limit(VECTOR_BATCH)).all()
        if not rows:
            return checked, findings
        for template_id, vector, encoding in rows:
            if bytes(vector) != vector_bytes(encoding):
                findings.append(RowFinding(FaceVector.__tablename__, str(template_id), "copy_differs", ("vector",)))
        checked, after = checked + len(rows), rows[-1].template_id


def check_audit(db: Database, keys: Mapping[str, bytes], anchors: list[Anchor]) -> AuditCheck:
    """Verify the whole chain (keys, writer signatures, copies, anchors, head), every audited row against it, every
    held register extract's rows against the digest its audited import record keeps, and that nothing in the
    database rewrites rows on its own (a trigger, rule or policy: the product defines none)."""
    checked, broken = verify_audit(db, keys, anchors)
    pending = pending_audit(db)
    head_seq, head_hash = chain_head(db)
    rows_checked, findings = verify_rows(db, keys=keys)
    extract_rows, extract_findings = verify_extracts(db)
    vector_rows, vector_findings = verify_face_vectors(db)
    hooks = [RowFinding(table, name, kind) for kind, table, name in db.hooks()]
    rows_checked += extract_rows + vector_rows
    findings = hooks + findings + extract_findings + vector_findings + dangling_references(db)
    return AuditCheck(checked, broken, pending, head_seq, head_hash, len(anchors), rows_checked, findings)


def record_check(db: Database, result: AuditCheck, started_at: datetime, finished_at: datetime,
                 answers: Iterable[int] = ()) -> int:
    """Keep a check's result (the wall's alarm reads the latest), and note it in the chain itself; it answers the
    requests `answers` (their ids). Returns its id."""
    with db.session() as session:
        row = AuditCheckRow(started_at=started_at, finished_at=finished_at, intact=result.intact,
                            entries_checked=result.checked, head_seq=result.head_seq,
                            broken_seq=result.broken.seq if result.broken else None,
                            broken_kind=result.broken.kind if result.broken else "row" if result.findings else None,
                            rows_checked=result.rows_checked, row_findings=len(result.findings),
                            message=result.message[:1000])
        session.add(row)
        session.flush()
        if db.audit_key is not None:
            row.seal = seal_record(db.audit_key[0], db.audit_key[1], check_fields(row))
        append_audit(session, "audit.checked", "audit_checks", row.id,
                     {"intact": result.intact, "entries": result.checked, "head_seq": result.head_seq,
                      "broken_seq": row.broken_seq, "broken_kind": row.broken_kind, "rows": result.rows_checked,
                      "row_findings": len(result.findings)})
        for request in session.scalars(select(AuditCheckRequest).where(AuditCheckRequest.id.in_(list(answers)))):
            request.check_id = row.id
        return int(row.id)


REQUEST_RETAKEN_AFTER = timedelta(hours=12)
"""A request taken by a scheduler that died before answering it is taken again after this long."""


def request_check(session: Session, now: datetime) -> tuple[AuditCheckRequest, bool]:
    """A whole check asked for now: the request already waiting if there is one (the same check will answer
    both), else a new one. (request, whether it is new)."""
    waiting = session.scalars(select(AuditCheckRequest).where(
        AuditCheckRequest.check_id.is_(None), AuditCheckRequest.started_at.is_(None))
        .order_by(AuditCheckRequest.id).limit(1)).first()
    if waiting is not None:
        return waiting, False
    request = AuditCheckRequest(requested_at=now)
    session.add(request)
    session.flush()
    return request, True


def take_requests(db: Database, now: datetime) -> list[int]:
    """The requests a check starting now answers (marked started): every one waiting, and any taken more than
    REQUEST_RETAKEN_AFTER ago and never answered."""
    with db.session() as session:
        rows = list(session.scalars(select(AuditCheckRequest).where(
            AuditCheckRequest.check_id.is_(None),
            AuditCheckRequest.started_at.is_(None) | (AuditCheckRequest.started_at < now - REQUEST_RETAKEN_AFTER))
            .with_for_update()))
        for row in rows:
            row.started_at = now
        return [row.id for row in rows]


def request_out(session: Session, request: AuditCheckRequest) -> dict[str, Any]:
    """A request as answered: `requested` (waiting for the scheduler), `running` or `done` with its check."""
    check = session.get(AuditCheckRow, request.check_id) if request.check_id is not None else None
    state = "done" if check is not None else "running" if request.started_at is not None else "requested"
    return {"id": request.id, "state": state, "requested_at": request.requested_at,
            "started_at": request.started_at, "status_url": f"/api/v1/audit/check-requests/{request.id}",
            "check": check_out(check) if check is not None else None}


def recent_checks(session: Session, limit: int) -> list[AuditCheckRow]:
    return list(session.scalars(select(AuditCheckRow).order_by(AuditCheckRow.id.desc()).limit(limit)))


def check_out(row: AuditCheckRow) -> dict[str, Any]:
    return {"id": row.id, "started_at": row.started_at, "finished_at": row.finished_at, "intact": row.intact,
            "entries_checked": row.entries_checked, "head_seq": row.head_seq, "broken_seq": row.broken_seq,
            "broken_kind": row.broken_kind, "rows_checked": row.rows_checked, "row_findings": row.row_findings,
            "message": row.message}


def check_fields(row: AuditCheckRow) -> list[Any]:
    """What a periodic check's seal covers: its id, times and every figure of its result."""
    return [row.id, row.started_at.astimezone(UTC).isoformat(), row.finished_at.astimezone(UTC).isoformat(),
            row.intact, row.entries_checked, row.head_seq, row.broken_seq, row.broken_kind, row.rows_checked,
            row.row_findings, row.message]


def latest_check(session: Session, db: Database) -> tuple[AuditCheckRow | None, str | None]:
    """The latest periodic check, and why it is not to be believed (None when it is): its seal does not hold (set
    to intact at the database, which silenced the wall's alarm until the next check, up to an hour later), it has
    none though sealing has begun, or a later check the chain records is gone from the table."""
    latest = session.scalars(select(AuditCheckRow).order_by(AuditCheckRow.id.desc()).limit(1)).first()
    noted = session.scalar(select(AuditEntry.subject_id).where(text(CHECKS_WHERE))  # by its partial index
                           .order_by(AuditEntry.id.desc()).limit(1))
    if noted is not None and noted.isdigit() and (latest is None or latest.id < int(noted)):
        return latest, f"审计链记载的定时核验（编号 {noted}）已不在核验记录表中（被绕过系统删除）"
    if latest is None or db.audit_key is None:
        return latest, None
    if latest.seal is None:
        sealed_before = session.scalar(select(AuditCheckRow.id).where(AuditCheckRow.seal.is_not(None)).limit(1))
        return latest, None if sealed_before is None else "最近一次定时核验的记录没有签名（被绕过系统写入或改动）"
    if not seal_holds(latest.seal, db.audit_keys({latest.seal.rsplit(":", 1)[0]}), check_fields(latest)):
        return latest, "最近一次定时核验的记录与其签名不符（被绕过系统改动）"
    return latest, None


def audit_alarms(session: Session, db: Database) -> list[dict[str, str]]:
    """The wall's alarms about the chain: entries the sealer did not believe (AUDIT_UNTRUSTED), and the latest
    periodic check finding the chain or the records not as they were written, or that check's own record not to
    be believed (AUDIT_BROKEN)."""
    alarms = []
    if (untrusted := untrusted_alarm(session)) is not None:
        alarms.append({"code": "AUDIT_UNTRUSTED", "message": untrusted["message"]})
    latest, doubt = latest_check(session, db)
    if doubt is not None:
        alarms.append({"code": "AUDIT_BROKEN", "message": f"{doubt}（请运行 monitor audit verify 核查）"})
    elif latest is not None and not latest.intact:
        alarms.append({"code": "AUDIT_BROKEN", "message": f"定时核验发现审计链或记录被改动：{latest.message[:200]}"
                                                           "（请运行 monitor audit verify 核查）"})
    return alarms
