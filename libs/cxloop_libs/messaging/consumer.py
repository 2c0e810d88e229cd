"""Durable pull consumer that works in micro-batches.

One fetch → one database transaction (inbox check, handler, inbox write,
staged outbox events) → ack every message. A batch that fails is replayed one
message at a time so one poison message cannot hold back the others; a message
that keeps failing goes to the dead-letter stream after ``max_deliver`` tries.
A database outage is not the messages' fault: the batch is retried in place
(ack deadline extended) until the database is back, and never dead-lettered.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from nats.aio.msg import Msg
from nats.errors import NoRespondersError
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from sqlmodel import Session

from cxloop_libs.db import Database, is_conflict_error, is_transient_db_error
from cxloop_libs.messaging import pull
from cxloop_libs.messaging.bus import NatsBus
from cxloop_libs.messaging.cloudevents import MalformedEvent, ReceivedEvent, parse_headers
from cxloop_libs.messaging.inbox import already_processed, mark_processed
from cxloop_libs.messaging.streams import dead_letter_subject
from cxloop_libs.telemetry import extract_context, messaging_metrics

log = logging.getLogger(__name__)
tracer = trace.get_tracer("cxloop.messaging")


class BatchHandler(Protocol):
    """Applies new events inside the consumer's transaction (runs in a worker
    thread). Raise to reject the batch; the consumer isolates the culprit."""

    def __call__(self, session: Session, events: list[ReceivedEvent]) -> None: ...


@dataclass(frozen=True, slots=True)
class ConsumerSpec:
    stream: str
    durable: str  # <consumer>-<purpose>
    filter_subject: str
    batch_size: int = 500
    max_deliver: int = 5
    ack_wait_s: float = 30.0
    fetch_timeout_s: float = 1.0


def retry_delay(deliveries: int) -> float:
    """Back-off for a message that failed ``deliveries`` times (jittered)."""
    base: float = min(0.25 * 2 ** max(deliveries - 1, 0), 30.0)
    return base * random.uniform(0.8, 1.2)


class BatchConsumer:
    def __init__(
        self,
        bus: NatsBus,
        db: Database,
        spec: ConsumerSpec,
        handler: BatchHandler,
        *,
        on_commit: Callable[[], None] | None = None,
    ) -> None:
        self.bus = bus
        self.db = db
        self.spec = spec
        self.handler = handler
        self.on_commit = on_commit
        self._stopping = False
        # Wakes a consumer still waiting for its stream, so stopping is prompt.
        self._stopped = asyncio.Event()
        self.processed = 0
        self.duplicates = 0
        self.dead_lettered = 0
        self._metrics = messaging_metrics()

    def stop(self) -> None:
        self._stopping = True
        self._stopped.set()

    async def run(self) -> None:
        await self.bus.ready()
        psub = await self._subscribe_when_stream_exists()
        if psub is None:
            return
        self._psub = psub
        try:
            await self._consume()
        finally:
            # A pull request left open would hold the connection's drain.
            with contextlib.suppress(Exception):
                await self._psub.unsubscribe()

    async def _fetch(self, psub: JetStreamContext.PullSubscription) -> list[Msg] | None:
        """One fetch, cut short by stop(); None once stopping."""
        fetch = asyncio.ensure_future(
            pull.fetch(psub, self.spec.batch_size, self.spec.fetch_timeout_s)
        )
        stopped = asyncio.ensure_future(self._stopped.wait())
        done, _ = await asyncio.wait({fetch, stopped}, return_when=asyncio.FIRST_COMPLETED)
        stopped.cancel()
        if fetch not in done:
            fetch.cancel()
            with contextlib.suppress(BaseException):
                await fetch
            return None
        return fetch.result()

    async def _consume(self) -> None:
        # The next batch is pulled while this one is applied (the handler runs
        # in a thread and waits on the database), so the fetch round trip and
        # the transaction overlap instead of taking turns.
        prefetch: asyncio.Future[list[Msg] | None] | None = None
        try:
            while not self._stopping:
                try:
                    if prefetch is not None:
                        pending, prefetch = prefetch, None
                        msgs = await pending
                    else:
                        msgs = await self._fetch(self._psub)
                    if msgs is None:
                        return
                except TimeoutError:
                    # nats-py raises its TimeoutError or, on some paths of a
                    # batch fetch, asyncio's: both only mean "nothing arrived".
                    continue
                except Exception as exc:  # NATS away: the subscription survives reconnects
                    log.warning("fetch failed: %r", exc, extra={"consumer": self.spec.durable})
                    await asyncio.sleep(0.5)
                    if not self.bus.is_connected:
                        continue
                    try:
                        # The old subscription's pending pull would capture
                        # messages nobody reads; drop it before pulling anew.
                        with contextlib.suppress(Exception):
                            await self._psub.unsubscribe()
                        self._psub = await self._subscribe()
                    except Exception:
                        await asyncio.sleep(1.0)
                    continue
                if not msgs:
                    continue
                prefetch = asyncio.ensure_future(self._fetch(self._psub))
                try:
                    await self.process(msgs)
                except Exception:
                    # Unacked messages come back after ack_wait; the loop must live on.
                    log.exception("batch processing failed", extra={"consumer": self.spec.durable})
                    await asyncio.sleep(1.0)
        finally:
            if prefetch is not None:
                await self._release(prefetch)

    async def _release(self, prefetch: asyncio.Future[list[Msg] | None]) -> None:
        """A batch pulled ahead but not applied goes back at once (nak), not
        after ack_wait."""
        if not prefetch.done():
            prefetch.cancel()
        with contextlib.suppress(BaseException):
            msgs = await prefetch
            for m in msgs or ():
                with contextlib.suppress(Exception):
                    await m.nak()

    async def _subscribe_when_stream_exists(self) -> JetStreamContext.PullSubscription | None:
        # The stream belongs to the producing service, which may start later
        # (or never, in a partial deployment): None once stopped while waiting.
        delay = 0.1
        while not self._stopping:
            try:
                return await self._subscribe()
            except NotFoundError:
                if delay >= 1.0:
                    log.info("waiting for stream %s", self.spec.stream)
            except (TimeoutError, NoRespondersError):
                # JetStream busy or electing a leader (a clustered stream, a
                # process that held the GIL): transient, not a reason to die.
                log.warning("creating consumer %s timed out; retrying", self.spec.durable)
            try:
                await asyncio.wait_for(self._stopped.wait(), delay)
            except TimeoutError:
                pass
            delay = min(delay * 2, 2.0)
        return None

    async def _subscribe(self) -> JetStreamContext.PullSubscription:
        cfg = ConsumerConfig(
            durable_name=self.spec.durable,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            ack_wait=self.spec.ack_wait_s,
            # Unlimited at the server: the dead-letter decision is ours, so a
            # message is never silently dropped by the server.
            max_deliver=-1,
            max_ack_pending=self.spec.batch_size * 4,
            filter_subject=self.spec.filter_subject,
        )
        return await self.bus.js.pull_subscribe(
            self.spec.filter_subject,
            durable=self.spec.durable,
            stream=self.spec.stream,
            config=cfg,
        )

    async def process(self, msgs: list[Msg]) -> None:
        started = time.perf_counter()
        good: list[tuple[Msg, ReceivedEvent, Span]] = []
        for msg in msgs:
            try:
                ev = parse_headers(msg.subject, msg.headers, msg.data)
            except MalformedEvent as exc:
                await self._failed(msg, str(exc))
                continue
            meta = msg.metadata
            ev.deliveries = meta.num_delivered
            ev.stream_seq = meta.sequence.stream
            span = tracer.start_span(
                f"{msg.subject} process",
                context=extract_context(msg.headers),
                kind=SpanKind.CONSUMER,
                attributes={
                    "messaging.system": "nats",
                    "messaging.destination.name": msg.subject,
                    "messaging.consumer.group.name": self.spec.durable,
                    "messaging.message.id": ev.id,
                    "messaging.batch.message_count": len(msgs),
                },
            )
            ev.trace_context = trace.set_span_in_context(span)
            good.append((msg, ev, span))
        if msgs:
            self._metrics.set_consumer_lag(self.spec.durable, msgs[-1].metadata.num_pending)
        if not good:
            return
        try:
            await self._apply_with_db_retry([ev for _, ev, _ in good], [m for m, _, _ in good])
        except Exception as exc:
            log.warning(
                "batch failed, replaying one by one: %s", exc, extra={"consumer": self.spec.durable}
            )
            await self._one_by_one(good)
        else:
            # One write for the batch's acks (each message still acked by
            # itself: explicit acks, docs/adr/0205).
            await pull.ack_many([m for m, _, _ in good])
            for _, _, span in good:
                span.end()
            self._metrics.events_consumed.add(
                len(good), {"consumer": self.spec.durable, "outcome": "ok"}
            )
        finally:
            self._metrics.handler_latency.record(
                time.perf_counter() - started, {"consumer": self.spec.durable}
            )

    async def _one_by_one(self, good: list[tuple[Msg, ReceivedEvent, Span]]) -> None:
        for msg, ev, span in good:
            try:
                await self._apply_with_db_retry([ev], [msg])
            except Exception as exc:
                span.record_exception(exc)
                span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
                span.end()
                await self._failed(msg, f"{type(exc).__name__}: {exc}")
                continue
            await msg.ack()
            span.end()
            self._metrics.events_consumed.add(1, {"consumer": self.spec.durable, "outcome": "ok"})

    async def _apply_with_db_retry(self, events: list[ReceivedEvent], msgs: list[Msg]) -> None:
        delay = 0.2
        conflicts = 0
        while True:
            try:
                await self.db.run(self._apply, events)
            except Exception as exc:
                if is_conflict_error(exc) and conflicts < 3:
                    # Another writer (a gRPC call, a replica) took a key first;
                    # re-running reads its row and links to it.
                    conflicts += 1
                    continue
                if not is_transient_db_error(exc) or self._stopping:
                    raise
                log.warning(
                    "database unavailable, holding batch", extra={"consumer": self.spec.durable}
                )
                # Keep the messages ours while we wait for the database.
                await asyncio.gather(*(m.in_progress() for m in msgs), return_exceptions=True)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            if self.on_commit is not None:
                self.on_commit()
            return

    def _apply(self, events: list[ReceivedEvent]) -> None:
        with self.db.session() as session:
            seen = already_processed(session, self.spec.durable, (e.id for e in events))
            fresh: list[ReceivedEvent] = []
            ids: set[str] = set()
            for e in events:
                if e.id in seen or e.id in ids:  # also duplicates inside one batch
                    continue
                ids.add(e.id)
                fresh.append(e)
            dupes = len(events) - len(fresh)
            if fresh:
                self.handler(session, fresh)
                mark_processed(session, self.spec.durable, ids)
        self.processed += len(fresh)
        if dupes:
            self.duplicates += dupes
            self._metrics.events_consumed.add(
                dupes, {"consumer": self.spec.durable, "outcome": "duplicate"}
            )

    async def _failed(self, msg: Msg, reason: str) -> None:
        deliveries = msg.metadata.num_delivered
        if deliveries < self.spec.max_deliver:
            self._metrics.events_consumed.add(
                1, {"consumer": self.spec.durable, "outcome": "retry"}
            )
            await msg.nak(delay=retry_delay(deliveries))
            return
        await self._dead_letter(msg, reason, deliveries)

    async def _dead_letter(self, msg: Msg, reason: str, deliveries: int) -> None:
        headers = dict(msg.headers or {})
        ce_id = headers.get("ce-id") or f"seq-{msg.metadata.sequence.stream}"
        headers.update(
            {
                "cx-dlq-reason": reason[:500],
                "cx-dlq-consumer": self.spec.durable,
                "cx-dlq-stream": self.spec.stream,
                "cx-dlq-subject": msg.subject,
                "cx-dlq-deliveries": str(deliveries),
                "Nats-Msg-Id": f"{self.spec.durable}:{ce_id}",
            }
        )
        # Publish first, then terminate: if the publish fails the message is
        # redelivered and tried again, never lost.
        await self.bus.js.publish(
            dead_letter_subject(self.spec.durable, msg.subject), msg.data, headers=headers
        )
        await msg.term()
        self.dead_lettered += 1
        self._metrics.events_consumed.add(
            1, {"consumer": self.spec.durable, "outcome": "dead_letter"}
        )
        log.error(
            "message dead-lettered",
            extra={"consumer": self.spec.durable, "subject": msg.subject, "reason": reason[:200]},
        )
