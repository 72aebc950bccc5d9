"""The audit chain filtered and exported (issue 18 item 8): by actor, role and time window, a page at a time; as
Excel/CSV with Chinese headers and Beijing times, personal numbers masked; the export itself recorded in the chain,
which still verifies once sealed; only auditors and admins."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlalchemy import inspect as sa_inspect
from typer.testing import CliRunner

from models.audit import AuditActor, append_audit
from models.clock import SHANGHAI
from monitor.adapters.storage import Database
from monitor.cli import app as cli
from monitor.services import audit_export
from monitor.services.audit import verify_audit
from monitor.services.audit_export import AuditFilter, list_entries
from tests.helpers import World, auth, issue_token_via_api

BJ = "+08:00"


@pytest.fixture
def world(client_factory: Callable[..., TestClient]) -> World:
    """The test world without a scheduler (check-ins are still verified; the tests seal by hand): the chain holds
    only what a test did, so that two verifications a moment apart read the same chain (the scheduler's sealer
    and clock once appended between them on a busy machine)."""
    return World.build(client_factory(scheduler=False))
# (actor, role, at in Beijing time): three people's writes on two days of March 2025, long before the world's own
PLANTED = [
    ("张审计", "auditor", "2025-03-01T08:00:00"), ("李值班", "operator", "2025-03-01T09:30:00"),
    ("张审计", "auditor", "2025-03-01T23:59:59"), ("王站点", "site", "2025-03-02T00:00:00"),
    ("张审计", "auditor", "2025-03-02T10:00:00"), ("李值班", "operator", "2025-03-03T12:00:00"),
]


def plant(world: World) -> dict[str, int]:
    """The planted entries, sealed; returns each one's seq by its subject id (p0..p5)."""
    db = world.client.app.state.db
    with db.session() as s:
        for n, (actor, role, at) in enumerate(PLANTED):
            append_audit(s, "test.note", "test", f"p{n}", {"n": n}, AuditActor(actor, role),
                         at=datetime.fromisoformat(at + BJ))
    db.seal_audit()
    rows = get(world, "/api/v1/audit", action="test.note", limit=500)
    return {r["subject_id"]: r["seq"] for r in rows}


def get(world: World, path: str, token: str | None = None, **params: object) -> list[dict]:
    r = world.client.get(path, params=params, headers=auth(token or world.admin))
    assert r.status_code == 200, r.text
    return r.json()


def subjects(rows: list[dict]) -> list[str]:
    return [r["subject_id"] for r in rows if r["action"] == "test.note"]


def auditor(world: World) -> str:
    return issue_token_via_api(world.client, world.admin, "auditor", "省财政审计")


def test_filters_by_actor_role_and_time_window_and_pages_by_cursor(world: World) -> None:
    seqs = plant(world)
    assert subjects(get(world, "/api/v1/audit", actor="张审计", limit=500)) == ["p0", "p2", "p4"]
    assert get(world, "/api/v1/audit", actor="张", limit=500) == []  # the exact name, not a part of it
    assert subjects(get(world, "/api/v1/audit", actor_role="operator", limit=500)) == ["p1", "p5"]
    # [since, until): the Beijing day of 1 March 2025, given in two different zones
    day = get(world, "/api/v1/audit", since="2025-03-01T00:00:00+08:00", until="2025-03-01T16:00:00Z", limit=500)
    assert [r["subject_id"] for r in day] == ["p0", "p1", "p2"]  # 00:00:00 the next day (p3) is excluded
    both = get(world, "/api/v1/audit", actor="张审计", since="2025-03-01T09:00:00+08:00",
               until="2025-03-03T00:00:00+08:00", limit=500)
    assert [r["subject_id"] for r in both] == ["p2", "p4"]
    assert all(r["actor"] == "张审计" for r in both)
    # the cursor: one entry a page, after_seq = the last seq seen
    pages, after = [], 0
    while page := get(world, "/api/v1/audit", actor="李值班", limit=1, after_seq=after):
        pages += page
        after = page[-1]["seq"]
    assert [r["seq"] for r in pages] == [seqs["p1"], seqs["p5"]]
    # the world's own writes are now, not in 2025: an admin's, by role and time
    mine = get(world, "/api/v1/audit", actor="测试管理员", since=(datetime.now(UTC) - timedelta(hours=1)).isoformat(),
               limit=500)
    assert mine and {r["actor"] for r in mine} == {"测试管理员"} and "test.note" not in {r["action"] for r in mine}


@pytest.mark.parametrize("params, code", [
    ({"since": "2025-03-01T00:00:00"}, None),  # no zone
    ({"until": "2025-03-01 08:00"}, None),
    ({"since": "2025-03-02T00:00:00+08:00", "until": "2025-03-01T00:00:00+08:00"}, "INVERTED_RANGE"),
    ({"since": "2025-03-01T00:00:00+08:00", "until": "2025-02-28T16:00:00Z"}, "INVERTED_RANGE"),  # same instant
    ({"since": "0001-01-01T00:00:00+08:00"}, "TIME_OUT_OF_RANGE"),  # UTC would be year 0
    ({"until": "9999-12-31T23:59:59-12:00"}, "TIME_OUT_OF_RANGE"),  # UTC would be year 10000
    ({"since": "1999-12-31T23:59:59Z"}, "TIME_OUT_OF_RANGE"),
    ({"since": "not a time"}, None),
    ({"actor_role": "Robert'); DROP"}, None),
])
def test_naive_inverted_and_far_off_times_are_refused_with_422(world: World, params: dict, code: str | None) -> None:
    for path in ("/api/v1/audit", "/api/v1/audit/export"):
        r = world.client.get(path, params=params, headers=auth(world.admin))
        assert r.status_code == 422, (path, r.status_code, r.text)
        body = r.json()
        assert body["message"]
        if code:
            assert body["code"] == code, body


def read_xlsx(data: bytes) -> list[list[object]]:
    ws = load_workbook(io.BytesIO(data), read_only=True).active
    assert ws is not None
    return [list(row) for row in ws.iter_rows(values_only=True)]


HEADER = ["序号", "时间（北京时间）", "操作人", "角色", "令牌编号", "操作", "对象类型", "对象编号", "详情（JSON）",
          "哈希（前16位）", "密钥编号"]


def as_exported(e: dict) -> list[object]:
    """A listed entry as the file must show it (times in Beijing time, the detail as JSON text)."""
    at = datetime.fromisoformat(e["at"]).astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")
    return [e["seq"], at, e["actor"], e["actor_role"], e["token_id"], e["action"], e["subject_kind"],
            e["subject_id"], json.dumps(e["detail"], ensure_ascii=False, sort_keys=True, separators=(",", ":")),
            e["hash"][:16], e["key_id"]]


def test_the_xlsx_opens_and_its_rows_are_the_filtered_listing(world: World) -> None:
    plant(world)
    token = auditor(world)
    params = {"actor": "张审计", "since": "2025-03-01T00:00:00+08:00", "until": "2025-03-05T00:00:00+08:00"}
    listed = get(world, "/api/v1/audit", token, **params, limit=500)
    assert len(listed) == 3
    r = world.client.get("/api/v1/audit/export", params={**params, "format": "xlsx"}, headers=auth(token))
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    disposition = r.headers["content-disposition"]
    assert disposition.startswith("attachment;") and f"filename*=UTF-8''{quote('审计记录_')}" in disposition
    assert disposition.rstrip().endswith(".xlsx") and 'filename="audit_' in disposition
    rows = read_xlsx(r.content)
    assert rows[0] == HEADER
    assert rows[1:] == [as_exported(e) for e in listed]
    assert rows[1][1] == "2025-03-01 08:00:00"  # Beijing time, as planted
    assert r.headers["x-content-sha256"] == hashlib.sha256(r.content).hexdigest()
    # unfiltered, the file holds every sealed entry the API lists (the first export's own entry included)
    world.client.app.state.db.seal_audit()
    whole = get(world, "/api/v1/audit", token, limit=500)
    everything = world.client.get("/api/v1/audit/export", headers=auth(token))
    assert len(whole) < 500 and any(e["action"] == "export" for e in whole)
    assert read_xlsx(everything.content)[1:] == [as_exported(e) for e in whole]


def test_the_csv_parses_with_a_bom_and_chinese_headers(world: World) -> None:
    plant(world)
    r = world.client.get("/api/v1/audit/export", params={"format": "csv", "actor_role": "operator"},
                         headers=auth(world.admin))
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "text/csv; charset=utf-8"
    assert r.content.startswith(b"\xef\xbb\xbf") and ".csv" in r.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert rows[0] == HEADER
    listed = get(world, "/api/v1/audit", actor_role="operator", limit=500)
    assert [row[0] for row in rows[1:]] == [str(e["seq"]) for e in listed]
    assert [row[7] for row in rows[1:] if row[5] == "test.note"] == ["p1", "p5"]
    assert [json.loads(row[8]) for row in rows[1:] if row[5] == "test.note"] == [{"n": 1}, {"n": 5}]


def cli_verify(world: World) -> tuple[int, str]:
    data_dir = world.client.app.state.settings.data_dir
    result = CliRunner().invoke(cli, ["audit", "verify", "--data-dir", str(data_dir)])
    return result.exit_code, result.output


def test_the_export_is_itself_in_the_chain_and_the_chain_still_verifies(world: World) -> None:
    plant(world)
    token = auditor(world)
    r = world.client.get("/api/v1/audit/export", headers=auth(token),
                         params={"format": "csv", "actor": "张审计", "since": "2025-03-01T00:00:00+08:00"})
    assert r.status_code == 200, r.text
    db = world.client.app.state.db
    db.seal_audit()
    exports = get(world, "/api/v1/audit", action="export", actor="省财政审计", limit=500)
    assert len(exports) == 1
    entry = exports[0]
    assert (entry["actor"], entry["actor_role"], entry["subject_kind"]) == ("省财政审计", "auditor", "export")
    assert entry["subject_id"].startswith("审计记录_") and entry["subject_id"].endswith(".csv")
    detail = entry["detail"]
    assert detail["sha256"] == hashlib.sha256(r.content).hexdigest() and detail["bytes"] == len(r.content)
    assert (detail["what"], detail["format"], detail["rows"]) == ("audit", "csv", 3)
    assert detail["filters"] == {"actor": "张审计", "since": "2025-02-28T16:00:00+00:00"}
    # sealed: the API and the CLI still find the chain intact, with the keys
    v = world.client.get("/api/v1/audit/verify", headers=auth(token)).json()
    assert v["intact"] is True and v["pending"] == 0 and v["head_seq"] >= entry["seq"]
    checked, broken = verify_audit(db, world.client.app.state.settings.audit_keyring().keys)
    assert broken is None and checked == v["checked"]
    code, output = cli_verify(world)
    assert code == 0 and "审计链完整" in output
    # the export of the exports shows the first one, by its digest
    again = world.client.get("/api/v1/audit/export", params={"format": "csv", "action": "export"},
                             headers=auth(token))
    assert hashlib.sha256(r.content).hexdigest() in again.content.decode("utf-8-sig")


def test_the_file_masks_personal_numbers_leaves_out_secrets_and_runs_no_formula(world: World) -> None:
    full_id, phone, callee = "530102199503010012", "13812345678", "+86 13912345678"
    db = world.client.app.state.db
    with db.session() as s:
        append_audit(s, "test.secret", "test", "s1", {
            "id_number": full_id, "phone": phone, "token_hash": "f" * 64, "code_hash": "e" * 64,
            "nested": {"callee": callee, "vector": [0.1], "note": f"回拨 {phone}"},
            "photo_sha256": "a13812345678" + "b" * 52}, AuditActor("=HYPERLINK(\"http://x\")", "operator"))
    db.seal_audit()
    for fmt in ("csv", "xlsx"):
        r = world.client.get("/api/v1/audit/export", params={"format": fmt, "action": "test.secret"},
                             headers=auth(world.admin))
        assert r.status_code == 200, r.text
        rows = (read_xlsx(r.content) if fmt == "xlsx"
                else list(csv.reader(io.StringIO(r.content.decode("utf-8-sig")))))
        assert len(rows) == 2
        text = json.dumps(rows, ensure_ascii=False).replace("a13812345678", "")
        assert full_id not in text and phone not in text and "13912345678" not in text
        assert "530***********0012" in text and "138****5678" in text
        detail = json.loads(str(rows[1][8]))
        assert "token_hash" not in detail and "code_hash" not in detail and "vector" not in detail["nested"]
        assert detail["photo_sha256"] == "a13812345678" + "b" * 52  # a digest is not a phone number
        assert rows[1][2] == "'=HYPERLINK(\"http://x\")"  # text, never a formula
    ws = load_workbook(io.BytesIO(r.content)).active  # the last file was the workbook
    assert ws is not None and ws["C2"].data_type == "s"


def test_an_export_over_the_cap_is_refused_with_a_clear_message(world: World,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    plant(world)
    monkeypatch.setattr(audit_export, "EXPORT_CAP", 5)
    r = world.client.get("/api/v1/audit/export", headers=auth(world.admin))
    assert r.status_code == 422 and r.json()["code"] == "EXPORT_TOO_LARGE"
    assert "上限 5 条" in r.json()["message"] and r.json()["detail"]["cap"] == 5
    ok = world.client.get("/api/v1/audit/export", params={"actor": "张审计", "format": "csv"},
                          headers=auth(world.admin))
    assert ok.status_code == 200 and len(ok.content.decode("utf-8-sig").splitlines()) == 4


def test_only_auditors_and_admins_list_or_export(world: World) -> None:
    token = auditor(world)
    inspector = issue_token_via_api(world.client, world.admin, "inspector", "昆明抽查", regions=["530100"])
    for path in ("/api/v1/audit", "/api/v1/audit/export", "/api/v1/audit/export?format=csv"):
        for denied in (world.operator, world.site, inspector):
            assert world.client.get(path, headers=auth(denied)).status_code == 403, path
        assert world.client.get(path).status_code == 401
        for allowed in (token, world.admin):
            assert world.client.get(path, headers=auth(allowed)).status_code == 200, path


def test_filters_and_indexes_on_postgresql(postgres_url: str) -> None:
    db = Database(postgres_url)
    db.migrate()
    try:
        with db.session() as s:
            for n, (actor, role, at) in enumerate(PLANTED):
                append_audit(s, "test.note", "test", f"p{n}", {"n": n}, AuditActor(actor, role),
                             at=datetime.fromisoformat(at + BJ))
        db.seal_audit()
        window = AuditFilter(actor="张审计", since=datetime.fromisoformat("2025-03-01T09:00:00+08:00"),
                             until=datetime.fromisoformat("2025-03-03T00:00:00+08:00"))
        with db.session() as s:
            assert [e["subject_id"] for e in list_entries(s, window, 500)] == ["p2", "p4"]
            assert [e["subject_id"] for e in list_entries(s, AuditFilter(actor_role="operator"), 500)] == ["p1", "p5"]
        indexes = {i["name"]: i["column_names"] for i in sa_inspect(db.engine).get_indexes("audit_entries")}
        assert indexes["ix_audit_entries_actor_seq"] == ["actor", "seq"]
        assert indexes["ix_audit_entries_at"] == ["at"]
        assert verify_audit(db)[1] is None
    finally:
        db.dispose()
