"""Every form field a person sees on the pages has an accessible zh-CN name of its own — a <label>, aria-label or
aria-labelledby, never only a placeholder (which disappears once something is typed and which screen readers may
not read) — in Debian's Chromium, in each state of the pages that shows fields: sign-in prompts, the wall's dispatch
panel, the inspector's phone check, checklist and close form, the site's check-in and snapshot modes, the desk pages."""

from __future__ import annotations

import re

from playwright.sync_api import Browser, Page, expect

from tests.crew import Crew
from tests.helpers import auth, issue_token_via_api
from tests.test_inspector_page import PHONE, crew_live  # noqa: F401 - the crew behind a real server
from tests.test_pages import browser  # noqa: F401 - the module-scoped Chromium fixture

CJK = re.compile(r"[\u4e00-\u9fff]")

# The name a field is given by the page itself: aria-labelledby, aria-label, or its <label>s (their text without the
# fields inside them, e.g. a select's options). Placeholders and titles do not count.
OWN_NAMES = """() => {
  const text = node => {
    const copy = node.cloneNode(true);
    copy.querySelectorAll('input, select, textarea').forEach(x => x.remove());
    return copy.textContent.replace(/\\s+/g, ' ').trim();
  };
  const nameOf = e => {
    const by = (e.getAttribute('aria-labelledby') || '').split(/\\s+/).filter(Boolean)
      .map(id => document.getElementById(id)).filter(Boolean).map(text).join(' ');
    return by || (e.getAttribute('aria-label') || '').trim() || [...(e.labels || [])].map(text).join(' ');
  };
  return [...document.querySelectorAll('input, textarea, select')]
    .filter(e => e.type !== 'hidden' && e.getClientRects().length > 0 && getComputedStyle(e).visibility !== 'hidden')
    .map(e => ({ field: e.outerHTML.slice(0, 140), name: nameOf(e) }));
}"""


def assert_named(page: Page, where: str, at_least: int = 1) -> int:
    """Every visible field of the page has a zh-CN name of its own, and Chromium's accessibility tree gives it one;
    at least `at_least` fields were seen (the state really shows its form). The number of fields seen."""
    fields = page.evaluate(OWN_NAMES)
    assert len(fields) >= at_least, (where, fields)
    unnamed = [f["field"] for f in fields if not CJK.search(f["name"])]
    assert not unnamed, f"{where}: fields without a zh-CN <label> or aria-label: {unnamed}"
    for control in page.locator("input:visible, textarea:visible, select:visible").all():
        if control.get_attribute("type") != "hidden":
            expect(control).to_have_accessible_name(CJK)
    return len(fields)


def test_the_wall_and_the_inspector_page_name_every_field(crew_live: Crew, browser: Browser) -> None:  # noqa: F811
    crew = crew_live
    base = str(crew.client.base_url).rstrip("/")
    alert_id = crew.alert_id()

    # The wall: its token prompt, then an alert's dispatch panel (whom to send, the note).
    context = browser.new_context(viewport={"width": 1920, "height": 1080}, locale="zh-CN")
    page = context.new_page()
    page.goto(f"{base}/wall")
    expect(page.locator("#login-token")).to_be_visible(timeout=15_000)
    assert_named(page, "wall: token prompt")
    page = context.new_page()  # a new page: a link with the token (a hash change alone loads nothing)
    page.goto(f"{base}/wall#token={crew.world.operator}")
    expect(page.locator("#conn")).to_have_text("实时连接正常", timeout=15_000)
    page.locator(f"#feed li[data-alert-id='{alert_id}']").click()
    expect(page.locator("#dispatch-note")).to_be_visible(timeout=15_000)
    assert_named(page, "wall: dispatch", at_least=2)
    context.close()

    # The inspector's phone: the sign-in prompt, then a task with its phone check, checklist and close form.
    crew.clock().run()
    assert crew.post(f"/api/v1/alerts/{alert_id}/accept", "county_a").status_code == 200
    context = browser.new_context(viewport=PHONE, locale="zh-CN", has_touch=True, is_mobile=True)
    page = context.new_page()
    page.goto(f"{base}/inspector")
    expect(page.locator("#login-token")).to_be_visible(timeout=15_000)
    assert_named(page, "inspector: sign-in")
    page = context.new_page()
    page.goto(f"{base}/inspector#token={crew.tokens['county_a']}")
    expect(page.locator("#conn")).to_have_text("实时连接正常", timeout=15_000)
    page.evaluate(f"() => {{ location.hash = '#alert={alert_id}'; }}")
    expect(page.locator("#t-state")).to_have_text("已接单", timeout=15_000)
    page.locator("#phone").tap()
    expect(page.locator("#check-list li.trainee form").first).to_be_visible(timeout=15_000)
    page.locator("#insp-unfold").tap()
    expect(page.locator("#insp-items li.item textarea").first).to_be_visible()
    seen = assert_named(page, "inspector: task", at_least=30)  # 8 items × (3 choices + a note), calls, the rest
    assert seen >= 8 * 4
    # A checklist note names its item, not only "情况说明": eight of them are on the screen at once.
    notes = page.locator("#insp-items li.item textarea")
    names = {notes.nth(n).evaluate("t => t.getAttribute('aria-label')") for n in range(notes.count())}
    assert len(names) == notes.count() == 8, names
    context.close()


def test_the_site_and_desk_pages_name_every_field(crew_live: Crew, browser: Browser) -> None:  # noqa: F811
    crew = crew_live
    world = crew.world
    base = str(crew.client.base_url).rstrip("/")
    auditor = issue_token_via_api(world.client, world.admin, "auditor", "审计员")

    context = browser.new_context(viewport=PHONE, locale="zh-CN", has_touch=True, is_mobile=True)
    page = context.new_page()
    page.goto(f"{base}/site")
    expect(page.locator("#token")).to_be_visible(timeout=15_000)
    assert_named(page, "site: token prompt")
    page = context.new_page()
    page.goto(f"{base}/site#token={world.site}")
    expect(page.locator("#trainee option")).to_have_count(2, timeout=15_000)
    expect(page.locator("#photo")).to_be_visible(timeout=15_000)  # no camera here: the file picker instead
    assert_named(page, "site: check-in", at_least=5)
    page.locator("#tab-snapshot").tap()
    expect(page.locator("#snap-interval")).to_be_visible()
    assert_named(page, "site: classroom snapshots", at_least=2)
    context.close()

    for path, token, fields in (("/ledger", auditor, 1), ("/registers", world.admin, 3),
                                ("/review", world.operator, 1)):
        context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
        page = context.new_page()
        page.goto(f"{base}{path}")
        expect(page.locator("#token")).to_be_visible(timeout=15_000)
        assert_named(page, f"{path}: token prompt")
        page = context.new_page()
        page.goto(f"{base}{path}#token={token}")
        # `#login` starts hidden in the markup, so its being hidden says nothing yet: wait for the signed-in
        # page's own fields (the token accepted, the tools drawn) before reading their names.
        page.wait_for_function(f"n => ({OWN_NAMES})().length >= n", arg=fields, timeout=15_000)
        expect(page.locator("#login")).to_be_hidden()
        assert_named(page, path, at_least=fields)
        context.close()
    assert crew.client.get("/api/v1/reviews", headers=auth(world.operator)).status_code == 200
