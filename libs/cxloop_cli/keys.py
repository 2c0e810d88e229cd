"""`cxloop keys create|list|revoke`: the console's API keys, straight in the
gateway's key-value bucket on NATS (an operator with NATS access needs no key
to make the first one). Every gateway replica picks a change up at once."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from rich.console import Console
from rich.table import Table

from cxloop_cli.natsconn import NatsUnreachable, connected
from cxloop_libs.apikeys import KeyStore
from cxloop_libs.errors import CxError, InvalidArgument
from cxloop_libs.messaging.connection import NatsConnectionSettings

T = TypeVar("T")


def _run(url: str, work: Callable[[KeyStore], Awaitable[T]]) -> T:
    async def go() -> T:
        async with connected(url) as nc:
            replicas = NatsConnectionSettings.from_env(who="cxloop-cli").stream_replicas
            return await work(KeyStore(nc.jetstream(), replicas=replicas))

    return asyncio.run(go())


def _fail(console: Console, message: str, as_json: bool) -> int:
    if as_json:
        print(json.dumps({"error": message}))
    else:
        console.print(f"[red]error:[/] {message}", highlight=False)
    return 1


def create(console: Console, url: str, name: str, role: str, rate: int, as_json: bool) -> int:
    try:
        plaintext = _run(url, lambda s: s.create(name, role, rate))
    except InvalidArgument as exc:
        return _fail(console, f"--{exc.field.replace('_', '-')}: {exc.reason}", as_json)
    except NatsUnreachable as exc:
        return _fail(console, str(exc), as_json)
    key_id = plaintext.split("_")[1]
    if as_json:
        print(json.dumps({"keyId": key_id, "name": name, "role": role, "key": plaintext}))
    else:
        console.print(f"key {key_id} ({role}) created. It is shown once; store it now:")
        console.print(plaintext, highlight=False, soft_wrap=True)
    return 0


def list_keys(console: Console, url: str, as_json: bool) -> int:
    try:
        keys = _run(url, lambda s: s.list())
    except NatsUnreachable as exc:
        return _fail(console, str(exc), as_json)
    rows: list[dict[str, Any]] = [k.public() for k in keys]
    if as_json:
        print(json.dumps(rows))
        return 0
    table = Table(title=f"API keys ({len(rows)})")
    for col in ("key id", "name", "role", "rate/s", "created", "revoked"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            r["key_id"],
            r["name"],
            r["role"],
            str(r["rate_per_s"]),
            r["created_at"],
            r["revoked_at"] or "—",
        )
    console.print(table)
    return 0


def revoke(console: Console, url: str, key_id: str, as_json: bool) -> int:
    try:
        key = _run(url, lambda s: s.revoke(key_id))
    except NatsUnreachable as exc:
        return _fail(console, str(exc), as_json)
    except CxError as exc:
        return _fail(console, str(exc), as_json)
    if as_json:
        print(json.dumps(key.public()))
    else:
        console.print(f"key {key.key_id} ({key.name}) revoked at {key.revoked_at}")
    return 0
