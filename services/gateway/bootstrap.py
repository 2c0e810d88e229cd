"""The one place that wires the gateway together.

The gateway has no database, no outbox relay and no consumers: it publishes
straight to JetStream and answers only once the PubAck is in. Its HTTP server
(uvicorn, in this process's event loop) is the runtime's extra task and is
stopped through ``on_stop``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from fastapi import FastAPI

from cxloop_libs.messaging import EventPublisher, NatsBus, stream_for
from cxloop_libs.pii import IdentifierHasher
from cxloop_libs.runtime import ServiceRuntime
from cxloop_libs.telemetry import instrument_fastapi, setup_telemetry
from gateway.adapters import privacy
from gateway.adapters.http import create_app
from gateway.adapters.readiness import SuiteReadiness
from gateway.config import MAX_EVENT_BYTES, GatewaySettings
from gateway.domain.translation import InteractionTranslator
from gateway.service_layer.ingest import EventSink, SegmentIngest

log = logging.getLogger(__name__)

SOURCE = "/cxloop/gateway"
GRACEFUL_SHUTDOWN_S = 4  # below the runtime's 5 s wait for extra tasks


def create_gateway_app(settings: GatewaySettings, bus: NatsBus, sink: EventSink) -> FastAPI:
    """The ASGI app with its handlers, traced; usable without starting uvicorn."""
    translator = InteractionTranslator(IdentifierHasher(settings.hash_key))
    ingest = SegmentIngest(
        translator,
        sink,
        max_batch_events=settings.max_batch_events,
        max_event_bytes=MAX_EVENT_BYTES,
        is_connected=lambda: bus.is_connected,
    )
    readiness = SuiteReadiness(
        lambda: bus.is_connected,
        {name: settings.grpc_target(name) for name in settings.readiness_targets},
    )
    app = create_app(
        ingest=ingest,
        write_keys=settings.accepted_write_keys(),
        readiness=readiness,
        max_batch_bytes=settings.max_batch_bytes,
        max_call_bytes=MAX_EVENT_BYTES,
    )
    instrument_fastapi(app)
    return app


class EmbeddedServer(uvicorn.Server):
    """uvicorn inside the service's event loop.

    Signals stay with ``run_service``: uvicorn's own handlers would replace
    them and stop the HTTP server without stopping the rest of the process.
    """

    @contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve_http(server: EmbeddedServer) -> None:
    try:
        await server.serve()
    except SystemExit as exc:
        # uvicorn exits the process when it cannot bind; let the runtime stop
        # cleanly and log why instead.
        raise RuntimeError(f"HTTP server failed to start (exit code {exc.code})") from None
    if not server.should_exit:
        raise RuntimeError("HTTP server stopped unexpectedly")


async def bootstrap(settings: GatewaySettings | None = None) -> ServiceRuntime:
    settings = settings or GatewaySettings.from_env()
    telemetry = setup_telemetry(
        "gateway", log_level=settings.log_level, metrics_port=settings.metrics_port
    )
    bus = NatsBus(settings.nats_url, name="gateway", streams=[stream_for("gateway")])
    publisher = EventPublisher(bus, source=SOURCE)
    app = create_gateway_app(settings, bus, publisher)
    if settings.dev_key_active:
        log.info("gateway accepting write key %r (development mode only)", settings.dev_write_key)

    server = EmbeddedServer(
        uvicorn.Config(
            app,
            host=settings.http_host,
            port=settings.http_port,
            lifespan="off",
            # Our JSON logging stays in charge; access logs would record client
            # IP addresses, which are personal data.
            log_config=None,
            access_log=False,
            server_header=False,
            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
        )
    )

    async def stop_http() -> None:
        server.should_exit = True

    runtime = ServiceRuntime(
        settings=settings,
        telemetry=telemetry,
        bus=bus,
        publisher=publisher,
        db=None,
        extra_tasks=[lambda: serve_http(server)],
        on_stop=[stop_http],
    )
    # Answers privacy requests (it holds no customer data: zero rows).
    privacy.join(runtime)
    log.info("gateway HTTP on %s:%d", settings.http_host, settings.http_port)
    return runtime
