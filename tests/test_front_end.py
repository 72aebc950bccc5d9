"""The pages' code shaped like the back end (issue 19 item 10): ES modules in one folder per page over one shared
library (web/static/lib), layers and no cycles, no file over 400 lines, the network only through the shared client;
and that client's behaviour in Chromium against the live server with faults injected (lost answers, 503, 401)."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, Route
from sqlalchemy import func, select

from models.tables import CheckIn, Occupation
from tests.helpers import REPO, World, face
from tests.test_pages import browser, live_world  # noqa: F401 - the Chromium and live-server fixtures

STATIC = REPO / "web" / "static"
PAGES = ("wall", "site", "inspector", "ledger", "registers", "review", "notice", "docs")
IMPORT = re.compile(r'^\s*(?:import|export)\s[^;]*?from\s+"([^"]+)"|^\s*import\s+"([^"]+)"', re.M | re.S)
NETWORK = re.compile(r"\bfetch\(|new WebSocket\(|indexedDB\.open\(|new EventSource\(|XMLHttpRequest")


def modules() -> list[Path]:
    """Every script of the pages: all .js under web/static except the vendored ones and the service worker."""
    return sorted(p for p in STATIC.rglob("*.js") if "vendor" not in p.parts and p.name != "shell-sw.js")


def imports_of(module: Path) -> list[Path]:
    found = []
    for a, b in IMPORT.findall(module.read_text(encoding="utf-8")):
        spec = a or b
        assert spec.startswith(("./", "../", "/static/")), f"{module.name}: a bare import {spec!r} (no build step)"
        target = STATIC / spec.removeprefix("/static/") if spec.startswith("/static/") else module.parent / spec
        found.append(target.resolve())
    return found


def test_every_page_is_es_modules_in_its_own_folder_over_the_shared_library() -> None:
    for path in modules():
        rel = path.relative_to(STATIC)
        assert len(rel.parts) == 2 and rel.parts[0] in (*PAGES, "lib"), f"{rel}: outside a page's folder or lib/"
        text = path.read_text(encoding="utf-8")
        assert len(text.splitlines()) <= 400, f"{rel} is over 400 lines"
        assert not re.search(r"\bMonitor\b", text), f"{rel} uses the retired global Monitor"
        assert not re.match(r'\s*(//[^\n]*\n\s*)*"use strict"', text), f"{rel} is a classic script, not a module"
    assert not (STATIC / "common.js").exists()
    for page in PAGES:
        assert (STATIC / page / "main.js").exists(), f"{page} has no main.js"
    for html in STATIC.glob("*.html"):
        text = html.read_text(encoding="utf-8")
        for tag in re.findall(r"<script[^>]*>", text):
            src = re.search(r'src="([^"]+)"', tag)
            assert src, f"{html.name}: an inline script"
            if "/vendor/" not in src.group(1):
                assert 'type="module"' in tag and re.fullmatch(r"/static/[a-z]+/main\.js", src.group(1)), (
                    f"{html.name}: {tag} is not its page's main module")


def test_modules_import_in_layers_without_cycles() -> None:
    graph = {m.resolve(): imports_of(m) for m in modules()}
    for module, targets in graph.items():
        folder = module.parent.name
        for target in targets:
            assert target in graph, f"{module.relative_to(STATIC)} imports {target}, which does not exist"
            if folder == "lib":
                assert target.parent.name == "lib", f"lib/{module.name} imports the page module {target.name}"
            else:  # a page imports its own folder and the shared library, never another page
                assert target.parent.name in (folder, "lib"), f"{folder}/{module.name} imports {target}"
            if module.name == "state.js":  # state sits below its page's views
                assert target.parent.name == "lib" or target.name == "state.js", (
                    f"{folder}/state.js imports the view {target.name}")
    # No cycle anywhere (a depth-first walk that meets a module still on its path has found one).
    done: set[Path] = set()

    def walk(node: Path, path: list[Path]) -> None:
        if node in done:
            return
        assert node not in path, "import cycle: " + " -> ".join(p.name for p in [*path, node])
        for nxt in graph[node]:
            walk(nxt, [*path, node])
        done.add(node)

    for node in graph:
        walk(node, [])


def test_state_modules_hold_no_views_and_only_lib_touches_the_network() -> None:
    for path in modules():
        text = re.sub(r"//[^\n]*", "", path.read_text(encoding="utf-8"))  # comments may name what they avoid
        rel = path.relative_to(STATIC)
        if rel.parts[0] != "lib":
            assert not NETWORK.search(text), f"{rel} talks to the network itself instead of through lib/"
        if path.name == "state.js":
            assert not re.search(r"\bdocument\.|getElementById|querySelector|\.classList", text), (
                f"{rel} touches the page: state is kept apart from views")
    lib_network = {p.name for p in (STATIC / "lib").glob("*.js")
                   if NETWORK.search(re.sub(r"//[^\n]*", "", p.read_text(encoding="utf-8")))}
    assert lib_network == {"api.js", "live.js", "outbox.js", "catalogue.js"}, lib_network


def test_the_offline_shells_list_the_pages_modules_and_the_shared_library(live_world: World) -> None:  # noqa: F811
    for page in ("site", "inspector"):
        listed = live_world.client.get(f"/{page}-shell.json").json()
        expected = {f"/static/{p.relative_to(STATIC).as_posix()}" for p in
                    [*STATIC.glob(f"{page}/*.js"), *STATIC.glob("lib/*.js")]}
        assert expected <= set(listed) and f"/{page}" in listed and "/public/rules.json" in listed
        for url in listed:
            assert live_world.client.get(url).status_code == 200, url


# -- the client's behaviour, in the browser against the live server --------------------------------------------------
@pytest.fixture
def page(live_world: World, browser: Browser) -> Iterator[Page]:  # noqa: F811 - the fixture imported above
    context = browser.new_context(locale="zh-CN", timezone_id="Asia/Shanghai")
    p = context.new_page()
    p.goto(f"{live_world.client.base_url}/public/notice")
    yield p
    context.close()


def run(page: Page, body: str, **args: object) -> object:
    """Runs `body` (an async function body with the modules `api`, `outbox` and `args` in scope) in the page."""
    return page.evaluate(f"""async (args) => {{
        const api = await import("/static/lib/api.js");
        const outbox = await import("/static/lib/outbox.js");
        {body}
    }}""", args)


def test_a_write_is_retried_under_one_key_and_stored_once(live_world: World, page: Page) -> None:  # noqa: F811
    seen: list[str] = []
    plan = ["abort", "503", "lost", "pass"]

    def handle(route: Route) -> None:
        seen.append(route.request.headers.get("idempotency-key", ""))
        step = plan.pop(0)
        if step == "abort":
            route.abort()
        elif step == "503":
            route.fulfill(status=503, headers={"Retry-After": "0"}, content_type="application/json",
                          body=json.dumps({"code": "DATABASE_UNAVAILABLE", "message": "数据库暂时不可用，请稍后重试"}))
        elif step == "lost":  # the server stores it, the answer never reaches the phone
            route.fetch()
            route.abort()
        else:
            route.continue_()

    page.route("**/api/v1/occupations", handle)
    result = run(page, """
        const client = api.createClient({ retries: 3 });
        client.setToken(args.token);
        return await client.post("/api/v1/occupations", { code: "6-01-02-03", name: "茶叶加工工" });
    """, token=live_world.admin)
    assert isinstance(result, dict) and result["code"] == "6-01-02-03"
    assert len(seen) == 4 and len(set(seen)) == 1 and seen[0], seen  # one key for every attempt
    with live_world.client.app.state.db.session() as s:
        assert s.scalar(select(func.count()).select_from(Occupation).where(Occupation.code == "6-01-02-03")) == 1


def test_refusals_carry_zh_cn_words_and_are_not_retried(live_world: World, page: Page) -> None:  # noqa: F811
    calls: list[str] = []
    page.route("**/api/v1/teapot", lambda r: (calls.append(r.request.url), r.fulfill(status=413, body="too big")))
    out = run(page, """
        const client = api.createClient({ retries: 3 });
        client.setToken(args.token);
        let auth = 0;
        client.on("auth", () => { auth += 1; });
        const fail = async p => { try { await client.request(p.path, p.opts); return null; }
                                  catch (e) { return { status: e.status, code: e.code, message: e.message,
                                                       network: e.network, name: e.name }; } };
        const missing = await fail({ path: "/api/v1/classes/987654" });
        const big = await fail({ path: "/api/v1/teapot", opts: { method: "POST", body: "x" } });
        client.setToken("not-a-token");
        const refused = await fail({ path: "/api/v1/classes" });
        return { missing, big, refused, auth };
    """, token=live_world.admin)
    assert isinstance(out, dict)
    missing, big, refused = out["missing"], out["big"], out["refused"]
    chinese = re.compile(r"[\u4e00-\u9fff]")
    assert missing["status"] == 404 and missing["name"] == "ApiError" and chinese.search(missing["message"])
    assert big == {"status": 413, "code": None, "message": "上传内容过大（HTTP 413）", "network": False,
                   "name": "ApiError"}
    assert len(calls) == 1  # a refusal is final: no retry
    assert refused["status"] == 401 and out["auth"] == 1 and chinese.search(refused["message"])


def test_the_outbox_keeps_an_upload_whose_answer_was_lost_and_delivers_it_once(live_world: World, page: Page) -> None:  # noqa: F811
    attempts: list[str] = []

    def lose_the_answer(route: Route) -> None:
        attempts.append(route.request.headers.get("idempotency-key", ""))
        route.fetch()  # stored by the server
        route.abort()  # but the phone hears nothing

    page.route("**/api/v1/check-ins", lose_the_answer)
    form = live_world.checkin_form()
    photo = base64.b64encode(face("people/obama/obama2.jpg")).decode()
    first = run(page, """
        const client = api.createClient({ tokenKey: "test.site.token" });
        client.setToken(args.token);
        const box = outbox.createOutbox({ client, dbName: "test-outbox", routes: { checkin: "/api/v1/check-ins" } });
        const bytes = Uint8Array.from(atob(args.photo), c => c.charCodeAt(0));
        const results = [];
        box.on("result", (item, r) => results.push(r.outcome));
        await box.add({ kind: "checkin", fields: args.form, photo: new Blob([bytes], { type: "image/jpeg" }),
                        frames: [], captured_at: args.form.captured_at, label: "test" });
        for (let i = 0; i < 100 && !results.length; i++) await new Promise(r => setTimeout(r, 100));
        const kept = await box.all();
        return { results, kept: kept.map(k => ({ key: k.key, attempts: k.attempts, error: k.last_error })) };
    """, token=live_world.site, form=form, photo=photo)
    assert isinstance(first, dict) and first["results"] == ["kept"] and len(first["kept"]) == 1, first
    assert first["kept"][0]["attempts"] == 1 and re.search(r"[\u4e00-\u9fff]", first["kept"][0]["error"])
    page.unroute("**/api/v1/check-ins")
    second = run(page, """
        const client = api.createClient({ tokenKey: "test.site.token" });
        const box = outbox.createOutbox({ client, dbName: "test-outbox", routes: { checkin: "/api/v1/check-ins" } });
        const results = [];
        box.on("result", (item, r) => results.push({ outcome: r.outcome, key: item.key,
                                                     duplicate: r.body?.duplicate }));
        await box.pump(true);
        return { results, left: (await box.all()).length };
    """)
    assert isinstance(second, dict) and second["left"] == 0
    assert second["results"] == [{"outcome": "delivered", "key": first["kept"][0]["key"], "duplicate": True}]
    assert attempts == [first["kept"][0]["key"]]
    with live_world.client.app.state.db.session() as s:
        assert s.scalar(select(func.count()).select_from(CheckIn)) == 1


def test_a_ranked_list_keeps_its_last_line_for_the_rest_only_when_it_does_not_fit(page: Page) -> None:
    # lib/lists.js cuts the wall's rule list and its cross-check panel: a list that fits is shown whole, one line
    # longer gives up its last line to "其他 N" (the two screens' tests count that line on lists far too long).
    cuts = page.evaluate("""async () => {
        const { topWithRest } = await import("/static/lib/lists.js");
        return [[], [1, 2], [1, 2, 3], [1, 2, 3, 4], [1, 2, 3, 4, 5, 6]].map(items => topWithRest(items, 3));
    }""")
    assert cuts == [{"shown": [], "rest": []}, {"shown": [1, 2], "rest": []}, {"shown": [1, 2, 3], "rest": []},
                    {"shown": [1, 2], "rest": [3, 4]}, {"shown": [1, 2], "rest": [3, 4, 5, 6]}]
