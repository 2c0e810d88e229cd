"""`cxloop customer <id|email|phone>`: one customer's 360 in the terminal,
read through the gateway's console API with an API key (so it is audited
like any other read, with the reason given)."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")
_PHONE = re.compile(r"^\+?[0-9][0-9 ()-]{6,}$")


def lookup_params(who: str) -> tuple[str, dict[str, str]]:
    """The request for ``who``: an email, a phone number or a customer id."""
    if _EMAIL.match(who):
        return "/v1/customers", {"email": who}
    if _PHONE.match(who):
        return "/v1/customers", {"phone": who}
    return f"/v1/customers/{who}", {}


def _render(console: Console, body: dict[str, Any]) -> None:
    console.print(f"[bold]customer {body['customerId']}[/]", highlight=False)
    if body.get("missing"):
        for m in body["missing"]:
            console.print(f"  [yellow]missing {m['part']}: {m['reason']}[/]", highlight=False)
    profile = body.get("profile") or {}
    ids = profile.get("identifiers") or []
    console.print(
        f"  identifiers: {len(ids)} ({', '.join(sorted({i.get('type', '?') for i in ids}))})"
    )
    consent = body.get("consent") or {}
    if consent.get("purposes"):
        t = Table(title="consent", show_edge=False)
        t.add_column("purpose")
        t.add_column("decision")
        for p in consent["purposes"]:
            t.add_row(p.get("purpose", ""), p.get("decision", "").replace("CONSENT_DECISION_", ""))
        console.print(t)
    loyalty = body.get("loyalty")
    if loyalty:
        console.print(
            f"  points: {loyalty.get('availablePoints', 0)} available, "
            f"{loyalty.get('pendingPoints', 0)} pending · tier {loyalty.get('tier', '—')}",
            highlight=False,
        )
    recs = (body.get("recommendations") or {}).get("items") or []
    if recs:
        console.print("  recommended: " + ", ".join(r.get("itemId", "") for r in recs[:5]))
    cases = (body.get("cases") or {}).get("cases") or []
    console.print(f"  open cases: {len(cases)}")


def show(console: Console, gateway_url: str, key: str, who: str, reason: str, as_json: bool) -> int:
    if not key:
        console.print("[red]error:[/] --key (or CXLOOP_API_KEY) is required: `cxloop keys create`")
        return 2
    path, params = lookup_params(who.strip())
    try:
        r = httpx.get(
            f"{gateway_url.rstrip('/')}{path}",
            params=params,
            headers={"Authorization": f"Bearer {key}", "X-Cxloop-Reason": reason},
            timeout=10,
        )
    except httpx.HTTPError as exc:
        console.print(f"[red]error:[/] cannot reach the gateway at {gateway_url} ({exc})")
        return 1
    if r.status_code != 200:
        try:
            message = r.json().get("message", r.text)
        except ValueError:
            message = r.text
        if as_json:
            print(json.dumps({"status": r.status_code, "error": message}))
        else:
            console.print(f"[red]error {r.status_code}:[/] {message}", highlight=False)
        return 1
    if as_json:
        print(json.dumps(r.json(), ensure_ascii=False))
    else:
        _render(console, r.json())
    return 0
