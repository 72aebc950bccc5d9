"""A mistyped address: a person's browser gets a small zh-CN page (status 404) that links the pages there are; the
API and its clients keep the JSON error ({code, message})."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"}


@pytest.mark.parametrize("path", ["/wal", "/inspector/xyz", "/public/notic", "/static/nothing-here.html",
                                  "/审计"])
def test_a_browser_gets_a_zh_cn_page_linking_the_pages_there_are(client: TestClient, path: str) -> None:
    r = client.get(path, headers=BROWSER, follow_redirects=False)
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("text/html")
    page = r.text
    assert '<html lang="zh-CN">' in page and "<title>页面不存在（404）</title>" in page
    assert "没有对应的页面" in page
    links = re.findall(r'<a href="([^"]+)">([^<]+)</a>', page)
    assert {href for href, _ in links} == {"/wall", "/site", "/inspector", "/review", "/ledger", "/registers",
                                           "/public/notice", "/docs"}
    for href, name in links:  # each link is a page that answers, named in Chinese
        assert re.search(r"[\u4e00-\u9fff]", name), name
        answer = client.get(href, headers=BROWSER)
        assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/html"), href
    assert "<script" not in page  # the strict Content-Security-Policy holds for it as for every page
    assert r.headers["content-security-policy"].startswith("default-src 'self'")


def test_the_address_asked_for_is_shown_escaped(client: TestClient) -> None:
    r = client.get("/<script>alert(1)</script>", headers=BROWSER)
    assert r.status_code == 404 and "<script>" not in r.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in r.text


@pytest.mark.parametrize(("path", "headers"), [
    ("/api/v1/nothing", BROWSER),  # an API path stays JSON, whoever asks
    ("/api/v1/classes/1/nothing", BROWSER),
    ("/wal", {}),  # an API client (httpx's own Accept: */*) gets JSON
    ("/wal", {"Accept": "*/*"}),
    ("/wal", {"Accept": "application/json"}),
])
def test_api_paths_and_api_clients_keep_the_json_error(client: TestClient, path: str,
                                                       headers: dict[str, str]) -> None:
    r = client.get(path, headers=headers)
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("application/json")
    assert r.json() == {"code": "NOT_FOUND", "message": "请求的地址不存在"}


def test_a_post_to_a_missing_address_stays_json(client: TestClient) -> None:
    r = client.post("/wal", headers=BROWSER, json={})
    assert r.status_code in (404, 405) and r.headers["content-type"].startswith("application/json")
