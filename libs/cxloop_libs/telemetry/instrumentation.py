"""Tracing of the transports every service shares: gRPC, FastAPI and SQLAlchemy.

Each helper instruments one object the caller hands over and uses the global
providers, so it works whether it runs before or after :func:`setup_telemetry`.
Instrumentation packages are imported on use: a process without FastAPI never
imports it.
"""

from __future__ import annotations

import functools
import threading
import weakref
from typing import TYPE_CHECKING, cast

import grpc.aio
from opentelemetry import metrics, trace
from opentelemetry.metrics import UpDownCounter
from opentelemetry.trace import Tracer

if TYPE_CHECKING:
    from fastapi import FastAPI
    from sqlalchemy.engine import Engine
    from sqlalchemy.ext.asyncio import AsyncEngine

# Probes poll every few seconds; their spans would drown the real traffic.
_FASTAPI_EXCLUDED_URLS = "healthz,readyz,metrics"

_traced_engines: weakref.WeakSet[Engine] = weakref.WeakSet()
_engines_lock = threading.Lock()


def grpc_client_interceptors() -> list[grpc.aio.ClientInterceptor]:
    from opentelemetry.instrumentation.grpc import aio_client_interceptors

    interceptors: list[grpc.aio.ClientInterceptor] = aio_client_interceptors()  # type: ignore[no-untyped-call]
    return interceptors


def instrument_fastapi(app: FastAPI) -> None:
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.instrument_app(app, excluded_urls=_FASTAPI_EXCLUDED_URLS)


def instrument_sqlalchemy(engine: Engine | AsyncEngine) -> None:
    """Trace the statements of ``engine``; calling it again for the same engine is a no-op.

    Attaches the instrumentation's EngineTracer directly instead of calling
    ``SQLAlchemyInstrumentor().instrument(engine=...)``: that instrumentor is a
    process-wide singleton that ignores every engine after the first, refuses
    SQLAlchemy 2.1 by its declared version range, and imports
    ``sqlalchemy.ext.asyncio`` (which needs greenlet, not installed here).
    """
    from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer

    # Not isinstance(AsyncEngine): importing sqlalchemy.ext.asyncio needs greenlet.
    sync_engine = cast("Engine", getattr(engine, "sync_engine", engine))
    with _engines_lock:
        if sync_engine in _traced_engines:
            return
        tracer, connections_usage = _sqlalchemy_instruments()
        EngineTracer(tracer, sync_engine, connections_usage)  # type: ignore[no-untyped-call]
        _traced_engines.add(sync_engine)


# Created once: asking the SDK for the same instrument again logs a duplicate
# registration warning per engine.
@functools.cache
def _sqlalchemy_instruments() -> tuple[Tracer, UpDownCounter]:
    from opentelemetry.instrumentation.sqlalchemy.version import __version__
    from opentelemetry.semconv.metrics import MetricInstruments

    scope = "opentelemetry.instrumentation.sqlalchemy"
    connections_usage = metrics.get_meter(scope, __version__).create_up_down_counter(
        name=MetricInstruments.DB_CLIENT_CONNECTIONS_USAGE,
        unit="connections",
        description="The number of connections that are currently in state described by "
        "the state attribute.",
    )
    return trace.get_tracer(scope, __version__), connections_usage
