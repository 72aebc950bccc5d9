"""The inspector's phone page (/inspector) in Debian's Chromium, when things went on elsewhere or the network fails:
a phone check started before (on another phone, or before this one's storage was cleared) is shown running, with
when it started (Beijing time) and how to finish it, never offered again as a new one; evidence photos that cannot
be fetched during an outage say so in their place, with a retry."""

from __future__ import annotations

from datetime import datetime

from playwright.sync_api import Browser, BrowserContext, Page, expect

from models.clock import SHANGHAI
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


def beijing(iso: str) -> str:
    """An instant as the pages write it: 2026/03/01 08:59:03, Asia/Shanghai."""
    return f"{datetime.fromisoformat(iso).astimezone(SHANGHAI):%Y/%m/%d %H:%M:%S}"


def test_a_running_phone_check_is_shown_when_the_task_is_reopened(crew_live: Crew,  # noqa: F811
                                                                   browser: Browser) -> None:  # noqa: F811
    crew = crew_live
    alert_id = accepted(crew)
    # Started on the inspector's other phone (the same call the page makes), then the task opened on this one.
    r = crew.post(f"/api/v1/alerts/{alert_id}/phone-checks", "county_a")
    assert r.status_code == 201, r.text
    check = r.json()
    assert check["state"] == "open" and check["trainees"]
    context, page, errors = fresh_phone(crew, browser)
    open_task(crew, page, alert_id)
    expect(page.locator("#t-state")).to_have_text("电话抽查中", timeout=15_000)
    section = page.locator("#check")
    expect(section).to_be_visible(timeout=15_000)
    expect(page.locator("#check-started")).to_contain_text(f"进行中：{beijing(check['created_at'])}（北京时间）")
    expect(page.locator("#check-started")).to_contain_text("点「完成抽查」")
    expect(page.locator("#phone")).to_be_hidden()  # no new check offered
    expect(page.locator("#check-list li.trainee")).to_have_count(len(check["trainees"]))
    expect(page.locator("#check-list li.trainee form").first).to_be_visible()  # each call to record
    expect(page.locator("#complete")).to_be_visible()
    page.locator("#complete").tap()  # nobody reached yet: the server says what is missing
    expect(page.locator("#check-msg")).to_contain_text("还需接通", timeout=15_000)
    fits(page)

    # Reopened once more (a reload), it is still the same check; none was drawn a second time.
    page.reload()
    expect(page.locator("#check-started")).to_contain_text(beijing(check["created_at"]), timeout=10_000)
    expect(page.locator("#phone")).to_be_hidden()
    detail = crew.detail(alert_id, "county_a").json()
    assert detail["phone_check_ids"] == [check["id"]]
    assert not errors, errors
    context.close()


def test_a_phone_check_before_the_page_knows_it_is_continued_not_redrawn(crew_live: Crew,  # noqa: F811
                                                                         browser: Browser) -> None:  # noqa: F811
    """The button a task shows while its running check is not yet on the screen picks that check up."""
    crew = crew_live
    alert_id = accepted(crew)
    context, page, errors = fresh_phone(crew, browser)
    open_task(crew, page, alert_id)
    expect(page.locator("#phone")).to_have_text("开始电话抽查", timeout=15_000)
    r = crew.post(f"/api/v1/alerts/{alert_id}/phone-checks", "county_a")  # meanwhile, on the other phone
    assert r.status_code == 201, r.text
    page.evaluate("() => { location.hash = ''; }")  # back to the list, which is fetched again on the live event
    expect(page.locator(f"#tasks li[data-alert-id='{alert_id}'] .badge")).to_have_text("电话抽查中", timeout=10_000)
    page.evaluate(f"() => {{ location.hash = '#alert={alert_id}'; }}")
    expect(page.locator("#check-started")).to_contain_text(f"进行中：{beijing(r.json()['created_at'])}",
                                                            timeout=15_000)
    expect(page.locator("#phone")).to_be_hidden()
    assert crew.detail(alert_id, "county_a").json()["phone_check_ids"] == [r.json()["id"]]
    assert not errors, errors
    context.close()


def test_evidence_photos_that_fail_to_load_say_so_and_retry(crew_live: Crew, browser: Browser) -> None:  # noqa: F811
    crew = crew_live
    alert_id = accepted(crew)
    context, page, errors = fresh_phone(crew, browser)
    context.route("**/api/v1/evidence/**", lambda route: route.abort("connectionreset"))  # an outage of the photos
    open_task(crew, page, alert_id)
    subject = page.locator("#t-subjects li.subject")
    expect(subject).to_have_count(1, timeout=15_000)
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
