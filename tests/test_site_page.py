"""The site's phone page in Debian's Chromium with a fake camera (a y4m clip of an enrolled trainee who blinks)
and a fake GPS fix: the selfie through the camera, the liveness burst the server asks for, an upload that goes
offline and one whose answer is lost, delivered once from the IndexedDB queue; the classroom-snapshot mode;
installable and usable at 360 px."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import Browser, BrowserContext, Route, expect, sync_playwright
from sqlalchemy import func, select

from models.tables import CheckIn, LivenessChallenge, Snapshot
from tests.frames import close_eyes, jitter, landmarks_of
from tests.helpers import FACES_DIR, REPO, VENUE, World, auth, local_today
from tests.test_inspector_page import save_png
from tests.test_pages import CHROMIUM, CHROMIUM_ARGS, live_world, wait_until  # noqa: F401 - live_world fixture

PHONE = {"width": 360, "height": 740}
DOCS = REPO / "docs" if os.environ.get("MONITOR_DOCS_SCREENSHOTS") else None
SELFIE = "people/obama/obama2.jpg"  # 欧建国, enrolled from people/obama/obama.jpg


def write_y4m(path: Path, frames: list[Image.Image], fps: int) -> None:
    """A raw YUV4MPEG2 clip (4:2:0), the format Chromium's fake camera plays in a loop."""
    width, height = frames[0].size
    with path.open("wb") as out:
        out.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for frame in frames:
            out.write(b"FRAME\n")
            out.write(cv2.cvtColor(np.asarray(frame.convert("RGB")), cv2.COLOR_RGB2YUV_I420).tobytes())


def blinking_clip(path: Path) -> Path:
    """One second of the trainee's face, 10 frames a second: seven with the eyes open, three shut, with the small
    shake and exposure changes of a hand-held phone; any 1.5 s burst sees a blink."""
    top, right, bottom, left = landmarks_of(SELFIE)["box"]
    opened = Image.open(FACES_DIR / SELFIE).convert("RGB")
    width = min(opened.width, int((right - left) * 2.2), int(opened.height * 0.75))  # 3:4, inside the photo
    height = width * 4 // 3
    x0 = min(max(0, (left + right) // 2 - width // 2), opened.width - width)
    y0 = min(max(0, (top + bottom) // 2 - height * 45 // 100), opened.height - height)
    crop = (x0, y0, x0 + width, y0 + height)
    shut = close_eyes(SELFIE)
    frames = []
    for n in range(10):
        source = shut if n in (6, 7, 8) else opened
        frames.append(jitter(source.crop(crop), n % 5).resize((480, 640), Image.Resampling.LANCZOS))
    write_y4m(path, frames, fps=10)
    return path


@pytest.fixture(scope="module")
def camera_browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium is not installed; run ./scripts/test.sh")
    clip = blinking_clip(tmp_path_factory.mktemp("camera") / "blink.y4m")
    args = [*CHROMIUM_ARGS, "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-video-capture={clip}"]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=args, headless=True)
        yield browser
        browser.close()


def phone(browser: Browser) -> BrowserContext:
    return browser.new_context(viewport=PHONE, locale="zh-CN", timezone_id="Asia/Shanghai", has_touch=True,
                               is_mobile=True, permissions=["geolocation", "camera"],
                               geolocation={"latitude": VENUE[0], "longitude": VENUE[1], "accuracy": 12})


def checkins(world: World) -> list[CheckIn]:
    with world.client.app.state.db.session() as session:
        rows = session.scalars(select(CheckIn)).all()
        session.expunge_all()
        return list(rows)


def test_a_trainee_signs_in_through_the_burst_offline_and_is_counted_once(live_world: World,  # noqa: F811
                                                                          camera_browser: Browser) -> None:
    world = live_world
    base = str(world.client.base_url).rstrip("/")
    context = phone(camera_browser)
    page = context.new_page()
    page.goto(f"{base}/site#token={world.site}")
    assert "token" not in page.url
    expect(page.locator("body")).to_have_attribute("data-camera", "live", timeout=10_000)
    expect(page.locator("#gps")).to_contain_text("精度 12 米（信号良好）", timeout=15_000)
    expect(page.locator("#trainee option")).to_have_count(2)
    page.select_option("#trainee", str(world.obama_id))
    wait_until(page, "navigator.serviceWorker.controller !== null", timeout=10_000)  # the shell is kept

    # The class starts to require the liveness challenge after the page loaded: the server asks for it.
    r = world.client.put(f"/api/v1/classes/{world.class_id}/liveness", json={"required": True},
                         headers=auth(world.admin))
    assert r.status_code == 200, r.text
    page.locator("#shoot").tap()
    expect(page.locator("body")).to_have_attribute("data-captured", "yes", timeout=15_000)
    page.locator("#submit").tap()
    expect(page.locator("#result")).to_contain_text("须完成活体检测", timeout=10_000)
    expect(page.locator("#result")).to_have_attribute("data-code", "LIVENESS_REQUIRED")
    expect(page.locator("#class-name")).to_contain_text("须活体检测")
    assert checkins(world) == []

    # The server draws the action at random; the test fixes it to the one its clip performs (a blink), as
    # tests/test_liveness.py does.
    asked: list[dict] = []

    def blink_challenge(route: Route) -> None:
        response = route.fetch()
        body = response.json()
        with world.client.app.state.db.session() as session:
            session.get(LivenessChallenge, body["challenge_id"]).action = "blink"
        body.update(action="blink", instruction="请眨眼")
        asked.append(body)
        route.fulfill(response=response, json=body)

    context.route("**/api/v1/liveness/challenges", blink_challenge)
    page.locator("#shoot").tap()
    expect(page.locator("#challenge")).to_contain_text("请眨眼", timeout=15_000)
    expect(page.locator("body")).to_have_attribute("data-captured", "yes", timeout=15_000)
    assert len(asked) == 1
    expect(page.locator("#camera-hint")).to_contain_text("活体连拍完成（8 张）")

    # Offline when the trainee taps 提交: the capture is kept on the phone with its time, even across a reload.
    context.set_offline(True)
    page.locator("#submit").tap()
    expect(page.locator("#queue-count")).to_have_text("1", timeout=15_000)
    expect(page.locator("#net")).to_contain_text("离线")
    item = page.locator("#queue li").first
    expect(item).to_contain_text("欧建国 · 签到")
    expect(item.locator(".when")).to_have_text(re.compile(r"^\d{2}:\d{2}:\d{2}$"))
    queued_at = item.locator(".when").inner_text()
    page.reload()  # no network: the page comes from its shell, the capture from IndexedDB
    expect(page.locator("#queue-count")).to_have_text("1", timeout=10_000)
    expect(page.locator("#queue li .when")).to_have_text(queued_at)
    assert checkins(world) == []

    # Back online, the first delivery is stored but its answer is lost on the way back: the item stays queued
    # and its retry (same Idempotency-Key) is answered as the duplicate it is.
    lost: list[int] = []

    def lose_the_answer(route: Route) -> None:
        if lost:
            route.continue_()
            return
        lost.append(route.fetch(timeout=30_000).status)
        route.abort("connectionreset")

    context.route("**/api/v1/check-ins", lose_the_answer)
    context.set_offline(False)
    expect(page.locator("#result .verdict")).to_have_text("签到成功", timeout=30_000)
    assert lost and lost[0] in (201, 202)
    expect(page.locator("#result")).to_contain_text("此记录此前已送达服务器，本次未重复计入")
    expect(page.locator("#result")).to_contain_text(f"欧建国 · 签到（测试班0） · 拍摄于 {queued_at}")
    expect(page.locator("#queue-box")).to_be_hidden()
    rows = checkins(world)
    assert len(rows) == 1, [(c.id, c.status) for c in rows]
    assert rows[0].status == "passed" and rows[0].liveness_challenge_id == asked[0]["challenge_id"]
    assert rows[0].accuracy_m == 12 and abs(rows[0].lat - VENUE[0]) < 1e-6
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    if DOCS:
        page.evaluate("window.scrollTo(0, 0)")
        save_png(DOCS / "site-360.png", page.screenshot(full_page=True))
    context.close()


def test_refusals_and_verdicts_in_plain_words(live_world: World, camera_browser: Browser) -> None:  # noqa: F811
    """A face that is not the trainee's: the verdict says what happened and what to do."""
    world = live_world
    context = phone(camera_browser)
    page = context.new_page()
    page.goto(f"{str(world.client.base_url).rstrip('/')}/site#token={world.site}")
    expect(page.locator("body")).to_have_attribute("data-camera", "live", timeout=10_000)
    expect(page.locator("#gps")).to_contain_text("精度 12 米", timeout=15_000)
    page.select_option("#trainee", str(world.biden_id))  # the clip shows 欧建国, not 白德明
    page.locator("#shoot").tap()
    expect(page.locator("body")).to_have_attribute("data-captured", "yes", timeout=15_000)
    page.locator("#submit").tap()
    expect(page.locator("#result .verdict")).to_have_text("签到未通过", timeout=20_000)
    expect(page.locator("#result")).to_contain_text("人脸与登记照片不符：请本人重新拍摄")
    context.close()


def test_classroom_snapshots_go_through_the_same_queue(live_world: World, camera_browser: Browser) -> None:  # noqa: F811
    world = live_world
    context = phone(camera_browser)
    page = context.new_page()
    page.goto(f"{str(world.client.base_url).rstrip('/')}/site#token={world.site}")
    expect(page.locator("#trainee option")).to_have_count(2, timeout=10_000)
    page.locator("#tab-snapshot").tap()
    expect(page.locator("#snapshot-view")).to_be_visible()
    expect(page.locator("#snap-hint")).to_contain_text("请确认画面", timeout=10_000)
    page.select_option("#snap-interval", "60")
    context.set_offline(True)
    page.locator("#snap-start").tap()  # one at once, then every minute
    expect(page.locator("body")).to_have_attribute("data-snapshots", "running")
    expect(page.locator("#queue-count")).to_have_text("1", timeout=15_000)
    expect(page.locator("#queue li")).to_contain_text("课堂抓拍（测试班0）")
    expect(page.locator("#snap-status")).to_contain_text("每 1 分钟")
    context.set_offline(False)
    expect(page.locator("#snap-result")).to_contain_text("课堂抓拍", timeout=20_000)
    expect(page.locator("#queue-box")).to_be_hidden()
    page.locator("#snap-stop").tap()
    expect(page.locator("body")).to_have_attribute("data-snapshots", "stopped")
    with world.client.app.state.db.session() as session:
        assert session.scalar(select(func.count()).select_from(Snapshot)) == 1
        snap = session.scalars(select(Snapshot)).one()
        assert snap.class_id == world.class_id and snap.camera_id.startswith("web-")
    context.close()


def test_installable_and_long_class_names_wrap_at_360_px(live_world: World, camera_browser: Browser) -> None:  # noqa: F811
    world = live_world
    base = str(world.client.base_url).rstrip("/")
    name = "云南省昆明市五华区高素质农民及农村实用人才职业技能提升暨中式烹调师（四级/中级工）脱产培训第三期晚间班"
    today = local_today()
    r = world.client.post("/api/v1/classes", headers=auth(world.admin), json={
        "code": "TEST-LONG-NAME-2025-0003", "name": name, "institution_id": world.ids["institution"],
        "venue_id": world.ids["venue"], "occupation_id": world.ids["occupation"],
        "start_date": today.isoformat(), "end_date": today.isoformat(),
        "theory_teacher_id": world.ids["teachers"][0], "practical_teacher_id": world.ids["teachers"][1],
        "sessions": [{"name": "全天", "start": "00:00", "end": "23:59"}], "trainee_ids": [world.obama_id]})
    assert r.status_code == 201, r.text
    context = phone(camera_browser)
    page = context.new_page()
    page.goto(f"{base}/site#token={world.site}")
    expect(page.locator("#class option")).to_have_count(2, timeout=10_000)
    page.select_option("#class", str(r.json()["id"]))
    expect(page.locator("#class-name")).to_contain_text(name)  # the whole name, wrapped, not cut
    box = page.locator("#class-name").bounding_box()
    assert box and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"] and box["height"] > 40
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    assert page.evaluate("(() => { const e = document.getElementById('class-name');"
                         " return e.scrollWidth <= e.clientWidth; })()")
    page.locator("#tab-snapshot").tap()
    expect(page.locator("#snap-class-name")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]

    # Installable: a manifest with the page's name, 192 and 512 px icons, /site as start; a favicon; the shell's
    # service worker served from the root, never cached by the HTTP cache.
    href = page.locator("link[rel=manifest]").get_attribute("href")
    manifest = json.loads(world.client.get(href).text)
    assert (manifest["name"], manifest["lang"], manifest["start_url"], manifest["display"]) == (
        "云南职业技能培训签到", "zh-CN", "/site", "standalone")
    sizes = set()
    for icon in manifest["icons"]:
        png = world.client.get(icon["src"])
        assert png.status_code == 200 and png.headers["content-type"] == "image/png"
        sizes.add(icon["sizes"])
    assert {"192x192", "512x512"} <= sizes
    assert world.client.get(page.locator("link[rel=icon]").first.get_attribute("href")).status_code == 200
    sw = world.client.get("/site-sw.js")
    assert sw.status_code == 200 and sw.headers["cache-control"] == "no-cache"
    assert "javascript" in sw.headers["content-type"]
    wait_until(page, "document.body.dataset.offlineShell === 'registered'", timeout=10_000)
    context.close()
