"""NATS consumers of the analytics service. Interactions go to the event
store, not to the relational database, so their consumer is the library's
batched consumer (fetch, one transaction, ack; one-by-one replay and dead
letters for poison events) with the transaction taken in DuckDB: the store
de-duplicates by event id itself, no inbox row per event is needed."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from nats.aio.msg import Msg
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind
from sqlmodel import Session

from analytics.adapters.decoder import ProcessDecoder
from analytics.domain.batch import DecodedBatch
from cxloop_libs.db import Database
from cxloop_libs.messaging import (
    BatchConsumer,
    ConsumerSpec,
    MalformedEvent,
    NatsBus,
    ReceivedEvent,
    pull,
)
from cxloop_libs.messaging.cloudevents import parse_headers
from cxloop_libs.telemetry import extract_context

log = logging.getLogger(__name__)
tracer = trace.get_tracer("cxloop.analytics")


class EventStoreConsumer(BatchConsumer):
    def __init__(
        self,
        bus: NatsBus,
        db: Database,
        spec: ConsumerSpec,
        apply: Callable[[list[ReceivedEvent]], None],
        *,
        gate: Callable[[], Awaitable[None]] | None = None,
        decoder: ProcessDecoder | None = None,
        store_decoded: Callable[[DecodedBatch], int] | None = None,
    ) -> None:
        super().__init__(bus, db, spec, _no_session)
        self.apply = apply
        self.gate = gate
        # With a decoder, a fetch is decoded in its process and only the
        # store transaction runs here (docs/adr/0245); replays one by one
        # (a batch that failed) decode in this process through ``apply``.
        if (decoder is None) != (store_decoded is None):
            raise ValueError("decoder and store_decoded go together")
        self.decoder = decoder
        self.store_decoded = store_decoded
        self._committing: asyncio.Future[None] | None = None

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
        try:
            await super().run()
        finally:
            # The last fetch's commit finishes before the consumer is done.
            await self._drain()

    async def process(self, msgs: list[Msg]) -> None:
        """The library's batch step made lean for a high-volume stream:
        headers parsed, one consumer span per fetch (linked to the first
        message's trace) instead of one per message, delivery metadata read
        only when a batch fails; then one store transaction and the acks.
        A failing batch takes the library's path (one by one, a span and a
        dead-letter decision per message).

        With a decoder the fetch's decode starts in its process at once and
        its commit (store transaction, then acks) is left running while the
        loop takes the next fetch: batches still commit one at a time, in
        fetch order, but one is decoded while the one before it is stored
        (docs/adr/0245)."""
        started = time.perf_counter()
        good: list[tuple[Msg, ReceivedEvent]] = []
        for msg in msgs:
            try:
                good.append((msg, parse_headers(msg.subject, msg.headers, msg.data)))
            except MalformedEvent as exc:
                await self._failed(msg, str(exc))
        if msgs:
            self._metrics.set_consumer_lag(self.spec.durable, msgs[-1].metadata.num_pending)
        if not good:
            return
        if self.decoder is None:
            await self._commit(good, None, started)
            return
        # Kept by the commit task, which awaits it.
        decoding = asyncio.ensure_future(self.decoder.decode([e for _, e in good]))  # noqa: RUF006
        await self._drain()
        self._committing = asyncio.ensure_future(self._commit(good, decoding, started))

    async def _drain(self) -> None:
        """Wait for the batch being committed, if any. A failure there (the
        acks could not be sent) leaves its messages unacked: they come back
        after ack_wait and are stored once (the store drops known ids)."""
        committing, self._committing = self._committing, None
        if committing is None:
            return
        try:
            await committing
        except Exception:
            log.exception("batch commit failed", extra={"consumer": self.spec.durable})

    async def _commit(
        self,
        good: list[tuple[Msg, ReceivedEvent]],
        decoding: asyncio.Future[DecodedBatch] | None,
        started: float,
    ) -> None:
        events = [e for _, e in good]
        link = trace.get_current_span(extract_context(good[0][0].headers)).get_span_context()
        with tracer.start_as_current_span(
            f"{self.spec.filter_subject} process",
            kind=SpanKind.CONSUMER,
            links=[trace.Link(link)] if link.is_valid else None,
            attributes={
                "messaging.system": "nats",
                "messaging.consumer.group.name": self.spec.durable,
                "messaging.batch.message_count": len(good),
            },
        ):
            try:
                batch: list[ReceivedEvent] | DecodedBatch = events
                if decoding is not None:
                    batch = await decoding
                    if batch.errors:
                        raise MalformedEvent(batch.errors[0][1])
                await self._apply_with_db_retry(batch, [m for m, _ in good])  # type: ignore[arg-type]
            except Exception:
                await self._one_by_one(self._spans(good))
                return
            finally:
                self._metrics.handler_latency.record(
                    time.perf_counter() - started, {"consumer": self.spec.durable}
                )
        await pull.ack_many([m for m, _ in good])
        self._metrics.events_consumed.add(
            len(good), {"consumer": self.spec.durable, "outcome": "ok"}
        )

    def _spans(
        self, good: list[tuple[Msg, ReceivedEvent]]
    ) -> list[tuple[Msg, ReceivedEvent, Span]]:
        out = []
        for msg, ev in good:
            meta = msg.metadata
            ev.deliveries = meta.num_delivered
            ev.stream_seq = meta.sequence.stream
            span = tracer.start_span(
                f"{msg.subject} process",
                context=extract_context(msg.headers),
                kind=SpanKind.CONSUMER,
                attributes={"messaging.message.id": ev.id},
            )
            ev.trace_context = trace.set_span_in_context(span)
            out.append((msg, ev, span))
        return out

    def _apply(self, events: list[ReceivedEvent] | DecodedBatch) -> None:  # type: ignore[override]
        # Runs in a worker thread (BatchConsumer -> Database.run).
        if isinstance(events, DecodedBatch):
            assert self.store_decoded is not None
            self.store_decoded(events)
            self.processed += len(events.batch)
            return
        self.apply(events)
        self.processed += len(events)


def _no_session(session: Session, events: list[ReceivedEvent]) -> None:
    raise AssertionError("EventStoreConsumer applies events to the event store")
