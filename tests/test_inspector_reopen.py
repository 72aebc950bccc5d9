"""The inspector's phone page (/inspector) in Debian's Chromium, when the network fails: evidence photos that cannot
be fetched during an outage say so in their place, with a retry."""

from __future__ import annotations

from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.crew import Crew
from tests.helpers import auth
from tests.test_inspector_page import PHONE, crew_live, fits  # noqa: F401 - the crew behind a real server
from tests.test_pages import browser  # noqa: F401 - the module-scoped Chromium fixture


def accepted(crew: Crew) -> int:
    """An alert paged to county_a by the dispatch clock and accepted by them."""
    alert_id = crew.alert_id()
    crew.clock().run()
    assert crew.post(f"/api/v1/alerts/{alert_id}/accept", "county_a").status_code == 200
    return alert_id


def fresh_phone(crew: Crew, chromium: Browser) -> tuple[BrowserContext, Page, list[str]]:
    """county_a's page on a phone that has never opened it (nothing in its storage), live; its script errors."""
    context = chromium.new_context(viewport=PHONE, locale="zh-CN", timezone_id="Asia/Shanghai", has_touch=True,
                                   is_mobile=True)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    return context, page, errors


def open_task(crew: Crew, page: Page, alert_id: int) -> None:
    page.goto(f"{str(crew.client.base_url).rstrip('/')}/inspector#token={crew.tokens['county_a']}")
    expect(page.locator("#conn")).to_have_text("实时连接正常", timeout=10_000)
    page.evaluate(f"() => {{ location.hash = '#alert={alert_id}'; }}")


def test_evidence_photos_that_fail_to_load_say_so_and_retry(crew_live: Crew, browser: Browser) -> None:  # noqa: F811
    crew = crew_live
    alert_id = accepted(crew)
    context, page, errors = fresh_phone(crew, browser)
    context.route("**/api/v1/evidence/**", lambda route: route.abort("connectionreset"))  # an outage of the photos
    open_task(crew, page, alert_id)
    subject = page.locator("#t-subjects li.subject")
    expect(subject).to_have_count(1, timeout=5_000)
    failed = subject.locator("button.photo-failed")
    expect(failed).to_have_count(2, timeout=15_000)  # the check-in photo and the enrolled one
    for n in range(2):
        expect(failed.nth(n)).to_have_text("照片加载失败，点击重试")
        expect(failed.nth(n)).to_be_visible()
    expect(failed.first).to_have_accessible_name("现场照片加载失败，点击重试")
    expect(subject.locator("img")).to_have_count(2)
    for img in subject.locator("img").all():
        expect(img).to_be_hidden()  # no broken image in its place
    fits(page)

    # The network is back: each retry shows its photo.
    context.unroute("**/api/v1/evidence/**")
    failed.first.tap()
    expect(subject.locator("img[src^='blob:']")).to_have_count(1, timeout=10_000)
    expect(failed).to_have_count(1)
    failed.first.tap()
    expect(subject.locator("img[src^='blob:']")).to_have_count(2, timeout=10_000)
    expect(failed).to_have_count(0)
    for img in subject.locator("img").all():
        expect(img).to_be_visible()
        assert img.evaluate("i => i.complete && i.naturalWidth > 0")
    alerts = crew.client.get("/api/v1/my/alerts", headers=auth(crew.tokens["county_a"])).json()
    assert [a["id"] for a in alerts] == [alert_id]
    assert not errors, errors
    context.close()
