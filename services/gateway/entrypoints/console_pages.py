"""``/console``: the console's pages — static HTML, CSS and JavaScript
modules shipped in services/gateway/console/ (no CDN, no build step). The
pages call the console API with the session cookie (console_auth.py).

Every answer under /console carries a strict Content-Security-Policy (only
this origin's scripts and styles, no inline script, no framing) and is not
cached, so a logged-out browser keeps nothing."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

PAGES = Path(__file__).resolve().parents[1] / "console"
PREFIX = "/console"
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'self'; "
        "frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}


def add_console_pages(app: FastAPI, pages: Path = PAGES) -> None:
    @app.get(PREFIX, include_in_schema=False)
    async def console_root() -> RedirectResponse:
        return RedirectResponse(f"{PREFIX}/", status_code=308)

    app.mount(PREFIX, StaticFiles(directory=pages, html=True), name="console")

    @app.middleware("http")
    async def console_headers(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        path = request.url.path
        if path == PREFIX or path.startswith(f"{PREFIX}/") or path.startswith("/v1/console"):
            for name, value in SECURITY_HEADERS.items():
                response.headers.setdefault(name, value)
        return response
