"""The site phone page's network badge in Debian's Chromium: it follows what the server answers, not only whether the
phone has signal — a server that cannot be reached, or answers 5xx, is said so while the check-in waits in the queue,
and the badge recovers by itself (the check-in delivered) once the server answers again."""

from __future__ import annotations

from playwright.sync_api import Browser, Route, expect

from tests.helpers import FACES_DIR, VENUE, World
from tests.test_pages import browser, live_world  # noqa: F401 - the module-scoped Chromium and the world fixtures

PHONE = {"width": 360, "height": 740}


def test_the_badge_says_when_the_server_fails_and_recovers(live_world: World, browser: Browser) -> None:  # noqa: F811
    world = live_world
    context = browser.new_context(viewport=PHONE, locale="zh-CN", timezone_id="Asia/Shanghai", is_mobile=True,
                                  has_touch=True, permissions=["geolocation"],
                                  geolocation={"latitude": VENUE[0], "longitude": VENUE[1], "accuracy": 12})
    page = context.new_page()
    page.goto(f"{str(world.client.base_url).rstrip('/')}/site#token={world.site}")
    net = page.locator("#net")
    expect(page.locator("#trainee option")).to_have_count(2, timeout=10_000)
    expect(page.locator("#gps")).to_contain_text("精度 12 米", timeout=15_000)
    expect(net).to_have_text("网络正常")
    page.select_option("#trainee", str(world.obama_id))

    def submit(photo: str) -> None:
        page.set_input_files("#photo", str(FACES_DIR / photo))  # this browser has no camera: the file picker
        page.click("#submit")

    # The server is down (connections refused) while the phone has signal: the check-in waits, the badge says why.
    context.route("**/api/**", lambda route: route.abort("connectionrefused"))
    submit("people/obama/obama2.jpg")
    expect(page.locator("#queue-count")).to_have_text("1", timeout=10_000)
    expect(net).to_contain_text("服务器无法连接", timeout=10_000)
    expect(net).to_have_class("net off")
    # The server is back: the page finds out by itself, says so and delivers the check-in.
    context.unroute("**/api/**")
    expect(net).to_have_text("网络正常", timeout=30_000)
    expect(net).to_have_class("net on")
    expect(page.locator("#result .verdict")).to_have_text("签到成功", timeout=30_000)
    expect(page.locator("#queue-box")).to_be_hidden()

    # The server answers, but with 503 (its database unavailable): another words, the same recovery.
    def unavailable(route: Route) -> None:
        route.fulfill(status=503, headers={"Retry-After": "1"}, json={
            "code": "DATABASE_UNAVAILABLE", "message": "数据库暂时不可用，请稍后重试（已提交的内容不会丢失）"})

    context.route("**/api/**", unavailable)
    submit("people/obama/obama1.jpg")
    expect(net).to_contain_text("服务器暂时不可用", timeout=10_000)
    expect(page.locator("#queue-count")).to_have_text("1", timeout=10_000)
    context.unroute("**/api/**")
    expect(net).to_have_text("网络正常", timeout=30_000)
    expect(page.locator("#queue-box")).to_be_hidden(timeout=30_000)

    # No signal at all is still told apart from a server that does not answer.
    context.set_offline(True)
    expect(net).to_contain_text("离线")
    context.set_offline(False)
    expect(net).to_have_text("网络正常")
    context.close()
