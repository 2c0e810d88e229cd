"""A batch published in the caller's context (a gateway `/v1/batch`) gets one
producer span, and every event of it carries that span's trace context, so a
consumer's span still joins the request's trace; a single event keeps a
producer span of its own."""

from __future__ import annotations

import uuid

import pytest
from cxloop.gateway.v1 import events_pb2 as gw
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from cxloop_libs.messaging import EventPublisher, NatsBus, PendingEvent
from cxloop_libs.messaging import catalog as ev
from cxloop_libs.telemetry import setup_telemetry

pytestmark = pytest.mark.integration


def event(n: int) -> PendingEvent:
    return PendingEvent.of(
        ev.INTERACTION_RECORDED,
        gw.InteractionRecorded(message_id=f"m-{n}", name="Viewed"),
        subject=f"c-{n}",
        event_id=f"batch-span-{uuid.uuid4().hex}",
    )


async def traceparents(bus: NatsBus, n: int) -> list[str]:
    info = await bus.js.stream_info("GATEWAY")
    out = []
    for seq in range(info.state.last_seq - n + 1, info.state.last_seq + 1):
        msg = await bus.js.get_msg("GATEWAY", seq)
        out.append((msg.headers or {})["traceparent"])
    return out


async def test_a_batch_has_one_producer_span_that_every_event_carries(bus: NatsBus) -> None:
    exporter = InMemorySpanExporter()
    setup_telemetry("messaging-test", span_exporter=exporter)
    publisher = EventPublisher(bus, source="/cxloop/test")
    tracer = trace.get_tracer("test")
    with tracer.start_as_current_span("POST /v1/batch") as request:
        results = await publisher.publish_many([event(n) for n in range(3)])
    assert not any(isinstance(r, BaseException) for r in results)
    spans = [s for s in exporter.get_finished_spans() if s.name.endswith(" publish")]
    assert len(spans) == 1
    (batch,) = spans
    assert batch.name == f"{ev.INTERACTION_RECORDED.subject} publish"
    assert batch.attributes is not None
    assert batch.attributes["messaging.batch.message_count"] == 3
    assert batch.parent is not None
    assert batch.parent.span_id == request.get_span_context().span_id
    span_id = format(batch.context.span_id, "016x")
    carried = await traceparents(bus, 3)
    assert all(tp.split("-")[2] == span_id for tp in carried), carried

    exporter.clear()
    with tracer.start_as_current_span("POST /v1/track"):
        await publisher.publish_many([event(9)])
    (single,) = [s for s in exporter.get_finished_spans() if s.name.endswith(" publish")]
    assert single.attributes is not None
    assert "messaging.batch.message_count" not in single.attributes
    assert (await traceparents(bus, 1))[0].split("-")[2] == format(single.context.span_id, "016x")
