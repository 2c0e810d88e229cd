"""`cxloop privacy export|erase`: what is sent to the gateway's privacy API,
how its answers are followed and shown, and the errors a person can act on.
The gateway's answers here are canned (httpx.MockTransport); the commands
against the real suite are in tests/console/test_privacy_cli_suite.py."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from rich.console import Console
from typer.testing import CliRunner

from cxloop_cli import privacy
from cxloop_cli.main import app
from cxloop_testing.infra import free_port

Handler = Callable[[httpx.Request], httpx.Response]


def _gateway(statuses: list[dict[str, Any]], seen: list[httpx.Request]) -> Handler:
    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.method == "POST":
            body = json.loads(request.content)
            return httpx.Response(
                201,
                json={
                    "requestId": "r-1",
                    "customerId": "c-9",
                    "type": body["type"],
                    "status": "in_progress",
                },
            )
        return httpx.Response(200, json=statuses.pop(0) if len(statuses) > 1 else statuses[0])

    return handle


def _run(
    handler: Handler, kind: str = "access", who: str = "kim@example.com", **kw: Any
) -> tuple[int, str]:
    console = Console(record=True, width=200)
    call = privacy.PrivacyCall("http://gw", "tok", kind, who, wait_s=kw.pop("wait_s", 10))
    code = privacy.main(
        console, call, transport=httpx.MockTransport(handler), sleep=lambda _: None, **kw
    )
    return code, console.export_text()


def test_subject_is_an_identifier_or_a_customer_id() -> None:
    assert privacy.subject("Kim@Example.com") == {
        "identifier": {"type": "email", "value": "Kim@Example.com"}
    }
    assert privacy.subject("010-1234-5678") == {
        "identifier": {"type": "phone", "value": "010-1234-5678"}
    }
    assert privacy.subject("c-42") == {"customerId": "c-42"}


def test_export_opens_a_verified_access_request_and_waits_for_the_bundle(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    seen: list[httpx.Request] = []
    done = {
        "requestId": "r-1",
        "customerId": "c-9",
        "status": "completed",
        "participants": [{"participant": "loyalty", "state": "done", "recordsAffected": 3}],
        "accessBundle": {"loyalty": {"points": 1200}},
    }
    pending = {**done, "status": "in_progress", "accessBundle": None}
    out = tmp_path / "bundle.json"
    code, _ = _run(_gateway([pending, pending, done], seen), as_json=True, out=out)
    assert code == 0
    sent = json.loads(seen[0].content)
    assert sent["type"] == "access" and sent["verificationStatus"] == "verified"
    assert sent["subject"] == {"identifier": {"type": "email", "value": "kim@example.com"}}
    assert seen[0].headers["authorization"] == "Bearer tok"
    assert [r.url.path for r in seen[1:]] == ["/v1/privacy/requests/r-1"] * 3
    assert json.loads(out.read_text()) == {"loyalty": {"points": 1200}}
    printed = json.loads(capsys.readouterr().out)
    assert printed["done"] is True and printed["accessBundle"] == str(out)


def test_erase_shows_each_services_answer() -> None:
    done = {
        "requestId": "r-1",
        "customerId": "c-9",
        "status": "completed",
        "participants": [
            {"participant": "identity", "state": "done", "recordsAffected": 4},
            {"participant": "loyalty", "state": "done", "recordsAffected": 2},
        ],
    }
    code, text = _run(_gateway([done], []), kind="erasure", who="c-9", as_json=False)
    assert code == 0
    assert "erasure r-1 of customer c-9: completed" in text
    assert "identity" in text and "loyalty" in text


def test_still_running_after_the_wait_is_exit_3_not_an_error() -> None:
    pending = {"requestId": "r-1", "customerId": "c-9", "status": "in_progress"}
    code, text = _run(_gateway([pending], []), wait_s=0, as_json=False)
    assert code == privacy.EXIT_PENDING and "still in progress" in text


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (401, {"message": "unknown privacy token"}, "CXLOOP_PRIVACY_TOKEN"),
        (404, {"message": "no customer matches the subject"}, "no customer matches"),
        (
            400,
            {
                "message": "invalid request",
                "fields": [{"field": "subject.identifier.value", "reason": "not an email"}],
            },
            "subject.identifier.value: not an email",
        ),
        (503, {"message": "identity cannot answer now"}, "retry shortly"),
    ],
)
def test_the_gateways_refusals_are_explained(
    status: int, body: dict[str, Any], expected: str
) -> None:
    code, text = _run(lambda _: httpx.Response(status, json=body), as_json=False)
    assert code == 1 and expected in text and "Traceback" not in text


def test_an_earlier_request_awaiting_verification_is_named_not_waited_for() -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        assert request.method == "POST", "must not poll a request nobody will verify"
        return httpx.Response(
            201,
            json={"requestId": "r-0", "customerId": "c-9", "status": "awaiting_verification"},
        )

    code, text = _run(handle, as_json=False)
    assert code == 1 and "r-0" in text and "awaiting verification" in text


def test_json_errors_are_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, _ = _run(lambda _: httpx.Response(404, json={"message": "no customer"}), as_json=True)
    assert code == 1
    assert json.loads(capsys.readouterr().out)["status"] == 404


def test_command_line_errors_are_clear() -> None:
    runner = CliRunner()
    nowhere = f"http://127.0.0.1:{free_port()}"
    r = runner.invoke(app, ["privacy", "export", "kim@example.com", "--gateway-url", nowhere])
    assert r.exit_code == 1 and "cannot reach the gateway" in r.output
    r = runner.invoke(app, ["privacy", "erase", "c-1", "--reason", "  ", "--yes"])
    assert r.exit_code == 2 and "--reason" in r.output
    r = runner.invoke(app, ["privacy", "erase", "c-1"])
    assert r.exit_code == 2 and "--reason" in r.output
    # Without --yes it asks; "n" erases nothing and never calls the gateway.
    r = runner.invoke(
        app,
        ["privacy", "erase", "c-1", "--reason", "ticket 9", "--gateway-url", nowhere],
        input="n\n",
    )
    assert r.exit_code == 1 and "nothing erased" in r.output
    r = runner.invoke(app, ["privacy", "export", "kim@example.com", "--token", ""])
    assert r.exit_code == 2 and "--token" in r.output
