"""The public notice page (/public/notice, no token) on a 360 px phone in Debian's Chromium: nothing wider than the
screen, every row readable as a card that names its columns, and an empty table saying so (暂无…)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from monitor.app import create_app
from monitor.settings import Settings
from tests.helpers import FACES_DIR, World, auth, local_today, running_server
from tests.test_pages import browser, live_world  # noqa: F401 - the module-scoped Chromium and the world fixtures

PHONE = {"width": 360, "height": 740}
# A class code as a province writes them: the county, the day and a number, one word no line may break at a space.
LONG_CODE = "YN530102202603010001-ZSPT"


def fits(page: Page) -> None:
    scroll = page.evaluate("document.documentElement.scrollWidth")
    assert scroll <= PHONE["width"], f"the page is {scroll} px wide at {PHONE['width']} px"


def outside_the_screen(page: Page) -> list[str]:
    """The visible elements whose box ends past the screen's right edge (what a phone would cut off); those inside a
    box clipped to a pixel (a header kept for screen readers only) are not seen."""
    return page.evaluate("""w => {
        const clipped = e => { for (let a = e.parentElement; a; a = a.parentElement) {
            const r = a.getBoundingClientRect();
            if (getComputedStyle(a).overflow === 'hidden' && r.width <= 1) return true;
        } return false; };
        return [...document.querySelectorAll('body *')].filter(e => {
            const r = e.getBoundingClientRect();
            return r.width > 0 && r.height > 0 && r.right > w + 0.5 && !clipped(e);
        }).map(e => e.tagName + (e.id ? '#' + e.id : '') + ' ' + (e.textContent || '').slice(0, 30));
    }""", PHONE["width"])


@pytest.fixture
def empty_center(tmp_path: Path) -> Iterator[str]:
    """A center with nothing registered yet: no class, no anchor, no draw."""
    settings = Settings(data_dir=tmp_path / "data", faces_dir=FACES_DIR, face_processes=0, clock_rules=False,
                        draw_auto=False)
    with running_server(create_app(settings)) as url:
        yield url


def test_an_empty_notice_says_so_in_each_table(empty_center: str, browser: Browser) -> None:  # noqa: F811
    context = browser.new_context(viewport=PHONE, locale="zh-CN", is_mobile=True, has_touch=True)
    page = context.new_page()
    page.goto(f"{empty_center}/public/notice")
    expect(page.locator("#generated")).to_contain_text("更新时间", timeout=10_000)
    for table, said in (("#classes", "暂无公示的班次"), ("#anchors-table", "暂无锚点"), ("#draws", "暂无公示的抽取")):
        rows = page.locator(f"{table} tbody tr")
        expect(rows).to_have_count(1, timeout=10_000)
        expect(rows.first).to_contain_text(said)
        expect(rows.first.locator("td")).to_be_visible()
    fits(page)
    assert outside_the_screen(page) == []
    context.close()


def test_the_notice_fits_a_360_px_phone(live_world: World, browser: Browser) -> None:  # noqa: F811
    world = live_world
    today = local_today()
    r = world.client.post("/api/v1/classes", headers=auth(world.admin), json={
        "code": LONG_CODE, "name": "中式烹调师（四级/中级工）脱产培训第三期",
        "institution_id": world.ids["institution"], "venue_id": world.ids["venue"],
        "occupation_id": world.ids["occupation"],
        "start_date": (today - timedelta(days=1)).isoformat(), "end_date": (today + timedelta(days=5)).isoformat(),
        "theory_teacher_id": world.ids["teachers"][0], "practical_teacher_id": world.ids["teachers"][1],
        "sessions": [{"name": "全天", "start": "00:00", "end": "23:59"}], "trainee_ids": [world.obama_id]})
    assert r.status_code == 201, r.text
    context = browser.new_context(viewport=PHONE, locale="zh-CN", is_mobile=True, has_touch=True)
    page = context.new_page()
    page.goto(f"{world.client.base_url}/public/notice")
    card = page.locator("#rows tr", has_text=LONG_CODE)
    expect(card).to_have_count(1, timeout=10_000)
    expect(page.locator("#rows tr")).to_have_count(3)
    fits(page)
    assert outside_the_screen(page) == []
    # A row is a card on the phone: each value under its column's name, the whole code on the screen.
    code = card.locator("td").first
    assert code.evaluate("td => getComputedStyle(td, '::before').content") == '"班次编号"'
    box = code.bounding_box()
    assert box and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
    # On a desk's screen it stays a table.
    page.set_viewport_size({"width": 1280, "height": 900})
    assert page.locator("#classes thead").is_visible()
    assert card.locator("td").first.evaluate("td => getComputedStyle(td).display") == "table-cell"
    context.close()
