"""`cxloop dlq`: list and replay dead letters."""

from __future__ import annotations

import asyncio
import time

import nats
from rich.console import Console
from rich.table import Table

from cxloop_libs.messaging.connection import nats_connect_options
from cxloop_libs.messaging.deadletters import DeadLetter, list_dead_letters, replay_dead_letter


async def _list(url: str, consumer: str | None) -> list[DeadLetter]:
    nc = await nats.connect(**nats_connect_options(url), connect_timeout=3, allow_reconnect=False)
    try:
        return await list_dead_letters(nc.jetstream(), consumer=consumer)
    finally:
        await nc.close()


def show(console: Console, url: str, consumer: str | None) -> int:
    letters = asyncio.run(_list(url, consumer))
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


async def _replay(url: str, consumer: str | None, seqs: list[int]) -> list[tuple[int, str]]:
    nc = await nats.connect(**nats_connect_options(url), connect_timeout=3, allow_reconnect=False)
    try:
        js = nc.jetstream()
        targets = seqs or [d.seq for d in await list_dead_letters(js, consumer=consumer)]
        attempt = str(int(time.time()))
        return [(s, await replay_dead_letter(js, s, attempt=attempt)) for s in targets]
    finally:
        await nc.close()


def replay(console: Console, url: str, consumer: str | None, seqs: list[int]) -> int:
    done = asyncio.run(_replay(url, consumer, seqs))
    for seq, subject in done:
        console.print(f"replayed dead letter {seq} → {subject}", highlight=False)
    console.print(f"{len(done)} replayed", highlight=False)
    return 0
