"""Process-wide OpenTelemetry setup: providers, exporters, metrics endpoint, logs.

OpenTelemetry lets a process set its global providers once, so this module
keeps one :class:`Telemetry` per process; later calls (tests, a CLI that starts
several components) add to it instead of failing.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from wsgiref.simple_server import WSGIServer

from opentelemetry import metrics, trace
from opentelemetry.context import Context
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.metrics import Meter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.resources import SERVICE_NAME, SERVICE_NAMESPACE, Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace import sampling as otel_sampling
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter
from opentelemetry.trace import Link, SpanKind, Tracer, TraceState
from opentelemetry.util.types import Attributes

from cxloop_libs.telemetry.jsonlog import configure_logging

log = logging.getLogger(__name__)

_OTLP_ENDPOINT_VARS = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
_METRICS_HOST_VAR = "CXLOOP_METRICS_HOST"


@dataclass(eq=False)
class Telemetry:
    service_name: str
    tracer_provider: TracerProvider
    meter_provider: MeterProvider
    _exporters: list[SpanExporter] = field(default_factory=list, init=False, repr=False)
    _otlp_added: bool = field(default=False, init=False, repr=False)
    _metrics_server: WSGIServer | None = field(default=None, init=False, repr=False)
    _shut_down: bool = field(default=False, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def tracer(self, name: str) -> Tracer:
        return self.tracer_provider.get_tracer(name)

    def meter(self, name: str) -> Meter:
        return self.meter_provider.get_meter(name)

    def shutdown(self) -> None:
        """Flush and stop exporting. Final for the process: the global providers
        cannot be replaced, so call it at exit, not between tests."""
        with self._lock:
            if self._shut_down:
                return
            self._shut_down = True
        self.tracer_provider.force_flush()
        self.tracer_provider.shutdown()
        self.meter_provider.force_flush()
        self.meter_provider.shutdown()
        if self._metrics_server is not None:
            self._metrics_server.shutdown()
            self._metrics_server.server_close()
            self._metrics_server = None


_telemetry: Telemetry | None = None
_setup_lock = threading.Lock()


def setup_telemetry(
    service_name: str,
    *,
    log_level: str = "INFO",
    metrics_port: int = 0,
    span_exporter: SpanExporter | None = None,
) -> Telemetry:
    """Configure traces, metrics and JSON logs for this process and return its Telemetry.

    Spans go to ``span_exporter`` if given, else to OTLP when
    ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set, else nowhere (they still give logs
    their trace ids). ``metrics_port > 0`` serves Prometheus metrics on
    ``CXLOOP_METRICS_HOST`` (default 127.0.0.1). Safe to call again: the
    existing Telemetry is returned with the new exporter or port added.
    """
    global _telemetry
    with _setup_lock:
        first = _telemetry is None
        if _telemetry is None:
            _telemetry = _create(service_name)
        telemetry = _telemetry
        # The service name of an existing setup stays: it is baked into the
        # Resource, and logs should name the same service as the traces.
        configure_logging(telemetry.service_name, log_level)
        if not first and service_name != telemetry.service_name:
            log.warning(
                "telemetry already set up; keeping the first service name",
                extra={"requested_service": service_name},
            )
        if telemetry._shut_down:
            log.warning("telemetry was shut down; nothing more is exported in this process")
            return telemetry
        processor = _span_processor(telemetry, span_exporter)
        if processor is not None:
            telemetry.tracer_provider.add_span_processor(processor)
        if metrics_port > 0:
            _serve_metrics(telemetry, metrics_port)
        return telemetry


class RecordWhenExported(otel_sampling.Sampler):
    """The configured sampler (``OTEL_TRACES_SAMPLER``, by default parent-based
    always-on) once a span processor is attached; until then every span is
    dropped: not recorded, but still given a trace and span id, so logs, audit
    entries and error references carry the trace id, and ``traceparent`` still
    goes to the next service (its sampled flag unset).

    With no exporter configured (the default), every span of every call went
    nowhere yet cost its recording: a customer 360 page starts some twenty
    over seven processes (gRPC server and client, one per SQL statement,
    three per HTTP request); the statement's span alone was 40-110 µs of a
    one-statement transaction (docs/adr/0295)."""

    def __init__(self, configured: otel_sampling.Sampler) -> None:
        self.configured = configured
        self.exporting = False

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> otel_sampling.SamplingResult:
        if not self.exporting:
            return otel_sampling.SamplingResult(otel_sampling.Decision.DROP)
        return self.configured.should_sample(
            parent_context, trace_id, name, kind, attributes, links, trace_state
        )

    def get_description(self) -> str:
        return f"RecordWhenExported{{{self.configured.get_description()}}}"


class _TracerProvider(TracerProvider):
    """Tells its :class:`RecordWhenExported` sampler when spans gain a
    destination (an exporter from :func:`setup_telemetry`, or any processor a
    test attaches)."""

    def __init__(self, *, resource: Resource) -> None:
        self.recording_sampler = RecordWhenExported(otel_sampling._get_from_env_or_default())
        super().__init__(resource=resource, sampler=self.recording_sampler)

    def add_span_processor(self, span_processor: SpanProcessor) -> None:
        super().add_span_processor(span_processor)
        self.recording_sampler.exporting = True


def _create(service_name: str) -> Telemetry:
    resource = Resource.create({SERVICE_NAME: service_name, SERVICE_NAMESPACE: "cxloop"})
    tracer_provider = _TracerProvider(resource=resource)
    trace.set_tracer_provider(tracer_provider)
    # The reader is pull-only, so it costs nothing until something scrapes it;
    # attaching it always lets a later call open the port, since an SDK
    # MeterProvider cannot gain readers after it is built.
    meter_provider = MeterProvider(resource=resource, metric_readers=[PrometheusMetricReader()])
    metrics.set_meter_provider(meter_provider)
    return Telemetry(service_name, tracer_provider, meter_provider)


def _span_processor(telemetry: Telemetry, exporter: SpanExporter | None) -> SpanProcessor | None:
    if exporter is not None:
        if any(known is exporter for known in telemetry._exporters):
            return None
        telemetry._exporters.append(exporter)
        return SimpleSpanProcessor(exporter)
    if telemetry._otlp_added or not any(os.environ.get(var) for var in _OTLP_ENDPOINT_VARS):
        return None
    # Imported only when used: the gRPC exporter pulls in protobuf and channel code.
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

    telemetry._otlp_added = True
    # Endpoint, headers and OTEL_BSP_* batching come from the environment.
    return BatchSpanProcessor(OTLPSpanExporter())


def _serve_metrics(telemetry: Telemetry, port: int) -> None:
    from prometheus_client import start_http_server

    if telemetry._metrics_server is not None:
        served = telemetry._metrics_server.server_port
        if served != port:
            log.warning(
                "metrics already served on another port",
                extra={"metrics_port": served, "requested_port": port},
            )
        return
    host = os.environ.get(_METRICS_HOST_VAR, "127.0.0.1")
    try:
        server, _thread = start_http_server(port, addr=host)
    except OSError as exc:
        # Metrics are a convenience; a taken port must not stop the service.
        log.warning(
            "cannot serve metrics: %s",
            exc,
            extra={"metrics_host": host, "metrics_port": port},
        )
        return
    telemetry._metrics_server = server
    log.info("serving metrics", extra={"metrics_host": host, "metrics_port": port})
