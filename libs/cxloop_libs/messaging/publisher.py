"""Publishing events to JetStream with CloudEvents headers, a producer span and
``Nats-Msg-Id`` de-duplication."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from google.protobuf.message import Message
from nats.js.api import PubAck
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import SpanKind

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

    async def publish(self, event: PendingEvent, *, timeout: float = 5.0) -> PubAck:
        nats_subject = event.nats_subject or event.kind.subject
        with tracer.start_as_current_span(
            f"{nats_subject} publish",
            context=event.parent,
            kind=SpanKind.PRODUCER,
            attributes={
                "messaging.system": "nats",
                "messaging.destination.name": nats_subject,
                "messaging.message.id": event.event_id,
                "cloudevents.event_type": event.kind.ce_type,
            },
        ):
            headers = ce_headers(
                event.kind,
                event_id=event.event_id,
                source=self.source,
                subject=event.subject,
                time=event.time,
            )
            inject_headers(headers)
            async with self._sem:
                ack = await self.bus.js.publish(
                    nats_subject, event.data, headers=headers, timeout=timeout
                )
        messaging_metrics().events_published.add(1, {"subject": nats_subject})
        return ack

    async def publish_many(
        self, events: Sequence[PendingEvent], *, timeout: float = 5.0
    ) -> list[PubAck | BaseException]:
        """Publish concurrently; one result per event, an exception where it failed."""
        return await asyncio.gather(
            *(self.publish(e, timeout=timeout) for e in events), return_exceptions=True
        )
