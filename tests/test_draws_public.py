"""双随机一公开 as the notice means it: the daily draw at a set time on classes in session, supplementary draws,
cross-county inspectors never recused, assignments on the inspector's page, sites told nothing, publication after the
window with names and results but no ties, and a re-run from the public file alone."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from playwright.sync_api import Browser, expect
from sqlalchemy import select, update

from models.clock import SHANGHAI
from models.tables import Draw
from monitor.app import create_app
from monitor.decisions.dispatch import ClassPlace, Inspector, Level
from monitor.decisions.draws import (
    ALGORITHM,
    Candidate,
    DrawRule,
    Tier,
    draw_inspectors,
    draw_size,
    replay,
    tier_of,
)
from monitor.services import draws as draw_service
from monitor.services.draws import draw_due, make_draw
from monitor.settings import Settings
from tests.crew import Crew
from tests.helpers import FACES_DIR, auth, live_world, local_today
from tests.test_inspections import items, signature_png
from tests.test_pages import browser  # noqa: F401 - the module-scoped Chromium fixture

ROOT = Path(__file__).resolve().parents[1]


def add_inspector(crew: Crew, key: str, level: str, region: str, on_duty: bool = True) -> None:
    """One more staff member with a token naming them (and a duty period covering today, unless not on duty)."""
    client, world = crew.client, crew.world
    r = client.post("/api/v1/staff", headers=auth(world.admin), json={
        "name": f"抽查员{key}", "phone": "13700000000", "level": level, "region_code": region})
    assert r.status_code == 201, r.text
    crew.staff[key] = r.json()["id"]
    if on_duty:
        duty = client.post(f"/api/v1/staff/{crew.staff[key]}/duty", headers=auth(world.operator), json={
            "starts_at": (crew.now - timedelta(hours=1)).isoformat(),
            "ends_at": (crew.now + timedelta(hours=8)).isoformat()})
        assert duty.status_code == 201, duty.text
    r = client.post("/api/v1/tokens", headers=auth(world.admin), json={
        "role": "inspector", "name": f"抽查员{key}", "staff_id": crew.staff[key]})
    assert r.status_code == 201, r.text
    crew.tokens[key] = r.json()["token"]


def add_class(crew: Crew, code: str, start: date, days: int = 3) -> int:
    """A class of the first institution and venue from `start`, all day."""
    w = crew.world
    r = crew.client.post("/api/v1/classes", headers=auth(w.admin), json={
        "code": code, "name": f"班次{code}", "institution_id": w.ids["institution"], "venue_id": w.ids["venue"],
        "occupation_id": w.ids["occupation"], "start_date": start.isoformat(),
        "end_date": (start + timedelta(days=days)).isoformat(), "theory_teacher_id": w.ids["teachers"][0],
        "practical_teacher_id": w.ids["teachers"][1], "sessions": [{"name": "全天", "start": "00:00", "end": "23:59"}],
        "trainee_ids": [w.biden_id]})
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def at_local(hhmm: str) -> datetime:
    return datetime.combine(local_today(), time.fromisoformat(hhmm), SHANGHAI)


@pytest.fixture
def crew_all(crew: Crew) -> Crew:
    """The crew on a server that takes every candidate (so the tests know which classes are drawn) and has a
    cross-county inspector: a county inspector of another county (530103) of the class's prefecture (530100)."""
    app = crew.client.app
    app.state.settings = app.state.settings.model_copy(update={"draw_take_all": True})
    add_inspector(crew, "cross", "county", "530103")
    return crew


def file_drawn_form(crew: Crew, who: str, **overrides: Any) -> Any:
    """An on-site form on the first class, both signatures given (the responsible person's and the inspector's)."""
    form: dict[str, Any] = {"class_id": crew.world.class_id, "kind": "on_site", "items": json.dumps(items()),
                            "findings": "在场学员少于签到人数", "responsible_name": "张校长", "headcount_present": 1}
    form.update(overrides)
    files = [("signature", ("sign.png", signature_png(), "image/png")),
             ("inspector_signature", ("mine.png", signature_png(), "image/png"))]
    return crew.client.post("/api/v1/inspections", headers=auth(crew.tokens[who]),
                            data={k: str(v) for k, v in form.items()}, files=files)


def test_the_daily_draw_runs_at_its_time_on_classes_in_session_then_supplementary_for_late_ones(crew: Crew) -> None:
    db, settings = crew.client.app.state.db, crew.client.app.state.settings
    assert settings.draw_at == "08:30" and not settings.draw_take_all
    later = add_class(crew, "LATER", local_today() + timedelta(days=1))  # not in session today
    with db.session() as s:
        assert draw_due(s, settings, at_local("08:29")) is None  # before the set time: nothing
        daily = draw_due(s, settings, at_local("08:30"))
        assert daily is not None and (daily.kind, daily.seq, daily.algorithm) == ("daily", 1, ALGORITHM)
        assert sorted(c["class_id"] for c in daily.candidates) == sorted([crew.world.class_id,
                                                                          crew.world.other_class_id])
        assert later not in [c["class_id"] for c in daily.candidates]
        # 1 in 3 of 2 candidates: one is drawn, not both (never all unless configured).
        assert len(daily.classes) == 1 and daily.rule == {"rate": settings.draw_rate, "at_most": 10,
                                                         "take_all": False}
        assert draw_due(s, settings, at_local("09:45")) is None  # once a day; nothing new to add
    late = add_class(crew, "LATE", local_today() - timedelta(days=1))  # registered after the daily draw
    with db.session() as s:
        assert draw_due(s, settings, at_local("08:40")) is None  # not before draw_supplementary_minutes
        extra = draw_due(s, settings, at_local("09:31"))
        assert extra is not None and (extra.kind, extra.seq) == ("supplementary", 2)
        assert [c["class_id"] for c in extra.candidates] == [late]  # only the newcomer
        assert draw_due(s, settings, at_local("11:00")) is None  # no newcomer since
    # By hand: the daily draw again is refused, a supplementary one with nobody new too.
    assert crew.post("/api/v1/draws", "operator", {}).json()["code"] == "ALREADY_DRAWN"
    r = crew.post("/api/v1/draws", "operator", {"kind": "supplementary"})
    assert (r.status_code, r.json()["code"]) == (409, "NOTHING_TO_DRAW")
    listed = crew.client.get("/api/v1/draws", headers=auth(crew.world.operator)).json()
    assert [(d["kind"], d["seq"]) for d in listed] == [("daily", 1), ("supplementary", 2)]


def test_two_processes_drawing_at_once_make_one_draw(crew: Crew, monkeypatch: pytest.MonkeyPatch) -> None:
    db, settings = crew.client.app.state.db, crew.client.app.state.settings
    with db.session() as s:
        assert draw_due(s, settings, at_local("08:30")) is not None
    # The second process read the day before the first committed: it sees no draw and inserts seq 1 too.
    monkeypatch.setattr(draw_service, "day_draws", lambda session, day: [])
    with db.session() as s:
        assert draw_due(s, settings, at_local("08:31")) is None  # the unique (day, seq) decided: it lost
        with pytest.raises(Exception) as lost:
            make_draw(s, settings, local_today(), "第二个进程", at_local("08:31"))
        assert getattr(lost.value, "code", "") == "ALREADY_DRAWN"
    with db.session() as s:
        assert len(s.scalars(select(Draw.id)).all()) == 1


def test_a_cross_county_inspector_is_drawn_sees_the_assignment_and_files_the_form(crew_all: Crew) -> None:
    crew = crew_all
    r = crew.post("/api/v1/draws", "operator", {})
    assert r.status_code == 201, r.text
    draw = r.json()
    cid, other = crew.world.class_id, crew.world.other_class_id
    assert sorted(draw["classes"]) == sorted([cid, other])
    # 530102's class: another county of its prefecture first (not the local one, not the tied one).
    assert draw["inspectors"][str(cid)] == crew.staff["cross"] and draw["tiers"][str(cid)] == "cross_county"
    # 532901's class: nobody of another Dali county nor of Dali prefecture: the province.
    assert draw["inspectors"][str(other)] == crew.staff["province"] and draw["tiers"][str(other)] == "province"
    mine = crew.client.get("/api/v1/my/assignments", headers=auth(crew.tokens["cross"]))
    assert mine.status_code == 200, mine.text
    [task] = mine.json()
    assert (task["class_id"], task["class_code"], task["institution_name"], task["venue_name"]) == (
        cid, "TEST-0", "测试培训学校0", "教学楼0")
    assert task["kind"] == "daily" and "检查表" in task["todo"] and task["tier_name"].startswith("异地交叉")
    assert not task["done"]
    for who in ("county_a", "county_tied", "prefecture", "elsewhere"):
        assert crew.client.get("/api/v1/my/assignments", headers=auth(crew.tokens[who])).json() == []
    # The class lies outside the cross-county inspector's own county, yet the draw lets them file its form.
    filed = file_drawn_form(crew, "cross")
    assert filed.status_code == 201, filed.text
    assert crew.client.get("/api/v1/my/assignments", headers=auth(crew.tokens["cross"])).json()[0]["done"]
    # They read back the form they signed, and its PDF; another county's inspector does not.
    form_id = filed.json()["id"]
    for path in (f"/api/v1/inspections/{form_id}", f"/api/v1/inspections/{form_id}/form.pdf"):
        assert crew.client.get(path, headers=auth(crew.tokens["cross"])).status_code == 200
        assert crew.client.get(path, headers=auth(crew.tokens["elsewhere"])).status_code == 404
    # Another county's inspector who was not drawn still cannot.
    add_inspector(crew, "cross2", "county", "530111")
    assert file_drawn_form(crew, "cross2").status_code == 404


def test_the_pool_prefers_another_county_and_never_a_recused_or_off_duty_inspector(crew: Crew) -> None:
    add_inspector(crew, "cross_off", "county", "530103", on_duty=False)  # another county, but not on duty today
    add_inspector(crew, "cross_tied", "county", "530112")
    tie = crew.client.post(f"/api/v1/staff/{crew.staff['cross_tied']}/ties", headers=auth(crew.tokens["cross_tied"]),
                           json={"institution_id": crew.world.ids["institution"], "relation": "self"})
    assert tie.status_code == 201, tie.text
    with crew.client.app.state.db.session() as s:
        settings = crew.client.app.state.settings.model_copy(update={"draw_take_all": True})
        draw = make_draw(s, settings, local_today(), "测试")
        pool = {r["staff_id"] for r in draw.roster}
        assert crew.staff["cross_off"] not in pool  # on duty data exists for today: off duty is out
        # Nobody of another county is eligible (one off duty, one tied): the prefecture's inspector.
        assert draw.inspectors[str(crew.world.class_id)] == crew.staff["prefecture"]
        assert draw_service.tiers_of(draw)[str(crew.world.class_id)] == "prefecture"


def test_sites_learn_nothing_of_draws(crew: Crew) -> None:
    r = crew.post("/api/v1/draws", "operator", {})
    assert r.status_code == 201, r.text
    draw_id = r.json()["id"]
    site = auth(crew.world.site)
    for method, path in (("GET", "/api/v1/draws"), ("POST", "/api/v1/draws"), ("GET", f"/api/v1/draws/{draw_id}/redo"),
                         ("GET", "/api/v1/my/assignments"), ("GET", "/api/v1/my/draws")):
        got = crew.client.request(method, path, headers=site, json={} if method == "POST" else None)
        assert got.status_code in (403, 404), (path, got.status_code)
        assert str(crew.world.class_id) not in got.text or got.status_code == 403
    assert crew.client.get("/public/draws.json", headers=site).json() == []  # not before the window has passed
    region_only = crew.client.post("/api/v1/tokens", headers=auth(crew.world.admin), json={
        "role": "inspector", "name": "区域令牌", "region_codes": ["530100"]}).json()["token"]
    assert crew.client.get("/api/v1/my/assignments", headers=auth(region_only)).status_code == 403


def publish_all(crew: Crew) -> list[dict[str, Any]]:
    with crew.client.app.state.db.session() as s:
        s.execute(update(Draw).values(window_ends_at=datetime.now(UTC)))
    published = crew.client.get("/public/draws.json")
    assert published.status_code == 200, published.text
    return list(published.json())


def test_a_draw_is_published_after_its_window_with_names_results_seed_and_version_and_no_ties(crew_all: Crew
                                                                                               ) -> None:
    crew = crew_all
    draw = crew.post("/api/v1/draws", "operator", {}).json()
    assert crew.client.get("/public/draws.json").json() == []  # the window is open: nothing public
    filed = file_drawn_form(crew, "cross", findings="学员欧建国（电话 13912345678）不在场", responsible_name="张校长")
    assert filed.status_code == 201, filed.text
    [public] = publish_all(crew)
    assert (public["id"], public["seed"], public["algorithm"], public["kind"]) == (draw["id"], draw["seed"],
                                                                                    ALGORITHM, "daily")
    assert public["drawn"] == draw["classes"] and public["rule"]["take_all"] is True
    assert sorted(c["class_id"] for c in public["candidates"]) == sorted(draw["classes"])
    by_class = {c["class_id"]: c for c in public["classes"]}
    first = by_class[crew.world.class_id]
    assert (first["class_code"], first["class_name"]) == ("TEST-0", "测试班0")
    assert first["institution_name"] == "测试培训学校0"
    assert first["inspector_tier"] == "cross_county"
    [result] = first["inspections"]
    assert result["kind"] == "on_site" and result["conclusion"] == "发现 1 项不符合"
    assert result["items"]["headcount"] == "不符合" and result["headcount_present"] == 1
    assert by_class[crew.world.other_class_id]["inspections"] == []
    text = json.dumps(public, ensure_ascii=False)
    for secret in ("tied", "roster", "staff", "抽查员", "张校长", "欧建国", "13912345678", "配偶", "inspector\""):
        assert secret not in text, secret


def rerun(tmp_path: Path, draws: list[dict[str, Any]], name: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / name
    path.write_text(json.dumps(draws, ensure_ascii=False), encoding="utf-8")
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "rerun_draw.py"), str(path)], capture_output=True,
                          text=True, timeout=60, cwd=tmp_path)


def test_the_published_draw_is_rerun_from_the_public_file_alone(crew: Crew, tmp_path: Path) -> None:
    crew.alert_id()  # an anomaly weighs the first class
    assert crew.post("/api/v1/draws", "operator", {}).status_code == 201
    add_class(crew, "LATE", local_today())
    assert crew.post("/api/v1/draws", "operator", {"kind": "supplementary"}).status_code == 201
    published = publish_all(crew)
    assert [d["kind"] for d in published] == ["daily", "supplementary"]
    ok = rerun(tmp_path, published, "draws.json")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert ok.stdout.count("复核一致") == 2
    tampered = json.loads(json.dumps(published))
    # A changed seed draws another class of the two (or the same one by chance): the first seed that differs.
    candidates = [draw_service.candidate_of(c) for c in tampered[0]["candidates"]]
    rule = DrawRule.of(tampered[0]["rule"])
    tampered[0]["seed"] = next(seed for seed in (f"{n:032x}" for n in range(50))
                               if replay(candidates, rule, seed, ALGORITHM) != tampered[0]["drawn"])
    bad = rerun(tmp_path, tampered, "tampered.json")
    assert bad.returncode == 1 and "复核不一致" in bad.stdout, bad.stdout + bad.stderr
    other_version = json.loads(json.dumps(published))
    other_version[1]["algorithm"] = "yn-draw/9"
    assert rerun(tmp_path, other_version, "version.json").returncode == 1


# -- the pure rules -------------------------------------------------------------------------------------------------
@given(st.integers(2, 200), st.floats(0.01, 1.0), st.integers(1, 50), st.text(max_size=20))
def test_a_draw_never_takes_every_candidate_unless_configured(n: int, rate: float, at_most: int, seed: str) -> None:
    k = draw_size(n, DrawRule(rate, at_most), seed)
    assert 1 <= k <= min(at_most, n - 1)
    assert draw_size(n, DrawRule(rate, at_most, take_all=True), seed) == min(n, at_most)


def test_a_lone_candidate_is_drawn_about_as_often_as_the_rate() -> None:
    drawn = Counter(draw_size(1, DrawRule(1 / 3, 10), f"seed-{n}") for n in range(3000))
    assert 900 < drawn[1] < 1100 and set(drawn) == {0, 1}
    assert draw_size(0, DrawRule(1 / 3, 10), "s") == 0


PLACE = ClassPlace("530102", 7)
PEOPLE = [Inspector(1, Level.COUNTY, "530102"), Inspector(2, Level.COUNTY, "530103"),
          Inspector(3, Level.COUNTY, "530111"), Inspector(4, Level.PREFECTURE, "530100"),
          Inspector(5, Level.PROVINCE, "530000"), Inspector(6, Level.COUNTY, "532901"),
          Inspector(7, Level.PREFECTURE, "532900")]


def test_tiers_prefer_another_county_of_the_prefecture() -> None:
    assert [tier_of(i, PLACE) for i in PEOPLE] == [Tier.LOCAL, Tier.CROSS_COUNTY, Tier.CROSS_COUNTY,
                                                    Tier.PREFECTURE, Tier.PROVINCE, None, None]
    counts = Counter(draw_inspectors([Candidate(n, PLACE, 0, 0)], PEOPLE, "s")[n].staff_id for n in range(400))
    assert set(counts) == {2, 3} and min(counts.values()) > 150  # both cross-county ones, at random
    only_local = [PEOPLE[0], PEOPLE[5]]
    assert draw_inspectors([Candidate(1, PLACE, 0, 0)], only_local, "s")[1].tier is Tier.LOCAL  # last resort, said


@given(st.text(max_size=20), st.lists(st.sets(st.sampled_from([7, 8]), max_size=2), min_size=7, max_size=7))
def test_a_recused_inspector_is_never_drawn(seed: str, ties: list[set[int]]) -> None:
    roster = [Inspector(i.staff_id, i.level, i.region_code, tied_institutions=frozenset(t))
              for i, t in zip(PEOPLE, ties, strict=True)]
    pick = draw_inspectors([Candidate(1, PLACE, 0, 0)], roster, seed)[1]
    reachable = [i for i in roster if tier_of(i, PLACE) is not None and 7 not in i.tied_institutions]
    if pick.staff_id is None:
        assert not reachable
    else:
        chosen = next(i for i in roster if i.staff_id == pick.staff_id)
        assert 7 not in chosen.tied_institutions
        best = min(list(Tier).index(t) for t in (tier_of(i, PLACE) for i in reachable) if t is not None)
        assert pick.tier is list(Tier)[best]


def test_the_inspector_page_shows_the_days_draw_assignment(tmp_path: Path, browser: Browser) -> None:  # noqa: F811
    settings = Settings(data_dir=tmp_path / "data", faces_dir=FACES_DIR, clock_interval_seconds=1.0, face_processes=0,
                        clock_rules=False, dispatch_interval_seconds=3600, draw_auto=False, draw_take_all=True)
    with live_world(create_app(settings)) as world:
        crew = Crew(world, {}, {})
        add_inspector(crew, "cross", "county", "530103")
        add_inspector(crew, "other", "county", "532901")
        add_inspector(crew, "province", "province", "530000")
        assert crew.post("/api/v1/draws", "operator", {}).status_code == 201
        base = str(world.client.base_url)
        context = browser.new_context(viewport={"width": 360, "height": 740}, locale="zh-CN")
        page = context.new_page()
        page.goto(f"{base}/inspector#token={crew.tokens['cross']}")
        section = page.locator("#draws")
        expect(section).to_contain_text("今日抽查任务（双随机）")
        expect(section.locator(".draw-task")).to_have_count(1)
        expect(section).to_contain_text("测试班0（TEST-0）")
        expect(section).to_contain_text("测试培训学校0")
        expect(section).to_contain_text("异地交叉")
        expect(section).to_contain_text("检查表")
        # The form is filed from the page: the assignment opens as a task whose form is the thing to do.
        section.locator(".draw-task a.button", has_text="填写检查表").click()
        expect(page.locator("#t-rule")).to_have_text("双随机抽查")
        expect(page.locator("#t-facts")).to_contain_text("教学楼0")
        expect(page.locator("#t-actions")).to_be_hidden()  # no alert to accept, phone or close
        expect(page.locator("#close-form")).to_be_hidden()
        form = page.locator("#insp-form")
        expect(form.locator("#insp-items")).to_be_visible()
        for item in form.locator("#insp-items li.item").all():
            item.locator("input[value=ok]").check()
        page.locator("#insp-responsible").fill("李校长")
        for pad_id in ("#insp-sign", "#insp-sign-mine"):
            pad = page.locator(pad_id)
            pad.scroll_into_view_if_needed()
            box = pad.bounding_box()
            assert box is not None
            page.mouse.move(box["x"] + 0.1 * box["width"], box["y"] + 0.6 * box["height"])
            page.mouse.down()
            for fx, fy in [(0.3, 0.2), (0.5, 0.8), (0.7, 0.3), (0.9, 0.6)]:
                page.mouse.move(box["x"] + fx * box["width"], box["y"] + fy * box["height"], steps=5)
            page.mouse.up()
        page.locator("#insp-submit").click()
        expect(page.locator("#insp-done")).to_contain_text("检查表已归档", timeout=15_000)
        expect(page.locator("#insp-done-msg")).to_contain_text("双随机抽查任务已完成")
        [filed] = world.client.get("/api/v1/my/assignments", headers=auth(crew.tokens["cross"])).json()
        assert filed["done"] and len(filed["inspection_ids"]) == 1
        form_row = world.client.get(f"/api/v1/inspections/{filed['inspection_ids'][0]}",
                                    headers=auth(crew.tokens["cross"])).json()
        assert form_row["alert_id"] is None and form_row["responsible_name"] == "李校长"
        page.locator("#back").click()
        expect(section.locator(".draw-task")).to_contain_text("已提交检查表")
        context.close()
        context = browser.new_context(viewport={"width": 360, "height": 740}, locale="zh-CN")
        page = context.new_page()
        page.goto(f"{base}/inspector#token={crew.tokens['other']}")  # drawn for nothing (the province took Dali's)
        expect(page.locator("#draws-empty")).to_be_visible()
        expect(page.locator("#draws .draw-task")).to_have_count(0)
        context.close()
        # Once the window has passed, the public notice page lists the draw (no token).
        with world.client.app.state.db.session() as s:
            s.execute(update(Draw).values(window_ends_at=datetime.now(UTC)))
        context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
        page = context.new_page()
        page.goto(f"{base}/public/notice")
        draws = page.locator("#draws")
        expect(draws).to_contain_text("TEST-0 测试班0")
        expect(draws).to_contain_text("测试培训学校1")
        expect(draws).to_contain_text(ALGORITHM)
        expect(draws).to_contain_text("检查期内未提交检查表")
        assert "抽查员" not in draws.inner_text()
        context.close()
