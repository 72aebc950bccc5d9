"""Register extracts in (issue 20 item 1): .xlsx and GB18030 CSV files with Chinese headers (a title line, a merged
group header, blank rows) previewed row by row and committed in full or not at all; a renamed header handled by the
mapping file alone; a newer period replacing the old without double counting; ID numbers only as keyed hashes
(never whole in the database nor in answers); admins only; the import record in the audit chain with the file's
SHA-256."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from openpyxl import Workbook
from sqlalchemy import select, text

from models.clock import SHANGHAI, utc_now
from models.domain import Role
from models.tables import AuditEntry, RegisterImport
from monitor.adapters.register_keys import load_register_key
from monitor.adapters.tokens import issue_token
from monitor.decisions.registers import parse_mapping, parse_months, parse_row
from monitor.demo.world import make_id_number
from monitor.services.registers import ROW_TABLES
from tests.helpers import auth

MAPPING = Path(__file__).resolve().parent.parent / "monitor" / "data" / "registers.json"
IDS = [make_id_number("530102", date(1990, 1, 1 + n), n) for n in range(6)]


class Api:
    def __init__(self, client: TestClient) -> None:
        self.client = client
        with client.app.state.db.session() as session:
            self.admin = issue_token(session, Role.ADMIN, "登记表管理员")
            self.operator = issue_token(session, Role.OPERATOR, "值班员")
        self.answers: list[str] = []

    def preview(self, data: bytes, name: str, source: str, period: str, token: str | None = None) -> Any:
        r = self.client.post("/api/v1/registers/imports", params={"source": source, "period": period},
                             files={"file": (name, data, "application/octet-stream")},
                             headers=auth(token or self.admin))
        self.answers.append(r.text)
        return r

    def commit(self, import_id: int, token: str | None = None) -> Any:
        r = self.client.post("/api/v1/registers/commits", json={"import_id": import_id},
                             headers=auth(token or self.admin))
        self.answers.append(r.text)
        return r

    def rows(self, source: str) -> list[Any]:
        table = ROW_TABLES[source].__tablename__
        with self.client.app.state.db.session() as s:
            return list(s.execute(text(f"SELECT * FROM {table}")).all())  # noqa: S608 - a fixed table name


@pytest.fixture
def api(client: TestClient) -> Api:
    return Api(client)


def xlsx(rows: list[list[Any]]) -> bytes:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def csv_bytes(rows: list[list[str]], encoding: str) -> bytes:
    return "\r\n".join(",".join(r) for r in rows).encode(encoding) + b"\r\n"


INSURANCE_HEADER = ["序号", "身份证号码", "单位名称", "参保地行政区划代码", "缴费月份", "参保身份"]


def insurance_xlsx(ids: list[str], bad: dict[int, str] | None = None) -> bytes:
    """A real-shaped extract: a title line merged across the columns, a blank row, the header, the rows with a
    blank row among them."""
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["云南省社会保险参保缴费信息（2026年1月）"])
    sheet.merge_cells("A1:F1")
    sheet.append([])
    sheet.append(INSURANCE_HEADER)
    for n, id_number in enumerate(ids, start=1):
        months = (bad or {}).get(n, "2025-07~2026-01")
        sheet.append([n, id_number, f"昆明某某有限公司{n}", "530102", months, "企业职工"])
        if n == 2:
            sheet.append([None, None, None])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def test_an_xlsx_extract_with_a_title_and_blank_rows_is_previewed_then_committed(api: Api) -> None:
    data = insurance_xlsx(IDS[:4])
    r = api.preview(data, "参保缴费.xlsx", "insurance", "2026-01")
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["state"] == "preview" and body["rows_accepted"] == 4 and body["rows_refused"] == 0
    assert body["sha256"] == hashlib.sha256(data).hexdigest() and body["file_kind"] == "xlsx"
    assert body["sample"][0]["id_number"] == IDS[0][:3] + "*" * 11 + IDS[0][-4:]
    assert body["sample"][0]["row"] == 4 and body["sample"][0]["months"] == "2025-07~2026-01"
    c = api.commit(body["id"])
    assert c.status_code == 200, c.text
    assert c.json()["state"] == "committed" and c.json()["committed_by"] == "登记表管理员"
    rows = api.rows("insurance")
    assert len(rows) == 4
    key = load_register_key(api.client.app.state.settings.data_dir / "register-key.json", create=False)
    assert {r.id_hash for r in rows} == {key.hash_id(i) for i in IDS[:4]}
    assert {(r.month_from, r.month_to, r.county_code) for r in rows} == {("2025-07", "2026-01", "530102")}
    again = api.commit(body["id"])
    assert again.status_code == 409 and again.json()["code"] == "REGISTER_NOT_PENDING"


def test_a_gb18030_csv_with_chinese_headers_is_imported(api: Api) -> None:
    rows = [["身份证号", "登记状态", "登记日期", "登记地"]] + [
        [i, "失业登记", f"2026/1/{n + 3}", "530112"] for n, i in enumerate(IDS[:3])]
    data = csv_bytes(rows, "gb18030")
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")
    r = api.preview(data, "失业登记.csv", "employment", "2026-01")
    assert r.status_code == 201 and r.json()["rows_accepted"] == 3, r.text
    assert api.commit(r.json()["id"]).status_code == 200
    stored = api.rows("employment")
    assert sorted(str(s.registered_on) for s in stored) == ["2026-01-03", "2026-01-04", "2026-01-05"]
    assert {s.state for s in stored} == {"失业登记"}
    bom = csv_bytes([["证书编号", "身份证号码", "职业编码", "等级", "发证日期"],
                     ["C-2026-0001", IDS[0], "4-01-02-01", "四级/中级工".split("/")[1], "2026年1月5日"]], "utf-8-sig")
    r = api.preview(bom, "证书.csv", "certificates", "2026-01")
    assert r.status_code == 201 and r.json()["rows_accepted"] == 1, r.text
    api.commit(r.json()["id"])
    assert [(c.level, c.certificate_no) for c in api.rows("certificates")] == [(4, "C-2026-0001")]


def test_a_renamed_header_needs_only_the_mapping_file(client_factory: Callable[..., TestClient],
                                                      tmp_path: Path) -> None:
    renamed = xlsx([["培训券编号", "持券人证件号（18位）", "培训职业编码", "状态", "发放日期", "使用日期"],
                    ["V001", IDS[0], "4-01-02-01", "已发放", "2026-01-02", None],
                    ["V002", IDS[1], "4-01-02-01", "已使用", "2026-01-02", "2026-01-20"]])
    api = Api(client_factory())
    r = api.preview(renamed, "培训券.xlsx", "vouchers", "2026-01")
    assert r.status_code == 422 and r.json()["code"] == "REGISTER_FILE_UNREADABLE"
    assert "持券人身份证号码" in r.json()["message"]
    mapping = json.loads(MAPPING.read_text(encoding="utf-8"))
    mapping["vouchers"]["fields"]["id_number"]["aliases"].append("持券人证件号（18位）")
    custom = tmp_path / "registers.json"
    custom.write_text(json.dumps(mapping, ensure_ascii=False), encoding="utf-8")
    api = Api(client_factory(register_mapping=custom, data_dir=tmp_path / "other"))
    r = api.preview(renamed, "培训券.xlsx", "vouchers", "2026-01")
    assert r.status_code == 201 and r.json()["rows_accepted"] == 2, r.text
    assert api.commit(r.json()["id"]).status_code == 200
    assert sorted((v.voucher_no, str(v.used_on)) for v in api.rows("vouchers")) == [
        ("V001", "None"), ("V002", "2026-01-20")]


def test_a_two_row_header_with_merged_cells_is_read_as_one(api: Api) -> None:
    """证书编号 and 身份证号码 merged down over two header rows, 职业 over its two sub-columns."""
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["职业技能等级证书发放名册"])
    sheet.append(["证书编号", "身份证号码", "职业", None, "发证日期"])
    sheet.append([None, None, "职业编码", "等级", None])
    for cell in ("A2:A3", "B2:B3", "C2:D2", "E2:E3"):
        sheet.merge_cells(cell)
    sheet.append(["Z-1", IDS[1], "6-02-01-01", "五级", date(2025, 12, 30)])
    out = io.BytesIO()
    book.save(out)
    r = api.preview(out.getvalue(), "证书.xlsx", "certificates", "2026-01")
    assert r.status_code == 201 and r.json()["rows_accepted"] == 1, r.text
    assert r.json()["sample"][0] == {"row": 4, "id_number": IDS[1][:3] + "*" * 11 + IDS[1][-4:],
                                     "occupation_code": "6-02-01-01", "level": "5", "certificate_no": "Z-1",
                                     "issued_on": "2025-12-30"}


def rezipped(data: bytes, change: Callable[[str, bytes], bytes | None]) -> bytes:
    """The .xlsx `data` with each part replaced by `change(name, bytes)` (None: the part left out), deflated."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for part in source.infolist():
            body = change(part.filename, source.read(part))
            if body is not None:
                target.writestr(part.filename, body)
    return out.getvalue()


def test_a_broken_or_bombed_xlsx_is_refused_with_a_reason_and_holds_nothing(api: Api) -> None:
    """A workbook with no sheet, a sheet padded into a zip bomb (it unpacks hundreds of times its size: parsing it
    held SQLite's write lock, and every check-in, for minutes) and a sheet cut short mid-XML are each 422
    REGISTER_FILE_UNREADABLE with a zh-CN reason; no import is staged, and a good file goes through after them."""
    good = insurance_xlsx(IDS[:3])
    sheet = "xl/worksheets/sheet1.xml"
    no_sheet = rezipped(good, lambda name, body: b'<workbook xmlns="http://schemas.openxmlformats.org/'
                        b'spreadsheetml/2006/main"/>' if name == "xl/workbook.xml" else body)
    padding = b"<!--" + b" " * (60 << 20) + b"-->"
    bombed = rezipped(good, lambda name, body: body.replace(b"</worksheet>", padding + b"</worksheet>")
                      if name == sheet else body)
    cut = rezipped(good, lambda name, body: body[:len(body) // 2] if name == sheet else body)
    assert len(bombed) < 1 << 20  # 60 MB of XML in well under 1 MB of file
    for data, says in ((no_sheet, "没有工作表"), (bombed, "压缩炸弹"), (cut, "工作表内容损坏")):
        r = api.preview(data, "参保缴费.xlsx", "insurance", "2026-01")
        assert r.status_code == 422, r.text
        assert r.json()["code"] == "REGISTER_FILE_UNREADABLE" and says in r.json()["message"], r.text
    assert api.rows("insurance") == []
    assert api.preview(good, "参保缴费.xlsx", "insurance", "2026-01").status_code == 201


def take_write_lock(api: Api) -> None:
    """Take SQLite's write lock beside a preview and let it go: 'database is locked' after 2 s if it is held."""
    import sqlite3

    writer = sqlite3.connect(api.client.app.state.settings.data_dir / "monitor.sqlite3", timeout=2,
                             isolation_level=None)
    try:
        writer.execute("BEGIN IMMEDIATE")
        writer.execute("COMMIT")
    finally:
        writer.close()


def preview_in_thread(api: Api, data: bytes, paused: Any) -> tuple[Any, list[object]]:
    """A 2026-01 insurance preview of `data` run in a thread (started); its answer (the id, or the exception, which
    also sets `paused` so the test does not wait for a pause that will not come)."""
    import threading

    from monitor.services import registers

    settings = api.client.app.state.settings
    answer: list[object] = []

    def run() -> None:
        try:
            answer.append(registers.preview_import(
                api.client.app.state.db, io.BytesIO(data), "参保缴费.xlsx", "insurance", "2026-01",
                settings.register_specs()["insurance"], settings.register_hash_key(), "登记表管理员"))
        except Exception as exc:  # noqa: BLE001 - shown by the test's assertion
            answer.append(exc)
            paused.set()

    thread = threading.Thread(target=run)
    thread.start()
    return thread, answer


def test_a_preview_holds_no_write_lock_while_it_reads_the_file(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    """On SQLite a write transaction locks the whole database: a preview validating its rows inside one held every
    check-in back for the whole file (7.5 s for 100,000 rows). While a preview is in the middle of its rows, another
    writer takes the lock at once; the rows are staged afterwards, all of them."""
    import threading

    from monitor.services import registers

    halfway, resume = threading.Event(), threading.Event()
    real_parse = registers.parse_row
    seen: list[int] = []

    def parse_slowly(*args: Any) -> Any:
        seen.append(1)
        if len(seen) == 2:  # the second data row: the first has been read, validated and hashed
            halfway.set()
            assert resume.wait(30)
        return real_parse(*args)

    monkeypatch.setattr(registers, "parse_row", parse_slowly)
    preview, answer = preview_in_thread(api, insurance_xlsx(IDS[:4]), halfway)
    try:
        assert halfway.wait(30) and not answer, answer
        take_write_lock(api)
    finally:
        resume.set()
        preview.join(30)
    assert len(answer) == 1 and isinstance(answer[0], int), answer
    assert len(api.rows("insurance")) == 4


def test_rows_are_staged_a_batch_per_transaction_and_a_failed_staging_leaves_nothing(
        api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    """Staging a million rows in one transaction held SQLite's write lock (every check-in) for its whole length:
    each batch is its own transaction, and between two another writer takes the lock at once while the import is
    `staging` (nothing can commit it, no rule reads it). A staging that fails on the way removes its rows and marks
    the import `abandoned`."""
    import threading

    from monitor.services import registers

    monkeypatch.setattr(registers, "BATCH", 2)
    settings = api.client.app.state.settings
    between, resume = threading.Event(), threading.Event()
    real_read = registers.read_spool

    def read_pausing(spool: Any) -> Any:
        for n, batch in enumerate(real_read(spool)):
            if n == 1:  # the first batch is committed; the second waits
                between.set()
                assert resume.wait(30)
            yield batch

    monkeypatch.setattr(registers, "read_spool", read_pausing)
    preview, answer = preview_in_thread(api, insurance_xlsx(IDS[:6]), between)
    try:
        assert between.wait(30) and not answer, answer
        take_write_lock(api)
        with api.client.app.state.db.session() as s:
            [(import_id, state)] = s.execute(select(RegisterImport.id, RegisterImport.state)).all()
        assert state == "staging" and len(api.rows("insurance")) == 2
        early = api.commit(import_id)
        assert early.status_code == 409 and early.json()["code"] == "REGISTER_NOT_PENDING", early.text
    finally:
        resume.set()
        preview.join(30)
    assert answer == [import_id] and len(api.rows("insurance")) == 6
    assert api.commit(import_id).status_code == 200

    def read_failing(spool: Any) -> Any:
        for n, batch in enumerate(real_read(spool)):
            if n == 2:
                raise OSError("disk gone")
            yield batch

    monkeypatch.setattr(registers, "read_spool", read_failing)
    with pytest.raises(OSError):
        registers.preview_import(api.client.app.state.db, io.BytesIO(insurance_xlsx(IDS[:6])), "2月.xlsx",
                                 "insurance", "2026-02", settings.register_specs()["insurance"],
                                 settings.register_hash_key(), "登记表管理员")
    with api.client.app.state.db.session() as s:
        states = dict(s.execute(select(RegisterImport.id, RegisterImport.state)).all())
    assert states == {import_id: "committed", import_id + 1: "abandoned"}
    assert {r.import_id for r in api.rows("insurance")} == {import_id}


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_rows_left_staging_by_a_dead_process_are_swept(client_factory: Callable[..., TestClient], backend: str,
                                                       request: pytest.FixtureRequest) -> None:
    """A process killed while staging leaves an import `staging` with some of its rows: after an hour the worker's
    sweep removes them (in batches) and marks it `abandoned`; a younger staging import is left to finish."""
    from monitor.services import registers

    url = request.getfixturevalue("postgres_url") if backend == "postgresql" else ""
    api = Api(client_factory(database_url=url))
    db = api.client.app.state.db
    table = registers.row_table("insurance")
    now = utc_now()
    ids = []
    for age in (timedelta(hours=2), timedelta(minutes=5)):
        with db.session() as s:
            entry = RegisterImport(source="insurance", period="2026-01", sha256="0" * 64, filename="x.xlsx",
                                   file_kind="xlsx", rows_accepted=0, rows_refused=0, errors=[], sample=[],
                                   key_id="k", state="staging", created_by="登记表管理员", created_at=now - age)
            s.add(entry)
            s.flush()
            ids.append(entry.id)
    with db.writing() as conn:
        for import_id in ids:
            conn.execute(table.insert(), [{"import_id": import_id, "row_number": n, "id_hash": f"{n:064x}",
                                           "employer": "某公司", "county_code": "530102", "month_from": "2025-07",
                                           "month_to": "2026-01"} for n in range(5)])
    assert registers.sweep_staging(db, now) == [ids[0]]
    with db.session() as s:
        states = dict(s.execute(select(RegisterImport.id, RegisterImport.state)).all())
    assert states == {ids[0]: "abandoned", ids[1]: "staging"}
    assert {r.import_id for r in api.rows("insurance")} == {ids[1]} and len(api.rows("insurance")) == 5


def test_a_bad_row_refuses_the_whole_file_with_its_row_number_and_nothing_is_stored(api: Api) -> None:
    broken = IDS[2][:-1] + ("0" if IDS[2][-1] != "0" else "1")
    data = insurance_xlsx([IDS[0], IDS[1], broken, IDS[3]], bad={4: "2026-13"})
    r = api.preview(data, "参保缴费.xlsx", "insurance", "2026-01")
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["state"] == "refused" and body["rows_accepted"] == 2 and body["rows_refused"] == 2
    # rows: 1 title, 2 blank, 3 header, 4-5 data, 6 blank, 7-8 data
    assert body["errors"] == [{"row": 7, "reason": "身份证号码：身份证号码校验位错误"},
                              {"row": 8, "reason": "缴费月份：月份无效（应为 YYYY-MM 或 YYYY-MM~YYYY-MM）"}]
    c = api.commit(body["id"])
    assert c.status_code == 409 and c.json()["code"] == "REGISTER_ROWS_REFUSED"
    assert "第 7 行" in c.json()["message"]
    assert api.rows("insurance") == []
    assert broken not in r.text


def test_a_newer_period_replaces_the_old_without_double_counting(api: Api) -> None:
    first = api.preview(insurance_xlsx(IDS[:4]), "1月.xlsx", "insurance", "2026-01").json()
    api.commit(first["id"])
    second = api.preview(insurance_xlsx(IDS[2:5]), "2月.xlsx", "insurance", "2026-02").json()
    assert len(api.rows("insurance")) == 4 + 3  # staged, not counted
    assert api.commit(second["id"]).status_code == 200
    rows = api.rows("insurance")
    assert len(rows) == 3 and {r.import_id for r in rows} == {second["id"]}
    listed = {i["id"]: i for i in api.client.get("/api/v1/registers/imports", headers=auth(api.admin)).json()}
    assert listed[first["id"]]["state"] == "replaced" and listed[first["id"]]["replaced_by"] == second["id"]
    assert listed[second["id"]]["state"] == "committed"
    older = api.preview(insurance_xlsx(IDS[:1]), "12月.xlsx", "insurance", "2025-12").json()
    r = api.commit(older["id"])
    assert r.status_code == 409 and r.json()["code"] == "REGISTER_PERIOD_OLDER"
    corrected = api.preview(insurance_xlsx(IDS[:2]), "2月更正.xlsx", "insurance", "2026-02").json()
    assert api.commit(corrected["id"]).status_code == 200
    assert len(api.rows("insurance")) == 2  # the corrected February; December's staged preview went with it
    with api.client.app.state.db.session() as s:
        states = dict(s.execute(select(RegisterImport.id, RegisterImport.state)).all())
    assert states == {first["id"]: "replaced", second["id"]: "replaced", older["id"]: "replaced",
                      corrected["id"]: "committed"}


def test_preview_refusal_commit_and_replacement_on_postgresql(client_factory: Callable[..., TestClient],
                                                               postgres_url: str) -> None:
    api = Api(client_factory(database_url=postgres_url))
    refused = api.preview(insurance_xlsx([IDS[0], "5301021990"]), "坏.xlsx", "insurance", "2026-01").json()
    assert refused["state"] == "refused" and refused["errors"][0]["row"] == 5
    assert api.commit(refused["id"]).json()["code"] == "REGISTER_ROWS_REFUSED"
    assert api.rows("insurance") == []
    first = api.preview(insurance_xlsx(IDS[:4]), "1月.xlsx", "insurance", "2026-01").json()
    assert api.commit(first["id"]).status_code == 200
    second = api.preview(insurance_xlsx(IDS[:2]), "2月.xlsx", "insurance", "2026-02").json()
    assert api.commit(second["id"]).json()["state"] == "committed"
    assert sorted(r.row_number for r in api.rows("insurance")) == [4, 5]
    assert {r.import_id for r in api.rows("insurance")} == {second["id"]}


def test_no_whole_id_number_in_the_database_or_any_answer(api: Api) -> None:
    api.preview(insurance_xlsx(IDS[:3]), "a.xlsx", "insurance", "2026-01")
    api.commit(1)
    api.preview(xlsx([["身份证号码", "资质", "年审结果", "年审年度"], [IDS[3], "高级讲师", "合格", 2025]]),
                "师资库.xlsx", "teachers", "2026-01")
    api.commit(2)
    bad = IDS[4][:-1] + ("0" if IDS[4][-1] != "0" else "1")
    api.preview(xlsx([["身份证号码", "资质", "年审结果", "年审年度"], [bad, "讲师", "合格", 2025]]), "b.xlsx",
                "teachers", "2026-02")
    answers = api.answers + [api.client.get("/api/v1/registers/imports", headers=auth(api.admin)).text]
    api.client.app.state.db.seal_audit()
    with api.client.app.state.db.session() as s:
        dumped = []
        for table in [*[m.__tablename__ for m in ROW_TABLES.values()], "register_imports", "audit_entries"]:
            dumped += [repr(tuple(row)) for row in s.execute(text(f"SELECT * FROM {table}"))]  # noqa: S608
    assert len(dumped) > 5
    for whole in [*IDS[:4], bad]:
        assert not [d for d in dumped if whole in d], whole
        assert not [a for a in answers if whole in a], whole


def test_only_admins_import(api: Api) -> None:
    r = api.preview(insurance_xlsx(IDS[:1]), "a.xlsx", "insurance", "2026-01", token=api.operator)
    assert r.status_code == 403 and r.json()["code"] == "FORBIDDEN_ROLE"
    assert api.client.get("/api/v1/registers/imports", headers=auth(api.operator)).status_code == 403
    ok = api.preview(insurance_xlsx(IDS[:1]), "a.xlsx", "insurance", "2026-01").json()
    assert api.commit(ok["id"], token=api.operator).status_code == 403
    with api.client.app.state.db.session() as s:
        assert s.scalar(select(RegisterImport.state)) == "preview"
    assert api.preview(b"x", "a.csv", "pensions", "2026-01").json()["code"] == "UNKNOWN_REGISTER_SOURCE"
    assert api.preview(b"x", "a.csv", "insurance", "2026-1").json()["code"] == "INVALID_PERIOD"
    huge = "身份证号,姓名\n1," + "长" * 200_000 + "\n"  # one cell over the csv module's 128 KB field limit
    r = api.preview(huge.encode(), "a.csv", "insurance", "2026-01")
    assert r.status_code == 422 and "单元格内容过长" in r.json()["message"] and "field" not in r.json()["message"]
    month = utc_now().astimezone(SHANGHAI).date().replace(day=1)
    ahead = (month + timedelta(days=32)).strftime("%Y-%m")  # a month not begun would refuse every real one later
    for period in (ahead, "9999-12"):
        r = api.preview(insurance_xlsx(IDS[:1]), "a.xlsx", "insurance", period)
        assert r.status_code == 422 and r.json()["code"] == "PERIOD_IN_FUTURE" and "未来" in r.json()["message"]
    assert api.preview(insurance_xlsx(IDS[:1]), "a.xlsx", "insurance", month.strftime("%Y-%m")).status_code == 201


def test_the_import_record_is_in_the_audit_chain_with_the_files_sha256(api: Api) -> None:
    data = insurance_xlsx(IDS[:2])
    body = api.preview(data, "a.xlsx", "insurance", "2026-01").json()
    api.commit(body["id"])
    api.client.app.state.db.seal_audit()
    with api.client.app.state.db.session() as s:
        entries = s.scalars(select(AuditEntry).where(AuditEntry.subject_kind == "register_imports")
                            .order_by(AuditEntry.id)).all()
        row_entries = s.scalars(select(AuditEntry.id).where(AuditEntry.subject_kind.like("register_i%s%"))).all()
    # made (with its file's digest), its counts once every row was read, its commit
    assert [e.action for e in entries] == ["register_imports.insert", "register_imports.update",
                                           "register_imports.update"]
    assert all(e.seq is not None for e in entries)
    assert entries[0].detail["sha256"] == hashlib.sha256(data).hexdigest()
    assert entries[1].detail["rows_accepted"] == 2
    assert entries[2].detail["state"] == "committed"
    assert entries[0].detail["created_by"] == "登记表管理员"
    assert len(row_entries) == 3  # the record only: no entry per staged row


def test_row_rules_are_pure() -> None:
    specs = parse_mapping(json.loads(MAPPING.read_text(encoding="utf-8")))
    spec = specs["certificates"]
    columns = {"id_number": 0, "occupation_code": 1, "level": 2, "certificate_no": 3, "issued_on": 4}
    good = parse_row(spec, columns, [IDS[0], "4-01-02-01", "三级", "C1", "20260105"])
    assert isinstance(good, dict) and good["level"] == 3 and good["issued_on"] == date(2026, 1, 5)
    assert parse_row(spec, columns, [530102199001011234, "X", "六级", "", "2026-02-30"]) == (
        "身份证号码：须为文本格式（数字格式会丢失末位）；等级：等级无效（应为一级至五级）；证书编号为空；"
        "发证日期：日期无效（应为 YYYY-MM-DD）")
    county = parse_row(specs["employment"], {"id_number": 0, "state": 1, "registered_on": 2, "county_code": 3},
                       [IDS[0], "就业", "2026-01-01", "520102"])
    assert county == "登记地行政区划代码：应为云南省的6位行政区划代码（53xxxx）"
    assert parse_months("2025年7月至2026年1月") == ("2025-07", "2026-01")
    assert parse_months("202601") == ("2026-01", "2026-01")
    assert parse_months("2026-03~2026-01") is None
    with pytest.raises(ValueError):
        parse_mapping({"x": {"fields": {"id_number": {"type": "id", "aliases": ["身份证号"]}}}})


def test_the_admin_page_previews_row_errors_and_commits(tmp_path: Path) -> None:
    """The zh-CN page in a real browser: a bad file's rows listed with their numbers and no commit button; a good
    file committed; the imports listed."""
    import shutil

    from playwright.sync_api import expect, sync_playwright

    from monitor.app import create_app
    from monitor.settings import Settings
    from tests.helpers import FACES_DIR, running_server

    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(chromium).exists():
        pytest.fail("Debian's chromium is not installed; run ./scripts/test.sh")
    app = create_app(Settings(data_dir=tmp_path / "data", faces_dir=FACES_DIR, face_processes=0, clock_rules=False))
    bad = tmp_path / "bad.xlsx"
    bad.write_bytes(insurance_xlsx([IDS[0], "53010219900101123"]))
    good = tmp_path / "good.xlsx"
    good.write_bytes(insurance_xlsx(IDS[:3]))
    with running_server(app) as base, sync_playwright() as p:
        with app.state.db.session() as session:
            admin = issue_token(session, Role.ADMIN, "登记表管理员")
        browser = p.chromium.launch(executable_path=chromium, headless=True,
                                    args=["--no-sandbox", "--disable-gpu", "--no-first-run"])
        page = browser.new_page(locale="zh-CN")
        page.goto(f"{base}/registers#token={admin}")
        expect(page.locator("#source option")).to_have_count(5)
        expect(page.locator("#columns")).to_contain_text("身份证号码")
        page.fill("#period", "2026-01")
        page.set_input_files("#file", str(bad))
        page.click("#send")
        expect(page.locator("#errors tr")).to_have_count(1)
        expect(page.locator("#errors tr td").first).to_have_text("5")
        expect(page.locator("#errors")).to_contain_text("身份证号码应为18位")
        expect(page.locator("#summary")).to_contain_text("整个文件不予导入")
        expect(page.locator("#commit")).to_be_hidden()
        page.set_input_files("#file", str(good))
        page.click("#send")
        expect(page.locator("#summary")).to_contain_text("通过 3 行，未通过 0 行")
        expect(page.locator("#sample")).to_contain_text("530***********")
        expect(page.locator("#sample-head")).to_contain_text("参保地行政区划代码")
        page.click("#commit")
        expect(page.locator("#imports tr").first).to_contain_text("已导入（生效）")
        expect(page.locator("#imports tr")).to_have_count(2)
        assert IDS[0] not in page.content()
        browser.close()
