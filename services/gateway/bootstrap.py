"""The one place that wires the gateway together.

The gateway has no database, no outbox relay and no consumers: it publishes
straight to JetStream and answers only once the PubAck is in. Its HTTP server
(uvicorn, in this process's event loop) is the runtime's extra task and is
stopped through ``on_stop``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn
from fastapi import FastAPI

from cxloop_libs.consent import ConsentProjection
from cxloop_libs.grpcx.client import client_channel
from cxloop_libs.messaging import EventPublisher, NatsBus, stream_for
from cxloop_libs.pii import IdentifierHasher
from cxloop_libs.privacy.retention import join_retention
from cxloop_libs.runtime import ServiceRuntime
from cxloop_libs.telemetry import instrument_fastapi, setup_telemetry
from gateway.adapters import privacy
from gateway.adapters.feedback_client import FeedbackClient
from gateway.adapters.http import create_app
from gateway.adapters.identity_profiles import GrpcProfileSource, ProfileEventFollower
from gateway.adapters.readiness import SuiteReadiness
from gateway.config import MAX_EVENT_BYTES, GatewaySettings
from gateway.domain.enforcement import ObjectorIdentifiers
from gateway.domain.translation import InteractionTranslator
from gateway.entrypoints.feedback_api import add_feedback_routes
from gateway.service_layer.enforcement import AnalyticsEnforcement
from gateway.service_layer.ingest import EventSink, SegmentIngest
from gateway.service_layer.privacy_desk import PrivacyDesk

log = logging.getLogger(__name__)

SOURCE = "/cxloop/gateway"
GRACEFUL_SHUTDOWN_S = 4  # below the runtime's 5 s wait for extra tasks


def create_gateway_app(
    settings: GatewaySettings,
    bus: NatsBus,
    sink: EventSink,
    *,
    enforcement: AnalyticsEnforcement | None = None,
    privacy_desk: PrivacyDesk | None = None,
) -> FastAPI:
    """The ASGI app with its handlers, traced; usable without starting uvicorn."""
    translator = InteractionTranslator(IdentifierHasher(settings.hash_key))
    ingest = SegmentIngest(
        translator,
        sink,
        max_batch_events=settings.max_batch_events,
        max_event_bytes=MAX_EVENT_BYTES,
        is_connected=lambda: bus.is_connected,
        enforcement=enforcement,
    )
    local = {}
    if enforcement is not None and "consent" in settings.readiness_targets:
        # Until consent's state and the objectors' identifiers are loaded,
        # an objector's calls would be published: keep traffic away.
        local["consent_view"] = lambda: enforcement.settled
    readiness = SuiteReadiness(
        lambda: bus.is_connected,
        {name: settings.grpc_target(name) for name in settings.readiness_targets},
        local=local,
    )
    app = create_app(
        ingest=ingest,
        write_keys=settings.accepted_write_keys(),
        readiness=readiness,
        max_batch_bytes=settings.max_batch_bytes,
        max_call_bytes=MAX_EVENT_BYTES,
        privacy_desk=privacy_desk,
        privacy_tokens=settings.accepted_privacy_tokens(),
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
    # One channel per service, reused by every call (deadlines per call).
    token = settings.grpc_client_token
    identity_channel = client_channel(settings.grpc_target("identity"), token=token)
    consent_channel = client_channel(settings.grpc_target("consent"), token=token)
    extra_tasks: list[Callable[[], Awaitable[Any]]] = []
    on_stop: list[Callable[[], Awaitable[Any]]] = []
    enforcement: AnalyticsEnforcement | None = None
    if settings.enforce_analytics:
        projection = ConsentProjection(bus)
        enforcement = AnalyticsEnforcement(
            projection,
            GrpcProfileSource(identity_channel, deadline_s=settings.grpc_deadline_s),
            identifiers=ObjectorIdentifiers(settings.enforce_max_identifiers),
        )
        follower = ProfileEventFollower(bus, enforcement)
        extra_tasks += [projection.run, follower.run, enforcement.run]
        on_stop += [projection.stop, follower.stop, enforcement.stop]
    desk = PrivacyDesk(
        consent_channel,
        identity_channel,
        deadline_s=settings.grpc_deadline_s,
    )
    app = create_gateway_app(settings, bus, publisher, enforcement=enforcement, privacy_desk=desk)
    feedback = client_channel(settings.grpc_target("feedback"), token=token)
    add_feedback_routes(
        app,
        FeedbackClient(feedback, deadline_s=settings.grpc_deadline_s),
        frozenset(o.strip() for o in settings.feedback_origins.split(",") if o.strip()),
    )
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

    async def close_channels() -> None:
        for channel in (identity_channel, consent_channel, feedback):
            await channel.close()

    runtime = ServiceRuntime(
        settings=settings,
        telemetry=telemetry,
        bus=bus,
        publisher=publisher,
        db=None,
        extra_tasks=[lambda: serve_http(server), *extra_tasks],
        on_stop=[stop_http, *on_stop, close_channels],
    )
    # Answers privacy requests: no stored data; erasure also drops the
    # customer's identifiers held for consent enforcement.
    privacy.join(runtime, enforcement)
    # Retention (docs/adr/0019-retention-policy.md): no tables to purge; the
    # GATEWAY stream keeps interactions for the policy's interactions period.
    join_retention(runtime)
    runtime.enforcement = enforcement  # type: ignore[attr-defined]
    log.info("gateway HTTP on %s:%d", settings.http_host, settings.http_port)
    return runtime
