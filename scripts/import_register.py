"""Import a register extract from the command line (issue 20 item 1), for files larger than the API's body limit
(MONITOR_MAX_BODY_BYTES, 15 MB by default; a province extract of a million rows is ~80 MB): the same preview and
commit as `POST /api/v1/registers/imports` and `POST /api/v1/registers/commits`, on the configured database
(MONITOR_* settings), the same key and mapping file, the import record in the audit chain.

Usage: .venv/bin/python scripts/import_register.py --source insurance --period 2026-01 FILE [--commit] [--author 名字]

Without --commit it previews only and prints the import's id, counts and row errors; commit later with
`--commit-id ID`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from models.audit import AuditActor, current_actor  # noqa: E402
from models.errors import ApiError  # noqa: E402
from models.tables import RegisterImport  # noqa: E402
from monitor.adapters.storage import Database  # noqa: E402
from monitor.decisions.registers import parse_period  # noqa: E402
from monitor.services.registers import ROW_TABLES, commit_import, preview_import  # noqa: E402
from monitor.settings import Settings  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", type=Path, nargs="?")
    parser.add_argument("--source", choices=sorted(ROW_TABLES))
    parser.add_argument("--period", help="YYYY-MM")
    parser.add_argument("--commit", action="store_true", help="commit at once when every row is good")
    parser.add_argument("--commit-id", type=int, help="commit an earlier preview")
    parser.add_argument("--author", default="命令行导入")
    args = parser.parse_args()
    settings = Settings()
    db = Database(settings.sqlalchemy_url, settings.audit_keyring().current)  # its rows are signed in the chain
    key = settings.register_hash_key()
    current_actor.set(AuditActor(args.author, "admin"))
    try:
        import_id = args.commit_id
        if import_id is None:
            if args.file is None or args.source is None or parse_period(args.period or "") is None:
                parser.error("FILE, --source and --period YYYY-MM are needed for a preview")
            spec = settings.register_specs()[args.source]
            with args.file.open("rb") as f:
                import_id = preview_import(db, f, args.file.name, args.source, args.period, spec, key, args.author)
        if args.commit or args.commit_id:
            commit_import(db, import_id, key, args.author)
        with db.session() as session:
            entry = session.get(RegisterImport, import_id)
            assert entry is not None
            print(f"import {entry.id}: {entry.source} {entry.period} {entry.state}; "
                  f"rows accepted {entry.rows_accepted}, refused {entry.rows_refused}; sha256 {entry.sha256}")
            for e in entry.errors:
                print(f"  第 {e['row']} 行：{e['reason']}")
            return 0 if not entry.rows_refused else 2
    except ApiError as exc:
        print(f"{exc.code}: {exc.message}", file=sys.stderr)
        return 1
    finally:
        db.dispose()


if __name__ == "__main__":
    sys.exit(main())
