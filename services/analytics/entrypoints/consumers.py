"""NATS consumers of the analytics service. Interactions go to the event
store, not to the relational database, so their consumer is the library's
batched consumer (fetch, one transaction, ack; one-by-one replay and dead
letters for poison events) with the transaction taken in DuckDB: the store
de-duplicates by event id itself, no inbox row per event is needed."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from sqlmodel import Session

from cxloop_libs.db import Database
from cxloop_libs.messaging import BatchConsumer, ConsumerSpec, NatsBus, ReceivedEvent


class EventStoreConsumer(BatchConsumer):
    def __init__(
        self,
        bus: NatsBus,
        db: Database,
        spec: ConsumerSpec,
        apply: Callable[[list[ReceivedEvent]], None],
        *,
        gate: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        super().__init__(bus, db, spec, _no_session)
        self.apply = apply
        self.gate = gate

    async def run(self) -> None:
        if self.gate is not None:
            # Held until the gate opens (or the consumer is stopped).
            opened = asyncio.ensure_future(self.gate())
            stopped = asyncio.ensure_future(self._stopped.wait())
            await asyncio.wait({opened, stopped}, return_when=asyncio.FIRST_COMPLETED)
            opened.cancel()
            stopped.cancel()
            if self._stopping:
                return
        await super().run()

    def _apply(self, events: list[ReceivedEvent]) -> None:
        # Runs in a worker thread (BatchConsumer -> Database.run).
        self.apply(events)
        self.processed += len(events)


def _no_session(session: Session, events: list[ReceivedEvent]) -> None:
    raise AssertionError("EventStoreConsumer applies events to the event store")
