"""`cxloop audit export`: the whole suite's audit log as JSON lines."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from pathlib import Path

from rich.console import Console

from cxloop_cli.natsconn import NatsUnreachable, connected
from cxloop_libs.audit.stream import read_audit_entries


async def _read(
    url: str, services: list[str], since: datetime | None, subject: str
) -> list[dict[str, object]]:
    async with connected(url) as nc:
        entries = await read_audit_entries(
            nc.jetstream(), services=services, since=since, subject=subject
        )
    return [e.to_json() for e in entries]


def export(
    console: Console,
    url: str,
    *,
    out: Path,
    services: list[str],
    since: datetime | None,
    subject: str,
) -> int:
    try:
        rows = asyncio.run(_read(url, services, since, subject))
    except NatsUnreachable as exc:
        console.print(f"[red]error:[/] {exc}", highlight=False)
        return 1
    with out.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n")
    console.print(f"{len(rows)} audit entries → {out}", highlight=False)
    return 0
