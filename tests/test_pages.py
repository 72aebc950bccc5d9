"""The pages in a real browser (Debian's Chromium via Playwright): wall screen live feed, site check-in."""

import hashlib
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from openpyxl import load_workbook
from playwright.sync_api import Browser, Page, Route, expect, sync_playwright

from monitor.app import create_app
from monitor.settings import Settings
from tests.helpers import FACES_DIR, VENUE, World, auth, face, issue_token_via_api
from tests.helpers import live_world as running

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture
def live_world(tmp_path: Path) -> Iterator[World]:
    settings = Settings(data_dir=tmp_path / "data", faces_dir=FACES_DIR, clock_interval_seconds=1.0,
                        face_processes=0, clock_rules=False)
    with running(create_app(settings)) as world:
        yield world


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium is not installed; run ./scripts/test.sh")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


def test_wall_screen_shows_the_province_and_live_anomalies(live_world: World, browser: Browser, tmp_path) -> None:
    base = str(live_world.client.base_url)
    context = browser.new_context(viewport={"width": 1920, "height": 1080}, locale="zh-CN")
    page = context.new_page()
    requested: list[str] = []
    page.on("request", lambda req: requested.append(req.url))
    page.goto(f"{base}/wall#token={live_world.operator}")
    assert page.locator("html").get_attribute("lang") == "zh-CN"
    expect(page.locator("h1")).to_have_text("云南省职业技能培训监控调度中心")
    expect(page.locator("#conn")).to_have_text("实时连接正常", timeout=10_000)
    expect(page.locator("#c-classes")).to_have_text("2", timeout=10_000)
    assert page.locator("#map svg").count() >= 1  # ECharts draws the map as SVG (its elements can be measured)
    assert "token" not in page.url  # the token leaves the address bar
    expect(page.locator("#short-count")).to_have_text("2 个", timeout=10_000)  # no class inspected yet
    expect(page.locator("#shortfall li").first).to_contain_text("0/2")
    assert page.evaluate("() => document.documentElement.scrollHeight") <= 1080  # the wall still fits its screen

    live_world.checkin(face("people/kit_harington/john2.jpeg"))  # a face from outside the class
    item = page.locator("#feed li[data-rule=FACE_MISMATCH]").first
    expect(item).to_be_visible(timeout=15_000)
    expect(item).to_contain_text("人脸不符")
    expect(item).to_contain_text("昆明市")
    wait_until(page, "document.querySelector('#feed li img').src.startsWith('blob:')", timeout=15_000)
    expect(page.locator("#c-anomalies")).to_have_text("1", timeout=15_000)
    live_world.checkin(face("people/obama/obama1.jpg"), trainee_id=live_world.biden_id)  # mismatch again
    expect(page.locator("#feed li[data-rule=FACE_MISMATCH] .count")).to_have_text("×2", timeout=15_000)
    assert page.locator("#feed li[data-rule=FACE_MISMATCH]").count() == 1  # one alert, not a flood
    item.click()
    expect(page.locator("#detail")).to_be_visible()
    # The evidence view names the model that judged, its weights' digest and the thresholds.
    expect(page.locator("#detail-facts")).to_contain_text("faceplugin-arcface（模型文件校验码 87aacdfe57510db2…）")
    expect(page.locator("#detail-facts")).to_contain_text("通过阈值 ≤ 0.60，不符阈值 > 0.80")
    wait_until(page, "document.querySelector('#detail-enrolled').naturalWidth > 0", timeout=15_000)
    page.screenshot(path=str(tmp_path / "wall.png"))
    assert requested and all(u.startswith(base.rstrip("/")) or u.startswith("blob:") or u.startswith("data:")
                             for u in requested), [u for u in requested if not u.startswith(base)]
    context.close()


def wait_until(page: Page, expression: str, timeout: float = 15_000) -> None:
    """Poll a JavaScript condition from here: Playwright's wait_for_function evaluates strings with eval in
    the page, which the pages' Content-Security-Policy (no unsafe-eval) rightly refuses."""
    deadline = time.monotonic() + timeout / 1000
    while not page.evaluate(f"() => {{ try {{ return Boolean({expression}); }} catch (e) {{ return false; }} }}"):
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout / 1000:.0f} s: {expression}")
        time.sleep(0.05)


def blob_sha256(page: Page, selector: str) -> str:
    """The SHA-256 of the bytes an <img> shows (its blob: URL fetched inside the page)."""
    return page.evaluate("""async sel => {
        const data = await (await fetch(document.querySelector(sel).src)).arrayBuffer();
        return [...new Uint8Array(await crypto.subtle.digest("SHA-256", data))]
            .map(b => b.toString(16).padStart(2, "0")).join("");
    }""", selector)


def test_wall_screen_shows_and_opens_the_latest_anomaly_of_an_alert(live_world: World, browser: Browser) -> None:
    base = str(live_world.client.base_url)
    page = browser.new_page(viewport={"width": 1920, "height": 1080}, locale="zh-CN")
    page.goto(f"{base}/wall#token={live_world.operator}")
    expect(page.locator("#conn")).to_have_text("实时连接正常", timeout=10_000)
    assert live_world.checkin(face("people/biden/biden2.jpg")).status_code == 201
    item = page.locator("#feed li[data-rule=FACE_MISMATCH]")
    expect(item).to_have_count(1, timeout=15_000)
    wait_until(page, "document.querySelector('#feed li[data-rule=FACE_MISMATCH] img').src.startsWith('blob:')",
                           timeout=15_000)
    assert live_world.checkin(face("people/obama/obama1.jpg"), trainee_id=live_world.biden_id).status_code == 201
    expect(item.locator(".count")).to_have_text("×2", timeout=15_000)

    alerts = live_world.client.get("/api/v1/alerts", headers=auth(live_world.operator)).json()
    alert = next(a for a in alerts if a["rule"] == "FACE_MISMATCH")
    first, latest = alert["anomalies"]  # oldest first
    photos = {}
    for anomaly in (first, latest):
        sha = anomaly["evidence"]["photo_sha256"]
        r = live_world.client.get(f"/api/v1/evidence/{sha}", headers=auth(live_world.operator))
        photos[anomaly["id"]] = hashlib.sha256(r.content).hexdigest()
    assert photos[first["id"]] != photos[latest["id"]]

    for reloaded in (False, True):  # live, then the same alert replayed from the backlog on a fresh page
        if reloaded:
            page.goto(f"{base}/wall#token={live_world.operator}")
            expect(item.locator(".count")).to_have_text("×2", timeout=10_000)
        assert item.count() == 1
        expect(item.locator(".msg")).to_contain_text(latest["message"])
        feed_img = "#feed li[data-rule=FACE_MISMATCH] img"
        wait_until(page, f"document.querySelector('{feed_img}').src.startsWith('blob:')", timeout=15_000)
        deadline = time.monotonic() + 5
        while blob_sha256(page, feed_img) != photos[latest["id"]] and time.monotonic() < deadline:
            time.sleep(0.1)
        assert blob_sha256(page, feed_img) == photos[latest["id"]], "the feed shows the first anomaly's photo"
        item.click()
        expect(page.locator("#detail")).to_be_visible()
        expect(page.locator("#detail")).to_have_attribute("data-anomaly-id", str(latest["id"]))
        expect(page.locator("#detail-message")).to_have_text(latest["message"])
        wait_until(page, "document.querySelector('#detail-photo').src.startsWith('blob:')", timeout=15_000)
        assert blob_sha256(page, "#detail-photo") == photos[latest["id"]]
        page.click("#detail-close")
        expect(page.locator("#detail")).to_be_hidden()
    page.close()


def test_api_docs_render_without_internet(live_world: World, browser: Browser) -> None:
    base = str(live_world.client.base_url).rstrip("/")
    server = urlsplit(base).netloc
    context = browser.new_context(locale="zh-CN")
    requested: list[str] = []
    outside: list[str] = []

    def only_the_server(route: Route) -> None:
        url = route.request.url
        requested.append(url)
        if url.startswith(("data:", "blob:")) or urlsplit(url).netloc == server:
            route.continue_()
        else:
            outside.append(url)
            route.abort()

    context.route("**/*", only_the_server)
    page = context.new_page()
    page.on("request", lambda req: requested.append(req.url))
    page.goto(f"{base}/docs")
    expect(page).to_have_title("云南省职业技能培训监控调度中心 · API")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("云南省职业技能培训监控调度中心", timeout=10_000)
    expect(page.locator(".opblock").first).to_be_visible(timeout=10_000)
    assert page.locator(".opblock").count() > 20
    expect(page.locator(".opblock-summary-path[data-path='/api/v1/health']")).to_have_count(1)
    assert f"{base}/static/vendor/swagger-ui/swagger-ui-bundle.js" in requested
    assert f"{base}/static/vendor/swagger-ui/swagger-ui.css" in requested
    page.wait_for_load_state("networkidle")
    assert not outside, outside
    assert all(urlsplit(u).netloc == server or u.startswith(("data:", "blob:")) for u in requested), requested
    assert live_world.client.get("/redoc").status_code == 404  # ReDoc only loads from a CDN: it is off
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png", "LICENSE"):
        assert live_world.client.get(f"/static/vendor/swagger-ui/{asset}").status_code == 200
    context.close()


def test_wall_screen_asks_for_a_token(live_world: World, browser: Browser) -> None:
    page = browser.new_page()
    page.goto(f"{live_world.client.base_url}/wall")
    expect(page.locator("#login")).to_be_visible()
    page.fill("#login-token", "mon_wrong")
    page.click("#login button")
    expect(page.locator("#login-error")).to_contain_text("令牌", timeout=15_000)
    page.close()


def test_site_phone_page_signs_in_and_says_why_not(live_world: World, browser: Browser, tmp_path) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN", permissions=["geolocation"],
                                  geolocation={"latitude": VENUE[0], "longitude": VENUE[1], "accuracy": 12})
    page = context.new_page()
    page.goto(f"{live_world.client.base_url}/site#token={live_world.site}")
    expect(page.locator("#gps")).to_contain_text("精度 12 米", timeout=15_000)
    expect(page.locator("#trainee option")).to_have_count(2)
    page.select_option("#trainee", str(live_world.obama_id))
    page.set_input_files("#photo", str(FACES_DIR / "people/obama/obama2.jpg"))
    page.click("#submit")
    expect(page.locator("#result .verdict")).to_have_text("签到成功", timeout=15_000)
    page.set_input_files("#photo", str(FACES_DIR / "people/biden/biden2.jpg"))
    page.click("#submit")
    expect(page.locator("#result")).to_contain_text("签到未通过：人脸与登记照片不符", timeout=15_000)
    page.screenshot(path=str(tmp_path / "site.png"))
    context.close()


def test_ledger_page_shows_the_numbers_it_exports(live_world: World, browser: Browser, tmp_path) -> None:
    auditor = issue_token_via_api(live_world.client, live_world.admin, "auditor", "审计")
    page = browser.new_page(accept_downloads=True)
    page.goto(f"{live_world.client.base_url}/ledger#token={auditor}")
    expect(page.locator("#rows tr")).to_have_count(1, timeout=10_000)  # the newest class first: one trainee
    api = live_world.client.get(f"/api/v1/classes/{live_world.class_id}/ledger",
                                headers={"Authorization": f"Bearer {auditor}"}).json()
    page.select_option("#class", str(live_world.class_id))
    expect(page.locator("#rows tr")).to_have_count(2)
    expect(page.locator("#summary")).to_contain_text(f"符合补贴条件 {api['eligible']} 人")
    first = page.locator("#rows tr").first.locator("td")
    assert first.nth(1).inner_text() == api["rows"][0]["name"]
    assert first.nth(3).inner_text() == str(api["rows"][0]["scheduled"])
    with page.expect_download() as download:
        page.click("#xlsx")
    path = tmp_path / "ledger.xlsx"
    download.value.save_as(path)
    sheet = load_workbook(path).active
    assert sheet.cell(2, 2).value == api["rows"][0]["name"] and sheet.cell(2, 4).value == api["rows"][0]["scheduled"]
    page.close()


def test_the_ledger_page_refuses_a_site_before_drawing_any_control(live_world: World, browser: Browser) -> None:
    """A site's token may list its classes but not read a ledger: the page asks who the token is (GET /api/v1/me)
    first and says so, instead of a class list and export buttons over a refusal."""
    page = browser.new_page()
    requested: list[str] = []
    page.on("request", lambda req: requested.append(req.url))
    page.goto(f"{live_world.client.base_url}/ledger#token={live_world.site}")
    expect(page.locator("#error")).to_have_text(
        "当前身份（培训机构）无权访问台账，需要：审计人员、管理员、监控调度员", timeout=10_000)
    expect(page.locator("#tools")).to_be_hidden()
    assert not [u for u in requested if "/registers/sources" in u or "/api/v1/classes" in u], requested
    page.close()
