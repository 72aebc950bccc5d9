"""The wall screen's alerts returned to the center (issue 18 item 6): an alert nobody accepted, or one handed back by
a tie, stands out on top of the alerts with why it came back and how long it has waited, a sound marks a new one
(not one already returned when the page loaded), and dispatching it from the wall takes it off the list; in Debian's
Chromium driven by Playwright, at 1920×1080."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from playwright.sync_api import Browser, Page, expect

from tests.crew import Crew
from tests.helpers import auth
from tests.test_inspector_page import crew_live, open_wall_as_operator  # noqa: F401 - the live crew fixture
from tests.test_pages import browser, wait_until  # noqa: F401 - the module-scoped Chromium fixture


def exhaust_the_ladder(crew: Crew, alert_id: int) -> None:
    """The dispatch clock pages the county's inspector, then the prefecture's, and nobody accepts: past every deadline
    the alert goes back to the center."""
    now = datetime.now(UTC)
    for step in range(8):
        crew.clock(seed=step).run(now + timedelta(minutes=11 * step))
        if crew.detail(alert_id).json()["state"] == "open":
            break
    detail = crew.detail(alert_id).json()
    assert detail["state"] == "open" and detail["transitions"][-1]["action"] == "return", detail["transitions"]


def dispatch_from_the_wall(page: Page, alert_id: int, staff_id: int) -> None:
    item = page.locator(f"#returned li[data-alert-id='{alert_id}']")
    item.locator("button").click()
    expect(page.locator("#dispatch")).to_be_visible()
    expect(page.locator("#dispatch-state")).to_have_text("待处置", timeout=15_000)
    page.select_option("#dispatch-staff", str(staff_id))
    page.click("#btn-dispatch")
    expect(page.locator("#dispatch-state")).to_have_text("已派发", timeout=15_000)
    expect(item).to_have_count(0, timeout=15_000)
    page.click("#detail-close")


def fits_the_wall(page: Page) -> None:
    size = page.evaluate("() => [document.documentElement.scrollWidth, document.documentElement.scrollHeight]")
    assert size[0] <= 1920 and size[1] <= 1080, f"the wall is {size[0]}×{size[1]} px"


def test_the_returned_list_filter_matches_the_wall_counter(crew_live: Crew) -> None:  # noqa: F811
    crew = crew_live
    alert_id = crew.alert_id()
    operator = auth(crew.world.operator)
    assert crew.client.get("/api/v1/alerts?state=returned", headers=operator).json() == []  # open, never paged
    exhaust_the_ladder(crew, alert_id)
    returned = crew.client.get("/api/v1/alerts?state=returned", headers=operator).json()
    assert [a["id"] for a in returned] == [alert_id]
    counters = crew.client.get("/api/v1/overview", headers=operator).json()["counters"]
    assert counters["alerts_returned"] == 1


def test_a_returned_alert_stands_out_on_the_wall_sounds_when_new_and_leaves_when_dispatched(
        crew_live: Crew, browser: Browser, tmp_path: Path) -> None:  # noqa: F811
    crew = crew_live
    alert_id = crew.alert_id()
    exhaust_the_ladder(crew, alert_id)  # returned before the wall opens: listed, but history (no sound)

    context, page, requested, outside, errors = open_wall_as_operator(browser, crew)
    panel = page.locator("#returned-panel")
    item = page.locator(f"#returned li[data-alert-id='{alert_id}']")
    expect(panel).to_be_visible(timeout=10_000)
    expect(panel.locator("h2")).to_contain_text("退回调度中心，待人工派发")
    detail = crew.detail(alert_id).json()
    expect(item.locator(".what")).to_have_text(f"人脸不符 · {detail['class_name']}")
    expect(item.locator(".where")).to_contain_text(detail["institution_name"])
    expect(item.locator(".why")).to_contain_text("各级抽查人员均未在规定时间内接单")
    expect(item.locator(".waited")).to_have_text("刚刚退回")  # the clock returned it at a time still to come
    expect(item.locator("button")).to_have_text("派发")
    for selector in (".what", ".where", ".why", ".waited", "button"):  # readable from 5 m
        size = item.locator(selector).evaluate("e => parseFloat(getComputedStyle(e).fontSize)")
        assert size >= 18, (selector, size)
    expect(page.locator("#c-open-label")).to_contain_text("退回 1")
    expect(page.locator("#sound")).to_have_text("点击开启声音")
    fits_the_wall(page)

    page.click("#sound")  # the gesture that lets the page play sound
    expect(page.locator("#sound")).to_have_text("声音提示已开启")
    page.wait_for_timeout(300)
    assert page.evaluate("() => document.body.dataset.sounded") is None  # the one returned before: history, no sound

    # Dispatched from the wall (to the county's inspector again): off the list.
    dispatch_from_the_wall(page, alert_id, crew.staff["county_a"])
    expect(panel).to_be_hidden()
    assert crew.detail(alert_id).json()["state"] == "dispatched"

    # The inspector accepts, then declares a tie to the school: the task comes back, live, with why, and a sound.
    assert crew.post(f"/api/v1/alerts/{alert_id}/accept", "county_a").status_code == 200
    tie = crew.post(f"/api/v1/staff/{crew.staff['county_a']}/ties", "county_a",
                    {"institution_id": crew.world.ids["institution"], "relation": "child"})
    assert tie.status_code == 201, tie.text
    expect(item).to_be_visible(timeout=10_000)
    expect(item.locator(".why")).to_contain_text("依规回避，任务退回监控中心")
    expect(item.locator(".waited")).to_have_text("刚刚退回")
    wait_until(page, "document.body.dataset.returnedAnnounced === '1'")
    wait_until(page, "document.body.dataset.sounded === '1'")
    expect(page.locator("#c-open-label")).to_contain_text("退回 1", timeout=15_000)
    fits_the_wall(page)
    page.screenshot(path=str(tmp_path / "wall-returned.png"))

    # Without its feed item the button still opens the alert's dispatch controls, never offering a recused inspector
    # (now both county inspectors are tied to the school).
    page.evaluate(f"() => document.querySelector(\"#feed li[data-alert-id='{alert_id}']\")?.remove()")
    item.locator("button").click()
    expect(page.locator("#dispatch-state")).to_have_text("待处置", timeout=15_000)
    expect(page.locator("#detail-title")).to_have_text("人脸不符")  # the rule's name, not its code
    expect(page.locator("#dispatch-history")).to_contain_text("依规回避")
    expect(page.locator("#dispatch-staff option")).to_have_count(2)  # the router's draw and the prefecture's
    page.click("#detail-close")
    dispatch_from_the_wall(page, alert_id, crew.staff["prefecture"])
    expect(panel).to_be_hidden()
    detail = crew.detail(alert_id).json()
    assert detail["state"] == "dispatched" and detail["pages"][-1]["staff_id"] == crew.staff["prefecture"]
    assert page.evaluate("() => document.body.dataset.sounded") == "1"  # dispatching is no return: no sound
    expect(page.locator("#c-open-label")).not_to_contain_text("退回", timeout=15_000)

    page.wait_for_load_state("networkidle")
    assert not outside, outside
    assert not errors, errors
    context.close()
