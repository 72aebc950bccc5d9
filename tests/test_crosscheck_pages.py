"""The register cross-checks (clause 八/九) as users see them, in Debian's Chromium driven by Playwright: on the wall
(1920×1080, 300 classes) the panel of today's cross-check alerts by prefecture, updated live, and the evidence view's
登记数据比对 block; on the ledger page each trainee's cross-check result, the class's cross-check line, the
institution's post-training employment against the median, 「标记为可拨付」 refused with the server's reason while
alerts are open, then granted, and the payment list downloaded. The data goes in through the API
(tests/test_crosscheck.py's province and register extracts) of a real server."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from openpyxl import load_workbook
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import select, update

from models.tables import InstitutionEmployment, TrainingClass
from monitor.app import create_app
from tests.helpers import LiveClient, auth, running_server
from tests.test_crosscheck import Province, build_province, close_all, import_registers
from tests.test_inspector_page import server_only
from tests.test_pages import browser, wait_until  # noqa: F401 - the module-scoped Chromium fixture
from tests.test_wall_screen import VIEW, add_classes, fits_the_screen, font_sizes, settings_for

SOURCES = {"insurance", "certificates", "teachers", "vouchers"}


@contextmanager
def province_server(tmp_path: Path) -> Iterator[Province]:
    """A real server with the small province of tests/test_crosscheck.py registered through its API (the class
    ended yesterday: it can be marked payable)."""
    app = create_app(settings_for(tmp_path / "data"))
    with running_server(app) as base:
        client = LiveClient(base_url=base, timeout=60)
        client.app = app
        try:
            yield build_province(client, ended=True)  # type: ignore[arg-type]
        finally:
            client.close()


def wait_for(what: str, probe: Any, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := probe()):
        assert time.monotonic() < deadline, f"not within {timeout:.0f} s: {what}"
        time.sleep(0.2)
    return value


def checked(p: Province) -> dict[str, Any]:
    """The class's cross-check once the last commit's background run has seen all four extracts."""
    def probe() -> dict[str, Any] | None:
        body = p.client.get(f"/api/v1/classes/{p.class_id}/crosscheck", headers=auth(p.auditor)).json()
        return body if set(body["registers"]) == SOURCES and len(body["open_alerts"]) == 5 else None
    return wait_for("the cross-check of the class against all four extracts", probe)


def test_the_wall_shows_todays_cross_check_alerts_and_a_trainees_findings(tmp_path: Path,
                                                                         browser: Browser) -> None:  # noqa: F811
    with province_server(tmp_path) as p:
        base = str(p.client.base_url).rstrip("/")
        # 298 more classes across the 16 prefectures (300 in all); every 25th has a teacher whose check failed.
        cls = p.client.get(f"/api/v1/classes/{p.class_id}", headers=auth(p.admin)).json()
        world = SimpleNamespace(client=p.client, ids={"occupation": cls["occupation_id"],
                                                      "teachers": [p.teacher["pooled"], p.teacher["pooled"]]})
        bulk = add_classes(world, 298)  # type: ignore[arg-type]
        failing = bulk[::25]
        with p.client.app.state.db.session() as s:
            s.execute(update(TrainingClass).where(TrainingClass.id.in_(failing))
                      .values(practical_teacher_id=p.teacher["failed"]))

        context = browser.new_context(viewport=VIEW, locale="zh-CN")
        _, outside = server_only(context, base)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(f"{base}/wall#token={p.operator}")
        expect(page.locator("#conn")).to_have_text("实时连接正常", timeout=15_000)
        expect(page.locator("#cross-prefs")).to_have_text("今日暂无登记数据比对预警", timeout=10_000)
        expect(page.locator("#cross-total")).to_have_text("0")

        import_registers(p)  # each commit cross-checks every class in the background; the wall hears the anomalies
        checked(p)
        expected = 5 + len(failing)  # one alert per rule and class: the province's five, one per failing class
        today = wait_for("today's alerts", lambda: (t := p.client.get("/api/v1/crosschecks/today",
                                                                      headers=auth(p.operator)).json())
                         ["total"] == expected and t)
        hit = [x for x in today["prefectures"] if x["alerts"]]
        # Live: long before the minute's refresh.
        expect(page.locator("#cross-total")).to_have_text(str(expected), timeout=15_000)
        expect(page.locator("#cross-open")).to_have_text(str(expected))
        rows = page.locator("#cross-prefs li")
        expect(rows).to_have_count(3)
        first = rows.first
        assert first.get_attribute("data-code") == "530100" == hit[0]["code"]
        expect(first).to_contain_text("昆明")
        expect(first).to_contain_text(str(hit[0]["alerts"]))
        expect(first).to_contain_text(f"待处置 {hit[0]['open']}")
        assert "人员类别不符" in (first.get_attribute("title") or "")  # the rule names, from the served catalogue
        rest = hit[2:]  # past three prefectures, the last row sums the rest
        expect(rows.nth(2)).to_contain_text(f"其他 {len(rest)} 个州市")
        expect(rows.nth(2).locator("b")).to_have_text(str(sum(x["alerts"] for x in rest)))
        fits_the_screen(page)
        box = page.locator("#cross-panel").bounding_box()
        assert box and box["y"] >= 0 and box["y"] + box["height"] <= 1080, box
        for selector in ("#cross-prefs li", ".cross-totals", ".cross-totals b"):
            sizes = font_sizes(page, selector)
            assert sizes and min(sizes) >= 18, (selector, sizes)
        page.screenshot(path=str(tmp_path / "wall-crosscheck.png"))

        # The evidence view of a trainee's cross-check anomaly lists all that trainee's findings in the class.
        page.locator("#feed li[data-rule=EMPLOYED_ELSEWHERE]").click()
        expect(page.locator("#detail")).to_be_visible()
        block = page.locator("#crosscheck")
        expect(page.locator("#crosscheck-title")).to_have_text("登记数据比对（该学员）")
        # read while the last commit's background run may still be cross-checking the 300 classes in this process
        expect(page.locator("#crosscheck-note")).not_to_have_text("正在读取…", timeout=20_000)
        expect(block.locator("li")).to_have_count(2)
        expect(block).to_contain_text("人员类别不符")
        expect(block).to_contain_text("异地参保在岗")
        expect(block).to_contain_text("德宏州芒市某公司")
        expect(block.locator(".cc-state")).to_have_text(["待核查", "待核查"])
        expect(block.locator("li").first).to_contain_text("依据：社会保险参保数据 2026-11")
        expect(page.locator("#crosscheck-note")).to_contain_text("比对时间")
        page.locator(".detail-box").screenshot(path=str(tmp_path / "wall-crosscheck-detail.png"))
        page.click("#detail-close")

        # A teacher's finding: the block shows the class's teachers.
        page.locator("#feed li[data-rule=TEACHER_CHECK_FAILED]", has_text="中式烹调师（四级）培训班").click()
        expect(page.locator("#crosscheck-title")).to_have_text("登记数据比对（本班教师）")
        expect(block.locator("li")).to_have_count(1, timeout=15_000)
        expect(block).to_contain_text("教师：教师年审未通过")
        page.click("#detail-close")

        # An alert dismissed elsewhere: the panel's open count follows live.
        alert_id = page.locator("#feed li[data-rule=REPEAT_SUBSIDY]").get_attribute("data-alert-id")
        p.post(f"/api/v1/alerts/{alert_id}/dismiss", expect=200, token=p.operator,
               json={"note": "证书登记有误，已更正"})
        expect(page.locator("#cross-open")).to_have_text(str(expected - 1), timeout=15_000)
        expect(first).to_contain_text(f"待处置 {hit[0]['open'] - 1}")
        assert not outside, outside
        assert not errors, errors

        # A region inspector's wall: the cross-checks are the center's. The feed's hello leaves `read_reports` out of
        # `may`, so the panel says so and the page asks the API nothing it would refuse (it asked and got 403).
        staff = p.post("/api/v1/staff", json={"name": "抽查员甲", "phone": "13900000001", "level": "county",
                                              "region_code": "530102"})
        inspector = p.post("/api/v1/tokens", json={"role": "inspector", "name": "抽查员甲",
                                                   "staff_id": staff["id"]})["token"]
        asked: list[str] = []
        watch = context.new_page()
        watch.on("request", lambda r: asked.append(r.url) if "/api/v1/" in r.url and "crosscheck" in r.url else None)
        watch.goto(f"{base}/wall#token={inspector}")
        expect(watch.locator("#conn")).to_have_text("实时连接正常", timeout=15_000)
        expect(watch.locator("#cross-prefs")).to_have_text("当前身份无权查看登记比对预警", timeout=10_000)
        assert not asked, asked
        context.close()


def ledger_page(browser: Browser, p: Province, token: str) -> Page:  # noqa: F811
    page = browser.new_page(accept_downloads=True, viewport={"width": 1600, "height": 1000}, locale="zh-CN")
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.errors = errors  # type: ignore[attr-defined]
    page.goto(f"{p.client.base_url}/ledger#token={token}")
    expect(page.locator("#class option").first).to_be_attached(timeout=10_000)
    page.select_option("#class", str(p.class_id))
    expect(page.locator("#rows tr")).to_have_count(7, timeout=10_000)
    return page


def test_the_ledger_shows_the_cross_checks_and_marks_the_class_payable(tmp_path: Path,
                                                                      browser: Browser) -> None:  # noqa: F811
    with province_server(tmp_path) as p:
        import_registers(p)
        checked(p)
        p.post("/api/v1/crosschecks", expect=200, json={})  # and once more in the foreground: nothing runs after it
        institution_id = p.client.get(f"/api/v1/classes/{p.class_id}", headers=auth(p.admin)).json()["institution_id"]
        with p.client.app.state.db.session() as s:  # as refresh_employment leaves it once paid classes are observable
            s.add(InstitutionEmployment(institution_id=institution_id, insurance_period="2026-11", completed=20,
                                        employed=8, median_rate=0.6, shortfall=(0.6 - 0.4) / 0.6,
                                        computed_at=datetime.now(UTC)))
        names = {v: f"学员{k}" for k, v in enumerate(("contradicted", "far", "residents", "certified", "borrower",
                                                       "holder", "clean"))}

        def cell(page: Page, who: str) -> Any:
            return page.locator("#rows tr", has_text=names[who]).locator("td").nth(10)

        auditor = ledger_page(browser, p, p.auditor)
        expect(auditor.locator("thead")).to_contain_text("登记数据比对结果")
        expect(cell(auditor, "far")).to_contain_text("（待核查）")
        expect(cell(auditor, "far")).to_contain_text("533103")
        expect(cell(auditor, "clean")).to_have_text("通过")
        line = auditor.locator("#crosscheck-line")
        expect(line).to_contain_text("比对时间")
        expect(line).to_contain_text("社会保险参保数据 2026-11")
        expect(line).to_contain_text("师资库 2026-11")
        expect(line).to_contain_text("待处置预警 5 条（")
        expect(line).to_contain_text("人员类别不符")
        expect(auditor.locator("#crosscheck-teachers")).to_contain_text("教师：教师年审未通过")
        expect(auditor.locator("#employment")).to_contain_text("40.0%（8/20 人，参保数据 2026-11），全省中位数 60.0%，"
                                                               "低于中位数 33.3%", timeout=15_000)
        expect(auditor.locator("#payment-state")).to_have_text("拨付状态：未标记为可拨付")
        expect(auditor.locator("#mark-payable")).to_be_hidden()  # the auditor does not decide payment
        expect(auditor.locator("#payment-list")).to_be_hidden()
        assert not auditor.errors, auditor.errors  # type: ignore[attr-defined]
        auditor.close()

        admin = ledger_page(browser, p, p.admin)
        expect(admin.locator("#mark-payable")).to_be_visible(timeout=15_000)
        admin.click("#mark-payable")
        msg = admin.locator("#payment-msg")
        expect(msg).to_contain_text("该班次有 5 条登记数据比对预警尚未处置（", timeout=10_000)
        expect(msg).to_contain_text("人员类别不符")
        expect(msg).to_contain_text("处置完毕前不能标记为可拨付")
        expect(admin.locator("#payment-state")).to_have_text("拨付状态：未标记为可拨付")
        admin.screenshot(path=str(tmp_path / "ledger-refused.png"), full_page=True)

        close_all(p, {"CATEGORY_CONTRADICTED", "VOUCHER_INVALID"})  # dispatch settles the alerts
        admin.fill("#payment-note", "第一批")
        admin.click("#mark-payable")
        expect(msg).to_have_text("已标记为可拨付", timeout=10_000)
        state = admin.locator("#payment-state")
        expect(state).to_contain_text("拨付状态：已标记为可拨付（省中心管理员")
        expect(state).to_contain_text("社会保险参保数据 2026-11")
        expect(state).to_contain_text("备注：第一批")
        expect(cell(admin, "far")).to_contain_text("（已确认）")
        expect(admin.locator("#crosscheck-line")).to_contain_text("无待处置预警")
        expect(admin.locator("#mark-payable")).to_be_hidden()
        with admin.expect_download() as download:
            admin.click("#payment-list")
        assert download.value.suggested_filename == "拨付清单_KM-2026-101.xlsx"
        sheet = load_workbook(io.BytesIO(Path(download.value.path()).read_bytes())).active
        assert sheet is not None
        lines = {str(r[0]): str(r[1]) for r in sheet.iter_rows(values_only=True) if r and r[0] and r[1]}
        assert "社会保险参保数据 2026-11" in lines["所依据的登记数据期间"]
        with p.client.app.state.db.session() as s:
            assert s.scalar(select(InstitutionEmployment.completed)) == 20  # nothing recomputed it meanwhile
        admin.screenshot(path=str(tmp_path / "ledger-paid.png"), full_page=True)
        assert not admin.errors, admin.errors  # type: ignore[attr-defined]
        admin.close()
