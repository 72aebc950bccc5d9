"""Contradictions between the records of one alert (issue 18 item 1), where people see them: the wall's alert detail
and the inspector's task view show them as the API states them, and the wall's counters split the waiting alerts by
state; in Debian's Chromium driven by Playwright."""

from __future__ import annotations

from datetime import UTC, datetime

from playwright.sync_api import Browser, expect

from tests.crew import Crew
from tests.test_form_archive import file_on, phone_check_on
from tests.test_inspector_page import PHONE, crew_live, open_wall_as_operator, server_only  # noqa: F401
from tests.test_pages import browser  # noqa: F401 - the module-scoped Chromium fixture
from tests.test_wall_returned import fits_the_wall


def test_the_wall_and_the_task_view_show_the_alerts_contradictions_and_the_counters_split_by_state(
        crew_live: Crew, browser: Browser) -> None:  # noqa: F811
    crew = crew_live
    base = str(crew.client.base_url).rstrip("/")
    alert_id = crew.alert_id()
    crew.clock().run(datetime.now(UTC))
    assert crew.post(f"/api/v1/alerts/{alert_id}/accept", "county_a").status_code == 200
    assert crew.post(f"/api/v1/alerts/{alert_id}/arrive", "county_a").status_code == 200
    phone_check_on(crew, alert_id)  # one trainee confirmed present by phone
    said = file_on(crew, alert_id, 0)["body"]["contradictions"]  # the form counts nobody present
    assert len(said) == 1

    # The inspector's task view.
    phone = browser.new_context(viewport=PHONE, locale="zh-CN", has_touch=True, is_mobile=True)
    _, outside = server_only(phone, base)
    page = phone.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{base}/inspector#token={crew.tokens['county_a']}")
    expect(page.locator("#conn")).to_have_text("实时连接正常", timeout=10_000)
    expect(page.locator(f"#tasks li[data-alert-id='{alert_id}']")).to_be_visible(timeout=15_000)
    page.evaluate(f"() => {{ location.hash = '#alert={alert_id}'; }}")
    box = page.locator("#t-contradictions")
    expect(box).to_be_visible(timeout=15_000)
    expect(box.locator("h3")).to_have_text("记录矛盾")
    expect(box.locator("li")).to_have_text(said)
    assert not outside and not errors, (outside, errors)
    phone.close()

    # The wall: the counters split by state, and the alert's detail.
    context, wall, _, outside, errors = open_wall_as_operator(browser, crew)
    on_site = wall.locator("#c-by-state li[data-state='on_site']")
    expect(on_site).to_have_text("现场核查中1", timeout=10_000)
    expect(wall.locator("#c-by-state li[data-state='open']")).to_have_text("待处置0")
    expect(wall.locator("#c-by-state li")).to_have_count(5)
    size = on_site.evaluate("e => parseFloat(getComputedStyle(e).fontSize)")
    assert size >= 18, size
    fits_the_wall(wall)
    wall.locator(f"#feed li[data-alert-id='{alert_id}']").click()
    expect(wall.locator("#dispatch-state")).to_have_text("现场核查中", timeout=15_000)
    shown = wall.locator("#dispatch-contradictions")
    expect(shown).to_be_visible()
    expect(shown.locator("li")).to_have_text(said)
    assert not outside and not errors, (outside, errors)
    context.close()
