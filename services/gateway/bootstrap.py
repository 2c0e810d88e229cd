"""The one place that wires the gateway together.

The gateway has no database, no outbox relay and no consumers: it publishes
straight to JetStream and answers only once the PubAck is in. Its HTTP server
(uvicorn, in this process's event loop) is the runtime's extra task and is
stopped through ``on_stop``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import uvicorn
from fastapi import APIRouter, FastAPI

from cxloop_libs.apikeys import KeyRegistry, KeyStore
from cxloop_libs.consent import ConsentProjection
from cxloop_libs.grpcx.client import client_channel
from cxloop_libs.messaging import EventPublisher, NatsBus, stream_for
from cxloop_libs.pii import IdentifierHasher
from cxloop_libs.privacy.retention import join_retention
from cxloop_libs.runtime import ServiceRuntime
from cxloop_libs.telemetry import instrument_fastapi, setup_telemetry
from gateway.adapters import privacy
from gateway.adapters.console_audit import StreamAudit
from gateway.adapters.console_sources import GrpcConsoleSources
from gateway.adapters.customer_parts import grpc_customer360
from gateway.adapters.feedback_client import FeedbackClient
from gateway.adapters.http import create_app
from gateway.adapters.identity_profiles import GrpcProfileSource, ProfileEventFollower
from gateway.adapters.loyalty_client import LoyaltyClient
from gateway.adapters.personalization_client import PersonalizationClient
from gateway.adapters.readiness import SuiteReadiness
from gateway.config import MAX_EVENT_BYTES, GatewaySettings
from gateway.domain.enforcement import ObjectorIdentifiers
from gateway.domain.sessions import SessionBook
from gateway.domain.translation import InteractionTranslator
from gateway.entrypoints.console_api import add_console_routes
from gateway.entrypoints.console_auth import ConsoleGate
from gateway.entrypoints.console_pages import add_console_pages
from gateway.entrypoints.console_views import add_console_views
from gateway.entrypoints.feedback_api import add_feedback_routes
from gateway.entrypoints.loyalty_api import install_loyalty_errors, loyalty_router
from gateway.entrypoints.personalization_api import add_personalization_routes
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
    loyalty: LoyaltyClient | None = None,
    routers: Sequence[APIRouter] = (),
) -> FastAPI:
    """The ASGI app with its handlers, traced; usable without starting uvicorn.
    ``routers``: other domains' HTTP routes (see ``bootstrap``)."""
    translator = InteractionTranslator(
        IdentifierHasher(settings.hash_key), pii_scan_allow=settings.pii_scan_allow_keys
    )
    ingest = SegmentIngest(
        translator,
        sink,
        max_batch_events=settings.max_batch_events,
        max_event_bytes=MAX_EVENT_BYTES,
        is_connected=lambda: bus.is_connected,
        enforcement=enforcement,
        publish_timeout_s=settings.publish_timeout_s,
    )
    local = {}
    if enforcement is not None:
        # Until consent's state (read from NATS) is loaded, every objector's
        # calls would be published: keep traffic away. Objectors' identifiers
        # come from identity and keep loading while it is down (ADR 0036).
        local["consent_state"] = lambda: enforcement.projection.is_ready

    async def jetstream_answers() -> bool:
        await bus.js.stream_info(stream_for("gateway").name)
        return True

    readiness = SuiteReadiness(
        lambda: bus.is_connected,
        {name: settings.grpc_target(name) for name in settings.readiness_targets},
        local=local,
        jetstream=jetstream_answers,
    )
    app = create_app(
        ingest=ingest,
        write_keys=settings.accepted_write_keys(),
        readiness=readiness,
        max_batch_bytes=settings.max_batch_bytes,
        max_call_bytes=MAX_EVENT_BYTES,
        privacy_desk=privacy_desk,
        privacy_tokens=settings.accepted_privacy_tokens(),
        routers=routers,
    )
    if loyalty is not None:
        app.include_router(loyalty_router(loyalty, settings.accepted_loyalty_tokens()))
        install_loyalty_errors(app)
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
    loyalty_channel = client_channel(settings.grpc_target("loyalty"), token=token)
    loyalty = LoyaltyClient(loyalty_channel, deadline_s=settings.grpc_deadline_s)
    # Other domains' routes: one APIRouter per module
    # (gateway/entrypoints/<domain>_api.py), one line each here.
    routers: list[APIRouter] = []
    app = create_gateway_app(
        settings,
        bus,
        publisher,
        enforcement=enforcement,
        privacy_desk=desk,
        loyalty=loyalty,
        routers=routers,
    )
    # Recommendations for frontends (services/gateway/entrypoints/personalization_api.py).
    personalization_channel = client_channel(settings.grpc_target("personalization"), token=token)
    recs = PersonalizationClient(personalization_channel, identity_channel)
    add_personalization_routes(app, recs, settings.accepted_write_keys())
    extra_tasks.append(recs.run)
    on_stop.append(recs.stop)
    feedback = client_channel(settings.grpc_target("feedback"), token=token)
    analytics_channel = client_channel(settings.grpc_target("analytics"), token=token)
    add_feedback_routes(
        app,
        FeedbackClient(feedback, deadline_s=settings.grpc_deadline_s),
        frozenset(o.strip() for o in settings.feedback_origins.split(",") if o.strip()),
    )
    # The console API (services/gateway/entrypoints/console_api.py): API keys
    # with roles from the gateway's key-value bucket, the customer 360.
    keys = KeyRegistry(KeyStore(lambda: bus.js, replicas=bus.connection.stream_replicas))
    audit = StreamAudit(publisher)
    # Console sessions for the browser (docs/adr/0110): a cookie per person
    # who pasted a key on /console's login page.
    gate = ConsoleGate(
        keys,
        sessions=SessionBook(
            idle_s=settings.console_session_idle_s, max_age_s=settings.console_session_max_s
        ),
        secure_cookie=settings.console_cookie_secure,
    )
    # Every service the console and the 360 read, by name.
    channels = {
        "identity": identity_channel,
        "consent": consent_channel,
        "loyalty": loyalty_channel,
        "personalization": personalization_channel,
        "feedback": feedback,
        "analytics": analytics_channel,
    }
    add_console_routes(
        app,
        keys,
        grpc_customer360(
            channels,
            deadline_s=settings.customer360_deadline_s,
        ),
        audit.publish,
        audit.entry,
        gate=gate,
    )
    add_console_views(
        app,
        gate,
        GrpcConsoleSources(
            channels,
            deadline_s=max(settings.customer360_deadline_s, 2.0),
        ),
        desk,
        audit.publish,
        audit.entry,
    )
    add_console_pages(app)
    extra_tasks.append(keys.run)
    on_stop.append(keys.stop)
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
        for channel in channels.values():
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
