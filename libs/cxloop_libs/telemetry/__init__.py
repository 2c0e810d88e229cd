"""The one OpenTelemetry setup every cxloop process uses: traces, metrics and
JSON logs carrying trace ids, plus W3C context propagation over NATS headers.

A process calls :func:`setup_telemetry` once at start; libraries only ask the
global providers (or :func:`messaging_metrics`) and never configure anything.
"""

from cxloop_libs.telemetry.attributes import safe_attributes
from cxloop_libs.telemetry.instrumentation import (
    grpc_client_interceptors,
    instrument_fastapi,
    instrument_sqlalchemy,
)
from cxloop_libs.telemetry.jsonlog import JsonLogFormatter, configure_logging
from cxloop_libs.telemetry.metrics import MessagingMetrics, messaging_metrics
from cxloop_libs.telemetry.propagation import (
    context_from_traceparent,
    current_traceparent,
    extract_context,
    inject_headers,
    traceparent_of,
)
from cxloop_libs.telemetry.setup import Telemetry, setup_telemetry

__all__ = [
    "JsonLogFormatter",
    "MessagingMetrics",
    "Telemetry",
    "configure_logging",
    "context_from_traceparent",
    "current_traceparent",
    "extract_context",
    "grpc_client_interceptors",
    "inject_headers",
    "instrument_fastapi",
    "instrument_sqlalchemy",
    "messaging_metrics",
    "safe_attributes",
    "setup_telemetry",
    "traceparent_of",
]
