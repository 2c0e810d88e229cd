"""`cxloop dlq`: list and replay dead letters."""

from __future__ import annotations

import asyncio
import time

from rich.console import Console
from rich.table import Table

from cxloop_cli.natsconn import NatsUnreachable, connected
from cxloop_libs.messaging.deadletters import DeadLetter, list_dead_letters, replay_dead_letter


async def _list(url: str, consumer: str | None) -> list[DeadLetter]:
    async with connected(url) as nc:
        return await list_dead_letters(nc.jetstream(), consumer=consumer)


def show(console: Console, url: str, consumer: str | None) -> int:
    try:
        letters = asyncio.run(_list(url, consumer))
    except NatsUnreachable as exc:
        console.print(f"[red]error:[/] {exc}", highlight=False)
        return 1
    table = Table(title=f"dead letters ({len(letters)})")
    for col in ("seq", "consumer", "subject", "event id", "tries", "reason"):
        table.add_column(col, overflow="fold")
    for d in letters:
        table.add_row(
            str(d.seq),
            d.consumer,
            d.subject,
            d.event_id,
            str(d.deliveries),
            d.reason,
        )
    console.print(table)
    return 0


async def _replay(
    url: str, consumer: str | None, seqs: list[int]
) -> tuple[list[tuple[int, str]], list[tuple[int, str]]]:
    """(replayed: seq, subject), (failed: seq, why): one failure does not stop the rest."""
    async with connected(url) as nc:
        js = nc.jetstream()
        targets = seqs or [d.seq for d in await list_dead_letters(js, consumer=consumer)]
        attempt = str(int(time.time()))
        done: list[tuple[int, str]] = []
        failed: list[tuple[int, str]] = []
        for s in targets:
            try:
                done.append((s, await replay_dead_letter(js, s, attempt=attempt)))
            except Exception as exc:
                failed.append((s, str(exc) or type(exc).__name__))
        return done, failed


def replay(console: Console, url: str, consumer: str | None, seqs: list[int]) -> int:
    try:
        done, failed = asyncio.run(_replay(url, consumer, seqs))
    except NatsUnreachable as exc:
        console.print(f"[red]error:[/] {exc}", highlight=False)
        return 1
    for seq, subject in done:
        console.print(f"replayed dead letter {seq} → {subject}", highlight=False)
    for seq, why in failed:
        console.print(f"[red]dead letter {seq} not replayed:[/] {why}", highlight=False)
    console.print(f"{len(done)} replayed", highlight=False)
    return 1 if failed else 0
