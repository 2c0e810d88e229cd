"""Telemetry setup, propagation, logs and metrics. Only localhost networking.

OpenTelemetry's global providers can be set once per process, so these tests
share the process-wide Telemetry and tell their spans apart by name; behaviour
that needs a fresh process (a taken metrics port, shutdown) runs in a subprocess.
"""

from __future__ import annotations

import io
import json
import logging
import os
import socket
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from cxloop_libs.telemetry import (
    JsonLogFormatter,
    Telemetry,
    context_from_traceparent,
    current_traceparent,
    extract_context,
    grpc_client_interceptors,
    inject_headers,
    instrument_fastapi,
    instrument_sqlalchemy,
    messaging_metrics,
    safe_attributes,
    setup_telemetry,
)

KNOWN_TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


@pytest.fixture(scope="module")
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def telemetry(exporter: InMemorySpanExporter) -> Iterator[Telemetry]:
    exporter.clear()
    yield setup_telemetry("telemetry-test", span_exporter=exporter)
    exporter.clear()


def spans_named(exporter: InMemorySpanExporter, name: str) -> list[ReadableSpan]:
    return [s for s in exporter.get_finished_spans() if s.name == name]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_inject_extract_round_trip_parents_the_consumer_span(
    telemetry: Telemetry, exporter: InMemorySpanExporter
) -> None:
    tracer = telemetry.tracer("test")
    with tracer.start_as_current_span("publish") as producer:
        headers = inject_headers({"ce-id": "evt-1"})
    producer_ctx = producer.get_span_context()
    assert headers["ce-id"] == "evt-1"
    assert f"{producer_ctx.trace_id:032x}" in headers["traceparent"]

    # Consumed later, outside the producer's context, as a NATS handler would be.
    with tracer.start_as_current_span("consume", context=extract_context(headers)):
        pass

    (consumer,) = spans_named(exporter, "consume")
    assert consumer.context is not None and consumer.parent is not None
    assert consumer.context.trace_id == producer_ctx.trace_id
    assert consumer.parent.span_id == producer_ctx.span_id


def test_inject_for_an_explicit_context_and_extract_odd_headers(telemetry: Telemetry) -> None:
    with telemetry.tracer("test").start_as_current_span("stored") as span:
        stored = trace.set_span_in_context(span)
    headers = inject_headers({}, stored)
    assert headers["traceparent"].split("-")[2] == f"{span.get_span_context().span_id:016x}"

    canonicalised = {"Traceparent": headers["traceparent"]}
    extracted = trace.get_current_span(extract_context(canonicalised)).get_span_context()
    assert extracted.trace_id == span.get_span_context().trace_id
    assert not trace.get_current_span(extract_context(None)).get_span_context().is_valid


def test_traceparent_strings_for_the_outbox(telemetry: Telemetry) -> None:
    restored = trace.get_current_span(context_from_traceparent(KNOWN_TRACEPARENT))
    assert restored.get_span_context().trace_id == 0x0AF7651916CD43DD8448EB211C80319C
    assert restored.get_span_context().span_id == 0xB7AD6B7169203331

    assert current_traceparent() == ""
    with telemetry.tracer("test").start_as_current_span("write") as span:
        stored = current_traceparent()
        # A blank stored value must not fall back to whatever span is current.
        assert not trace.get_current_span(context_from_traceparent("")).get_span_context().is_valid
        assert (
            not trace.get_current_span(context_from_traceparent("junk")).get_span_context().is_valid
        )
    ctx = span.get_span_context()
    assert stored.startswith(f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-")
    round_trip = trace.get_current_span(context_from_traceparent(stored)).get_span_context()
    assert (round_trip.trace_id, round_trip.span_id) == (ctx.trace_id, ctx.span_id)


def test_json_log_lines_carry_trace_ids_and_extras(telemetry: Telemetry) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonLogFormatter("loyalty"))
    logger = logging.getLogger("cxloop.test.jsonlog")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        with telemetry.tracer("test").start_as_current_span("handle") as span:
            logger.info(
                "points earned: %d", 40, extra={"customer_id": "c-1", "lot": uuid.UUID(int=7)}
            )
            try:
                raise ValueError("bad lot")
            except ValueError:
                logger.exception("failed")
        logger.warning("outside")
    finally:
        logger.removeHandler(handler)

    inside, failed, outside = (json.loads(line) for line in stream.getvalue().splitlines())
    ctx = span.get_span_context()
    assert inside["trace_id"] == f"{ctx.trace_id:032x}"
    assert inside["span_id"] == f"{ctx.span_id:016x}"
    assert inside["msg"] == "points earned: 40"
    assert inside["level"] == "INFO"
    assert inside["logger"] == "cxloop.test.jsonlog"
    assert inside["service"] == "loyalty"
    assert inside["customer_id"] == "c-1"
    assert inside["lot"] == str(uuid.UUID(int=7))
    assert inside["ts"].endswith("Z") and "T" in inside["ts"]
    assert "args" not in inside and "levelno" not in inside
    assert "ValueError: bad lot" in failed["exc"]
    assert "trace_id" not in outside and "span_id" not in outside


def test_setup_twice_keeps_one_provider_and_feeds_both_exporters() -> None:
    first, second = InMemorySpanExporter(), InMemorySpanExporter()
    telemetry = setup_telemetry("telemetry-test", span_exporter=first)
    again = setup_telemetry("telemetry-test", span_exporter=second, log_level="DEBUG")

    assert again is telemetry
    assert trace.get_tracer_provider() is telemetry.tracer_provider
    with trace.get_tracer("test").start_as_current_span("after-second-setup"):
        pass
    assert [s.name for s in first.get_finished_spans()] == ["after-second-setup"]
    assert [s.name for s in second.get_finished_spans()] == ["after-second-setup"]
    resource = telemetry.tracer_provider.resource.attributes
    assert resource["service.namespace"] == "cxloop"
    logging.getLogger().setLevel(logging.INFO)


def test_safe_attributes_drops_pii_keys() -> None:
    clean = safe_attributes(
        {
            "email": "kim@example.com",
            "email_hash": "9f2c",
            "customer_id": "c-1",
            "customer.phone": "+821012345678",
            "DisplayName": "Kim",
            "client.ip": "10.0.0.1",
            "shipping_address": "Seoul",
            "membership_tier": "gold",
            "points": 40,
            "lot": uuid.UUID(int=7),
            "profile": {"email": "kim@example.com"},
        }
    )
    assert clean == {
        "email_hash": "9f2c",
        "customer_id": "c-1",
        "membership_tier": "gold",
        "points": 40,
        "lot": str(uuid.UUID(int=7)),
    }


def test_metrics_endpoint_serves_messaging_counters(telemetry: Telemetry) -> None:
    port = free_port()
    setup_telemetry("telemetry-test", metrics_port=port)
    url = f"http://127.0.0.1:{port}/metrics"
    subject = f"cx.test.{uuid.uuid4().hex[:8]}"

    with urllib.request.urlopen(url, timeout=5) as response:
        assert response.status == 200
        assert subject not in response.read().decode()
    messaging_metrics().events_published.add(1, {"subject": subject})
    with urllib.request.urlopen(url, timeout=5) as response:
        body = response.read().decode()
    assert "cxloop_events_published_total{" in body
    assert f'subject="{subject}"' in body


def test_taken_metrics_port_warns_and_shutdown_is_idempotent() -> None:
    script = (
        "import logging, sys\n"
        "from cxloop_libs.telemetry import setup_telemetry\n"
        "t = setup_telemetry('busy-port', metrics_port=int(sys.argv[1]))\n"
        "logging.getLogger('probe').info('still running')\n"
        "t.shutdown()\n"
        "t.shutdown()\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env["CXLOOP_METRICS_HOST"] = "127.0.0.1"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-c", script, str(port)],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
            check=False,
        )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert any(ln["level"] == "WARNING" and ln.get("metrics_port") == port for ln in lines)
    assert any(ln["msg"] == "still running" and ln["service"] == "busy-port" for ln in lines)


class StartedSpans(SpanProcessor):
    """Spans started, ended or not: a doubly attached tracer leaks unended spans."""

    def __init__(self) -> None:
        self.span_ids: list[int] = []

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        self.span_ids.append(span.get_span_context().span_id)


def test_sqlalchemy_traces_each_engine_once(
    telemetry: Telemetry, exporter: InMemorySpanExporter
) -> None:
    started = StartedSpans()
    telemetry.tracer_provider.add_span_processor(started)
    before = sa.create_engine("sqlite://")
    instrument_sqlalchemy(before)
    instrument_sqlalchemy(before)
    after = sa.create_engine("sqlite://")
    instrument_sqlalchemy(after)
    for engine in (before, after):
        with engine.connect() as conn:
            conn.execute(sa.text("select 42"))
    recorded = list(started.span_ids)

    finished = exporter.get_finished_spans()
    selects = [
        s for s in finished if s.attributes and s.attributes.get("db.statement") == "select 42"
    ]
    assert len(selects) == 2
    assert sorted(recorded) == sorted(s.context.span_id for s in finished if s.context)


def test_sqlalchemy_pool_usage_is_read_from_the_pool(telemetry: Telemetry, tmp_path: Path) -> None:
    from cxloop_libs.telemetry.instrumentation import _pool_usage

    engine = sa.create_engine(f"sqlite:///{tmp_path / 'pool.db'}", poolclass=sa.pool.QueuePool)
    instrument_sqlalchemy(engine)

    with engine.connect() as conn:
        conn.execute(sa.text("select 1"))
        during = [o for o in _pool_usage(None) if _is(o, engine)]  # type: ignore[arg-type]
    after = [o for o in _pool_usage(None) if _is(o, engine)]  # type: ignore[arg-type]
    assert {str((o.attributes or {})["state"]): o.value for o in during} == {"used": 1, "idle": 0}
    assert {str((o.attributes or {})["state"]): o.value for o in after} == {"used": 0, "idle": 1}


def _is(observation: object, engine: sa.Engine) -> bool:
    from opentelemetry.instrumentation.sqlalchemy.engine import _get_attributes_from_engine

    attrs = dict(getattr(observation, "attributes", None) or {})
    attrs.pop("state", None)
    return attrs == dict(_get_attributes_from_engine(engine))


def test_spans_are_recorded_only_once_something_exports_them() -> None:
    """Without an exporter spans are dropped, yet keep the trace ids logs,
    audit entries and the next service's traceparent carry."""
    script = (
        "from opentelemetry import trace\n"
        "from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter\n"
        "from cxloop_libs.telemetry import setup_telemetry, context_from_traceparent,"
        " current_traceparent\n"
        "setup_telemetry('no-exporter')\n"
        "tracer = trace.get_tracer('probe')\n"
        "with tracer.start_as_current_span('root') as s:\n"
        "    print(s.is_recording(), s.get_span_context().is_valid, current_traceparent())\n"
        f"parent = context_from_traceparent('{KNOWN_TRACEPARENT}')\n"
        "with tracer.start_as_current_span('child', context=parent) as s:\n"
        "    print(s.is_recording(), current_traceparent())\n"
        "exported = InMemorySpanExporter()\n"
        "setup_telemetry('no-exporter', span_exporter=exported)\n"
        "with tracer.start_as_current_span('later') as s:\n"
        "    print(s.is_recording())\n"
        "print([x.name for x in exported.get_finished_spans()])\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    root, child, later, names = done.stdout.splitlines()
    recording, valid, traceparent = root.split()
    assert (recording, valid) == ("False", "True")
    assert len(traceparent.split("-")[1]) == 32
    recording, traceparent = child.split()
    assert recording == "False"
    # The caller's trace goes on (the span is new, its sampled flag unset).
    assert traceparent.split("-")[1] == KNOWN_TRACEPARENT.split("-")[1]
    assert traceparent.split("-")[2] != KNOWN_TRACEPARENT.split("-")[2]
    assert later == "True"
    assert names == "['later']"


async def test_grpc_interceptors_carry_the_trace_to_the_server(
    telemetry: Telemetry, exporter: InMemorySpanExporter
) -> None:
    async def echo(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        return request

    # The server side of the trace is cxloop's own interceptor (the one
    # every GrpcServer runs); the client side is OpenTelemetry's.
    from cxloop_libs.grpcx import CxServerInterceptor

    server = grpc.aio.server(
        interceptors=[
            CxServerInterceptor(
                accepted_tokens=frozenset(),
                require_auth=False,
                unauthenticated_methods=frozenset(),
            )
        ]
    )
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                "cxloop.test.Echo", {"Echo": grpc.unary_unary_rpc_method_handler(echo)}
            ),
        )
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(
            f"127.0.0.1:{port}", interceptors=grpc_client_interceptors()
        ) as channel:
            assert await channel.unary_unary("/cxloop.test.Echo/Echo")(b"hi", timeout=5) == b"hi"
    finally:
        await server.stop(None)

    spans = [s for s in exporter.get_finished_spans() if s.name == "/cxloop.test.Echo/Echo"]
    (client,) = [s for s in spans if s.kind is SpanKind.CLIENT]
    (served,) = [s for s in spans if s.kind is SpanKind.SERVER]
    assert client.context is not None and served.context is not None
    assert served.parent is not None
    assert served.context.trace_id == client.context.trace_id
    assert served.parent.span_id == client.context.span_id
    assert served.attributes is not None
    assert served.attributes["rpc.service"] == "cxloop.test.Echo"
    assert served.attributes["rpc.grpc.status_code"] == 0


def test_fastapi_traces_requests_but_not_probes(
    telemetry: Telemetry, exporter: InMemorySpanExporter
) -> None:
    app = FastAPI()

    @app.get("/v1/profile")
    def profile() -> dict[str, str]:
        return {"ok": "yes"}

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"ok": "yes"}

    instrument_fastapi(app)
    with TestClient(app) as client:
        assert client.get("/v1/profile").status_code == 200
        assert client.get("/healthz").status_code == 200

    servers = [s for s in exporter.get_finished_spans() if s.kind is SpanKind.SERVER]
    assert [s.name for s in servers] == ["GET /v1/profile"]
