"""Graph operations against real NATS JetStream and a real database (SQLite
and PostgreSQL): merge protection through the consumer, lookup, explain,
manual merge and split, stats, history."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest
import sqlalchemy as sa
from cxloop.common.v1 import identifier_pb2 as idpb
from cxloop.identity.v1 import identity_service_pb2 as pb
from cxloop.identity.v1 import identity_service_pb2_grpc as pb_grpc

from cxloop_libs.db import Database
from cxloop_libs.messaging import EventPublisher, NatsBus, stream_for
from cxloop_libs.pii import IdType
from cxloop_libs.runtime import ServiceRuntime
from cxloop_testing.infra import eventually
from identity.bootstrap import bootstrap
from identity.config import IdentitySettings
from identity.tests.integration.test_identity_flow import HASHER, interaction, resolve_one

pytestmark = pytest.mark.integration


@pytest.fixture
async def identity(clean_nats: str, database_url: str) -> AsyncIterator[ServiceRuntime]:
    settings = IdentitySettings(
        env="test",
        nats_url=clean_nats,
        database_url=database_url,
        grpc_port=0,
        metrics_port=0,
        consumer_max_deliver=2,
    )
    runtime = await bootstrap(settings)
    await runtime.start()
    await runtime.db_ready.wait()
    yield runtime
    await runtime.stop()


@pytest.fixture
async def gateway_publisher(clean_nats: str) -> AsyncIterator[EventPublisher]:
    bus = NatsBus(clean_nats, name="test-gateway", streams=[stream_for("gateway")])
    await bus.connect(timeout=10)
    yield EventPublisher(bus, source="/cxloop/gateway")
    await bus.close()


@pytest.fixture
async def stub(identity: ServiceRuntime) -> AsyncIterator[pb_grpc.IdentityServiceStub]:
    assert identity.grpc_server is not None
    async with grpc.aio.insecure_channel(f"127.0.0.1:{identity.grpc_server.port}") as ch:
        yield pb_grpc.IdentityServiceStub(ch)


def rows(database_url: str, sql: str) -> list[tuple[object, ...]]:
    db = Database(database_url)
    try:
        with db.session() as s:
            return [tuple(r) for r in s.execute(sa.text(sql))]
    finally:
        db.dispose()


async def test_two_user_ids_sharing_a_device_do_not_merge(
    identity: ServiceRuntime,
    gateway_publisher: EventPublisher,
    stub: pb_grpc.IdentityServiceStub,
    database_url: str,
) -> None:
    await gateway_publisher.publish(interaction("s1", anonymous_id="family-ipad", user_id="mum"))
    await gateway_publisher.publish(interaction("s2", anonymous_id="family-ipad", user_id="dad"))
    await gateway_publisher.publish(interaction("s3", anonymous_id="family-ipad", user_id="dad"))
    consumer = identity.consumers[0]
    await eventually(lambda: consumer.processed == 3)
    mum = await resolve_one(stub, idpb.IDENTIFIER_TYPE_USER_ID, "mum")
    dad = await resolve_one(stub, idpb.IDENTIFIER_TYPE_USER_ID, "dad")
    assert not mum.created and not dad.created
    assert mum.customer_id != dad.customer_id
    # The device stays with its first customer and is flagged shared once.
    device = await resolve_one(stub, idpb.IDENTIFIER_TYPE_ANONYMOUS_ID, "family-ipad")
    assert device.customer_id == mum.customer_id
    dad_profile = await stub.GetProfile(
        pb.GetProfileRequest(customer_id=dad.customer_id), timeout=5
    )
    assert dad_profile.profile.interaction_count == 2
    assert {i.hash for i in dad_profile.profile.identifiers} == {HASHER.hash(IdType.USER_ID, "dad")}
    device_hash = HASHER.hash(IdType.ANONYMOUS_ID, "family-ipad")
    shared = rows(database_url, "SELECT hash FROM identifier WHERE shared_at IS NOT NULL")
    assert shared == [(device_hash,)]
    actions = rows(database_url, "SELECT action FROM identity_history ORDER BY id")
    assert [a for (a,) in actions] == ["create", "shared", "create"]


async def test_conflicting_user_ids_are_blocked_and_recorded(
    identity: ServiceRuntime,
    gateway_publisher: EventPublisher,
    stub: pb_grpc.IdentityServiceStub,
    database_url: str,
) -> None:
    await gateway_publisher.publish(interaction("b1", user_id="kim", email="kim@example.com"))
    await gateway_publisher.publish(interaction("b2", user_id="lee", email="kim@example.com"))
    consumer = identity.consumers[0]
    await eventually(lambda: consumer.processed == 2)
    kim = await resolve_one(stub, idpb.IDENTIFIER_TYPE_USER_ID, "kim")
    lee = await resolve_one(stub, idpb.IDENTIFIER_TYPE_USER_ID, "lee")
    mail = await resolve_one(stub, idpb.IDENTIFIER_TYPE_EMAIL, "kim@example.com")
    assert kim.customer_id != lee.customer_id
    assert mail.customer_id == kim.customer_id
    blocked = rows(
        database_url,
        "SELECT hash, customer_id, event_id, rule FROM identity_link WHERE rule LIKE 'blocked:%'",
    )
    assert blocked == [
        (
            HASHER.hash(IdType.EMAIL, "kim@example.com"),
            lee.customer_id,
            "b2",
            "blocked:limit:user_id",
        )
    ]
    assert identity.consumers[0].handler.__self__.stats.blocked_links == 1  # type: ignore[attr-defined]
