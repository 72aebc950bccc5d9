"""Benchmark: importing a province-sized social-insurance extract (issue 20 item 1): a synthetic CSV of N rows with
Chinese headers in GB18030 (valid ID numbers, made by monitor/demo/world.make_id_number), previewed (every row
validated, ID numbers hashed with HMAC-SHA256, rows staged in batches of 5,000) and committed, on a fresh SQLite
database.

Usage: .venv/bin/python scripts/bench_register_import.py [--rows 1000000] [--keep DIR]

Prints the file's size, rows per second for the preview and the commit, the process's peak RSS (memory stays
bounded: rows are streamed, never held), and the longest a writer beside the preview waited for SQLite's write lock
(a thread taking it every 50 ms, as the check-ins of a county deployment would).
"""

from __future__ import annotations

import argparse
import csv
import resource
import sqlite3
import sys
import tempfile
import threading
import time
from datetime import date, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from monitor.adapters.register_keys import load_register_key  # noqa: E402
from monitor.adapters.storage import Database  # noqa: E402
from monitor.demo.world import make_id_number  # noqa: E402
from monitor.services.registers import commit_import, preview_import  # noqa: E402
from monitor.settings import Settings  # noqa: E402

COUNTIES = ["530102", "530103", "530111", "530112", "530302", "532901", "532501", "530402"]


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def write_extract(path: Path, rows: int) -> None:
    born = date(1970, 1, 1)
    with path.open("w", encoding="gb18030", newline="") as f:
        out = csv.writer(f)
        out.writerow(["序号", "公民身份号码", "参保单位名称", "参保地行政区划代码", "缴费期间", "参保身份"])
        for n in range(rows):
            county = COUNTIES[n % len(COUNTIES)]
            id_number = make_id_number(county, born + timedelta(days=(n // 1000) % 12000), n)
            out.writerow([n + 1, id_number, f"云南某某有限公司{n % 5000}", county, "2025-07~2026-01", "企业职工"])


def write_beside(path: Path, stop: threading.Event, waits: list[float]) -> None:
    """Take SQLite's write lock every 50 ms until `stop` (BEGIN IMMEDIATE, then COMMIT), noting how long each
    waited for it."""
    conn = sqlite3.connect(path, timeout=600, isolation_level=None)
    try:
        while not stop.wait(0.05):
            t0 = time.perf_counter()
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("COMMIT")
            waits.append(time.perf_counter() - t0)
    finally:
        conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--keep", type=Path, default=None, help="work in this folder and keep it")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="bench-registers-"))
    work.mkdir(parents=True, exist_ok=True)
    extract = work / "insurance.csv"
    t0 = time.perf_counter()
    write_extract(extract, args.rows)
    print(f"extract: {args.rows:,} rows, {extract.stat().st_size / 1e6:.1f} MB GB18030 CSV, "
          f"made in {time.perf_counter() - t0:.1f} s; peak RSS so far {peak_rss_mib():.0f} MiB")
    settings = Settings(data_dir=work / "data")
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(settings.sqlalchemy_url, settings.audit_keyring().current)
    db.migrate()
    spec = settings.register_specs()["insurance"]
    key = load_register_key(settings.data_dir / "register-key.json")
    stop, waits = threading.Event(), [0.0]
    beside = threading.Thread(target=write_beside, args=(settings.data_dir / "monitor.sqlite3", stop, waits))
    beside.start()
    t0 = time.perf_counter()
    try:
        with extract.open("rb") as f:
            import_id = preview_import(db, f, extract.name, "insurance", "2026-01", spec, key, "bench")
    finally:
        preview_s = time.perf_counter() - t0
        stop.set()
        beside.join()
    t0 = time.perf_counter()
    commit_import(db, import_id, key, "bench")
    commit_s = time.perf_counter() - t0
    print(f"preview (validate, hash, stage): {preview_s:.1f} s, {args.rows / preview_s:,.0f} rows/s")
    print(f"longest wait of a writer beside the preview: {max(waits):.2f} s ({len(waits) - 1} write transactions)")
    print(f"commit: {commit_s:.2f} s")
    print(f"preview + commit: {args.rows / (preview_s + commit_s):,.0f} rows/s; peak RSS {peak_rss_mib():.0f} MiB")
    db.dispose()


if __name__ == "__main__":
    main()
