"""Graph operations against real NATS JetStream and a real database (SQLite
and PostgreSQL): merge protection through the consumer, lookup, explain,
manual merge and split, stats, history."""

from __future__ import annotations

import grpc
import nats
import pytest
import sqlalchemy as sa
from cxloop.common.v1 import identifier_pb2 as idpb
from cxloop.identity.v1 import identity_service_pb2 as pb
from cxloop.identity.v1 import identity_service_pb2_grpc as pb_grpc

from cxloop_libs.db import Database
from cxloop_libs.messaging import EventPublisher
from cxloop_libs.messaging import catalog as ev
from cxloop_libs.pii import IdType
from cxloop_libs.runtime import ServiceRuntime
from cxloop_testing.infra import eventually
from identity.bootstrap import bootstrap
from identity.config import IdentitySettings
from identity.tests.integration.test_identity_flow import HASHER, interaction, resolve_one

pytestmark = pytest.mark.integration


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
    # Explain says why they are apart: the email was refused into lee's customer.
    why = await stub.Explain(
        pb.ExplainRequest(
            identifier_a=ident(idpb.IDENTIFIER_TYPE_USER_ID, "kim"),
            identifier_b=ident(idpb.IDENTIFIER_TYPE_USER_ID, "lee"),
        ),
        timeout=5,
    )
    assert not why.same_customer
    (refused,) = [s for s in why.path if s.kind == pb.ExplainStep.KIND_BLOCKED]
    assert (refused.customer_id, refused.from_customer_id) == (lee.customer_id, kim.customer_id)
    assert (refused.event_id, refused.rule) == ("b2", "blocked:limit:user_id")
    assert refused.identifier.hash == HASHER.hash(IdType.EMAIL, "kim@example.com")


def ident(t: int, v: str) -> idpb.Identifier:
    return idpb.Identifier(type=t, value=v)


async def test_lookup_finds_without_creating_and_unknown_is_not_found(
    identity: ServiceRuntime, stub: pb_grpc.IdentityServiceStub
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.LookupByIdentifier(
            pb.LookupByIdentifierRequest(
                identifier=ident(idpb.IDENTIFIER_TYPE_EMAIL, "nobody@example.com")
            ),
            timeout=5,
        )
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    # Looking up did not create anyone: Resolve still creates.
    created = await resolve_one(stub, idpb.IDENTIFIER_TYPE_EMAIL, "nobody@example.com")
    assert created.created
    found = await stub.LookupByIdentifier(
        pb.LookupByIdentifierRequest(
            identifier=ident(idpb.IDENTIFIER_TYPE_EMAIL, " Nobody@Example.com")
        ),
        timeout=5,
    )
    assert found.customer_id == created.customer_id == found.profile.customer_id
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.LookupByIdentifier(
            pb.LookupByIdentifierRequest(identifier=ident(idpb.IDENTIFIER_TYPE_EMAIL, "nope")),
            timeout=5,
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "identifier.value" in (err.value.details() or "")


async def test_explain_returns_the_path_of_links_and_merges(
    identity: ServiceRuntime, gateway_publisher: EventPublisher, stub: pb_grpc.IdentityServiceStub
) -> None:
    await gateway_publisher.publish(interaction("x1", anonymous_id="dev-x"))
    await gateway_publisher.publish(interaction("x2", email="park@example.com"))
    consumer = identity.consumers[0]
    await eventually(lambda: consumer.processed == 2)
    await gateway_publisher.publish(
        interaction("x3", anonymous_id="dev-x", email="park@example.com", user_id="park")
    )
    await eventually(lambda: consumer.processed == 3)
    device = ident(idpb.IDENTIFIER_TYPE_ANONYMOUS_ID, "dev-x")
    out = await stub.Explain(
        pb.ExplainRequest(
            identifier_a=device, identifier_b=ident(idpb.IDENTIFIER_TYPE_USER_ID, "park")
        ),
        timeout=5,
    )
    assert out.same_customer and out.customer_id_a == out.customer_id_b
    # Both were linked to the device's customer: by x1 and by x3.
    assert [(s.kind, s.event_id, s.source, s.rule) for s in out.path] == [
        (pb.ExplainStep.KIND_LINK, "x1", "web", "seen-together"),
        (pb.ExplainStep.KIND_LINK, "x3", "web", "seen-together"),
    ]
    assert out.path[0].identifier.hash == HASHER.hash(IdType.ANONYMOUS_ID, "dev-x")
    out = await stub.Explain(
        pb.ExplainRequest(
            identifier_a=device, identifier_b=ident(idpb.IDENTIFIER_TYPE_EMAIL, "park@example.com")
        ),
        timeout=5,
    )
    assert out.same_customer
    kinds = [(s.kind, s.event_id) for s in out.path]
    # The email came with its own customer (x2), merged into the device's by x3.
    assert kinds == [
        (pb.ExplainStep.KIND_LINK, "x1"),
        (pb.ExplainStep.KIND_MERGE, "x3"),
        (pb.ExplainStep.KIND_LINK, "x2"),
    ]
    assert out.path[1].customer_id == out.customer_id_a
    assert out.path[1].from_customer_id == out.path[2].customer_id
    assert out.path[1].at.seconds > 0
    await resolve_one(stub, idpb.IDENTIFIER_TYPE_EMAIL, "other@example.com")
    apart = await stub.Explain(
        pb.ExplainRequest(
            identifier_a=device, identifier_b=ident(idpb.IDENTIFIER_TYPE_EMAIL, "other@example.com")
        ),
        timeout=5,
    )
    assert not apart.same_customer and len(apart.path) == 2
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.Explain(
            pb.ExplainRequest(
                identifier_a=device,
                identifier_b=ident(idpb.IDENTIFIER_TYPE_EMAIL, "ghost@example.com"),
            ),
            timeout=5,
        )
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


async def fetch_identity_events(js: object, n: int) -> list[object]:
    # Profile events only: audit entries share the stream (cx.identity.audit.recorded).
    profile_events = "cx.identity.profile.>"

    async def enough() -> bool:
        info = await js.stream_info("IDENTITY", subjects_filter=profile_events)  # type: ignore[attr-defined]
        return sum((info.state.subjects or {}).values()) >= n

    await eventually(enough)
    sub = await js.pull_subscribe(profile_events, stream="IDENTITY")  # type: ignore[attr-defined]
    msgs = await sub.fetch(n + 10, timeout=2)
    return list(msgs)


async def test_manual_merge_then_split_restores_two_profiles_and_publishes(
    identity: ServiceRuntime,
    stub: pb_grpc.IdentityServiceStub,
    clean_nats: str,
    database_url: str,
) -> None:
    kim = await stub.Resolve(
        pb.ResolveRequest(
            identifiers=[
                ident(idpb.IDENTIFIER_TYPE_USER_ID, "kim"),
                ident(idpb.IDENTIFIER_TYPE_EMAIL, "kim@example.com"),
            ],
            source="crm",
        ),
        timeout=5,
    )
    lee = await stub.Resolve(
        pb.ResolveRequest(
            identifiers=[ident(idpb.IDENTIFIER_TYPE_PHONE, "010-2345-6789")], source="pos"
        ),
        timeout=5,
    )
    merged = await stub.Merge(
        pb.MergeRequest(
            customer_ids=[lee.customer_id, kim.customer_id],
            reason="same person, confirmed by phone",
            actor="agent-7",
        ),
        timeout=5,
    )
    assert merged.surviving_customer_id == kim.customer_id  # the oldest
    assert list(merged.merged_customer_ids) == [lee.customer_id]
    phone = HASHER.hashed(IdType.PHONE, "010-2345-6789")
    profile = await stub.GetProfile(pb.GetProfileRequest(customer_id=lee.customer_id), timeout=5)
    assert profile.profile.customer_id == kim.customer_id
    assert phone.hash in {i.hash for i in profile.profile.identifiers}

    split = await stub.Split(
        pb.SplitRequest(
            customer_id=lee.customer_id,  # an alias names the merged customer
            hashed_identifiers=[phone],
            reason="merged by mistake",
            actor="agent-8",
        ),
        timeout=5,
    )
    assert split.customer_id == kim.customer_id
    assert split.new_customer_id not in {kim.customer_id, lee.customer_id}
    back = await stub.LookupByIdentifier(
        pb.LookupByIdentifierRequest(identifier=ident(idpb.IDENTIFIER_TYPE_PHONE, "01023456789")),
        timeout=5,
    )
    assert back.customer_id == split.new_customer_id
    assert [i.hash for i in back.profile.identifiers] == [phone.hash]
    kept = await stub.GetProfile(pb.GetProfileRequest(customer_id=kim.customer_id), timeout=5)
    assert {i.hash for i in kept.profile.identifiers} == {
        HASHER.hash(IdType.USER_ID, "kim"),
        HASHER.hash(IdType.EMAIL, "kim@example.com"),
    }
    explained = await stub.Explain(
        pb.ExplainRequest(
            identifier_a=ident(idpb.IDENTIFIER_TYPE_PHONE, "010-2345-6789"),
            identifier_b=ident(idpb.IDENTIFIER_TYPE_USER_ID, "kim"),
        ),
        timeout=5,
    )
    assert not explained.same_customer
    assert explained.path[0].rule == "split"

    history = rows(database_url, "SELECT action, actor, reason FROM identity_history ORDER BY id")
    assert [(a, actor) for a, actor, _ in history] == [
        ("create", "system"),
        ("create", "system"),
        ("merge", "agent-7"),
        ("split", "agent-8"),
    ]
    assert history[3][2] == "merged by mistake"

    nc = await nats.connect(clean_nats)
    try:
        msgs = await fetch_identity_events(nc.jetstream(), 6)
    finally:
        await nc.close()
    by_type: dict[str, list[object]] = {}
    for m in msgs:
        by_type.setdefault(m.headers["ce-type"].split(".")[3], []).append(m)  # type: ignore[attr-defined]
    assert sorted(by_type) == ["created", "merged", "split", "updated"]
    (split_msg,) = by_type["split"]
    body = ev.PROFILE_SPLIT.decode(split_msg.data)  # type: ignore[attr-defined]
    assert list(body.resulting_customer_ids) == [kim.customer_id, split.new_customer_id]
    assert [i.hash for i in body.moved_identifiers] == [phone.hash]
    created = [ev.PROFILE_CREATED.decode(m.data) for m in by_type["created"]]  # type: ignore[attr-defined]
    assert split.new_customer_id in {c.customer_id for c in created}
    (updated,) = [ev.PROFILE_UPDATED.decode(m.data) for m in by_type["updated"]]  # type: ignore[attr-defined]
    assert updated.customer_id == kim.customer_id
    assert [i.hash for i in updated.removed_identifiers] == [phone.hash]

    stats = await stub.GetStats(pb.GetStatsRequest(), timeout=5)
    assert stats.customers == 2 and stats.merges == 1 and stats.splits == 1
    assert dict(stats.identifiers_by_type) == {"user_id": 1, "email": 1, "phone": 1}


async def test_split_and_merge_refuse_bad_requests(
    identity: ServiceRuntime, stub: pb_grpc.IdentityServiceStub
) -> None:
    one = await resolve_one(stub, idpb.IDENTIFIER_TYPE_EMAIL, "solo@example.com")
    only = HASHER.hashed(IdType.EMAIL, "solo@example.com")
    cases = [
        (
            pb.SplitRequest(customer_id=one.customer_id, hashed_identifiers=[only], actor="a"),
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
        (
            pb.SplitRequest(
                customer_id=one.customer_id,
                identifiers=[ident(idpb.IDENTIFIER_TYPE_EMAIL, "else@example.com")],
                actor="a",
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
        (
            pb.SplitRequest(customer_id="nobody", hashed_identifiers=[only], actor="a"),
            grpc.StatusCode.NOT_FOUND,
        ),
    ]
    for request, code in cases:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.Split(request, timeout=5)
        assert err.value.code() == code
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.Merge(
            pb.MergeRequest(customer_ids=[one.customer_id, "nobody"], actor="a"), timeout=5
        )
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.Merge(pb.MergeRequest(customer_ids=[one.customer_id], actor="a"), timeout=5)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_stats_count_blocked_links_and_events_without_identifiers(
    identity: ServiceRuntime, gateway_publisher: EventPublisher, stub: pb_grpc.IdentityServiceStub
) -> None:
    await gateway_publisher.publish(interaction("n1"))  # no identifiers at all
    await gateway_publisher.publish(interaction("n2", anonymous_id="kiosk", user_id="a"))
    await gateway_publisher.publish(interaction("n3", anonymous_id="kiosk", user_id="b"))
    await gateway_publisher.publish(interaction("n4", user_id="b", email="shared@example.com"))
    await gateway_publisher.publish(interaction("n5", user_id="a", email="shared@example.com"))
    consumer = identity.consumers[0]
    await eventually(lambda: consumer.processed == 5)
    stats = await stub.GetStats(pb.GetStatsRequest(), timeout=5)
    assert stats.customers == 2
    assert stats.shared_devices == 1
    assert stats.blocked_links == 1
    assert stats.events_without_identifiers == 1
    assert stats.merges == 0
    assert dict(stats.identifiers_by_type) == {"anonymous_id": 1, "user_id": 2, "email": 1}


async def test_split_is_not_undone_by_the_events_that_joined_them(
    identity: ServiceRuntime,
    gateway_publisher: EventPublisher,
    stub: pb_grpc.IdentityServiceStub,
    database_url: str,
) -> None:
    await gateway_publisher.publish(interaction("j1", email="a@example.com", phone="010-1111-2222"))
    consumer = identity.consumers[0]
    await eventually(lambda: consumer.processed == 1)
    joined = await resolve_one(stub, idpb.IDENTIFIER_TYPE_EMAIL, "a@example.com")
    split = await stub.Split(
        pb.SplitRequest(
            customer_id=joined.customer_id,
            identifiers=[ident(idpb.IDENTIFIER_TYPE_PHONE, "010-1111-2222")],
            reason="the phone is the shop's",
            actor="agent-1",
        ),
        timeout=5,
    )
    # The same pair arrives again: the split holds, and the refusal is recorded.
    await gateway_publisher.publish(interaction("j2", email="a@example.com", phone="010-1111-2222"))
    await eventually(lambda: consumer.processed == 2)
    phone = await resolve_one(stub, idpb.IDENTIFIER_TYPE_PHONE, "01011112222")
    assert phone.customer_id == split.new_customer_id != joined.customer_id
    assert rows(
        database_url, "SELECT event_id, rule FROM identity_link WHERE rule LIKE 'blocked:%'"
    ) == [("j2", "blocked:cannot-link")]
    # An operator may still merge them by hand; that lifts the constraint.
    await stub.Merge(
        pb.MergeRequest(customer_ids=[split.new_customer_id, joined.customer_id], actor="agent-2"),
        timeout=5,
    )
    assert rows(database_url, "SELECT count(*) FROM identity_cannot_link") == [(0,)]


async def test_configured_junk_values_link_nobody(
    clean_nats: str,
    database_url: str,
    gateway_publisher: EventPublisher,
) -> None:
    settings = IdentitySettings(
        env="test",
        nats_url=clean_nats,
        database_url=database_url,
        grpc_port=0,
        metrics_port=0,
        blocked_identifiers="phone:02-555-0100",
    )
    runtime = await bootstrap(settings)
    await runtime.start()
    try:
        await runtime.db_ready.wait()
        assert runtime.grpc_server is not None
        # Walk-ins at the till all get the shop's number typed in.
        await gateway_publisher.publish(interaction("w1", phone="02-555-0100"))
        await gateway_publisher.publish(interaction("w2", phone="02-555-0100", user_id="w-a"))
        await gateway_publisher.publish(interaction("w3", phone="02-555-0100", user_id="w-b"))
        consumer = runtime.consumers[0]
        await eventually(lambda: consumer.processed == 3)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{runtime.grpc_server.port}") as ch:
            stub = pb_grpc.IdentityServiceStub(ch)
            a = await resolve_one(stub, idpb.IDENTIFIER_TYPE_USER_ID, "w-a")
            b = await resolve_one(stub, idpb.IDENTIFIER_TYPE_USER_ID, "w-b")
            assert a.customer_id != b.customer_id
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await resolve_one(stub, idpb.IDENTIFIER_TYPE_PHONE, "025550100")
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            stats = await stub.GetStats(pb.GetStatsRequest(), timeout=5)
            assert stats.events_without_identifiers == 1
            assert dict(stats.identifiers_by_type) == {"user_id": 2}
    finally:
        await runtime.stop()
