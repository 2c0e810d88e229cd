"""Reliability rules from DESIGN.md, proven with real faults: a TCP link
between identity and its real NATS / PostgreSQL is cut and restored.

- a service starts and passes its health check while NATS is down, and
  catches up when it returns;
- a database outage holds events (no dead letters, nothing lost) until the
  database is back.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import grpc
import pytest
from cxloop.gateway.v1 import events_pb2 as gw
from cxloop.identity.v1 import identity_service_pb2 as pb
from cxloop.identity.v1 import identity_service_pb2_grpc as pb_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from sqlalchemy.engine import make_url

from cxloop_libs.messaging import EventPublisher, NatsBus, PendingEvent, stream_for
from cxloop_libs.messaging import catalog as ev
from cxloop_libs.pii import IdentifierHasher, IdType
from cxloop_testing.infra import eventually
from cxloop_testing.proxy import FaultyLink
from identity.bootstrap import bootstrap
from identity.config import IdentitySettings

pytestmark = pytest.mark.integration

HASHER = IdentifierHasher(b"cxloop-development-only-hash-key")


def interaction(mid: str, user: str) -> PendingEvent:
    msg = gw.InteractionRecorded(
        message_id=mid,
        kind=gw.INTERACTION_KIND_TRACK,
        identifiers=[HASHER.hashed(IdType.USER_ID, user)],
    )
    return PendingEvent.of(ev.INTERACTION_RECORDED, msg, event_id=mid)


@pytest.fixture
async def publisher(clean_nats: str) -> AsyncIterator[EventPublisher]:
    bus = NatsBus(clean_nats, name="chaos-frontend", streams=[stream_for("gateway")])
    await bus.connect(timeout=10)
    yield EventPublisher(bus, source="/chaos")
    await bus.close()


async def health(port: int) -> int:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
        r = await health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=2)
        return int(r.status)


async def test_starts_without_nats_and_catches_up(
    clean_nats: str, database_url: str, publisher: EventPublisher
) -> None:
    u = urlsplit(clean_nats)
    link = FaultyLink(u.hostname or "127.0.0.1", u.port or 4222)  # not started: NATS "down"
    runtime = await bootstrap(
        IdentitySettings(
            env="test",
            nats_url=f"nats://{link.address}",
            database_url=database_url,
            grpc_port=0,
            metrics_port=0,
        )
    )
    await runtime.start()
    try:
        assert runtime.grpc_server is not None
        port = runtime.grpc_server.port
        assert await health(port) == health_pb2.HealthCheckResponse.SERVING
        assert not runtime.bus.is_connected
        # Events arrive while identity cannot reach NATS…
        for i in range(5):
            await publisher.publish(interaction(f"down-{i}", "u-down"))
        await link.restore()
        consumer = runtime.consumers[0]
        # …and are all processed once it can.
        await eventually(lambda: consumer.processed == 5, timeout=30)
    finally:
        await runtime.stop()
        await link.cut()


async def test_database_outage_holds_events_without_dead_letters(
    clean_nats: str, postgres_url: str, publisher: EventPublisher
) -> None:
    url = make_url(postgres_url)
    link = FaultyLink(url.host or "127.0.0.1", url.port or 5432)
    await link.restore()
    proxied = url.set(host="127.0.0.1", port=link.port).render_as_string(hide_password=False)
    runtime = await bootstrap(
        IdentitySettings(
            env="test", nats_url=clean_nats, database_url=proxied, grpc_port=0, metrics_port=0
        )
    )
    await runtime.start()
    try:
        await runtime.db_ready.wait()
        consumer = runtime.consumers[0]
        await publisher.publish(interaction("before", "u-db"))
        await eventually(lambda: consumer.processed == 1)

        await link.cut()
        runtime.db.engine.dispose()  # pooled connections died with the link
        for i in range(10):
            await publisher.publish(interaction(f"during-{i}", "u-db"))
        assert await health(runtime.grpc_server.port) == health_pb2.HealthCheckResponse.SERVING  # type: ignore[union-attr]
        # Long enough for the consumer to fetch them and fail against the
        # database several times: they must be held, not applied or dropped.
        await asyncio.sleep(3)
        assert consumer.processed == 1
        assert consumer.dead_lettered == 0
        await link.restore()

        await eventually(lambda: consumer.processed == 11, timeout=60)
        assert consumer.dead_lettered == 0
        async with grpc.aio.insecure_channel(f"127.0.0.1:{runtime.grpc_server.port}") as ch:  # type: ignore[union-attr]
            stub = pb_grpc.IdentityServiceStub(ch)
            from cxloop.common.v1 import identifier_pb2 as idpb

            r = await stub.Resolve(
                pb.ResolveRequest(
                    identifiers=[idpb.Identifier(type=idpb.IDENTIFIER_TYPE_USER_ID, value="u-db")]
                ),
                timeout=10,
            )
            p = await stub.GetProfile(pb.GetProfileRequest(customer_id=r.customer_id), timeout=10)
        assert p.profile.interaction_count == 11
    finally:
        await runtime.stop()
        await link.cut()
