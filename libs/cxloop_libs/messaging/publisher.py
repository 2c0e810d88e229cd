"""Publishing events to JetStream with CloudEvents headers, a producer span and
``Nats-Msg-Id`` de-duplication."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from google.protobuf.message import Message
from nats.js.api import PubAck
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from cxloop_libs.messaging.bus import NatsBus
from cxloop_libs.messaging.catalog import EventKind
from cxloop_libs.messaging.cloudevents import ce_headers, new_event_id
from cxloop_libs.telemetry import inject_headers, messaging_metrics

tracer = trace.get_tracer("cxloop.messaging")


@dataclass(slots=True)
class PendingEvent:
    """An event ready to go on the wire (already encoded)."""

    kind: EventKind
    data: bytes
    event_id: str
    subject: str = ""  # the customer id (ce-subject)
    time: datetime | None = None
    parent: Context | None = None  # trace context of whatever caused the event
    nats_subject: str = ""
    # Already-serialised W3C traceparent of whatever caused the event (the
    # outbox keeps it as text): sent as is, with no producer span of its own,
    # so the consumer's span hangs directly under the span that staged it.
    traceparent: str | None = None

    @classmethod
    def of(
        cls,
        kind: EventKind,
        message: Message,
        *,
        subject: str = "",
        event_id: str | None = None,
        time: datetime | None = None,
    ) -> PendingEvent:
        return cls(
            kind=kind,
            data=message.SerializeToString(),
            event_id=event_id or new_event_id(),
            subject=subject,
            time=time,
        )


class EventPublisher:
    def __init__(self, bus: NatsBus, *, source: str, concurrency: int = 256) -> None:
        self.bus = bus
        self.source = source
        self._sem = asyncio.Semaphore(concurrency)
        self._published = messaging_metrics().events_published

    def _headers(self, event: PendingEvent) -> dict[str, str]:
        return ce_headers(
            event.kind,
            event_id=event.event_id,
            source=self.source,
            subject=event.subject,
            time=event.time,
        )

    def _prepare(self, event: PendingEvent) -> tuple[str, dict[str, str], Span | None]:
        """Headers for one event, inside its producer span (ended by the
        caller); no span for an event that carries its own ``traceparent``."""
        nats_subject = event.nats_subject or event.kind.subject
        if event.traceparent is not None:
            headers = self._headers(event)
            if event.traceparent:
                headers["traceparent"] = event.traceparent
            return nats_subject, headers, None
        span = tracer.start_span(
            f"{nats_subject} publish",
            context=event.parent,
            kind=SpanKind.PRODUCER,
            attributes={
                "messaging.system": "nats",
                "messaging.destination.name": nats_subject,
                "messaging.message.id": event.event_id,
            },
        )
        headers = self._headers(event)
        inject_headers(headers, trace.set_span_in_context(span))
        return nats_subject, headers, span

    async def publish(self, event: PendingEvent, *, timeout: float = 5.0) -> PubAck:
        nats_subject, headers, span = self._prepare(event)
        try:
            async with self._sem:
                ack = await self.bus.js.publish(
                    nats_subject, event.data, headers=headers, timeout=timeout
                )
        except BaseException as exc:
            if span is not None:
                span.record_exception(exc)
                span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
            raise
        finally:
            if span is not None:
                span.end()
        self._published.add(1, {"subject": nats_subject})
        return ack

    def _batch_span(
        self, events: Sequence[PendingEvent]
    ) -> tuple[Span | None, dict[str, str] | None]:
        """One producer span for a batch published in the caller's context
        (a gateway `/v1/batch`): every event carries its trace context, so
        each consumer's span still hangs under it. A span per event cost the
        gateway about a tenth of its CPU per event (start, attributes,
        inject, end). Events with a context of their own keep their own."""
        if len(events) < 2 or any(
            e.traceparent is not None or e.parent is not None for e in events
        ):
            return None, None
        name, subject = _batch_span_name(events)
        span = tracer.start_span(
            name,
            kind=SpanKind.PRODUCER,
            attributes={
                "messaging.system": "nats",
                "messaging.destination.name": subject,
                "messaging.batch.message_count": len(events),
            },
        )
        carrier: dict[str, str] = {}
        inject_headers(carrier, trace.set_span_in_context(span))
        return span, carrier

    async def publish_many(
        self, events: Sequence[PendingEvent], *, timeout: float = 5.0
    ) -> list[PubAck | BaseException]:
        """Publish a batch without a round trip per event: every message goes
        out at once and the acknowledgements are collected afterwards. One
        result per event, an exception where it was not stored."""
        futures: list[asyncio.Future[PubAck]] = []
        spans: list[Span | None] = []
        subjects: dict[str, int] = {}
        js = self.bus.js
        batch_span, shared = self._batch_span(events)
        for event in events:
            if shared is not None:
                nats_subject = event.nats_subject or event.kind.subject
                headers = {**self._headers(event), **shared}
                span: Span | None = None
            else:
                nats_subject, headers, span = self._prepare(event)
            spans.append(span)
            try:
                future = await js.publish_async(
                    nats_subject, event.data, headers=headers, wait_stall=stall_timeout(js, timeout)
                )
            except Exception as exc:  # the connection refused the message itself
                future = asyncio.get_running_loop().create_future()
                future.set_exception(exc)
            futures.append(future)
            subjects[nats_subject] = subjects.get(nats_subject, 0) + 1
        try:
            results: list[PubAck | BaseException] = list(
                await asyncio.wait_for(
                    asyncio.gather(*futures, return_exceptions=True), timeout=timeout
                )
            )
        except TimeoutError:
            # A future the client cancelled (a stall, a reconnect) is an event
            # not stored, never an exception escaping to the caller.
            results = [_outcome(f) for f in futures]
            for f in futures:
                f.cancel()
        for span, res in zip(spans, results, strict=True):
            if span is None:
                continue
            if isinstance(res, BaseException):
                span.set_status(Status(StatusCode.ERROR, type(res).__name__))
            span.end()
        if batch_span is not None:
            failed = sum(isinstance(r, BaseException) for r in results)
            if failed:
                batch_span.set_attribute("cxloop.not_stored", failed)
                batch_span.set_status(Status(StatusCode.ERROR, f"{failed} not stored"))
            batch_span.end()
        for subject, n in subjects.items():
            self._published.add(n, {"subject": subject})
        return results


def stall_timeout(js: Any, timeout: float) -> float | None:
    """``wait_stall`` for the next ``publish_async``: never block forever on
    nats-py's limit of pending acknowledgements, but pass no timeout while
    that limit has room. With a timeout nats-py wraps the (immediate)
    semaphore acquire in ``asyncio.wait_for``, which on Python 3.11 makes a
    task and yields to the event loop for every message: the gateway and the
    outbox relays then published one event per loop turn (JetStream received
    a trickle instead of a batch, consumers downstream pulled ~5 messages per
    fetch instead of ~100, and ingest fell from 2,992 to 1,232 resolved
    events/s). The semaphore is private to nats-py: without it, always the
    timeout (the safe, slower way)."""
    sem = getattr(js, "_publish_async_pending_semaphore", None)
    if isinstance(sem, asyncio.Semaphore) and not sem.locked():
        return None
    return timeout


def _batch_span_name(events: Sequence[PendingEvent]) -> tuple[str, str]:
    subjects = {e.nats_subject or e.kind.subject for e in events}
    subject = subjects.pop() if len(subjects) == 1 else "(several)"
    return f"{subject} publish", subject


def _outcome(future: asyncio.Future[PubAck]) -> PubAck | BaseException:
    """The PubAck of a publish future, or why there is none (never raises)."""
    if not future.done():
        return TimeoutError("no PubAck")
    if future.cancelled():
        return asyncio.CancelledError("publish cancelled")
    return future.exception() or future.result()
