"""Benchmark: verifying the audit chain and holding the rows to it at scale: N staff rows, each with its signed
entry (as the product writes them), sealed; then `verify_audit` (every entry's HMAC, link and writer signature)
and `verify_rows` (every row against its replayed entries, writer signatures checked) timed, with the peak
memory each adds; and `dangling_references` (every foreign key of every table as an anti-join: here one duty
period per staff row, unaudited, makes the large one). Prints the figures; nothing is asserted.

    .venv/bin/python scripts/bench_audit_verify.py --rows 200000 [--database-url postgresql://…]
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import insert, select  # noqa: E402

from models.audit import append_audit  # noqa: E402
from models.clock import utc_now  # noqa: E402
from models.tables import Staff, StaffDuty  # noqa: E402
from monitor.adapters.storage import Database  # noqa: E402
from monitor.services.audit import dangling_references, verify_audit, verify_rows  # noqa: E402

KEY = ("k1", b"bench-audit-key-bench-audit-key!")


def peak_mb() -> float:
    """This process's peak resident memory so far, in MB (Linux reports KB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def seed(db: Database, rows: int, batch: int = 5000) -> None:
    """`rows` staff rows with their signed entries, written a batch per transaction, then sealed."""
    now = utc_now()
    for start in range(0, rows, batch):
        with db.connection() as conn:
            for i in range(start, min(rows, start + batch)):
                values = {"name": f"员{i}", "phone": "13900000000", "level": "county", "region_code": "530102",
                          "active": True, "created_at": now}
                staff_id = conn.execute(insert(Staff).values(values).returning(Staff.id)).scalar_one()
                append_audit(conn, "staff.insert", "staff", staff_id, {"id": staff_id, **values})
        db.seal_audit()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--database-url", default="", help="an empty PostgreSQL database (default: SQLite in /tmp)")
    args = parser.parse_args()
    url = args.database_url or f"sqlite:///{tempfile.mkdtemp(prefix='bench-audit-')}/a.sqlite3"
    db = Database(url, KEY)
    db.migrate()
    started = time.perf_counter()
    seed(db, args.rows)
    print(f"database: {db.engine.dialect.name}; seeded {args.rows} rows with signed, sealed entries "
          f"in {time.perf_counter() - started:.1f} s")
    keys = {KEY[0]: KEY[1]}
    before = peak_mb()
    started = time.perf_counter()
    checked, broken = verify_audit(db, keys)
    took = time.perf_counter() - started
    print(f"verify_audit: {checked} entries in {took:.1f} s = {checked / took:,.0f} entries/s, "
          f"break: {broken}, peak memory +{peak_mb() - before:.0f} MB")
    before = peak_mb()
    started = time.perf_counter()
    rows, findings = verify_rows(db, ["staff"], keys)
    took = time.perf_counter() - started
    print(f"verify_rows:  {rows} rows in {took:.1f} s = {rows / took:,.0f} rows/s, findings: {len(findings)}, "
          f"peak memory +{peak_mb() - before:.0f} MB")
    with db.connection() as conn:  # one duty period per staff member: a large reference to check
        conn.execute(insert(StaffDuty).from_select(["staff_id", "starts_at", "ends_at"], select(
            Staff.id, Staff.created_at, Staff.created_at)))
    started = time.perf_counter()
    dangling = dangling_references(db)
    took = time.perf_counter() - started
    print(f"dangling_references: every foreign key of every table ({args.rows} duty periods among them) in "
          f"{took:.2f} s, findings: {len(dangling)}")
    db.dispose()


if __name__ == "__main__":
    main()
