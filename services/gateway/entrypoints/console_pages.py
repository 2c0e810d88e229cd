"""``/console``: the console's pages — static HTML, CSS and JavaScript
modules shipped in services/gateway/console/ (no CDN, no build step). The
pages call the console API with the session cookie (console_auth.py).

Every answer under /console carries a strict Content-Security-Policy (only
this origin's scripts and styles, no inline script, no framing) and is not
cached, so a logged-out browser keeps nothing."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

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

    app.add_middleware(ConsoleHeaders)


def _console_path(path: str) -> bool:
    return path == PREFIX or path.startswith(f"{PREFIX}/") or path.startswith("/v1/console")


class ConsoleHeaders:
    """:data:`SECURITY_HEADERS` on every answer under /console and
    /v1/console (a header the answer sets itself stays). Plain ASGI: other
    paths pass straight through; an ``@app.middleware("http")`` function ran
    every request (the customer 360 too) through a task and a memory stream
    (docs/adr/0295)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _console_path(scope["path"]):
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)
