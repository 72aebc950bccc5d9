"""The spot-check inspector's phone page (/inspector) and the wall screen's dispatch controls, in Debian's Chromium
driven by Playwright: a page pushed live, accepted, a phone check of 5 reached trainees, closed with an outcome;
drafts that survive a reload and a dropped network; the operator dispatching and dismissing from the wall."""

from __future__ import annotations

import base64
import hashlib
import io
import os
import random
import re
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from playwright.sync_api import Browser, BrowserContext, Locator, Page, Route, ViewportSize, expect

from monitor.app import create_app
from monitor.decisions.geodesy import wgs84_to_gcj02
from monitor.decisions.inspection_form import CHECKLIST, RESULTS
from monitor.settings import Settings
from tests.crew import Crew
from tests.helpers import FACES_DIR, REPO, VENUE, World, auth, face, far_fix, running_server
from tests.helpers import live_world as running
from tests.test_pages import browser, wait_until  # noqa: F401 - the module-scoped Chromium fixture
from tests.test_phone_checks import sign_in_verified

PHONE: ViewportSize = {"width": 360, "height": 740}
# MONITOR_DOCS_SCREENSHOTS=1 writes the README's screenshots into docs/ (otherwise into the test's tmp_path).
DOCS = REPO / "docs" if os.environ.get("MONITOR_DOCS_SCREENSHOTS") else None


def settings_for(tmp_path: Path) -> Settings:
    # The dispatch clock is driven by the test (as tests/crew.py does), not by the worker's loop.
    return Settings(data_dir=tmp_path / "data", faces_dir=FACES_DIR, clock_interval_seconds=1.0, face_processes=0,
                    clock_rules=False, dispatch_interval_seconds=3600, dispatch_accept_minutes=10)


def enlist(world: World) -> tuple[dict[str, int], dict[str, str]]:
    """Inspectors on duty, each with a token naming them: two of the class's county (one tied to its school, so
    recused), one of its prefecture."""
    c, now = world.client, datetime.now(UTC)
    staff, tokens = {}, {}
    roster = {"county_a": ("县区抽查员甲", "county", "530102"), "county_tied": ("县区抽查员乙", "county", "530102"),
              "prefecture": ("州市抽查员丙", "prefecture", "530100")}
    for n, (key, (name, level, region)) in enumerate(roster.items()):
        r = c.post("/api/v1/staff", headers=auth(world.admin), json={
            "name": name, "phone": f"1390000000{n}", "level": level, "region_code": region})
        assert r.status_code == 201, r.text
        staff[key] = r.json()["id"]
        duty = c.post(f"/api/v1/staff/{staff[key]}/duty", headers=auth(world.operator), json={
            "starts_at": (now - timedelta(hours=1)).isoformat(), "ends_at": (now + timedelta(hours=8)).isoformat()})
        assert duty.status_code == 201, duty.text
        r = c.post("/api/v1/tokens", headers=auth(world.admin), json={"role": "inspector", "name": name,
                                                                       "staff_id": staff[key]})
        assert r.status_code == 201, r.text
        tokens[key] = r.json()["token"]
    tie = c.post(f"/api/v1/staff/{staff['county_tied']}/ties", headers=auth(tokens["county_tied"]),
                 json={"institution_id": world.ids["institution"], "relation": "spouse", "note": "配偶任该校校长"})
    assert tie.status_code == 201, tie.text
    return staff, tokens


@pytest.fixture
def crew_live(tmp_path: Path) -> Iterator[Crew]:
    """The app behind a real server with the test world and its inspectors."""
    with running(create_app(settings_for(tmp_path))) as world:
        staff, tokens = enlist(world)
        yield Crew(world, staff, tokens)


def server_only(context: BrowserContext, base: str) -> tuple[list[str], list[str]]:
    """Every request the pages make (and any aimed elsewhere, refused): nothing may leave the server."""
    server = urlsplit(base).netloc
    requested: list[str] = []
    outside: list[str] = []

    def route(r: Route) -> None:
        url = r.request.url
        requested.append(url)
        # data:/blob: are the page's own bytes; chrome:// and chrome-extension:// are the browser's built-in PDF
        # viewer loading its own files: none of them is a request over the network.
        if url.startswith(("data:", "blob:", "chrome:", "chrome-extension:")) or urlsplit(url).netloc == server:
            r.continue_()
        else:
            outside.append(url)
            r.abort()

    context.route("**/*", route)
    return requested, outside


def fits(page: Page, width: int = PHONE["width"]) -> None:
    scroll = page.evaluate("document.documentElement.scrollWidth")
    assert scroll <= width, f"the page is {scroll} px wide at {width} px"


def save_png(path: Path, png: bytes, limit: int = 300_000) -> None:
    """A screenshot, as a palette PNG when the full-colour one is larger than `limit` bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if len(png) > limit:
        out = io.BytesIO()
        Image.open(io.BytesIO(png)).convert("RGB").quantize(colors=128).save(out, "PNG", optimize=True)
        png = out.getvalue()
    path.write_bytes(png)


def no_dialler(page: Page) -> None:
    """The test browser has no dialler: a tap on a tel: link must not leave the page (the page's own handler, which
    starts timing the call, still runs)."""
    page.evaluate("document.addEventListener('click', e => { if (e.target.closest('a.tel')) e.preventDefault(); },"
                  " true)")


def sign_in_by_link(crew: Crew, page: Page, who: str) -> None:
    """`who` signs in by the one-time link an admin issued (no token pasted anywhere); the page goes live."""
    base = str(crew.client.base_url).rstrip("/")
    link = crew.client.post(f"/api/v1/staff/{crew.staff[who]}/sign-in-links", headers=auth(crew.world.admin))
    assert link.status_code == 201, link.text
    page.goto(link.json()["url"].replace("http://localhost:8000", base))
    expect(page.locator("#conn")).to_have_text("实时连接正常", timeout=10_000)
    assert "signin" not in page.url and "token" not in page.url


def call_trainee(page: Page, trainee_id: int, answers: str, seconds: int) -> None:
    """One call of the phone check as the page times it: the tel: link starts it, coming back ends it (`seconds`
    long, in real time: the center refuses calls that overlap or start before the draw, so a call cannot be made
    to look longer than it was), then reached, present and what was said, saved."""
    row = page.locator(f"#check-list li[data-trainee-id='{trainee_id}']")
    row.locator("a.tel").tap()  # the page starts timing the call
    expect(row.locator(".timing")).to_contain_text("通话中")
    page.wait_for_timeout(seconds * 1000)  # on the phone
    row.locator("button.stop").tap()  # back on the page (a real phone ends it on visibilitychange)
    # Rounded to the second, the tap's own time included: a slow tap may make it one more.
    said = [f"{s // 60} 分 {s % 60} 秒" if s >= 60 else f"{s} 秒" for s in (seconds, seconds + 1)]
    expect(row.locator(".timing")).to_contain_text(re.compile(f"通话 ({'|'.join(said)})"))
    row.locator("input[name=reached][value=yes]").check()
    row.locator("input[name=present]").check()
    row.locator("textarea[name=answers]").fill(answers)
    row.locator("button[type=submit]").tap()
    expect_call_saved(page, trainee_id)
    expect(page.locator(f"#check-list li[data-trainee-id='{trainee_id}'] .last")).to_contain_text("本页计时")


def expect_call_saved(page: Page, trainee_id: int) -> None:
    """The call just submitted is the row's last call, reached and present; if not, the row's own words (the
    refusal the page shows, or 正在保存… while the answer is still awaited) say why."""
    row = page.locator(f"#check-list li[data-trainee-id='{trainee_id}']")
    try:  # a machine busy with the whole suite and the scheduler's passes in this process answers slowly
        expect(row.locator(".last")).to_contain_text("已接通 · 确认在班", timeout=20_000)
    except AssertionError as e:
        raise AssertionError(f"{e}\nthe row reads: {row.inner_text()!r}") from e


def form_item(form: Locator, key: str) -> Locator:
    return form.locator(f"#insp-items li[data-key='{key}']")


def tick_items(form: Locator) -> None:
    """The checklist as found: every item in order but the headcount (a problem) and teaching quality (not checked)."""
    for key in CHECKLIST:
        form_item(form, key).locator("input[value=ok]").check()
    form_item(form, "headcount").locator("input[value=problem]").check()
    form_item(form, "quality").locator("input[value=not_checked]").check()


def take_photos(page: Page) -> None:
    """Two photos from the camera, shown as thumbnails."""
    page.set_input_files("#insp-photos", [FACES_DIR / "groups/two_people.jpg", FACES_DIR / "people/obama/obama.jpg"])
    expect(page.locator("#insp-thumbs img")).to_have_count(2)
    wait_until(page, "[...document.querySelectorAll('#insp-thumbs img')].every(i => i.complete && i.naturalWidth > 0)")
    expect(page.locator("#insp-photo-count")).to_contain_text("已拍 2 张")


def sign_both(page: Page) -> None:
    """The responsible person signs with a finger (here the mouse: the same pointer events), then the inspector."""
    for pad_id in ("#insp-sign", "#insp-sign-mine"):
        pad = page.locator(pad_id)
        pad.scroll_into_view_if_needed()
        box = pad.bounding_box()
        assert box is not None and box["width"] <= PHONE["width"]
        x0, y0, w, h = box["x"], box["y"], box["width"], box["height"]
        page.mouse.move(x0 + 0.1 * w, y0 + 0.7 * h)
        page.mouse.down()
        for fx, fy in [(0.25, 0.25), (0.4, 0.75), (0.55, 0.3), (0.7, 0.7), (0.9, 0.4)]:
            page.mouse.move(x0 + fx * w, y0 + fy * h, steps=6)
        page.mouse.up()
        expect(pad).to_have_class(re.compile(r"\bsigned\b"))


def open_pdf(page: Page, context: BrowserContext, inspection_id: int) -> bytes:
    """The filed form's PDF link tapped: the page fetches it with its token, checks its digest and opens it from a
    blob: URL in a new tab. The bytes the page opened."""
    selector = f"#insp-filed li[data-inspection-id='{inspection_id}'] a.pdf"
    with context.expect_page() as opened:
        page.locator(selector).tap()
    viewer = opened.value
    assert viewer.url.startswith("blob:") and viewer.url == page.locator(selector).get_attribute("href"), viewer.url
    pdf = base64.b64decode(page.evaluate("""async sel => {
        const blob = await (await fetch(document.querySelector(sel).href)).blob();
        return await new Promise(done => {
            const reader = new FileReader();
            reader.onload = () => done(reader.result.split(",")[1]);
            reader.readAsDataURL(blob);
        });
    }""", selector))
    assert pdf.startswith(b"%PDF")
    expect(page.locator("#insp-done-msg")).to_contain_text("摘要已核对", timeout=15_000)
    expect(page.locator("#insp-done-msg")).to_contain_text(hashlib.sha256(pdf).hexdigest()[:16])
    viewer.close()
    return pdf


def test_the_page_converts_to_gcj02_as_the_center_does(tmp_path: Path, browser: Browser) -> None:  # noqa: F811
    rng = random.Random(14)
    points = [VENUE, (25.6065, 100.2676), (22.0080, 100.7970), (27.8, 99.7), (39.9087, 116.3975), (0.83, 72.01),
              (55.82, 137.83), (35.68, 139.69), (-33.86, 151.21), (51.5, -0.12)]
    points += [(rng.uniform(21.1, 29.3), rng.uniform(97.5, 106.2)) for _ in range(200)]  # across Yunnan
    with running_server(create_app(settings_for(tmp_path))) as base:
        page = browser.new_page()
        page.goto(f"{base}/inspector")
        expect(page.locator("#login")).to_be_visible()  # no token: it asks for one
        got = page.evaluate("points => points.map(([lat, lon]) => Gcj02.fromWgs84(lat, lon))", points)
        page.close()
    for (lat, lon), (jlat, jlon) in zip(points, got, strict=True):
        plat, plon = wgs84_to_gcj02(lat, lon)
        assert abs(jlat - plat) < 1e-10 and abs(jlon - plon) < 1e-10, ((lat, lon), (jlat, jlon), (plat, plon))
    assert got[0] != list(VENUE) and got[7] == [35.68, 139.69]  # Kunming moves; Tokyo is outside China


def test_the_inspector_works_a_page_from_phone_to_history(crew_live: Crew, browser: Browser) -> None:  # noqa: F811
    crew = crew_live
    base = str(crew.client.base_url).rstrip("/")
    signed = sign_in_verified(crew, 6)  # with Obama, 7 trainees signed in today: 6 of them have a phone
    context = browser.new_context(viewport=PHONE, locale="zh-CN", has_touch=True, is_mobile=True,
                                  permissions=["notifications"])
    requested, outside = server_only(context, base)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    sign_in_by_link(crew, page, "county_a")
    assert page.locator("html").get_attribute("lang") == "zh-CN"
    expect(page.locator("#me")).to_contain_text("县区抽查员甲")
    expect(page.locator("#tasks-empty")).to_be_visible()
    page.locator("header").tap()  # a user gesture: sound and vibration may now be used
    expect(page.locator("#sound")).to_contain_text("已开启")

    # An anomaly, the dispatch clock pages the county inspector: the page shows it live, with a countdown.
    alert_id = crew.alert_id()
    assert crew.clock().run() == {"escalated": 0, "routed": 1}
    card = page.locator(f"#tasks li[data-alert-id='{alert_id}']")
    expect(card).to_be_visible(timeout=15_000)
    expect(card).to_contain_text("人脸不符")
    expect(card).to_contain_text("测试班0")
    expect(card.locator(".badge")).to_have_text("已派发")
    expect(card.locator(".due")).to_contain_text("剩余 9 分")
    wait_until(page, "document.body.dataset.paged === '1'")
    wait_until(page, "document.body.dataset.sounded === '1'")
    wait_until(page, "document.body.dataset.notified === '1'")  # and a system notification, the page open
    fits(page)

    card.locator("button.accept").tap()
    expect(page.locator("#task-view")).to_be_visible(timeout=15_000)
    expect(page.locator("#t-state")).to_have_text("已接单")
    facts = page.locator("#t-facts")
    for text in ("测试班0", "测试培训学校0", "人脸不符", "教学楼0", "场地地址", "机构电话"):
        expect(facts).to_contain_text(text)
    expect(facts).not_to_contain_text("FACE_MISMATCH")  # the rule's name, not its code
    # Whom to look for: the trainee the anomaly names, with the check-in photo next to an enrolled one.
    subject = page.locator("#t-subjects li.subject")
    expect(subject).to_have_count(1)
    expect(subject).to_contain_text("欧建国")
    expect(subject.locator("img[src^='blob:']")).to_have_count(2, timeout=15_000)
    if DOCS:  # the task as it arrives: the alert, where, whom (with the photos), navigation
        page.set_viewport_size({"width": PHONE["width"], "height": 1100})
        page.evaluate("window.scrollTo(0, 0)")
        save_png(DOCS / "inspector-task-360.png", page.screenshot())
        page.set_viewport_size(PHONE)
    glat, glon = wgs84_to_gcj02(*VENUE)
    amap = urlsplit(page.locator("#nav-amap").get_attribute("href") or "")
    assert (amap.scheme, amap.netloc, amap.path) == ("https", "uri.amap.com", "/marker")
    query = parse_qs(amap.query)
    lon, lat = (float(v) for v in query["position"][0].split(","))
    assert abs(lat - glat) < 1e-6 and abs(lon - glon) < 1e-6 and query["coordinate"] == ["gaode"]
    assert abs(glat - VENUE[0]) + abs(glon - VENUE[1]) > 1e-3  # GCJ-02 really differs from the GPS fix
    assert (page.locator("#nav-geo").get_attribute("href") or "").startswith(f"geo:{VENUE[0]:.6f},{VENUE[1]:.6f}")

    page.locator("#phone").tap()
    rows = page.locator("#check-list li.trainee")
    expect(rows).to_have_count(8, timeout=15_000)  # the whole roster: 6 signed in, Obama, and Biden (absent)
    expect(page.locator("#t-state")).to_have_text("电话抽查中")
    check_id = page.evaluate(f"JSON.parse(localStorage.getItem('monitor.inspector.check.{alert_id}'))")
    check = crew.client.get(f"/api/v1/phone-checks/{check_id}", headers=auth(crew.tokens["county_a"])).json()
    phones = {t["trainee_id"]: t["phone"] for t in check["trainees"]}
    assert set(phones) == set(signed) | {crew.world.obama_id, crew.world.biden_id}
    for trainee_id, phone in phones.items():
        tel = page.locator(f"#check-list li[data-trainee-id='{trainee_id}'] a.tel")
        if phone:
            expect(tel).to_have_attribute("href", f"tel:{phone}")
        else:
            expect(tel).to_have_count(0)  # and it cannot be marked reached
            expect(page.locator(f"#check-list li[data-trainee-id='{trainee_id}'] input[name=reached][value=yes]")
                   ).to_be_disabled()
    expect(page.locator(f"#check-list li[data-trainee-id='{crew.world.biden_id}'] .state")).to_have_text("今日未签到")
    fits(page)
    callees = [t for t in signed if phones[t]]
    no_dialler(page)
    for n, trainee_id in enumerate(callees[:4]):
        call_trainee(page, trainee_id, f"在教室上课，今天讲刀工（第 {n + 1} 位）", 6)
    expect(page.locator("#check-summary")).to_contain_text("已接通 4 人")
    if DOCS:  # the top of the task: the alert, its navigation links and the first trainees to call
        page.set_viewport_size({"width": PHONE["width"], "height": 1500})
        page.evaluate("window.scrollTo(0, 0)")
        save_png(DOCS / "inspector-360.png", page.screenshot())
        page.set_viewport_size(PHONE)
    page.locator("#complete").tap()  # 4 reached: the server refuses, and says why
    expect(page.locator("#check-msg")).to_contain_text("还需接通 1 人", timeout=15_000)

    # A call note being typed survives a reload.
    fifth = page.locator(f"#check-list li[data-trainee-id='{callees[4]}']")
    fifth.locator("input[name=reached][value=yes]").check()
    fifth.locator("textarea[name=answers]").fill("学员说正在实操间练习")
    page.reload()
    fifth = page.locator(f"#check-list li[data-trainee-id='{callees[4]}']")
    expect(fifth.locator("textarea[name=answers]")).to_have_value("学员说正在实操间练习", timeout=10_000)
    expect(fifth.locator("input[name=reached][value=yes]")).to_be_checked()
    expect(fifth).to_contain_text("已恢复本机保存的草稿")
    no_dialler(page)
    call_trainee(page, callees[4], "学员说正在实操间练习", 6)
    page.locator("#complete").tap()
    expect(page.locator("#check-summary")).to_contain_text("抽查已完成", timeout=15_000)
    expect(page.locator("#check-summary")).to_contain_text("接通 5 人")

    # The close note survives a dropped network (a clear message, nothing lost) and a reload.
    page.locator("#close-form input[value=false_alarm]").check()
    page.locator("#close-note").fill("电话抽查 5 人均在班，系照片误判")
    context.set_offline(True)
    page.locator("#close-submit").tap()
    expect(page.locator("#close-msg")).to_contain_text("网络异常", timeout=15_000)
    expect(page.locator("#net")).to_be_visible()
    context.set_offline(False)
    page.reload()
    expect(page.locator("#close-note")).to_have_value("电话抽查 5 人均在班，系照片误判", timeout=10_000)
    expect(page.locator("#close-form input[value=false_alarm]")).to_be_checked()
    expect(page.locator("#check-summary")).to_contain_text("抽查已完成", timeout=15_000)
    assert crew.detail(alert_id).json()["state"] == "phoning"  # nothing was sent while offline
    page.locator("#close-submit").tap()

    done = page.locator(f"#history li[data-alert-id='{alert_id}']")
    expect(done).to_be_visible(timeout=15_000)
    expect(done).to_contain_text("处置结果：误报")
    expect(done).to_contain_text("电话抽查 5 人均在班")
    expect(page.locator("#tasks-empty")).to_be_visible()
    fits(page)
    detail = crew.detail(alert_id).json()
    assert (detail["state"], detail["outcome"]) == ("closed", "false_alarm")
    assert [t["action"] for t in detail["transitions"]] == ["dispatch", "accept", "phone", "close"]
    assert detail["transitions"][-1]["actor"] == "县区抽查员甲"
    calls = crew.client.get(f"/api/v1/phone-checks/{check_id}", headers=auth(crew.world.operator)).json()
    assert (calls["state"], calls["reached"], calls["confirmed_present"]) == ("done", 5, 5)
    assert page.evaluate("Object.keys(localStorage).filter(k => k.includes('draft'))") == []  # sent: drafts gone
    page.wait_for_load_state("networkidle")
    assert not outside, outside
    assert requested and all(u.startswith((base, "data:", "blob:")) for u in requested), requested
    assert not errors, errors
    context.close()


def test_an_escalated_page_is_phoned_inspected_signed_and_closed(crew_live: Crew,  # noqa: F811
                                                                 browser: Browser) -> None:  # noqa: F811
    """The whole story at 360 px: the county inspector lets the page lapse, the prefecture's inspector gets it live,
    phones 5 trainees, fills the inspection form with two photos and a finger-drawn signature, opens its PDF,
    closes the alert, and finds it in the history."""
    crew = crew_live
    base = str(crew.client.base_url).rstrip("/")
    settings = crew.client.app.state.settings
    signed = sign_in_verified(crew, 6)
    context = browser.new_context(viewport=PHONE, locale="zh-CN", has_touch=True, is_mobile=True)
    requested, outside = server_only(context, base)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{base}/inspector#token={crew.tokens['prefecture']}")
    expect(page.locator("#conn")).to_have_text("实时连接正常", timeout=10_000)
    expect(page.locator("#me")).to_contain_text("州市抽查员丙")
    page.locator("header").tap()

    # The anomaly is paged to the county's inspector, who does not answer: the deadline passing escalates it.
    alert_id = crew.alert_id()
    now = datetime.now(UTC)
    assert crew.clock().run(now) == {"escalated": 0, "routed": 1}
    assert [(p["staff_id"], p["state"]) for p in crew.detail(alert_id).json()["pages"]] == [
        (crew.staff["county_a"], "paged")]
    late = now + timedelta(minutes=settings.dispatch_accept_minutes, seconds=1)
    assert crew.clock().run(late) == {"escalated": 1, "routed": 0}
    pages = crew.detail(alert_id).json()["pages"]
    assert [(p["staff_id"], p["level"], p["state"]) for p in pages] == [
        (crew.staff["county_a"], "county", "expired"), (crew.staff["prefecture"], "prefecture", "paged")]

    card = page.locator(f"#tasks li[data-alert-id='{alert_id}']")
    expect(card).to_be_visible(timeout=15_000)
    expect(card.locator(".badge")).to_have_text("已派发")
    expect(card.locator(".due")).to_contain_text("剩余")
    wait_until(page, "document.body.dataset.paged === '1'")
    card.locator("button.accept").tap()
    expect(page.locator("#task-view")).to_be_visible(timeout=15_000)
    expect(page.locator("#t-state")).to_have_text("已接单")
    form = page.locator("#insp-form")
    expect(form).to_be_visible()
    expect(form.locator("input[name=kind][value=on_site]")).to_be_checked()  # accepted: on site by default
    # Folded until it is needed: here, until the phone check is done.
    expect(form.locator("#insp-items")).to_be_hidden()
    expect(page.locator("#insp-unfold")).to_be_visible()

    # The phone check: 5 reached, then done.
    page.locator("#phone").tap()
    expect(page.locator("#check-list li.trainee")).to_have_count(8, timeout=15_000)
    expect(page.locator("#t-state")).to_have_text("电话抽查中")
    expect(page.locator("#t-msg")).to_contain_text(re.compile(r"本次抽查于 \d\d:\d\d:\d\d 从班级名册随机抽取 8 名学员"))
    expect(form.locator("input[name=kind][value=phone]")).to_be_checked()  # the kind follows the state
    no_dialler(page)
    check_id = page.evaluate(f"JSON.parse(localStorage.getItem('monitor.inspector.check.{alert_id}'))")
    check = crew.client.get(f"/api/v1/phone-checks/{check_id}", headers=auth(crew.tokens["prefecture"])).json()
    callees = [t["trainee_id"] for t in check["trainees"] if t["phone"] and t["trainee_id"] in signed]
    for n, trainee_id in enumerate(callees[:5]):
        row = page.locator(f"#check-list li[data-trainee-id='{trainee_id}']")
        row.locator("a.tel").tap()
        page.wait_for_timeout(6000)  # on the phone (in real time: calls may not overlap or predate the draw)
        row.locator("input[name=reached][value=yes]").check()
        row.locator("input[name=present]").check()
        row.locator("textarea[name=answers]").fill(f"在教室上课（第 {n + 1} 位）")
        row.locator("button[type=submit]").tap()  # saving ends the call's timing
        expect_call_saved(page, trainee_id)
    page.locator("#complete").tap()
    expect(page.locator("#check-summary")).to_contain_text("抽查已完成", timeout=15_000)
    expect(page.locator("#check-summary")).to_contain_text("接通 5 人")
    expect(form.locator("#insp-items")).to_be_visible()  # the check is done: the form unfolds
    expect(page.locator("#insp-unfold")).to_be_hidden()

    # The form: its eight items come from the catalogue the server serves.
    items = form.locator("#insp-items li.item")
    expect(items).to_have_count(len(CHECKLIST))
    for n, (key, label) in enumerate(CHECKLIST.items()):
        expect(items.nth(n)).to_have_attribute("data-key", key)
        expect(items.nth(n)).to_contain_text(label)
        expect(items.nth(n)).to_contain_text("不符合")

    def item(key: str) -> Locator:
        return form_item(form, key)

    tick_items(form)
    page.fill("#insp-responsible", "张校长")
    # A problem without its note, no findings and no signature: the page says what is missing and sends nothing.
    page.locator("#insp-submit").tap()
    msg = page.locator("#insp-msg")
    expect(msg).to_contain_text("须写明具体情况")
    expect(msg).to_contain_text("须填写检查发现")
    expect(msg).to_contain_text("签名为空")
    item("headcount").locator("textarea").fill("签到 7 人，在场 5 人")
    page.fill("#insp-findings", "在场学员少于签到人数，2 人疑似代签")
    page.fill("#insp-headcount", "5")
    page.locator("#insp-submit").tap()
    expect(msg).to_have_text("签名为空：请现场负责人在签名框内签名；检查人员签名为空：请您本人在检查人员签名框内签名")
    assert crew.client.get(f"/api/v1/inspections?class_id={crew.world.class_id}",
                           headers=auth(crew.world.operator)).json() == []

    # What was typed survives a reload (the photos and the signature are taken again).
    page.reload()
    form = page.locator("#insp-form")
    expect(item("headcount").locator("textarea")).to_have_value("签到 7 人，在场 5 人", timeout=10_000)
    expect(item("headcount").locator("input[value=problem]")).to_be_checked()
    expect(item("quality").locator("input[value=not_checked]")).to_be_checked()
    expect(item("venue").locator("input[value=ok]")).to_be_checked()
    expect(page.locator("#insp-findings")).to_have_value("在场学员少于签到人数，2 人疑似代签")
    expect(page.locator("#insp-headcount")).to_have_value("5")
    expect(page.locator("#insp-responsible")).to_have_value("张校长")
    expect(page.locator("#insp-draft")).to_contain_text("已恢复本机保存的草稿")
    expect(form.locator("input[name=kind][value=phone]")).to_be_checked()

    take_photos(page)
    sign_both(page)
    fits(page)
    if DOCS:  # the filled form, signed by both, as the inspector sees it before sending
        save_png(DOCS / "inspector-form-360.png", form.screenshot())
    page.locator("#insp-submit").tap()

    done = page.locator("#insp-done")
    expect(done).to_be_visible(timeout=10_000)
    expect(done).to_contain_text("检查表已归档")
    expect(form).to_be_hidden()
    filed = crew.client.get(f"/api/v1/inspections?class_id={crew.world.class_id}",
                            headers=auth(crew.world.operator)).json()
    assert len(filed) == 1
    form_row = filed[0]
    assert (form_row["alert_id"], form_row["kind"], form_row["inspector"], form_row["responsible_name"],
            form_row["headcount_present"]) == (alert_id, "phone", "州市抽查员丙", "张校长", 5)
    assert form_row["items"]["headcount"] == {"result": "problem", "note": "签到 7 人，在场 5 人"}
    assert form_row["items"]["quality"]["result"] == "not_checked"
    assert {k for k, v in form_row["items"].items() if v["result"] == "ok"} == set(CHECKLIST) - {"headcount", "quality"}
    assert len(form_row["photo_sha256s"]) == 2
    sent = {hashlib.sha256(face(p)).hexdigest() for p in ("groups/two_people.jpg", "people/obama/obama.jpg")}
    assert set(form_row["photo_sha256s"]) == sent
    signature = crew.client.get(f"/api/v1/evidence/{form_row['signature_sha256']}", headers=auth(crew.world.operator))
    ink = Image.open(io.BytesIO(signature.content))
    assert ink.format == "PNG" and ink.mode == "RGBA" and ink.getchannel("A").getbbox() is not None  # strokes
    mine = crew.client.get(f"/api/v1/evidence/{form_row['inspector_signature_sha256']}",
                           headers=auth(crew.world.operator))
    assert mine.status_code == 200 and Image.open(io.BytesIO(mine.content)).getchannel("A").getbbox() is not None
    # Each photo carries the time the page took it (no fix: this phone gave none).
    assert all(p["captured_at"] and p["fix"] is None for p in form_row["photos"])

    # The PDF link: the shown digest is the PDF's, and the page opens it from a blob: URL fetched with the token.
    link = page.locator(f"#insp-filed li[data-inspection-id='{form_row['id']}'] a.pdf")
    expect(link).to_have_attribute("href", form_row["pdf_url"])
    pdf = crew.client.get(form_row["pdf_url"], headers=auth(crew.tokens["prefecture"]))
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    digest = hashlib.sha256(pdf.content).hexdigest()
    assert digest == form_row["pdf_sha256"]
    if DOCS:  # the PDF's first page as printed (poppler's pdftoppm, as the archival tests use)
        (DOCS / "form.pdf").write_bytes(pdf.content)
        subprocess.run(["pdftoppm", "-png", "-r", "80", "-f", "1", "-l", "1", "-singlefile", str(DOCS / "form.pdf"),
                        str(DOCS / "form-pdf-page1")], check=True)
        (DOCS / "form.pdf").unlink()
        save_png(DOCS / "form-pdf-page1.png", (DOCS / "form-pdf-page1.png").read_bytes())
    expect(page.locator(f"#insp-filed li[data-inspection-id='{form_row['id']}'] .sha")).to_contain_text(digest[:16])
    assert open_pdf(page, context, form_row["id"]) == pdf.content
    fits(page)

    # Closed with an outcome: it moves to the history, with its form.
    page.locator("#close-form input[value=violation_confirmed]").check()
    page.locator("#close-note").fill(f"电话抽查在场 5 人，2 人疑似代签，见检查表第 {form_row['id']} 号")
    page.locator("#close-submit").tap()
    history = page.locator(f"#history li[data-alert-id='{alert_id}']")
    expect(history).to_be_visible(timeout=15_000)
    expect(history).to_contain_text("处置结果：确认违规")
    expect(history).to_contain_text("已归档检查表 1 份")
    fits(page)
    detail = crew.detail(alert_id).json()
    assert (detail["state"], detail["outcome"], detail["inspection_ids"]) == (
        "closed", "violation_confirmed", [form_row["id"]])
    assert [t["action"] for t in detail["transitions"]] == ["dispatch", "escalate", "accept", "phone", "close"]
    assert page.evaluate("Object.keys(localStorage).filter(k => k.includes('draft'))") == []
    page.wait_for_load_state("networkidle")
    assert not outside, outside
    assert not errors, errors
    context.close()


def open_wall_as_operator(chromium: Browser, crew: Crew) -> tuple[BrowserContext, Page, list[str], list[str],
                                                                    list[str]]:
    """The wall at 1920x1080 as the operator, live: its context, page, the URLs it requested (all from this server,
    `outside` lists any other) and the page errors seen."""
    base = str(crew.client.base_url).rstrip("/")
    context = chromium.new_context(viewport={"width": 1920, "height": 1080}, locale="zh-CN")
    requested, outside = server_only(context, base)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{base}/wall#token={crew.world.operator}")
    expect(page.locator("#conn")).to_have_text("实时连接正常", timeout=10_000)
    return context, page, requested, outside, errors


def test_the_operator_dispatches_and_dismisses_from_the_wall(crew_live: Crew, browser: Browser,  # noqa: F811
                                                            tmp_path: Path) -> None:
    crew = crew_live
    base = str(crew.client.base_url).rstrip("/")
    alert_id = crew.alert_id()
    context, page, requested, outside, errors = open_wall_as_operator(browser, crew)
    item = page.locator(f"#feed li[data-alert-id='{alert_id}']")
    expect(item.locator(".state-badge")).to_have_text("待处置", timeout=10_000)
    item.click()
    expect(page.locator("#dispatch")).to_be_visible()
    expect(page.locator("#dispatch-state")).to_have_text("待处置", timeout=15_000)
    expect(page.locator("#dispatch-pages")).to_contain_text("尚未派发")
    expect(page.locator("#dispatch-history")).to_contain_text("暂无处置记录")
    options = page.locator("#dispatch-staff option")
    expect(options).to_have_count(3)  # the router's draw, the county inspector and the prefecture's; not the recused
    assert page.locator(f"#dispatch-staff option[value='{crew.staff['county_tied']}']").count() == 0
    page.select_option("#dispatch-staff", str(crew.staff["county_a"]))
    page.click("#btn-dispatch")
    expect(page.locator("#dispatch-state")).to_have_text("已派发", timeout=15_000)
    expect(page.locator("#dispatch-msg")).to_contain_text("已派发：县区抽查员甲")
    expect(page.locator("#dispatch-pages")).to_contain_text("县区抽查员甲")
    expect(page.locator("#dispatch-pages")).to_contain_text("待接单")
    expect(page.locator("#dispatch-history")).to_contain_text("派发 · 值班员")
    expect(item.locator(".state-badge")).to_have_text("已派发")
    expect(page.locator("#btn-dispatch")).to_be_hidden()

    page.locator("#dispatch").scroll_into_view_if_needed()
    page.fill("#dispatch-note", "同一学员刚在另一班次核验通过，系照片光线问题")
    png = page.locator(".detail-box").screenshot()
    save_png((DOCS or tmp_path) / "wall-dispatch.png", png)
    page.fill("#dispatch-note", "")
    page.click("#btn-dismiss")
    expect(page.locator("#dispatch-msg")).to_contain_text("不予派发必须填写说明")
    assert crew.detail(alert_id).json()["state"] == "dispatched"
    page.fill("#dispatch-note", "同一学员刚在另一班次核验通过，系照片光线问题")
    page.click("#btn-dismiss")
    expect(page.locator("#dispatch-state")).to_have_text("已办结", timeout=15_000)
    expect(page.locator("#dispatch-history")).to_contain_text("不予派发 · 值班员：同一学员刚在另一班次核验通过")
    expect(page.locator("#dispatch-facts")).to_contain_text("误报")
    expect(page.locator("#dispatch-pages")).to_contain_text("已撤回")
    expect(item.locator(".state-badge")).to_have_text("已办结")
    expect(page.locator("#btn-reopen")).to_be_visible()
    expect(page.locator("#btn-dismiss")).to_be_hidden()
    detail = crew.detail(alert_id).json()
    assert (detail["state"], detail["outcome"]) == ("closed", "false_alarm")
    assert detail["transitions"][-1]["note"] == "同一学员刚在另一班次核验通过，系照片光线问题"

    # A reloaded wall shows the state again.
    page.goto(f"{base}/wall#token={crew.world.operator}")
    expect(page.locator(f"#feed li[data-alert-id='{alert_id}'] .state-badge")).to_have_text("已办结", timeout=10_000)
    page.wait_for_load_state("networkidle")
    assert not outside, outside
    assert all(u.startswith((base, "data:", "blob:")) for u in requested), requested
    assert not errors, errors
    context.close()


def test_the_inspector_page_is_served_with_the_strict_policy(client: TestClient) -> None:
    r = client.get("/inspector")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-eval" not in csp and r.headers["x-frame-options"] == "DENY"
    for tag in r.text.split("<script")[1:]:
        assert re.match(r'(type="module"\s+)?src="/static/[^"]+"></script>', tag.lstrip()), tag[:80]  # no inline
    assert not re.search(r"<[^>]*\son[a-z]+\s*=", r.text), "an inline event handler (the CSP refuses it)"
    # One entry module, which imports the rest: no classic script (the retired common.js) and no second page script.
    assert re.findall(r'<script[^>]*src="([^"]+)"', r.text) == ["/static/inspector/main.js"]
    for asset in ("inspector/main.js", "inspector/draws.js", "inspector.css", "lib/api.js", "lib/live.js"):
        assert client.get(f"/static/{asset}").status_code == 200
    # The page's code is ES modules, none over 400 lines (issue 19: the front end shaped like the back end).
    static = REPO / "web" / "static"
    modules = sorted((static / "inspector").glob("*.js"))
    assert len(modules) >= 6 and all(len(m.read_text(encoding="utf-8").splitlines()) <= 400 for m in modules)
    # ...in layers, as the back end: the shared library (web/static/lib) below every page module, then state < ui <
    # alerts, draws < phone, form, close < task < main; none imports one above it, nor the old global `Monitor`.
    layer = {"state": 0, "gcj02": 0, "ui": 1, "alerts": 2, "draws": 2, "phone": 3, "form": 3, "close": 3, "task": 4,
             "main": 5}
    assert {m.stem for m in modules} == set(layer)
    imports = re.compile(r'^(?:import|export)\b[^;]*?"(\.{1,2})/([\w/-]+)\.js";', re.M)  # also `import "./x.js";`
    for m in modules:
        text = m.read_text(encoding="utf-8")
        assert not re.search(r"\bMonitor\b", text), f"{m.name} still uses the global Monitor (common.js)"
        for up, name in imports.findall(text):
            if up == "..":
                assert name.startswith("lib/") and (static / f"{name}.js").is_file(), f"{m.name} imports {name}.js"
            else:
                assert layer[name] < layer[m.stem], f"{m.name} imports {name}.js, which is not below it"
    for lib in (static / "lib").glob("*.js"):  # the library imports only itself, never a page
        for up, _ in imports.findall(lib.read_text(encoding="utf-8")):
            assert up == ".", f"lib/{lib.name} imports from outside lib/"


def test_the_checklist_is_served_not_copied_into_the_page(client: TestClient) -> None:
    dispatch = client.get("/public/rules.json").json()["dispatch"]
    assert list(dispatch["checklist"].items()) == list(CHECKLIST.items())  # in the form's order
    assert dispatch["results"] == RESULTS
    static = REPO / "web" / "static"
    scripts = {p.name: p.read_text(encoding="utf-8") for p in static.glob("**/*.js") if "vendor" not in p.parts}
    copied = [(name, label) for name, text in scripts.items() for label in CHECKLIST.values() if label in text]
    assert copied == []


@pytest.mark.parametrize(("where", "said", "fence"), [("venue", "定位在培训场地围栏内", "inside"),
                                                     ("far", "定位在培训场地围栏外（已标记，可继续核查）", "outside")])
def test_arrival_from_the_phone_carries_its_fix(crew_live: Crew, browser: Browser,  # noqa: F811
                                                where: str, said: str, fence: str) -> None:
    """The page reads the phone's position when the inspector taps 到达现场; the center judges it against the
    venue's fence and the page says where they stand (outside is marked, not refused)."""
    crew = crew_live
    base = str(crew.client.base_url).rstrip("/")
    alert_id = crew.alert_id()
    crew.clock().run(datetime.now(UTC))
    assert crew.post(f"/api/v1/alerts/{alert_id}/accept", "county_a").status_code == 200
    spot = VENUE if where == "venue" else (far_fix(3000)["latitude"], far_fix(3000)["longitude"])
    context = browser.new_context(viewport=PHONE, locale="zh-CN", has_touch=True, is_mobile=True,
                                  geolocation={"latitude": spot[0], "longitude": spot[1], "accuracy": 15},
                                  permissions=["geolocation"])
    page = context.new_page()
    page.goto(f"{base}/inspector#token={crew.tokens['county_a']}")
    page.locator(f"#tasks li[data-alert-id='{alert_id}']").tap()
    expect(page.locator("#task-view")).to_be_visible(timeout=15_000)
    page.locator("#arrive").tap()
    expect(page.locator("#t-msg")).to_contain_text(said, timeout=10_000)
    detail = crew.detail(alert_id).json()
    assert (detail["state"], detail["arrival"]) == ("on_site", fence)
    fix = detail["transitions"][-1]["fix"]
    assert fix["accuracy_m"] == 15 and abs(fix["lat"] - spot[0]) < 1e-6
    context.close()


def test_a_reload_without_network_shows_the_page_and_its_drafts(crew_live: Crew, browser: Browser) -> None:  # noqa: F811
    crew = crew_live
    base = str(crew.client.base_url).rstrip("/")
    alert_id = crew.alert_id()
    crew.clock().run()
    assert crew.post(f"/api/v1/alerts/{alert_id}/accept", "county_a").status_code == 200
    context = browser.new_context(viewport=PHONE, locale="zh-CN", has_touch=True, is_mobile=True,
                                  permissions=["notifications"])
    page = context.new_page()
    page.goto(f"{base}/inspector#token={crew.tokens['county_a']}")
    expect(page.locator("#conn")).to_have_text("实时连接正常", timeout=10_000)
    wait_until(page, "navigator.serviceWorker.controller !== null")  # the shell is kept and this page controlled
    page.goto(f"{base}/inspector#alert={alert_id}")
    expect(page.locator("#t-state")).to_have_text("已接单", timeout=15_000)
    page.locator("#close-form input[value=could_not_verify]").check()
    page.locator("#close-note").fill("学员已离校，改日复查")
    context.set_offline(True)
    page.reload()  # no network: the page comes from its shell, the task and the draft from this phone
    expect(page.locator("#close-note")).to_have_value("学员已离校，改日复查", timeout=10_000)
    expect(page.locator("#t-state")).to_have_text("已接单")
    expect(page.locator("#net")).to_be_visible()
    context.set_offline(False)
    context.close()


def open_accepted_task(crew: Crew, chromium: Browser, alert_id: int) -> tuple[BrowserContext, Page, list[str]]:
    """The alert run through the clock and accepted by county_a, whose phone page is open on its task (360 px);
    the page's script errors are collected in the list returned."""
    crew.clock().run()
    assert crew.post(f"/api/v1/alerts/{alert_id}/accept", "county_a").status_code == 200
    context = chromium.new_context(viewport=PHONE, locale="zh-CN", has_touch=True, is_mobile=True)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{str(crew.client.base_url).rstrip('/')}/inspector#token={crew.tokens['county_a']}")
    expect(page.locator("#conn")).to_have_text("实时连接正常", timeout=10_000)
    page.evaluate(f"() => {{ location.hash = '#alert={alert_id}'; }}")
    return context, page, errors


def test_a_form_whose_answer_was_lost_is_filed_once(crew_live: Crew, browser: Browser) -> None:  # noqa: F811
    """The server files the form but its answers never reach the phone (each of the client's attempts): the draft
    keeps its Idempotency-Key, so the inspector's retry, after a reload or after changing the form, gets the form
    filed back instead of filing a second one."""
    crew = crew_live
    alert_id = crew.alert_id()
    context, page, errors = open_accepted_task(crew, browser, alert_id)
    expect(page.locator("#t-state")).to_have_text("已接单", timeout=15_000)
    lost: list[int] = []

    def lose_answer(route: Route) -> None:  # stored by the server, its answer dropped on the way back
        lost.append(route.fetch().status)
        route.abort()

    def fill_and_send(findings: str) -> None:
        form = page.locator("#insp-form")
        if page.locator("#insp-unfold").is_visible():
            page.locator("#insp-unfold").click()
        tick_items(form)
        form_item(form, "headcount").locator("textarea").fill("签到 7 人，在场 5 人")
        page.fill("#insp-findings", findings)
        page.fill("#insp-responsible", "王校长")
        sign_both(page)
        page.locator("#insp-submit").tap()

    def filed() -> list[dict]:
        return crew.client.get(f"/api/v1/inspections?class_id={crew.world.class_id}",
                               headers=auth(crew.world.operator)).json()

    # Answers lost, then a reload: the task shows the form filed; the draft (and its key) is still on the phone, and
    # sent again (the inspector asked for another form) the server says the key was used: no second form.
    page.route("**/api/v1/inspections", lose_answer)
    fill_and_send("在场学员少于签到人数")
    expect(page.locator("#insp-msg")).to_contain_text("网络异常", timeout=15_000)
    assert lost == [201, 201, 201] and len(filed()) == 1  # the client's retries under one key: one form
    page.unroute("**/api/v1/inspections")
    page.reload()
    expect(page.locator(f"#insp-filed li[data-inspection-id='{filed()[0]['id']}']")).to_be_visible(timeout=10_000)
    page.locator("#insp-again").click()
    expect(page.locator("#insp-findings")).to_have_value("在场学员少于签到人数")
    page.fill("#insp-findings", "在场学员少于签到人数（重新提交）")  # not the body the server holds
    sign_both(page)
    page.locator("#insp-submit").tap()
    expect(page.locator("#insp-done-msg")).to_contain_text("此前提交的检查表已归档", timeout=10_000)
    expect(page.locator("#insp-form")).to_be_hidden()
    assert len(filed()) == 1
    assert page.evaluate("Object.keys(localStorage).filter(k => k.includes('draft.inspect'))") == []

    # Another form: answers lost, then the inspector changes it and sends again on the same page: the body sent
    # first gets the form filed back, and the page says the later change is not in it.
    page.locator("#insp-again").click()
    lost.clear()
    page.route("**/api/v1/inspections", lose_answer)
    fill_and_send("第二次检查：在场学员少于签到人数")
    expect(page.locator("#insp-msg")).to_contain_text("网络异常", timeout=15_000)
    page.unroute("**/api/v1/inspections")
    page.fill("#insp-findings", "第二次检查：改写后的检查发现")
    page.locator("#insp-submit").tap()
    expect(page.locator("#insp-done-msg")).to_contain_text("之后的修改未包含", timeout=10_000)
    forms = filed()
    assert len(forms) == 2 and sorted(f["findings"] for f in forms) == ["在场学员少于签到人数",
                                                                        "第二次检查：在场学员少于签到人数"]
    assert page.evaluate("Object.keys(localStorage).filter(k => k.includes('draft.inspect'))") == []
    assert not errors, errors
    context.close()


def test_a_call_whose_answer_was_lost_is_recorded_once(crew_live: Crew, browser: Browser) -> None:  # noqa: F811
    """A call's record stored by the server, its answers lost: the call's draft keeps its Idempotency-Key and the
    body sent (also across a reload), so the record sent again, changed or not, gets the first one back."""
    crew = crew_live
    [trainee_id] = sign_in_verified(crew, 1)  # a trainee with a phone on the roster
    alert_id = crew.alert_id()
    context, page, errors = open_accepted_task(crew, browser, alert_id)
    page.locator("#phone").tap()
    expect(page.locator("#check-list li.trainee").first).to_be_visible(timeout=15_000)
    no_dialler(page)
    check_id = page.evaluate(f"JSON.parse(localStorage.getItem('monitor.inspector.check.{alert_id}'))")

    def check() -> dict:
        return crew.client.get(f"/api/v1/phone-checks/{check_id}", headers=auth(crew.tokens["county_a"])).json()

    def calls() -> list[dict]:
        return check()["calls"]

    assert any(t["trainee_id"] == trainee_id and t["phone"] for t in check()["trainees"])
    lost: list[int] = []

    def lose_answer(route: Route) -> None:
        lost.append(route.fetch().status)
        route.abort()

    page.route("**/calls", lose_answer)
    row = page.locator(f"#check-list li[data-trainee-id='{trainee_id}']")
    row.locator("a.tel").tap()
    row.locator("button.stop").tap()
    row.locator("input[name=reached][value=no]").check()
    row.locator("button[type=submit]").tap()
    expect(row.locator(".msg")).to_contain_text("网络异常", timeout=15_000)
    assert lost == [201, 201, 201] and len(calls()) == 1
    page.unroute("**/calls")
    page.reload()
    row = page.locator(f"#check-list li[data-trainee-id='{trainee_id}']")
    expect(row.locator("input[name=reached][value=no]")).to_be_checked(timeout=10_000)  # the draft, kept
    row.locator("textarea[name=answers]").fill("无人接听")  # another body than the one the server holds
    row.locator("button[type=submit]").tap()
    expect(page.locator("#check-msg")).to_contain_text("通话记录已保存", timeout=10_000)
    expect(row.locator(".last")).to_contain_text("未接通")
    assert len(calls()) == 1
    assert page.evaluate("Object.keys(localStorage).filter(k => k.includes('draft.call'))") == []
    assert not errors, errors
    context.close()
