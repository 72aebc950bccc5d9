"""The operator's review queue page in Chromium: oldest first, both photos side by side, decided from the keyboard,
one item and then a selection at once."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect
from sqlalchemy import select

from models.tables import CheckIn
from monitor.app import create_app
from monitor.settings import Settings
from tests.helpers import FACES_DIR, World, auth, face, issue_token_via_api
from tests.helpers import live_world as running
from tests.test_inspector_page import DOCS, save_png
from tests.test_pages import browser, wait_until  # noqa: F401 - the module-scoped Chromium fixture


@pytest.fixture
def grey_world(tmp_path: Path) -> Iterator[World]:
    # Strict thresholds so that the sample faces' genuine photos land in the review band.
    settings = Settings(data_dir=tmp_path / "data", faces_dir=FACES_DIR, face_processes=0, clock_rules=False,
                        face_match_threshold=0.15, face_mismatch_threshold=0.55, dispatch_auto=False)
    with running(create_app(settings)) as world:
        yield world


def test_an_operator_works_the_queue_from_the_keyboard(grey_world: World, browser: Browser,  # noqa: F811
                                                        tmp_path: Path) -> None:
    world = grey_world
    uploads = [world.checkin(face("people/obama/obama2.jpg")), world.checkin(face("people/obama/obama1.jpg")),
               world.checkin(face("people/biden/biden2.jpg"), trainee_id=world.biden_id, device_id="phone-2")]
    assert [r.json()["status"] for r in uploads] == ["review"] * 3, [r.json()["message"] for r in uploads]
    ids = [r.json()["id"] for r in uploads]
    page = browser.new_page(viewport={"width": 1600, "height": 900}, locale="zh-CN")
    page.goto(f"{world.client.base_url}/review#token={world.operator}")
    expect(page.locator("#counts")).to_have_text("待复核 3 项", timeout=10_000)
    assert "token" not in page.url
    expect(page.locator("#queue li")).to_have_count(3)
    expect(page.locator("#queue li.current")).to_contain_text("欧建国")
    wait_until(page, "document.querySelector('#photo').naturalWidth > 0 && "
                     "document.querySelector('#reference').naturalWidth > 0")  # side by side
    expect(page.locator("#facts")).to_contain_text("faceplugin-arcface")
    expect(page.locator("#facts")).to_contain_text("通过 ≤ 0.15")
    if DOCS is not None:
        save_png(DOCS / "review-queue.png", page.screenshot())
    expect(page.locator("#note")).to_have_value("")  # the reason is the operator's own: nothing written for them
    page.keyboard.press("y")
    expect(page.locator("#result")).to_have_text("请填写复核说明（至少 2 个字）")
    page.fill("#note", "五官与登记照一致")
    page.keyboard.press("Escape")
    page.keyboard.press("y")  # the oldest: confirmed
    expect(page.locator("#counts")).to_have_text("待复核 2 项", timeout=15_000)
    expect(page.locator("#result")).to_have_text("已处理 1 项")
    expect(page.locator("#note")).to_have_value("")  # not carried over to the next trainee
    page.keyboard.press("x")  # select both that are left, then reject them at once with a note
    page.keyboard.press("j")
    page.keyboard.press("x")
    expect(page.locator("#queue li.selected")).to_have_count(2)
    page.keyboard.press("/")
    page.fill("#note", "与登记照片不是同一人")
    page.keyboard.press("Escape")
    page.keyboard.press("n")
    expect(page.locator("#item-title")).to_have_text("队列已清空", timeout=15_000)
    expect(page.locator("#result")).to_have_text("已处理 2 项")
    with world.client.app.state.db.session() as s:
        statuses = dict(s.execute(select(CheckIn.id, CheckIn.status).where(CheckIn.id.in_(ids))).all())
    assert [statuses[i] for i in ids] == ["passed", "failed", "failed"]
    page.screenshot(path=str(tmp_path / "review.png"))
    page.close()


def test_an_auditor_reads_the_queue_without_buttons_that_would_be_refused(grey_world: World,
                                                                       browser: Browser) -> None:  # noqa: F811
    """Auditors read the queue (GET /reviews) but may not decide: the page asks GET /api/v1/me and offers them no
    decision button nor note, saying who decides, instead of buttons answered 403."""
    world = grey_world
    r = world.checkin(face("people/obama/obama2.jpg"))
    assert r.json()["status"] == "review", r.text
    auditor = issue_token_via_api(world.client, world.admin, "auditor", "审计员甲")
    me = world.client.get("/api/v1/me", headers=auth(auditor)).json()
    assert (me["role"], me["role_name"], me["name"]) == ("auditor", "审计人员", "审计员甲")
    page = browser.new_page(viewport={"width": 1600, "height": 900}, locale="zh-CN")
    page.goto(f"{world.client.base_url}/review#token={auditor}")
    expect(page.locator("#counts")).to_have_text("待复核 1 项", timeout=10_000)
    expect(page.locator("#actions")).to_contain_text("当前身份（审计人员）只可查看复核队列")
    expect(page.locator("#actions button")).to_have_count(0)
    expect(page.locator("#note")).to_be_hidden()
    page.keyboard.press("y")
    expect(page.locator("#counts")).to_have_text("待复核 1 项")
    assert page.locator("#result").inner_text() == ""
    page.close()


def test_the_desk_pages_ask_for_a_token_refuse_a_wrong_one_and_start_with_a_right_one(
        grey_world: World, browser: Browser) -> None:  # noqa: F811
    """The review, ledger and registers pages share one token prompt: shown without a token, kept open with the
    API's refusal after a wrong one (entered with Enter), gone once a token the page accepts is given (button)."""
    world = grey_world
    base = str(world.client.base_url).rstrip("/")
    for path, token, ready in (("/review", world.operator, "#main"), ("/ledger", world.admin, "#tools"),
                               ("/registers", world.admin, "#tools")):
        page = browser.new_page(locale="zh-CN")
        page.goto(f"{base}{path}")
        expect(page.locator("#login")).to_be_visible(timeout=10_000)
        expect(page.locator(ready)).to_be_hidden()
        page.fill("#token", "mon_not-a-token")
        page.press("#token", "Enter")
        expect(page.locator("#error")).to_contain_text("令牌", timeout=10_000)
        expect(page.locator("#login")).to_be_visible()
        page.fill("#token", token)
        page.click("#go")
        expect(page.locator(ready)).to_be_visible(timeout=10_000)
        expect(page.locator("#login")).to_be_hidden()
        page.reload()  # the token is kept for the page's session
        expect(page.locator(ready)).to_be_visible(timeout=10_000)
        page.close()
    page = browser.new_page(locale="zh-CN")  # an operator's token on the admin's registers page
    page.goto(f"{base}/registers#token={world.operator}")
    expect(page.locator("#error")).to_have_text("仅管理员可导入登记表数据", timeout=10_000)
    expect(page.locator("#login")).to_be_visible()
    page.close()
