"""`cxloop privacy export|erase <id|email|phone>`: data-subject requests
through the gateway's privacy API (``POST /v1/privacy/requests``, a privacy
token; services/gateway/README.md), as the privacy officer's tools do.

The request is opened as verified (the officer running the command has
checked who asked), then its status is polled until consent's saga is done:
an export prints (or writes) the access bundle, an erasure each service's
answer. The raw identifier goes only to the gateway, never to a log."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from cxloop_cli.customer import lookup_params

DONE = frozenset({"completed", "rejected", "escalated"})
EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_PENDING = 0, 1, 2, 3


@dataclass(frozen=True)
class PrivacyCall:
    gateway_url: str
    token: str
    kind: str  # access | erasure
    who: str
    actor: str = "cxloop cli"
    verification_method: str = "cli"
    wait_s: float = 120.0
    poll_s: float = 1.0


def subject(who: str) -> dict[str, Any]:
    """The request's subject: an email or phone as an identifier, else a customer id."""
    path, params = lookup_params(who.strip())
    if "email" in params:
        return {"identifier": {"type": "email", "value": params["email"]}}
    if "phone" in params:
        return {"identifier": {"type": "phone", "value": params["phone"]}}
    return {"customerId": path.rsplit("/", 1)[-1]}


class PrivacyError(Exception):
    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.message, self.status = message, status


def _explain(r: httpx.Response, call: PrivacyCall) -> PrivacyError:
    try:
        body = r.json()
    except ValueError:
        body = {}
    message = str(body.get("message") or body.get("error") or r.text[:200])
    fields = body.get("fields") or []
    if r.status_code == 401:
        message = (
            "the gateway refused the privacy token: pass --token or set CXLOOP_PRIVACY_TOKEN "
            "to one of the gateway's CXLOOP_GATEWAY_PRIVACY_TOKENS"
        )
    elif r.status_code == 404:
        message = f"no customer matches {call.who!r}" if "customer" in message else message
    elif r.status_code == 400 and fields:
        message = "; ".join(f"{f.get('field')}: {f.get('reason')}" for f in fields)
    elif r.status_code == 503:
        message = f"{message} (identity or consent cannot answer now; retry shortly)"
    return PrivacyError(message, r.status_code)


def run(
    call: PrivacyCall,
    client: httpx.Client,
    *,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> tuple[dict[str, Any], bool]:
    """Open the request and follow it: (its last status, whether it is done)."""
    headers = {"Authorization": f"Bearer {call.token}"}
    base = call.gateway_url.rstrip("/")
    try:
        r = client.post(
            f"{base}/v1/privacy/requests",
            json={
                "type": call.kind,
                "subject": subject(call.who),
                "verificationStatus": "verified",
                "verificationMethod": call.verification_method,
                "actor": call.actor[:100],
            },
            headers=headers,
        )
    except httpx.HTTPError as exc:
        raise PrivacyError(f"cannot reach the gateway at {call.gateway_url} ({exc})") from None
    if r.status_code != 201:
        raise _explain(r, call)
    opened: dict[str, Any] = r.json()
    if opened.get("status") == "awaiting_verification":
        # Consent answers an open request of the same kind instead of a new one.
        raise PrivacyError(
            f"an earlier {call.kind} request for this customer ({opened.get('requestId')}) "
            "is awaiting verification; verify it (consent's VerifyPrivacyRequest) or wait "
            "until it is closed"
        )
    status: dict[str, Any] = {**opened, "participants": []}
    deadline = clock() + call.wait_s
    while True:
        try:
            r = client.get(f"{base}/v1/privacy/requests/{opened['requestId']}", headers=headers)
        except httpx.HTTPError as exc:
            raise PrivacyError(f"lost the gateway while waiting ({exc})") from None
        if r.status_code == 200:
            status = r.json()
            if status.get("status") in DONE:
                return status, True
        elif r.status_code != 503:
            raise _explain(r, call)
        if clock() >= deadline:
            return status, False
        sleep(call.poll_s)


def _participants(console: Console, status: dict[str, Any]) -> None:
    t = Table(show_edge=False)
    for col in ("service", "state", "records", "categories"):
        t.add_column(col)
    for p in status.get("participants") or []:
        t.add_row(
            p.get("participant", ""),
            p.get("state", ""),
            str(p.get("recordsAffected", 0)),
            ", ".join(p.get("categories") or []),
        )
    console.print(t)


def report(
    console: Console,
    call: PrivacyCall,
    status: dict[str, Any],
    done: bool,
    *,
    as_json: bool,
    out: Path | None,
) -> int:
    bundle = status.get("accessBundle")
    if out is not None and bundle is not None:
        out.write_text(json.dumps(bundle, ensure_ascii=False, indent=2), encoding="utf-8")
    if as_json:
        body = dict(status)
        if out is not None and bundle is not None:
            body["accessBundle"] = str(out)
        print(json.dumps({**body, "done": done}, ensure_ascii=False))
    else:
        what = "export" if call.kind == "access" else "erasure"
        console.print(
            f"{what} {status.get('requestId')} of customer {status.get('customerId')}: "
            f"[bold]{status.get('status')}[/]",
            highlight=False,
        )
        _participants(console, status)
        if bundle is not None:
            if out is not None:
                console.print(f"access bundle written to {out}", highlight=False)
            else:
                console.print_json(json.dumps(bundle, ensure_ascii=False))
        if not done:
            console.print(
                "[yellow]still in progress[/]: consent keeps running it; check again with "
                f"GET /v1/privacy/requests/{status.get('requestId')}",
                highlight=False,
            )
    if not done:
        return EXIT_PENDING
    return EXIT_OK if status.get("status") == "completed" else EXIT_ERROR


def main(
    console: Console,
    call: PrivacyCall,
    *,
    as_json: bool,
    out: Path | None = None,
    transport: httpx.BaseTransport | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    if not call.who.strip():
        console.print("[red]error:[/] give a customer id, an email or a phone number")
        return EXIT_USAGE
    if not call.token:
        console.print("[red]error:[/] --token (or CXLOOP_PRIVACY_TOKEN) is required")
        return EXIT_USAGE
    try:
        with httpx.Client(timeout=15, transport=transport) as client:
            status, done = run(call, client, sleep=sleep)
    except PrivacyError as exc:
        if as_json:
            print(json.dumps({"status": exc.status, "error": exc.message}))
        else:
            code = f" {exc.status}" if exc.status else ""
            console.print(f"[red]error{code}:[/] {exc.message}", highlight=False)
        return EXIT_ERROR
    return report(console, call, status, done, as_json=as_json, out=out)
