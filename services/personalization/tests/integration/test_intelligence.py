"""Customer intelligence end to end (issue #15): real NATS, consent and
personalization; the database is SQLite and PostgreSQL (fixture)."""

from __future__ import annotations

import time
import uuid
from typing import Any

import grpc
import nats
import pytest
from cxloop.consent.v1 import consent_service_pb2 as cpb
from cxloop.consent.v1 import events_pb2 as cev
from cxloop.personalization.v1 import events_pb2 as pev
from cxloop.personalization.v1 import intelligence_pb2 as ipb
from cxloop.personalization.v1 import intelligence_pb2_grpc as ipb_grpc
from cxloop.personalization.v1 import personalization_service_pb2 as ppb
from cxloop.personalization.v1 import personalization_service_pb2_grpc as pgrpc
from google.protobuf.message import Message

from cxloop_libs.messaging import catalog as ev
from cxloop_libs.messaging.catalog import EventKind
from cxloop_testing.infra import eventually
from personalization.tests.conftest import World

pytestmark = pytest.mark.asyncio


def stub(w: World) -> ipb_grpc.IntelligenceServiceStub:
    assert w.perso.grpc_server is not None
    return ipb_grpc.IntelligenceServiceStub(
        grpc.aio.insecure_channel(f"127.0.0.1:{w.perso.grpc_server.port}")
    )


async def consent(w: World, cid: str, purpose: str, granted: bool = True) -> None:
    await w.consent.RecordConsent(
        cpb.RecordConsentRequest(
            customer_id=cid,
            purpose=purpose,
            decision=cev.CONSENT_DECISION_GRANTED if granted else cev.CONSENT_DECISION_WITHDRAWN,
            notice_version="1",
            channel=cev.CONSENT_CHANNEL_WEB_FORM,
        ),
        timeout=5,
    )
    await eventually(lambda: w.perso.consent.may_use(cid, purpose) is granted)  # type: ignore[attr-defined]


async def published(url: str, kind: EventKind) -> list[Any]:
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        sub = await js.pull_subscribe(kind.subject, stream="PERSONALIZATION")
        out: list[Message] = []
        while True:
            try:
                msgs = await sub.fetch(500, timeout=0.3)
            except TimeoutError:
                break
            for m in msgs:
                out.append(kind.decode(m.data))
                await m.ack()
        return out
    finally:
        await nc.close()


async def status_of(call: Any) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call
    return err.value.code(), err.value.details() or ""


async def test_bad_definitions_name_the_field(world: World) -> None:
    s = stub(world)
    code, detail = await status_of(
        s.DefineSegment(
            ipb.DefineSegmentRequest(
                segment=ipb.SegmentDefinition(segment_id="x", rule="orders_30d >")
            )
        )
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert "segment.rule" in detail and "character 13" in detail
    for rule, words in (
        ('favourite_colour = "red"', "unknown trait"),
        ("count(teleported within 3d) > 0", "unknown event"),
        ("orders_30d > 5 and orders_30d < 2", "never be true"),
    ):
        code, detail = await status_of(
            s.DefineSegment(
                ipb.DefineSegmentRequest(segment=ipb.SegmentDefinition(segment_id="x", rule=rule))
            )
        )
        assert code == grpc.StatusCode.INVALID_ARGUMENT and words in detail, detail
    code, detail = await status_of(
        s.DefineTrigger(
            ipb.DefineTriggerRequest(
                trigger=ipb.TriggerDefinition(trigger_id="t", on="action:t", action="send_message")
            )
        )
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "trigger.on" in detail and "loop" in detail
    code, detail = await status_of(
        s.DefineTrigger(
            ipb.DefineTriggerRequest(
                trigger=ipb.TriggerDefinition(
                    trigger_id="t",
                    on="event:product_added",
                    action="send_message",
                    max_per_customer=0,
                )
            )
        )
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "trigger.max_per_customer" in detail
    code, _ = await status_of(
        s.ListSegmentMembers(ipb.ListSegmentMembersRequest(segment_id="x", page_token="%%"))
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT


async def test_traits_segments_cart_abandonment_and_withdrawal(
    world: World, clean_nats: str
) -> None:
    s = stub(world)
    buyer, abandoner, refuser = (f"c-{uuid.uuid4().hex[:8]}" for _ in range(3))
    for cid in (buyer, abandoner):
        await consent(world, cid, "profiling")
        await consent(world, cid, "marketing_email")
    await s.DefineSegment(
        ipb.DefineSegmentRequest(
            segment=ipb.SegmentDefinition(
                segment_id="carted-not-bought",
                rule="count(product_added within 7d) >= 1 and count(order_completed within 7d) = 0",
            )
        )
    )
    await s.DefineSegment(
        ipb.DefineSegmentRequest(
            segment=ipb.SegmentDefinition(
                segment_id="shoe-buyers",
                rule='count(order_completed where category = "shoes" within 30d) >= 1',
            )
        )
    )
    await s.DefineTrigger(
        ipb.DefineTriggerRequest(
            trigger=ipb.TriggerDefinition(
                trigger_id="cart-abandoned",
                on="event:product_added",
                unless="order_completed",
                # Long enough for the buyer's order to be consumed first on a busy machine.
                delay_seconds=5,
                action="send_message",
                channels=["push:marketing_push", "email:marketing_email"],
                max_per_customer=1,
                cap_window_seconds=3600,
            )
        )
    )
    now = time.time()
    for cid in (buyer, abandoner, refuser):
        await world.track(
            cid, "Product Added", {"product_id": "sku-1", "category": "shoes", "price": 50}, at=now
        )
    await world.track(
        buyer,
        "Order Completed",
        {
            "order_id": "o1",
            "revenue": 50,
            "products": [{"product_id": "sku-1", "category": "shoes", "price": 50}],
        },
        at=now + 0.1,
    )

    async def traits(cid: str) -> ipb.GetTraitsResponse:
        return await s.GetTraits(ipb.GetTraitsRequest(customer_id=cid), timeout=5)

    async def has_orders() -> bool:
        try:
            return (await traits(buyer)).traits["orders_7d"] == 1
        except grpc.aio.AioRpcError:
            return False

    await eventually(has_orders, timeout=10)
    t = await traits(buyer)
    assert t.traits["lifetime_revenue"] == 50 and t.traits["top_category_30d"] == "shoes"
    assert t.lifecycle_stage == "new" and "first seen" in t.lifecycle_rule
    segs = await s.GetSegments(ipb.GetSegmentsRequest(customer_id=buyer))
    assert [m.segment_id for m in segs.segments] == ["shoe-buyers"]

    # The abandoner gets exactly one action after the delay, on the consented channel.
    async def actions() -> list[pev.ActionTriggered]:
        return await published(clean_nats, ev.ACTION_TRIGGERED)

    async def one_action() -> bool:
        return len(await actions()) >= 1

    await eventually(one_action, timeout=30)
    acts = await actions()
    assert [a.customer_id for a in acts] == [abandoner]
    a = acts[0]
    assert a.journey_id == "cart-abandoned" and a.purpose == "marketing_email"
    assert a.parameters["channel"] == "email" and list(a.parameters["item_ids"]) == ["sku-1"]
    # A second cart add is a new cause, but the per-trigger cap holds it back.
    await world.track(abandoner, "Product Added", {"product_id": "sku-2"}, at=time.time())
    intel = world.perso.intelligence  # type: ignore[attr-defined]
    await eventually(lambda: intel.stats.capped >= 1, timeout=15)
    assert len(await actions()) == 1
    # The refuser (no profiling consent) has nothing computed.
    code, _ = await status_of(s.GetTraits(ipb.GetTraitsRequest(customer_id=refuser)))
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    entered = await published(clean_nats, ev.SEGMENT_ENTERED)
    assert {(e.customer_id, e.segment_id) for e in entered} == {
        (buyer, "carted-not-bought"),
        (buyer, "shoe-buyers"),
        (abandoner, "carted-not-bought"),
    }
    exited = await published(clean_nats, ev.SEGMENT_EXITED)
    assert [(e.customer_id, e.segment_id) for e in exited] == [(buyer, "carted-not-bought")]
    page = await s.ListSegmentMembers(
        ipb.ListSegmentMembersRequest(segment_id="carted-not-bought", page_size=1)
    )
    assert [m.customer_id for m in page.members] == [abandoner] and page.total == 1
    exported = [
        r.member.customer_id
        async for r in s.ExportSegmentMembers(
            ipb.ExportSegmentMembersRequest(segment_id="shoe-buyers")
        )
    ]
    assert exported == [buyer]
    preview = await s.PreviewSegment(ipb.PreviewSegmentRequest(rule="cart_adds_7d >= 1"))
    assert preview.size == 2 and sorted(preview.sample_customer_ids) == sorted([buyer, abandoner])
    # The saved segments with their sizes (the console's list).
    listed = await s.ListSegmentDefinitions(ipb.ListSegmentDefinitionsRequest())
    assert {(d.segment_id, d.size) for d in listed.segments} >= {
        ("carted-not-bought", 1),
        ("shoe-buyers", 1),
    }
    # Withdrawing profiling removes traits and memberships, and publishes the exit.
    await consent(world, abandoner, "profiling", granted=False)

    async def gone() -> bool:
        return not (await s.GetSegments(ipb.GetSegmentsRequest(customer_id=abandoner))).segments

    await eventually(gone, timeout=5)
    exited = await published(clean_nats, ev.SEGMENT_EXITED)
    assert (abandoner, "carted-not-bought", pev.SEGMENT_EXIT_REASON_CONSENT_WITHDRAWN) in {
        (e.customer_id, e.segment_id, e.reason) for e in exited
    }


def _rows(w: World, table: str, cid: str) -> int:
    import sqlalchemy as sa

    assert w.perso.db is not None
    with w.perso.db.session() as s:
        return int(
            s.execute(
                sa.text(f"select count(*) from {table} where customer_id = :c"), {"c": cid}
            ).scalar_one()
        )


async def test_predictions_gated_by_profiling_and_erased(world: World) -> None:
    from cxloop.consent.v1 import events_pb2 as cevents

    from cxloop_libs.messaging import PendingEvent

    s = stub(world)
    rng = __import__("random").Random(5)
    now = time.time()
    ids = [f"p-{uuid.uuid4().hex[:8]}" for _ in range(24)]
    for cid in ids:
        await consent(world, cid, "profiling")
    for n, cid in enumerate(ids):
        first = now - rng.uniform(150, 300) * 86_400
        for k in range(1 + n % 5):
            await world.track(
                cid,
                "Order Completed",
                {
                    "order_id": f"{cid}-{k}",
                    "revenue": 20 + n,
                    "products": [{"product_id": "sku", "category": "c"}],
                },
                at=first + k * rng.uniform(5, 30) * 86_400,
            )

    async def all_in() -> bool:
        try:
            t = await s.GetTraits(ipb.GetTraitsRequest(customer_id=ids[-1]), timeout=5)
        except grpc.aio.AioRpcError:
            return False
        return t.traits["lifetime_orders"] == 1 + (len(ids) - 1) % 5

    await eventually(all_in, timeout=20)
    code, _ = await status_of(s.GetPredictions(ipb.GetPredictionsRequest(customer_id=ids[0])))
    assert code == grpc.StatusCode.NOT_FOUND  # not refreshed yet
    refreshed = await s.RefreshPredictions(ipb.RefreshPredictionsRequest(), timeout=120)
    assert refreshed.customers == len(ids)
    clv = [m for m in refreshed.models if m.model == "clv"]
    assert clv and clv[0].metrics["customers"] == len(ids)
    p = (await s.GetPredictions(ipb.GetPredictionsRequest(customer_id=ids[4]))).predictions
    assert p.clv_model_version == clv[0].version
    assert p.predicted_clv >= 0 and 0 <= p.probability_alive <= 1
    assert p.churn_probability == -1 or 0 <= p.churn_probability <= 1
    t = await s.GetTraits(ipb.GetTraitsRequest(customer_id=ids[4]))
    assert t.traits["predicted_clv"] == pytest.approx(p.predicted_clv)
    assert 1 <= t.traits["rfm_frequency"] <= 5
    # The customer 360's one call answers what the four RPCs answer.
    perso = pgrpc.PersonalizationServiceStub(
        grpc.aio.insecure_channel(f"127.0.0.1:{world.perso.grpc_server.port}")  # type: ignore[union-attr]
    )
    view = await perso.GetCustomerView(
        ppb.GetCustomerViewRequest(customer_id=ids[4], placement="console", limit=10), timeout=5
    )
    assert not view.unanswered
    assert view.predictions == await s.GetPredictions(ipb.GetPredictionsRequest(customer_id=ids[4]))
    got, want = dict(view.traits.traits), dict(t.traits)
    assert got.keys() == want.keys() and view.traits.lifecycle_stage == t.lifecycle_stage
    for name, value in want.items():  # "days since ..." moved on a little meanwhile
        assert got[name] == (pytest.approx(value, rel=1e-3) if isinstance(value, float) else value)
    assert view.segments == await s.GetSegments(ipb.GetSegmentsRequest(customer_id=ids[4]))
    assert view.recommendations.recommendation_id and view.recommendations.strategy
    # Withdrawal removes the predictions; the RPC answers it is not allowed.
    await consent(world, ids[0], "profiling", granted=False)
    await eventually(lambda: _rows(world, "pers_prediction", ids[0]) == 0, timeout=5)
    code, detail = await status_of(s.GetPredictions(ipb.GetPredictionsRequest(customer_id=ids[0])))
    assert code == grpc.StatusCode.FAILED_PRECONDITION and "profiling" in detail
    # ... and GetCustomerView names both parts with that status, the rest answered.
    view = await perso.GetCustomerView(
        ppb.GetCustomerViewRequest(customer_id=ids[0], placement="console", limit=10), timeout=5
    )
    assert {(u.part, u.code) for u in view.unanswered} == {
        ("traits", grpc.StatusCode.FAILED_PRECONDITION.value[0]),
        ("predictions", grpc.StatusCode.FAILED_PRECONDITION.value[0]),
    }
    assert not view.HasField("traits") and not view.HasField("predictions")
    assert view.HasField("recommendations") and view.HasField("segments")
    code, _ = await status_of(perso.GetCustomerView(ppb.GetCustomerViewRequest(limit=10)))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    # Erasure removes traits, memberships and predictions.
    await world.consent_pub.publish(
        PendingEvent.of(
            ev.ERASURE_REQUESTED,
            cevents.ErasureRequested(request_id="r-intel", customer_id=ids[1]),
            subject=ids[1],
        )
    )
    for table in ("pers_prediction", "pers_intel_state", "pers_segment_member"):
        await eventually(lambda table=table: _rows(world, table, ids[1]) == 0, timeout=10)
    assert _rows(world, "pers_prediction", ids[2]) == 1


async def test_many_customers_enter_and_exit_in_bulk_and_a_repeated_event_counts_once(
    world: World, clean_nats: str
) -> None:
    # The consumer writes memberships and states for a whole batch at once
    # (COPY + INSERT ... ON CONFLICT on PostgreSQL) and removes exits in one
    # statement: many customers entering, half of them leaving, and an
    # interaction delivered twice under another event id must leave exactly
    # one membership, one entry and one exit per change, and apply once.
    from cxloop.gateway.v1 import events_pb2 as gev
    from cxloop.identity.v1 import events_pb2 as iev
    from google.protobuf.struct_pb2 import Struct

    from cxloop_libs.messaging import PendingEvent
    from personalization.service_layer.messages import ts

    s = stub(world)
    cids = [f"b-{i:02d}-{uuid.uuid4().hex[:6]}" for i in range(16)]
    for cid in cids:
        await consent(world, cid, "profiling")
    await s.DefineSegment(
        ipb.DefineSegmentRequest(
            segment=ipb.SegmentDefinition(
                segment_id="carted",
                rule="count(product_added within 7d) >= 1 and count(order_completed within 7d) = 0",
            )
        )
    )
    now = time.time()
    first = {
        cid: await world.track(cid, "Product Added", {"product_id": "sku-1"}, at=now)
        for cid in cids
    }

    async def size() -> int:
        r = await s.ListSegmentMembers(
            ipb.ListSegmentMembersRequest(segment_id="carted", page_size=100)
        )
        return int(r.total)

    await eventually(lambda: _is(size(), len(cids)), timeout=30)
    buyers = cids[::2]
    for cid in buyers:
        await world.track(cid, "Order Completed", {"revenue": 10}, at=now + 1)
    # The first cart add of the first customer again: same interaction id,
    # a different event id (a re-resolved interaction, not a JetStream dup).
    again = Struct()
    again.update({"product_id": "sku-1"})
    it = gev.InteractionRecorded(
        message_id=first[cids[1]],
        kind=gev.INTERACTION_KIND_TRACK,
        name="Product Added",
        properties=again,
        # Another time on purpose: applied twice, it would count as a second add.
        occurred_at=ts(now + 0.5),
        channel="web",
    )
    await world.identity.publish(
        PendingEvent.of(
            ev.INTERACTION_RESOLVED,
            iev.InteractionResolved(customer_id=cids[1], interaction=it),
            subject=cids[1],
            event_id=str(uuid.uuid4()),
        )
    )
    await eventually(lambda: _is(size(), len(cids) - len(buyers)), timeout=30)
    intel = world.perso.intelligence  # type: ignore[attr-defined]
    # Every event parsed, the repeated one included (it comes last).
    await eventually(lambda: intel.stats.events >= len(cids) + len(buyers) + 1, timeout=30)
    t = await s.GetTraits(ipb.GetTraitsRequest(customer_id=cids[1]), timeout=5)
    assert t.traits["cart_adds_7d"] == 1  # the repeated interaction applied once

    # The outbox relay publishes after each commit: poll until the stream
    # holds them (a duplicate would keep the lists from ever matching).
    async def customers_of(kind: EventKind) -> list[str]:
        return sorted(e.customer_id for e in await published(clean_nats, kind))

    await eventually(lambda: _same(customers_of(ev.SEGMENT_ENTERED), sorted(cids)), timeout=30)
    await eventually(lambda: _same(customers_of(ev.SEGMENT_EXITED), sorted(buyers)), timeout=30)
    members = await s.ListSegmentMembers(
        ipb.ListSegmentMembersRequest(segment_id="carted", page_size=100)
    )
    assert sorted(m.customer_id for m in members.members) == sorted(set(cids) - set(buyers))


async def _is(value: Any, expected: int) -> bool:
    return bool(await value == expected)


async def _same(value: Any, expected: list[str]) -> bool:
    return bool(await value == expected)
