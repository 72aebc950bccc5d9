"""Routes for the pages and their vendored static assets (nothing is loaded from a CDN)."""

from __future__ import annotations

from collections.abc import Callable
from html import escape
from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

STATIC = Path(__file__).resolve().parent / "static"
# What each phone page's offline shell keeps beyond its own modules (web/static/<page>/) and the shared ones
# (web/static/lib/): its style, and for the site page what makes it installable.
SHELL_EXTRAS = {
    "inspector": ["inspector.css", "wall-favicon.svg"],
    "site": ["site.css", "manifest-site.webmanifest", "icons/site-32.png", "icons/site-192.png", "icons/site-512.png"],
}


def list_shell(page: str) -> list[str]:
    """The URLs a phone page's offline shell keeps: the page, its modules and the shared ones, its extras and the
    served rule catalogue (read from the folders, so a module added or split is kept without a list to update)."""
    modules = sorted(STATIC.glob(f"{page}/*.js")) + sorted(STATIC.glob("lib/*.js"))
    return [f"/{page}", *(f"/static/{m.relative_to(STATIC).as_posix()}" for m in modules),
            *(f"/static/{extra}" for extra in SHELL_EXTRAS[page]), "/public/rules.json"]


# The pages a person opens, by address: their file under web/static/ and their name (the 404 page links them all).
PAGES: list[tuple[str, str, str]] = [
    ("/wall", "wall.html", "监控调度大屏"),
    ("/site", "site.html", "培训机构签到页（手机）"),
    ("/inspector", "inspector.html", "抽查人员任务页（手机）"),
    ("/review", "review.html", "人工复核队列"),
    ("/ledger", "ledger.html", "补贴台账"),
    ("/registers", "registers.html", "登记数据导入与比对"),
    ("/public/notice", "notice.html", "培训补贴公示（公开）"),
    ("/docs", "docs.html", "接口文档"),
]


def wants_html(request: Request) -> bool:
    """A browser opening an address (it asks for text/html), not an API client: /api/ paths always answer JSON."""
    return (request.method in ("GET", "HEAD") and not request.url.path.startswith("/api/")
            and "text/html" in request.headers.get("accept", "").lower())


def not_found_page(request: Request) -> HTMLResponse | None:
    """A mistyped page address opened by a browser: a small zh-CN page (still 404) linking the pages that exist.
    None for anyone else (an API client, any /api/ path): they get the JSON error."""
    if not wants_html(request):
        return None
    links = "".join(f'<li><a href="{href}">{escape(name)}</a> <code>{href}</code></li>' for href, _, name in PAGES)
    body = (
        '<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1"><title>页面不存在（404）</title>'
        '<link rel="icon" href="/static/wall-favicon.svg" type="image/svg+xml"><style>'
        'body{font-family:"Noto Sans CJK SC","PingFang SC","Microsoft YaHei",sans-serif;margin:0;background:#f6f7f9;'
        'color:#1b2430}main{max-width:36em;margin:0 auto;padding:24px 16px}h1{font-size:22px;margin:0 0 12px}'
        'p{line-height:1.6}code{overflow-wrap:anywhere;color:#555}ul{padding-left:1.2em}li{margin:8px 0}'
        'a{color:#1a5fb4;font-size:17px}</style></head><body><main>'
        '<h1>页面不存在（404）</h1>'
        f'<p>地址 <code>{escape(request.url.path)}</code> 没有对应的页面，可能是地址输入有误或链接已过期。</p>'
        f'<p>本系统的页面：</p><ul>{links}</ul>'
        '<p>云南省职业技能培训监控调度中心</p></main></body></html>'
    )
    return HTMLResponse(body, status_code=404)


def mount_pages(app: FastAPI) -> None:
    router = APIRouter(include_in_schema=False)

    @router.get("/")
    def root() -> RedirectResponse:
        return RedirectResponse("/wall")

    def page(file: str) -> Callable[[], FileResponse]:
        return lambda: FileResponse(STATIC / file, media_type="text/html; charset=utf-8")

    for href, file, _ in PAGES:
        router.add_api_route(href, page(file), methods=["GET"])

    def service_worker() -> FileResponse:
        # One offline shell for both phone pages (web/static/shell-sw.js picks the page's files by the name it was
        # served under), from the root so that its scope can cover the page; never kept by the browser's HTTP
        # cache, so a new version of the shell is installed on the next visit.
        return FileResponse(STATIC / "shell-sw.js", media_type="text/javascript; charset=utf-8",
                            headers={"Cache-Control": "no-cache"})

    router.add_api_route("/inspector-sw.js", service_worker, methods=["GET"])
    router.add_api_route("/site-sw.js", service_worker, methods=["GET"])

    def shell_of(page: str) -> JSONResponse:
        return JSONResponse(list_shell(page), headers={"Cache-Control": "no-cache"})

    router.add_api_route("/inspector-shell.json", lambda: shell_of("inspector"), methods=["GET"])
    router.add_api_route("/site-shell.json", lambda: shell_of("site"), methods=["GET"])

    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
