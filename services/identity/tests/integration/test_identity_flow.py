"""Identity against real NATS JetStream and a real database (SQLite and
PostgreSQL): interactions in, profiles and events out."""

from __future__ import annotations

import asyncio

import grpc
import nats
import pytest
from cxloop.common.v1 import identifier_pb2 as idpb
from cxloop.gateway.v1 import events_pb2 as gw
from cxloop.identity.v1 import identity_service_pb2 as pb
from cxloop.identity.v1 import identity_service_pb2_grpc as pb_grpc

from cxloop_libs.messaging import EventPublisher, PendingEvent
from cxloop_libs.messaging import catalog as ev
from cxloop_libs.pii import IdentifierHasher, IdType
from cxloop_libs.runtime import ServiceRuntime
from cxloop_testing.infra import eventually

pytestmark = pytest.mark.integration

HASHER = IdentifierHasher(b"cxloop-development-only-hash-key")


def interaction(message_id: str, **ids: str) -> PendingEvent:
    types = {
        "user_id": IdType.USER_ID,
        "anonymous_id": IdType.ANONYMOUS_ID,
        "email": IdType.EMAIL,
        "phone": IdType.PHONE,
    }
    msg = gw.InteractionRecorded(
        message_id=message_id,
        kind=gw.INTERACTION_KIND_TRACK,
        name="Product Viewed",
        identifiers=[HASHER.hashed(types[k], v) for k, v in ids.items()],
        source="web",
    )
    return PendingEvent.of(ev.INTERACTION_RECORDED, msg, event_id=message_id)


async def resolve_one(stub: pb_grpc.IdentityServiceStub, t: int, v: str) -> pb.ResolveResponse:
    return await stub.Resolve(
        pb.ResolveRequest(identifiers=[idpb.Identifier(type=t, value=v)], source="test"), timeout=5
    )


async def test_identifiers_seen_together_form_one_profile(
    identity: ServiceRuntime, gateway_publisher: EventPublisher, stub: pb_grpc.IdentityServiceStub
) -> None:
    await gateway_publisher.publish(interaction("m1", anonymous_id="anon-1"))
    await gateway_publisher.publish(
        interaction("m2", anonymous_id="anon-1", user_id="u-1", email="Kim@Example.com")
    )
    consumer = identity.consumers[0]
    await eventually(lambda: consumer.processed == 2)
    # Resolve an identifier the service has seen: it must not create anyone new.
    r = await resolve_one(stub, idpb.IDENTIFIER_TYPE_EMAIL, " kim@example.COM ")
    assert not r.created
    profile = (
        await stub.GetProfile(pb.GetProfileRequest(customer_id=r.customer_id), timeout=5)
    ).profile
    hashes = {i.hash for i in profile.identifiers}
    assert hashes == {
        HASHER.hash(IdType.ANONYMOUS_ID, "anon-1"),
        HASHER.hash(IdType.USER_ID, "u-1"),
        HASHER.hash(IdType.EMAIL, "kim@example.com"),
    }
    assert profile.interaction_count == 2


async def test_shared_identifier_merges_customers_and_old_id_keeps_resolving(
    identity: ServiceRuntime, gateway_publisher: EventPublisher, stub: pb_grpc.IdentityServiceStub
) -> None:
    await gateway_publisher.publish(interaction("a", anonymous_id="dev-1"))
    await gateway_publisher.publish(interaction("b", user_id="u-9"))
    consumer = identity.consumers[0]
    await eventually(lambda: consumer.processed == 2)
    first = await resolve_one(stub, idpb.IDENTIFIER_TYPE_ANONYMOUS_ID, "dev-1")
    second = await resolve_one(stub, idpb.IDENTIFIER_TYPE_USER_ID, "u-9")
    assert first.customer_id != second.customer_id
    await gateway_publisher.publish(interaction("c", anonymous_id="dev-1", user_id="u-9"))
    await eventually(lambda: consumer.processed == 3)
    merged = await stub.GetProfile(pb.GetProfileRequest(customer_id=second.customer_id), timeout=5)
    # The older customer survives; the younger id answers with the survivor.
    assert merged.profile.customer_id == first.customer_id
    assert second.customer_id in merged.profile.merged_customer_ids
    assert merged.profile.interaction_count == 3
    assert len(merged.profile.identifiers) == 2


async def test_profile_events_are_published_through_the_outbox(
    identity: ServiceRuntime, gateway_publisher: EventPublisher, clean_nats: str
) -> None:
    await gateway_publisher.publish(interaction("e1", user_id="u-42", email="lee@example.com"))
    nc = await nats.connect(clean_nats)
    try:
        js = nc.jetstream()

        async def identity_events() -> dict[str, int]:
            info = await js.stream_info("IDENTITY")
            return {"count": info.state.messages} if info.state.messages >= 2 else {}

        await eventually(identity_events)
        sub = await js.pull_subscribe("cx.identity.>", stream="IDENTITY")
        msgs = await sub.fetch(10, timeout=5)
        types = sorted(m.headers["ce-type"] for m in msgs)
        assert types == [
            "cxloop.identity.interaction.resolved.v1",
            "cxloop.identity.profile.created.v1",
        ]
        resolved = next(m for m in msgs if m.subject == "cx.identity.interaction.resolved")
        body = ev.INTERACTION_RESOLVED.decode(resolved.data)
        assert body.customer_id == resolved.headers["ce-subject"]
        assert body.interaction.message_id == "e1"
        assert b"lee@example.com" not in resolved.data
    finally:
        await nc.close()


async def test_same_event_twice_is_applied_once(
    identity: ServiceRuntime, gateway_publisher: EventPublisher, stub: pb_grpc.IdentityServiceStub
) -> None:
    # Past the JetStream duplicate window (or from a replay) the stream can
    # hold the same event twice; the inbox makes the second one a no-op.
    first = interaction("dup-1", user_id="u-dup")
    await gateway_publisher.publish(first)
    consumer = identity.consumers[0]
    await eventually(lambda: consumer.processed == 1)
    await gateway_publisher.bus.js.publish(
        ev.INTERACTION_RECORDED.subject,
        first.data,
        headers={
            "ce-specversion": "1.0",
            "ce-id": "dup-1",
            "ce-type": ev.INTERACTION_RECORDED.ce_type,
            "ce-source": "/test",
            "Nats-Msg-Id": "dup-1-replayed",
        },
    )
    await eventually(lambda: consumer.duplicates == 1)
    r = await resolve_one(stub, idpb.IDENTIFIER_TYPE_USER_ID, "u-dup")
    p = await stub.GetProfile(pb.GetProfileRequest(customer_id=r.customer_id), timeout=5)
    assert p.profile.interaction_count == 1


async def test_poison_message_goes_to_dead_letter_and_later_ones_flow(
    identity: ServiceRuntime, gateway_publisher: EventPublisher, clean_nats: str
) -> None:
    js = gateway_publisher.bus.js
    await js.publish(
        ev.INTERACTION_RECORDED.subject,
        b"\xff\xff\xff\xff",  # not an InteractionRecorded
        headers={
            "ce-specversion": "1.0",
            "ce-id": "poison-1",
            "ce-type": ev.INTERACTION_RECORDED.ce_type,
            "ce-source": "/test",
            "Nats-Msg-Id": "poison-1",
        },
    )
    await gateway_publisher.publish(interaction("after-poison", user_id="u-after"))
    consumer = identity.consumers[0]
    await eventually(lambda: consumer.processed == 1)
    await eventually(lambda: consumer.dead_lettered == 1)
    info = await js.stream_info("DEADLETTER")
    assert info.state.messages == 1
    sub = await js.pull_subscribe("dlq.>", stream="DEADLETTER")
    (dead,) = await sub.fetch(1, timeout=5)
    assert dead.headers["ce-id"] == "poison-1"
    assert dead.headers["cx-dlq-consumer"] == "identity-interactions"
    assert int(dead.headers["cx-dlq-deliveries"]) == 2  # max_deliver in the fixture
    assert dead.data == b"\xff\xff\xff\xff"  # kept byte for byte, for replay


async def test_bad_resolve_requests_name_the_field(stub: pb_grpc.IdentityServiceStub) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await resolve_one(stub, idpb.IDENTIFIER_TYPE_EMAIL, "not-an-email")
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "identifiers[0].value" in (err.value.details() or "")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await resolve_one(stub, idpb.IDENTIFIER_TYPE_EMAIL, "test@test.com")
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.GetProfile(pb.GetProfileRequest(customer_id="nobody"), timeout=5)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


async def test_concurrent_resolves_of_a_new_identifier_agree(
    stub: pb_grpc.IdentityServiceStub,
) -> None:
    # Concurrent writers race to insert the same identifier; the loser's
    # transaction is re-run and links to the winner's customer.
    results = await asyncio.gather(
        *(resolve_one(stub, idpb.IDENTIFIER_TYPE_EMAIL, "race@example.com") for _ in range(8))
    )
    assert len({r.customer_id for r in results}) == 1
    assert sum(r.created for r in results) == 1
