"""Staff sign in without pasting a token: an admin issues a one-time link (and its QR code); the phone exchanges it
once for a session bound to that person, which expires after a working day."""

from __future__ import annotations

import threading
from datetime import timedelta

import cv2
import numpy as np
from playwright.sync_api import Browser, expect
from sqlalchemy import update

from models.clock import utc_now
from models.tables import ApiToken, SignInLink
from tests.crew import Crew
from tests.helpers import auth
from tests.test_inspector_page import PHONE, crew_live  # noqa: F401 - the live crew fixture
from tests.test_pages import browser  # noqa: F401 - the module-scoped Chromium fixture


def issue(crew: Crew, who: str = "county_a", **body: int) -> dict[str, str]:
    r = crew.client.post(f"/api/v1/staff/{crew.staff[who]}/sign-in-links", headers=auth(crew.world.admin), json=body)
    assert r.status_code == 201, r.text
    return dict(r.json())


def redeem(crew: Crew, code: str) -> tuple[int, dict[str, str]]:
    r = crew.client.post("/auth/sign-in", json={"code": code})
    return r.status_code, r.json()


def test_a_link_signs_its_person_in_once_and_the_session_is_theirs(crew: Crew) -> None:
    link = issue(crew)
    assert link["url"].endswith(f"/inspector#signin={link['code']}") and link["qr_svg"].startswith("<svg")
    status, session = redeem(crew, link["code"])
    assert status == 200, session
    me = crew.client.get("/api/v1/staff/me", headers=auth(session["token"]))
    assert me.status_code == 200 and me.json()["id"] == crew.staff["county_a"]
    # The session acts as that person: it may accept (staff-bound), unlike a region token.
    assert session["name"] == me.json()["name"]
    again = redeem(crew, link["code"])
    assert again[0] == 401 and again[1]["code"] == "SIGN_IN_LINK_INVALID"
    # Only an admin issues links; nobody learns whether a guessed code exists.
    for who in ("county_a", "prefecture"):
        r = crew.client.post(f"/api/v1/staff/{crew.staff[who]}/sign-in-links", headers=auth(crew.tokens[who]))
        assert r.status_code == 403
    assert redeem(crew, "x" * 22)[0] == 401
    assert crew.client.post("/auth/sign-in", json={"code": "short"}).status_code == 422
    from monitor.services.audit import verify_rows  # the redemption (a conditional UPDATE) is in the chain too
    assert verify_rows(crew.client.app.state.db, ["sign_in_links", "api_tokens"])[1] == []


def test_links_and_sessions_expire(crew: Crew) -> None:
    link = issue(crew, valid_minutes=5)
    with crew.client.app.state.db.session() as s:
        s.execute(update(SignInLink).values(expires_at=utc_now() - timedelta(seconds=1)))
    assert redeem(crew, link["code"])[0] == 401
    status, session = redeem(crew, issue(crew)["code"])
    assert status == 200
    with crew.client.app.state.db.session() as s:
        s.execute(update(ApiToken).where(ApiToken.expires_at.is_not(None))
                  .values(expires_at=utc_now() - timedelta(seconds=1)))
    r = crew.client.get("/api/v1/staff/me", headers=auth(session["token"]))
    assert r.status_code == 401 and "已过期" in r.json()["message"]


def test_two_phones_racing_with_one_link_get_one_session(crew: Crew) -> None:
    code = issue(crew)["code"]
    results: list[int] = []
    barrier = threading.Barrier(4)

    def go() -> None:
        barrier.wait()
        results.append(redeem(crew, code)[0])

    threads = [threading.Thread(target=go) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [200, 401, 401, 401]


def test_the_qr_code_carries_the_link(crew: Crew, browser: Browser) -> None:  # noqa: F811
    link = issue(crew)
    page = browser.new_page()
    page.set_content(f"<body style='margin:20px;background:#fff'>{link['qr_svg']}</body>")
    png = page.screenshot()
    page.close()
    image = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    # OpenCV's classic detector misses about 1 in 200 valid codes; the ArUco-based one reads them all
    text, _, _ = cv2.QRCodeDetectorAruco().detectAndDecode(image)
    assert text == link["url"]


def test_the_phone_opens_the_link_and_is_signed_in(crew_live: Crew, browser: Browser) -> None:  # noqa: F811
    crew = crew_live
    base = str(crew.client.base_url).rstrip("/")
    link = issue(crew)
    context = browser.new_context(viewport=PHONE, locale="zh-CN", has_touch=True, is_mobile=True)
    page = context.new_page()
    page.goto(f"{base}/inspector#signin={link['code']}")
    expect(page.locator("#me")).to_contain_text("县区抽查员甲", timeout=10_000)
    expect(page.locator("#conn")).to_have_text("实时连接正常", timeout=10_000)
    assert "signin" not in page.url  # the code leaves the address bar (and the history)
    # The same link on another phone: refused, with a message that says what to do.
    other = browser.new_context(viewport=PHONE, locale="zh-CN").new_page()
    other.goto(f"{base}/inspector#signin={link['code']}")
    expect(other.locator("#login")).to_be_visible(timeout=10_000)
    expect(other.locator("#login-error")).to_contain_text("登录链接无效、已使用或已过期")
    context.close()
