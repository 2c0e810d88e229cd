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
from collections.abc import Iterable
from typing import TYPE_CHECKING, cast

import grpc.aio
from opentelemetry import metrics, trace
from opentelemetry.metrics import CallbackOptions, Observation
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

    The pool's ``db.client.connections.usage`` (idle / used) is read from the
    pool when metrics are collected, not counted at every checkout and
    checkin: four counter updates per transaction, 0-80 µs (noisy) of the
    instrumentation's ~150 µs on a one-statement read (docs/adr/0295).
    """
    from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer

    # Not isinstance(AsyncEngine): importing sqlalchemy.ext.asyncio needs greenlet.
    sync_engine = cast("Engine", getattr(engine, "sync_engine", engine))
    with _engines_lock:
        if sync_engine in _traced_engines:
            return
        tracer = _sqlalchemy_instruments()
        EngineTracer(tracer, sync_engine, _NOT_COUNTED)  # type: ignore[no-untyped-call]
        _traced_engines.add(sync_engine)


class _NotCounted:
    """EngineTracer's connection counter, ignored (see `_pool_usage`)."""

    def add(self, amount: float, attributes: object = None, context: object = None) -> None:
        return None


_NOT_COUNTED = _NotCounted()


def _pool_usage(_options: CallbackOptions) -> Iterable[Observation]:
    """Idle and used connections of every traced engine's pool, now."""
    from opentelemetry.instrumentation.sqlalchemy.engine import _get_attributes_from_engine

    with _engines_lock:
        engines = list(_traced_engines)
    for engine in engines:
        pool = engine.pool
        used, idle = getattr(pool, "checkedout", None), getattr(pool, "checkedin", None)
        if used is None or idle is None:  # a pool that does not keep count (NullPool)
            continue
        attrs = dict(_get_attributes_from_engine(engine))  # type: ignore[no-untyped-call]
        yield Observation(used(), {**attrs, "state": "used"})
        yield Observation(idle(), {**attrs, "state": "idle"})


# Created once: asking the SDK for the same instrument again logs a duplicate
# registration warning per engine.
@functools.cache
def _sqlalchemy_instruments() -> Tracer:
    from opentelemetry.instrumentation.sqlalchemy.version import __version__
    from opentelemetry.semconv.metrics import MetricInstruments

    scope = "opentelemetry.instrumentation.sqlalchemy"
    metrics.get_meter(scope, __version__).create_observable_up_down_counter(
        name=MetricInstruments.DB_CLIENT_CONNECTIONS_USAGE,
        callbacks=[_pool_usage],
        unit="connections",
        description="The number of connections that are currently in state described by "
        "the state attribute.",
    )
    return trace.get_tracer(scope, __version__)
