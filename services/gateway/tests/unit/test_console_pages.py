"""The console's security headers: on its pages and its API, nowhere else."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient

from gateway.entrypoints.console_pages import SECURITY_HEADERS, add_console_pages


def _client(tmp_path: Path) -> TestClient:
    (tmp_path / "index.html").write_text("<!doctype html><title>console</title>")
    app = FastAPI()

    @app.get("/v1/console/views")
    async def views() -> JSONResponse:
        # An answer that sets one of the headers itself keeps its own value.
        return JSONResponse({"ok": True}, headers={"Cache-Control": "max-age=5"})

    @app.get("/v1/customers/{cid}")
    async def customer(cid: str) -> dict[str, str]:
        return {"customerId": cid}

    add_console_pages(app, pages=tmp_path)
    return TestClient(app)


def test_console_pages_and_api_carry_the_security_headers(tmp_path: Path) -> None:
    client = _client(tmp_path)
    page = client.get("/console/")
    assert page.status_code == 200
    for name, value in SECURITY_HEADERS.items():
        assert page.headers[name] == value
    redirect = client.get("/console", follow_redirects=False)
    assert redirect.status_code == 308
    assert (
        redirect.headers["Content-Security-Policy"] == SECURITY_HEADERS["Content-Security-Policy"]
    )
    api = client.get("/v1/console/views")
    assert api.headers["Cache-Control"] == "max-age=5"
    assert api.headers["X-Frame-Options"] == "DENY"
    assert api.headers.get_list("Cache-Control") == ["max-age=5"]


def test_other_answers_are_left_alone(tmp_path: Path) -> None:
    answer = _client(tmp_path).get("/v1/customers/c1")
    assert answer.status_code == 200
    assert answer.json() == {"customerId": "c1"}
    assert not set(SECURITY_HEADERS) & {k.title() for k in answer.headers}
