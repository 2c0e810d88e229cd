"""Identity follows the retention policy (real NATS, SQLite and PostgreSQL):
profiles inactive past the identity_graph period are deleted by the erasure
path in bounded batches, active ones stay; old inbox rows go; the IDENTITY
stream's max age follows the interactions period."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import grpc
import pytest
import sqlalchemy as sa
from cxloop.common.v1 import identifier_pb2 as idpb
from cxloop.consent.v1 import events_pb2 as epb
from cxloop.gateway.v1 import events_pb2 as gw
from cxloop.identity.v1 import identity_service_pb2 as pb
from cxloop.identity.v1 import identity_service_pb2_grpc as pb_grpc

from cxloop_libs.messaging import EventPublisher, PendingEvent
from cxloop_libs.messaging import catalog as ev
from cxloop_libs.messaging.streams import DAY_S, ensure_stream
from cxloop_libs.pii import IdentifierHasher, IdType
from cxloop_libs.privacy.retention import (
    DEFAULT_CATEGORY_DAYS,
    PolicyBucketSpec,
    RetentionPolicy,
    RetentionSchedule,
    policy_subject,
)
from cxloop_libs.runtime import ServiceRuntime
from cxloop_testing.infra import eventually
from identity.bootstrap import bootstrap
from identity.config import IdentitySettings

pytestmark = pytest.mark.integration

HASHER = IdentifierHasher(b"cxloop-development-only-hash-key")
INACTIVE = 25


@pytest.fixture
async def identity(clean_nats: str, database_url: str) -> AsyncIterator[ServiceRuntime]:
    settings = IdentitySettings(
        env="test",
        nats_url=clean_nats,
        database_url=database_url,
        grpc_port=0,
        metrics_port=0,
        retention_batch_size=50,  # about 5 profiles per delete transaction
    )
    runtime = await bootstrap(settings)
    await runtime.start()
    await runtime.db_ready.wait()
    yield runtime
    await runtime.stop()


def interaction(message_id: str, user_id: str) -> PendingEvent:
    msg = gw.InteractionRecorded(
        message_id=message_id,
        kind=gw.INTERACTION_KIND_TRACK,
        name="Product Viewed",
        identifiers=[HASHER.hashed(IdType.USER_ID, user_id)],
        source="web",
    )
    return PendingEvent.of(ev.INTERACTION_RECORDED, msg, event_id=message_id)


async def put_policy(runtime: ServiceRuntime, version: int, **days: int) -> None:
    await runtime.bus.ready()
    await ensure_stream(runtime.bus.js, PolicyBucketSpec())
    policy = RetentionPolicy(version, {**DEFAULT_CATEGORY_DAYS, **days})
    body = epb.RetentionPolicyChanged(policy=policy.to_proto()).SerializeToString()
    await runtime.bus.js.publish(policy_subject(), body)


async def test_inactive_profiles_go_by_the_erasure_path_and_active_ones_stay(
    identity: ServiceRuntime, gateway_publisher: EventPublisher
) -> None:
    for i in range(INACTIVE):
        await gateway_publisher.publish(interaction(f"m{i}", f"u-{i}"))
    await gateway_publisher.publish(interaction("m-active", "u-active"))
    consumer = identity.consumers[0]
    await eventually(lambda: consumer.processed == INACTIVE + 1)
    assert identity.grpc_server is not None
    async with grpc.aio.insecure_channel(f"127.0.0.1:{identity.grpc_server.port}") as ch:
        stub = pb_grpc.IdentityServiceStub(ch)

        async def customer_of(user_id: str) -> str:
            r = await stub.Resolve(
                pb.ResolveRequest(
                    identifiers=[idpb.Identifier(type=idpb.IDENTIFIER_TYPE_USER_ID, value=user_id)],
                    source="test",
                ),
                timeout=5,
            )
            return r.customer_id

        active = await customer_of("u-active")
        gone = await customer_of("u-0")

        # Everyone but the active customer was last seen two years ago; half
        # of the processed-event ids are 40 days old.
        now = datetime.now(UTC)
        assert identity.db is not None
        with identity.db.session() as s:
            s.execute(
                sa.text(
                    "UPDATE customer SET updated_at = :t, last_seen_at = :t WHERE customer_id != :a"
                ),
                {"t": now - timedelta(days=730), "a": active},
            )
            s.execute(
                sa.text(
                    "UPDATE inbox_event SET processed_at = :t WHERE event_id IN :ids"
                ).bindparams(sa.bindparam("ids", expanding=True)),
                {"t": now - timedelta(days=40), "ids": [f"m{i}" for i in range(13)]},
            )

        retention: RetentionSchedule = identity.retention  # type: ignore[attr-defined]
        await put_policy(identity, 1, identity_graph=365, interactions=30)
        report = await retention.wait_rounds(1, timeout=30)
        assert report.policy_version == 1
        assert report.batches["identity_graph"] == INACTIVE // 5
        assert report.rows["identity_graph"] >= INACTIVE * 3  # customer, identifier, link, ...
        assert report.rows["interactions"] == 13

        with identity.db.session() as s:
            customers = set(s.execute(sa.text("SELECT customer_id FROM customer")).scalars())
            inbox = s.execute(sa.text("SELECT count(*) FROM inbox_event")).scalar_one()
        assert customers == {active}
        assert inbox == INACTIVE + 1 - 13
        with pytest.raises(grpc.aio.AioRpcError) as exc:
            await stub.GetProfile(pb.GetProfileRequest(customer_id=gone), timeout=5)
        assert exc.value.code() == grpc.StatusCode.NOT_FOUND
        profile = (
            await stub.GetProfile(pb.GetProfileRequest(customer_id=active), timeout=5)
        ).profile
        assert profile.identifiers

    # The stream age follows the interactions period, now and after a change.
    async def stream_days() -> float:
        info = await identity.bus.js.stream_info("IDENTITY")
        assert info.config.max_age is not None
        return info.config.max_age / DAY_S

    assert await stream_days() == pytest.approx(30)
    await put_policy(identity, 2, identity_graph=365, interactions=10)
    await retention.wait_rounds(2, timeout=30)
    assert await stream_days() == pytest.approx(10)
