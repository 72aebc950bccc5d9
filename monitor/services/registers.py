"""Register extracts in (issue 20 item 1, clause 八/九): a delivered file is previewed (every row validated,
streamed, outside any transaction; the valid rows then staged with their ID numbers as keyed hashes, in batches),
then committed in full or not at all.

- A preview with any bad row stages nothing: its record (state `refused`) keeps the counts and the first 50 row
  errors, and it cannot be committed.
- A preview with only good rows stages them (state `staging`, a batch per transaction, then `preview`); they count
  for nothing until committed. Rows of a preview that failed or whose process died while staging are removed and
  the import marked `abandoned` (`discard_staged`, `sweep_staging`).
- Committing makes the import its source's **active** extract: every earlier committed import and every other preview
  of the same source whose period is the same or older is marked `replaced` (its rows deleted in the same
  transaction), so a newer or corrected delivery replaces the old one and nothing is counted twice. A period older
  than the active one is refused. Rules read only rows of committed imports (`active_imports`).

Only the import record is audited (models/audit.py AUDITED): row tables of millions of rows are not, row by row;
the record keeps the staged rows' digest (`rows_sha256`), which the audit check holds them to (`verify_extracts`).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import pickle
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import IO, Any, cast

from sqlalchemy import Connection, Table, delete, insert, select, update
from sqlalchemy.orm import Session

from models.audit_rows import ExtractDigest, RowFinding
from models.clock import utc_now
from models.errors import ApiError
from models.identity import mask_id_number
from models.tables import (
    Base,
    RegisterCertificate,
    RegisterEmployment,
    RegisterImport,
    RegisterInsurance,
    RegisterTeacher,
    RegisterVoucher,
)
from monitor.adapters.register_files import CHUNK, RegisterFileError, iter_rows, sniff_kind
from monitor.adapters.register_keys import RegisterKey
from monitor.adapters.storage import Database
from monitor.decisions.registers import (
    SourceSpec,
    is_blank,
    match_header,
    missing_headers,
    parse_row,
    stack_headers,
)

ROW_TABLES: dict[str, type[Base]] = {
    "insurance": RegisterInsurance, "employment": RegisterEmployment, "certificates": RegisterCertificate,
    "teachers": RegisterTeacher, "vouchers": RegisterVoucher,
}

log = logging.getLogger(__name__)
BATCH = 5000
MAX_ERRORS = 50
SAMPLE_ROWS = 5
HEADER_SEARCH_ROWS = 20  # title lines and merged group headers above the header row


def row_table(source: str) -> Table:
    return cast(Table, ROW_TABLES[source].__table__)


@dataclass
class Scan:
    kind: str
    sha256: str
    accepted: int = 0
    refused: int = 0
    header_row: int = 0

    def __post_init__(self) -> None:
        self.errors: list[dict[str, Any]] = []
        self.sample: list[dict[str, Any]] = []

    def refuse(self, row: int, reason: str) -> None:
        self.refused += 1
        if len(self.errors) < MAX_ERRORS:
            self.errors.append({"row": row, "reason": reason})


def file_digest(f: IO[bytes]) -> tuple[str, bytes]:
    """The file's SHA-256 and its first bytes (read in chunks; rewound)."""
    f.seek(0)
    digest = hashlib.sha256()
    head = b""
    while chunk := f.read(CHUNK):
        head = head or chunk[:8]
        digest.update(chunk)
    f.seek(0)
    return digest.hexdigest(), head


def db_row(source: str, record: dict[str, Any], row: int, import_id: int, key: RegisterKey) -> dict[str, Any]:
    """A validated record as its row table's values: the ID number replaced by its keyed hash."""
    values = {k: v for k, v in record.items() if k != "id_number"}
    values["id_hash"] = key.hash_id(record["id_number"])
    if source == "insurance":
        values["month_from"], values["month_to"] = values.pop("months")
    return {**values, "import_id": import_id, "row_number": row}


def masked(record: dict[str, Any]) -> dict[str, str | None]:
    """A sample row safe to show: the ID number masked, every value as text."""
    out: dict[str, str | None] = {}
    for k, v in record.items():
        if k == "id_number":
            out[k] = mask_id_number(v)
        elif isinstance(v, tuple):
            out[k] = v[0] if v[0] == v[1] else f"{v[0]}~{v[1]}"
        elif isinstance(v, date | datetime):
            out[k] = v.isoformat()
        else:
            out[k] = None if v is None else str(v)
    return out


def scan_rows(rows: Iterator[tuple[int, list[object]]], spec: SourceSpec, scan: Scan) -> Iterator[
        tuple[int, dict[str, Any]]]:
    """The valid records with their row numbers, counting and noting the bad ones in `scan`."""
    columns: dict[str, int] | None = None
    seen: list[list[object]] = []
    for number, cells in rows:
        if is_blank(cells):
            continue
        if columns is None:
            columns = match_header(cells, spec)
            if columns is None and seen:
                columns = match_header(stack_headers(seen[-1], cells), spec)
            if columns is not None:
                scan.header_row = number
                continue
            seen.append(cells)
            if len(seen) >= HEADER_SEARCH_ROWS:
                break
            continue
        parsed = parse_row(spec, columns, cells)
        if isinstance(parsed, str):
            scan.refuse(number, parsed)
            continue
        scan.accepted += 1
        if len(scan.sample) < SAMPLE_ROWS:
            scan.sample.append({"row": number, **masked(parsed)})
        yield number, parsed
    if columns is None:
        wanted = missing_headers(seen[0] if seen else [], spec)
        raise RegisterFileError(f"未找到{spec.title}的表头行（应含列：{'、'.join(wanted)}）；"
                                "列名不同时请在登记表映射文件中添加别名")
    if scan.accepted == 0 and scan.refused == 0:
        scan.refuse(scan.header_row, "表头之后没有数据行")


def preview_import(db: Database, f: IO[bytes], filename: str, source: str, period: str, spec: SourceSpec,
                   key: RegisterKey, author: str, now: datetime | None = None) -> int:
    """Validate the whole file, row by row, and stage its rows when every one is good; the import's id.

    The file is read, validated and its ID numbers hashed before any transaction: the good rows wait in an anonymous
    temporary file (`spool_rows`), and only their inserts hold the database's write lock. On SQLite that lock is the
    whole database's, and a preview that parsed inside it held every check-in back for the whole parse (7.5 s for
    100,000 rows; `scripts/bench_register_import.py` prints the longest wait of a writer beside it)."""
    sha256, head = file_digest(f)
    try:
        kind = sniff_kind(head, filename)
    except RegisterFileError as exc:
        raise ApiError(422, "REGISTER_FILE_UNREADABLE", str(exc)) from None
    scan = Scan(kind=kind, sha256=sha256)
    table = row_table(source)
    record = dict(source=source, period=period, sha256=sha256, filename=filename[:200], file_kind=kind,
                  key_id=key.key_id, created_by=author, created_at=now or utc_now())
    with tempfile.TemporaryFile(prefix="register-rows-") as spool:
        try:
            digest = spool_rows(scan_rows(iter_rows(f, kind), spec, scan), scan, source, key, spool)
        except RegisterFileError as exc:
            raise ApiError(422, "REGISTER_FILE_UNREADABLE", str(exc)) from None
        if not scan.refused:
            return stage_rows(db, record, table, spool, scan, digest)
    with db.session() as session:  # the refusal's record: counts and row errors, no row staged
        entry = RegisterImport(**record, rows_accepted=scan.accepted, rows_refused=scan.refused, errors=scan.errors,
                               sample=scan.sample, state="refused")
        session.add(entry)
        session.flush()
        return entry.id


def stage_rows(db: Database, record: dict[str, Any], table: Table, spool: IO[bytes], scan: Scan,
               digest: ExtractDigest) -> int:
    """Stage a good file's spooled rows under a `staging` import, `BATCH` rows per transaction, then make it a
    `preview` with its counts and rows digest; the import's id. On SQLite each transaction holds the whole database's
    write lock, so check-ins wait for one batch, not for the file (2.4 s at 100,000 rows in one transaction). Rows
    of a preview that fails on the way are removed at once; those of a process that died while staging, by
    `sweep_staging`. Nothing reads a `staging` import's rows: rules read `committed`, a commit needs `preview`."""
    with db.session() as session:
        entry = RegisterImport(**record, rows_accepted=0, rows_refused=0, errors=[], sample=[], state="staging")
        session.add(entry)
        session.flush()
        import_id = entry.id
    try:
        for batch in read_spool(spool):
            with db.writing() as conn:
                conn.execute(insert(table), [{**row, "import_id": import_id} for row in batch])
        with db.session() as session:
            staged = session.get(RegisterImport, import_id)
            assert staged is not None
            staged.rows_accepted, staged.errors, staged.sample = scan.accepted, scan.errors, scan.sample
            staged.rows_sha256, staged.state = digest.hexdigest(), "preview"
    except BaseException:
        with contextlib.suppress(Exception):  # the database may be what failed: the sweep removes them later
            discard_staged(db, import_id)
        raise
    return import_id


STAGING_ABANDONED_AFTER = timedelta(hours=1)
"""A `staging` import older than this was left by a process that died while staging (a million rows stage in well
under a minute)."""


def discard_staged(db: Database, import_id: int) -> int:
    """Remove a staging import's rows, `BATCH` per transaction, and mark it `abandoned`; the rows removed."""
    with db.connection() as conn:
        source = conn.scalar(select(RegisterImport.source).where(RegisterImport.id == import_id,
                                                                  RegisterImport.state == "staging"))
    if source is None:
        return 0
    table = row_table(source)
    removed = 0
    while True:
        with db.writing() as conn:
            ids = select(table.c.id).where(table.c.import_id == import_id).limit(BATCH).scalar_subquery()
            gone = conn.execute(delete(table).where(table.c.id.in_(ids))).rowcount
        removed += gone
        if gone < BATCH:
            break
    with db.session() as session:
        entry = session.get(RegisterImport, import_id)
        if entry is not None and entry.state == "staging":
            entry.state = "abandoned"
    return removed


def sweep_staging(db: Database, now: datetime | None = None) -> list[int]:
    """Discard the rows of imports left `staging` longer than `STAGING_ABANDONED_AFTER`; their ids."""
    cutoff = (now or utc_now()) - STAGING_ABANDONED_AFTER
    with db.connection() as conn:
        stale = list(conn.scalars(select(RegisterImport.id).where(RegisterImport.state == "staging",
                                                                  RegisterImport.created_at < cutoff)))
    for import_id in stale:
        removed = discard_staged(db, import_id)
        log.warning("register import %s was left staging; %d rows removed and the import marked abandoned",
                    import_id, removed)
    return stale


def spool_rows(records: Iterator[tuple[int, dict[str, Any]]], scan: Scan, source: str, key: RegisterKey,
               spool: IO[bytes]) -> ExtractDigest:
    """Write the valid records to `spool` as their row-table values (ID numbers as keyed hashes, no import id yet),
    pickled `BATCH` at a time, while `scan` has refused none (after one, nothing will be staged: the rest is only
    read, to count and note the bad rows); their digest."""
    digest = ExtractDigest()
    batch: list[dict[str, Any]] = []
    for number, parsed in records:
        if scan.refused:
            continue
        if len(batch) >= BATCH:
            pickle.dump(batch, spool, protocol=pickle.HIGHEST_PROTOCOL)
            batch = []
        batch.append(db_row(source, parsed, number, 0, key))
        digest.add(batch[-1])  # (the digest leaves the import id out)
    if batch:
        pickle.dump(batch, spool, protocol=pickle.HIGHEST_PROTOCOL)
    spool.seek(0)
    return digest


def read_spool(spool: IO[bytes]) -> Iterator[list[dict[str, Any]]]:
    """The batches `spool_rows` wrote, in order (a file this process wrote itself, never anyone's upload)."""
    while True:
        try:
            yield pickle.load(spool)  # noqa: S301 - our own anonymous temporary file
        except EOFError:
            return


def commit_import(db: Database, import_id: int, key: RegisterKey, author: str, now: datetime | None = None) -> None:
    """Make a clean preview its source's active extract, replacing the same and older periods; in one
    transaction."""
    with db.session() as session:
        entry = session.get(RegisterImport, import_id)
        if entry is None:
            raise ApiError(404, "UNKNOWN_REGISTER_IMPORT", f"登记表导入记录 {import_id} 不存在")
        if entry.rows_refused:
            first = entry.errors[0] if entry.errors else {"row": "?", "reason": ""}
            raise ApiError(409, "REGISTER_ROWS_REFUSED",
                           f"有 {entry.rows_refused} 行未通过校验，整个文件不予导入"
                           f"（第 {first['row']} 行：{first['reason']}）；请更正后重新上传",
                           rows_refused=entry.rows_refused, errors=entry.errors)
        if entry.state == "staging":
            raise ApiError(409, "REGISTER_NOT_PENDING", "该导入的数据行仍在入库，请稍后再提交")
        if entry.state != "preview":
            raise ApiError(409, "REGISTER_NOT_PENDING", f"该导入的状态为 {entry.state}，不能再次提交")
        if entry.key_id != key.key_id:
            raise ApiError(409, "REGISTER_KEY_CHANGED", "预览之后身份证号散列密钥已更换，请重新上传文件")
        newer = session.scalar(select(RegisterImport.period).where(
            RegisterImport.source == entry.source, RegisterImport.state == "committed",
            RegisterImport.period > entry.period))
        if newer is not None:
            raise ApiError(409, "REGISTER_PERIOD_OLDER", f"已导入更新的期间 {newer}，不能用较早的 {entry.period} 替换")
        claimed = session.execute(update(RegisterImport).where(
            RegisterImport.id == import_id, RegisterImport.state == "preview").values(state="committing"))
        if claimed.rowcount != 1:  # type: ignore[attr-defined]
            raise ApiError(409, "REGISTER_NOT_PENDING", "该导入正在或已经提交")
        session.expire(entry)
        table = row_table(entry.source)
        old = session.scalars(select(RegisterImport).where(
            RegisterImport.source == entry.source, RegisterImport.id != import_id,
            RegisterImport.state.in_(("committed", "preview")), RegisterImport.period <= entry.period)).all()
        for other in old:
            session.execute(delete(table).where(table.c.import_id == other.id))
            other.state, other.replaced_by = "replaced", import_id
        entry.state, entry.committed_by, entry.committed_at = "committed", author, now or utc_now()


def active_imports(session: Session) -> dict[str, RegisterImport]:
    """Each source's committed import (the only rows rules may read)."""
    rows = session.scalars(select(RegisterImport).where(RegisterImport.state == "committed")).all()
    return {r.source: r for r in rows}


HELD_STATES = ("preview", "committed")
"""The imports whose rows are kept (a replaced import's are deleted, a refused one staged none)."""


def extract_digest(conn: Connection, import_id: int, source: str) -> ExtractDigest:
    """The digest of an import's rows as the database holds them now, read in file order a page at a time."""
    table = row_table(source)
    digest = ExtractDigest()
    rows = conn.execute(select(table).where(table.c.import_id == import_id).order_by(table.c.row_number, table.c.id)
                        .execution_options(yield_per=BATCH))
    for row in rows:
        digest.add(dict(row._mapping))
    return digest


def verify_extracts(db: Database) -> tuple[int, list[RowFinding]]:
    """(register rows checked, each held import whose rows are not those staged): an insurance month, an employer or
    a certificate rewritten, a row inserted or deleted at the database changes whom a cross-check finds eligible."""
    with db.connection() as conn:
        imports = conn.execute(select(RegisterImport.id, RegisterImport.source, RegisterImport.rows_sha256)
                               .where(RegisterImport.state.in_(HELD_STATES),
                                      RegisterImport.rows_sha256.is_not(None))
                               .order_by(RegisterImport.id)).all()
    checked, findings = 0, []
    for import_id, source, recorded in imports:
        with db.connection() as conn:
            digest = extract_digest(conn, import_id, source)
        checked += digest.rows
        if digest.hexdigest() != recorded:
            findings.append(RowFinding(row_table(source).name, str(import_id), "extract_changed"))
    return checked, findings
