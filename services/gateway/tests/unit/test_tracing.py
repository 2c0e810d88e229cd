"""The publish span is a child of the HTTP server span (instrument_fastapi)."""

from __future__ import annotations

from typing import Any

import httpx
from nats.js.api import PubAck
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from cxloop_libs.messaging import EventPublisher
from cxloop_libs.telemetry import setup_telemetry
from gateway.bootstrap import SOURCE, create_gateway_app
from gateway.config import GatewaySettings
from gateway.tests.unit.fakes import basic


class FakeJetStream:
    def __init__(self) -> None:
        self.headers: list[dict[str, str]] = []

    async def publish(
        self, subject: str, payload: bytes, *, headers: dict[str, str], timeout: float
    ) -> PubAck:
        self.headers.append(headers)
        return PubAck(stream="GATEWAY", seq=len(self.headers))


class FakeBus:
    is_connected = True

    def __init__(self) -> None:
        self.js = FakeJetStream()


async def test_publish_span_is_child_of_http_span() -> None:
    exporter = InMemorySpanExporter()
    setup_telemetry("gateway", span_exporter=exporter)
    settings = GatewaySettings.from_env(
        {"CXLOOP_ENV": "development", "CXLOOP_GATEWAY_READINESS_SERVICES": ""}
    )
    bus: Any = FakeBus()
    app = create_gateway_app(settings, bus, EventPublisher(bus, source=SOURCE))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://gateway"
    ) as client:
        r = await client.post("/v1/track", json={"userId": "u", "event": "x"}, headers=basic("dev"))
    assert r.status_code == 200, r.text

    spans = exporter.get_finished_spans()
    producer = next(s for s in spans if s.kind is SpanKind.PRODUCER)
    server = next(s for s in spans if s.kind is SpanKind.SERVER)
    assert producer.parent is not None
    assert producer.context.trace_id == server.context.trace_id
    assert "traceparent" in bus.js.headers[0]
    # The producer's parent chain leads to the server span.
    by_id = {s.context.span_id: s for s in spans}
    parent = by_id.get(producer.parent.span_id)
    while parent is not None and parent is not server:
        parent = by_id.get(parent.parent.span_id) if parent.parent else None
    assert parent is server
