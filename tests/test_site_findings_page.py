"""The site page's 「问题与异议」 section in Debian's Chromium at 360 px: the institution's finding with its figures and
its own photo, nothing of another institution's, an objection refused without substance and then made, its timer,
and the center's decision once made; served from the center alone (no CDN)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from urllib.parse import urlsplit

from playwright.sync_api import Browser, BrowserContext, Page, expect
from sqlalchemy import select

from models.tables import Alert, AlertTransition
from tests.helpers import World, auth, face, issue_token_via_api
from tests.test_pages import browser, live_world, wait_until  # noqa: F401 - fixtures
from tests.test_site_page import PHONE

CLOSING_NOTE = "现场登记 3 人实到 1 人，签到照片非学员本人"
REASON = "该学员当天全程在班，有课堂签到表和教室监控录像为证，请复核"


def closed_against_the_site(world: World) -> int:
    """A FACE_MISMATCH alert of institution 0's class, closed by an inspector as a confirmed violation (written
    directly: the lifecycle itself is tested in test_dispatch.py and test_objections.py)."""
    assert world.checkin(face("people/kit_harington/john1.jpeg")).json()["status"] == "failed"
    other = world.checkin(face("people/kit_harington/john2.jpeg"), token=world.other_site,
                          trainee_id=world.stranger_id, class_id=world.other_class_id)
    assert other.json()["status"] == "failed"
    now = datetime.now(UTC)
    with world.client.app.state.db.session() as s:
        alert = s.scalars(select(Alert).where(Alert.class_id == world.class_id)).one()
        s.add(AlertTransition(alert_id=alert.id, action="close", from_state="accepted", to_state="closed",
                              actor="抽查员甲", actor_role="inspector", outcome="violation_confirmed",
                              note=CLOSING_NOTE, created_at=now))
        alert.state, alert.outcome, alert.updated_at = "closed", "violation_confirmed", now
        return alert.id


def findings_tab(world: World, chromium: Browser) -> tuple[BrowserContext, Page]:
    """The site's page on a phone (360 px, Beijing time), opened with its token on 问题与异议."""
    context = chromium.new_context(viewport=PHONE, locale="zh-CN", timezone_id="Asia/Shanghai", has_touch=True,
                                  is_mobile=True)
    page = context.new_page()
    page.goto(f"{str(world.client.base_url).rstrip('/')}/site#token={world.site}")
    page.locator("#tab-findings").tap()
    return context, page


def test_the_site_reads_its_findings_and_objects_at_360_px(live_world: World, browser: Browser) -> None:  # noqa: F811
    world = live_world
    base = str(world.client.base_url).rstrip("/")
    alert_id = closed_against_the_site(world)
    context = browser.new_context(viewport=PHONE, locale="zh-CN", timezone_id="Asia/Shanghai", has_touch=True,
                                  is_mobile=True)
    page = context.new_page()
    requested: list[str] = []
    page.on("request", lambda req: requested.append(req.url))
    page.goto(f"{base}/site#token={world.site}")
    expect(page.locator("#tab-findings")).to_have_text("问题与异议")
    page.locator("#tab-findings").tap()
    expect(page.locator("#findings-view")).to_be_visible()
    expect(page.locator("#checkin-view")).to_be_hidden()
    card = page.locator(f"#findings-list .finding[data-alert='{alert_id}']")
    expect(card).to_be_visible(timeout=10_000)
    expect(page.locator("#findings-list .finding")).to_have_count(1)  # not Dali's
    expect(card).to_contain_text("人脸不符")
    expect(card).to_contain_text("测试班0")
    expect(card).to_contain_text("已办结 · 确认违规")
    expect(card).to_contain_text(CLOSING_NOTE)
    expect(card).to_contain_text("欧建国（530")
    expect(card).to_contain_text("人脸相似距离")
    expect(card).to_contain_text("不符阈值")
    expect(card).to_contain_text("比对的登记照：第 1 张")  # not the 0-based index
    text = card.inner_text()  # only the limits its figures are judged against; no whole digest
    assert "速度上限" not in text and "出勤率下限" not in text and not re.search(r"[0-9a-f]{64}", text), text
    wait_until(page, f"document.querySelector(\"[data-alert='{alert_id}'] img.photo\").src.startsWith('blob:')",
               timeout=10_000)  # the photo it uploaded, fetched with its token
    for absent in ("测试班1", "罗晓燕", "测试培训学校1", "抽查员甲"):
        assert absent not in page.locator("#findings-view").inner_text(), absent

    # A reason without substance is refused in plain words; a reason of substance is filed with its deadline.
    expect(page.locator("#objection-alert option")).to_have_count(1)
    page.locator("#objection-reason").fill("不服！不服！")
    page.locator("#objection-submit").tap()
    expect(page.locator("#objection-result")).to_contain_text("不少于 20", timeout=10_000)
    page.locator(f"[data-alert='{alert_id}'] button.object").tap()
    expect(page.locator("#objection-reason")).to_be_focused()
    page.locator("#objection-reason").fill(REASON)
    page.locator("#objection-submit").tap()
    expect(page.locator("#objection-result")).to_contain_text("异议已提交（编号", timeout=10_000)
    mine = page.locator("#my-objections li")
    expect(mine).to_have_count(1, timeout=10_000)
    expect(mine).to_contain_text("待决定")
    expect(mine).to_contain_text("剩余")
    expect(mine).to_contain_text(REASON)
    expect(page.locator("#objection-none")).to_be_visible()  # nothing left to object to
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    box = card.bounding_box()
    assert box and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]

    # The center decides (a second person); the site reads the decision, not who made it.
    objection_id = int(mine.get_attribute("data-id") or 0)
    deputy = issue_token_via_api(world.client, world.admin, "operator", "值班员乙")
    note = "复核签到照片与课堂录像，签到者确非学员本人，原结论成立"
    decided = world.client.post(f"/api/v1/objections/{objection_id}/decide", headers=auth(deputy),
                                json={"decision": "rejected", "note": note})
    assert decided.status_code == 200, decided.text
    page.locator("#tab-checkin").tap()
    page.locator("#tab-findings").tap()
    expect(page.locator("#my-objections li")).to_contain_text("异议驳回", timeout=10_000)
    expect(page.locator("#my-objections li")).to_contain_text(note)
    expect(page.locator("#my-objections li")).to_contain_text("监控中心")
    assert "值班员乙" not in page.locator("#findings-view").inner_text()
    assert {urlsplit(u).netloc for u in requested if u.startswith("http")} == {urlsplit(base).netloc}  # no CDN
    context.close()


def test_a_next_page_that_does_not_come_leaves_the_page_where_it_was(live_world: World,  # noqa: F811
                                                                     browser: Browser) -> None:  # noqa: F811
    """Offline, 下一页 used to count a page it never showed: once back online, the next 下一页 skipped a page."""
    from tests.helpers import insert_alert

    world = live_world
    for _ in range(12):
        insert_alert(world)
    context, page = findings_tab(world, browser)
    status = page.locator("#findings-status")
    expect(status).to_have_text("共 12 条告警，第 1 页", timeout=10_000)
    page.route("**/api/v1/site/findings*", lambda route: route.abort())
    page.locator("#findings-next").tap()
    expect(status).to_contain_text("无法读取")
    page.unroute("**/api/v1/site/findings*")
    page.locator("#findings-next").tap()
    expect(status).to_have_text("共 12 条告警，第 2 页")
    expect(page.locator("#findings-list .finding")).to_have_count(2)
    context.close()


def test_an_alert_on_a_later_page_can_still_be_objected_to(live_world: World, browser: Browser) -> None:  # noqa: F811
    """The objection form listed only the alerts of the page shown: a finding pushed to the second page by newer
    alerts could not be picked. It lists every alert the institution may object to now."""
    from tests.helpers import insert_alert

    world = live_world
    alert_id = closed_against_the_site(world)
    for _ in range(12):
        insert_alert(world)
    context, page = findings_tab(world, browser)
    expect(page.locator("#findings-status")).to_have_text("共 13 条告警，第 1 页", timeout=10_000)
    expect(page.locator(f"#findings-list .finding[data-alert='{alert_id}']")).to_have_count(0)  # on page 2
    options = page.locator("#objection-alert option")
    expect(options).to_have_count(1)
    assert options.first.get_attribute("value") == str(alert_id)
    page.locator("#objection-reason").fill(REASON)
    page.locator("#objection-submit").tap()
    expect(page.locator("#objection-result")).to_contain_text("异议已提交（编号", timeout=10_000)
    expect(page.locator("#objection-none")).to_be_visible()
    context.close()
