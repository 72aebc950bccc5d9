"""Routes for the pages and their vendored static assets (nothing is loaded from a CDN)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

STATIC = Path(__file__).resolve().parent / "static"
# What each phone page's offline shell keeps beyond its own modules (web/static/<page>/) and the shared ones
# (web/static/lib/): its style, and for the site page what makes it installable.
SHELL_EXTRAS = {
    "inspector": ["inspector.css"],
    "site": ["site.css", "manifest-site.webmanifest", "icons/site-32.png", "icons/site-192.png", "icons/site-512.png"],
}


def list_shell(page: str) -> list[str]:
    """The URLs a phone page's offline shell keeps: the page, its modules and the shared ones, its extras and the
    served rule catalogue (read from the folders, so a module added or split is kept without a list to update)."""
    modules = sorted(STATIC.glob(f"{page}/*.js")) + sorted(STATIC.glob("lib/*.js"))
    return [f"/{page}", *(f"/static/{m.relative_to(STATIC).as_posix()}" for m in modules),
            *(f"/static/{extra}" for extra in SHELL_EXTRAS[page]), "/public/rules.json"]


def mount_pages(app: FastAPI) -> None:
    router = APIRouter(include_in_schema=False)

    @router.get("/")
    def root() -> RedirectResponse:
        return RedirectResponse("/wall")

    @router.get("/wall")
    def wall() -> FileResponse:
        return FileResponse(STATIC / "wall.html", media_type="text/html; charset=utf-8")

    @router.get("/ledger")
    def ledger() -> FileResponse:
        return FileResponse(STATIC / "ledger.html", media_type="text/html; charset=utf-8")

    @router.get("/registers")
    def registers() -> FileResponse:
        return FileResponse(STATIC / "registers.html", media_type="text/html; charset=utf-8")

    @router.get("/review")
    def review() -> FileResponse:
        return FileResponse(STATIC / "review.html", media_type="text/html; charset=utf-8")

    @router.get("/public/notice")
    def notice() -> FileResponse:
        return FileResponse(STATIC / "notice.html", media_type="text/html; charset=utf-8")

    @router.get("/docs")
    def docs() -> FileResponse:
        return FileResponse(STATIC / "docs.html", media_type="text/html; charset=utf-8")

    @router.get("/site")
    def site() -> FileResponse:
        return FileResponse(STATIC / "site.html", media_type="text/html; charset=utf-8")

    @router.get("/inspector")
    def inspector() -> FileResponse:
        return FileResponse(STATIC / "inspector.html", media_type="text/html; charset=utf-8")

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
