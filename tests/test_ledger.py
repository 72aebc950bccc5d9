"""The ledger, daily report and exports (numbers in .xlsx/.csv equal the API's), and the public notice."""

import csv
import io
from collections.abc import Callable
from datetime import datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook

from models.clock import SHANGHAI
from monitor.adapters.spreadsheets import to_csv, to_xlsx
from tests.helpers import World, auth, face, issue_token_via_api


@pytest.fixture
def attended(client_factory: Callable[..., TestClient]) -> World:
    """Yesterday obama signed in and out (verified); biden never came."""
    world = World.build(client_factory(max_capture_age_seconds=3 * 86400))
    yesterday = (datetime.now(SHANGHAI) - timedelta(days=1)).replace(hour=9, minute=0, second=0, microsecond=0)
    r = world.checkin(face("people/obama/obama2.jpg"), captured_at=yesterday.isoformat())
    assert r.json()["status"] == "passed", r.json()
    r = world.checkin(face("people/obama/obama1.jpg"), kind="sign_out",
                      captured_at=(yesterday + timedelta(hours=8)).isoformat())
    assert r.json()["status"] == "passed", r.json()
    world.ids["auditor"] = issue_token_via_api(world.client, world.admin, "auditor", "财政审计")
    return world


def test_ledger_shows_attendance_eligibility_and_evidence(attended: World) -> None:
    w = attended
    r = w.client.get(f"/api/v1/classes/{w.class_id}/ledger", headers=auth(w.ids["auditor"]))
    assert r.status_code == 200
    ledger = r.json()
    assert ledger["sessions_scheduled"] == 1 and ledger["trainees"] == 2 and ledger["eligible"] == 1
    rows = {row["trainee_id"]: row for row in ledger["rows"]}
    obama, biden = rows[w.obama_id], rows[w.biden_id]
    assert (obama["attended"], obama["rate"], obama["eligible"], obama["valid_hours"]) == (1, 1.0, True, 8.0)
    assert len(obama["evidence"]) == 2 and all(len(e["photo_sha256"]) == 64 for e in obama["evidence"])
    [day] = obama["sessions"]
    assert (day["signed_in"], day["signed_out"], day["minutes"], day["attended"]) == (True, True, 480, True)
    assert (biden["attended"], biden["eligible"]) == (0, False) and "低于 80%" in biden["reason"]
    assert "*" in obama["id_number_masked"]


def test_excel_and_csv_exports_equal_the_api(attended: World) -> None:
    w = attended
    ledger = w.client.get(f"/api/v1/classes/{w.class_id}/ledger", headers=auth(w.ids["auditor"])).json()
    r = w.client.get(f"/api/v1/classes/{w.class_id}/ledger.xlsx", headers=auth(w.ids["auditor"]))
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/vnd.openxmlformats")
    sheet = load_workbook(io.BytesIO(r.content)).active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][:9] == ("序号", "姓名", "身份证号（脱敏）", "应到课时数", "实到课时数", "待复核课时数",
                           "出勤率（%）", "有效学时（小时）", "补贴资格")
    by_name = {row[1]: row for row in rows[1:]}
    for api_row in ledger["rows"]:
        x = by_name[api_row["name"]]
        assert x[2] == api_row["id_number_masked"]
        assert (x[3], x[4], x[5], x[6], x[7]) == (api_row["scheduled"], api_row["attended"],
                                                  api_row["pending_review"], api_row["rate_percent"],
                                                  api_row["valid_hours"])
        assert x[8] == ("符合" if api_row["eligible"] else "不符合")
    r = w.client.get(f"/api/v1/classes/{w.class_id}/ledger.csv", headers=auth(w.ids["auditor"]))
    table = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert table[0][0] == "序号" and len(table) == 1 + len(ledger["rows"])
    assert {(t[1], t[4]) for t in table[1:]} == {(a["name"], str(a["attended"])) for a in ledger["rows"]}


def test_daily_report_per_prefecture_and_county(attended: World) -> None:
    w = attended
    report = w.client.get("/api/v1/reports/daily", headers=auth(w.ids["auditor"])).json()
    rows = {(r["level"], r["code"]): r for r in report["rows"]}
    kunming, wuhua = rows[("prefecture", "530100")], rows[("county", "530102")]
    assert kunming["name"] == "昆明市" and wuhua["name"] == "五华区"
    assert kunming["classes"] == wuhua["classes"] == 1 and kunming["checkins"] == 2 and kunming["pass_rate"] == 1.0
    assert rows[("prefecture", "532900")]["classes"] == 1
    sheet = load_workbook(io.BytesIO(w.client.get("/api/v1/reports/daily.xlsx",
                                                  headers=auth(w.ids["auditor"])).content)).active
    values = {row[1]: row for row in sheet.iter_rows(min_row=2, values_only=True)}
    assert values["530100"][3:7] == (1, 2, 2, 100.0)


def test_reports_need_an_auditing_role(attended: World) -> None:
    r = attended.client.get(f"/api/v1/classes/{attended.class_id}/ledger.xlsx", headers=auth(attended.site))
    assert r.status_code == 403


def test_public_notice_masks_names_and_hides_id_numbers(attended: World) -> None:
    r = attended.client.get("/public/notice.json")
    assert r.status_code == 200
    classes = {c["class_code"]: c for c in r.json()["classes"]}
    assert classes["TEST-0"]["eligible"] == 1 and classes["TEST-0"]["eligible_names"] == ["欧**"]
    assert "欧建国" not in r.text and "5301" not in r.text
    page = attended.client.get("/public/notice")
    assert page.status_code == 200 and "培训补贴公示" in page.text


def test_no_cell_of_a_download_runs_as_a_formula() -> None:
    """A class or trainee name typed as a formula stays text in the ledger's and reports' Excel and CSV files."""
    columns = [("name", "名称"), ("count", "人数")]
    rows = [{"name": '=HYPERLINK("http://x","点我")', "count": 3}, {"name": "+1", "count": -2}, {"name": "王五"}]
    text = to_csv(columns, rows).decode("utf-8-sig")
    assert text.splitlines()[1:] == ['"\'=HYPERLINK(""http://x"",""点我"")",3', "'+1,-2", "王五,"]
    sheet = load_workbook(io.BytesIO(to_xlsx("台账", columns, rows))).active
    assert [c.value for c in sheet[2]] == ['\'=HYPERLINK("http://x","点我")', 3]
    assert sheet["A2"].data_type == "s" and sheet["B3"].value == -2
