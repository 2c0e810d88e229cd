"""Recommendations end to end with real NATS, the real consent service and a
real database (SQLite and PostgreSQL): catalogue through UpsertItems,
interactions from identity's resolved events, consent deciding locally,
availability on the next request, erasure, bad input naming the field."""

from __future__ import annotations

import asyncio

import grpc
import pytest
import sqlalchemy as sa
from cxloop.consent.v1 import events_pb2 as cev
from cxloop.personalization.v1 import personalization_service_pb2 as pb

from cxloop_libs.messaging import PendingEvent
from cxloop_libs.messaging import catalog as ev
from cxloop_testing.infra import eventually
from personalization.tests.conftest import World, item

pytestmark = pytest.mark.integration

CATALOG = [
    item("tv-1", "OLED TV 55", "electronics>tv", 1200),
    item("tv-2", "LED TV 43", "electronics>tv", 500),
    item("hdmi", "HDMI cable", "electronics>accessories", 15),
    item("soundbar", "Soundbar", "electronics>audio", 300),
    item("shoe-1", "러닝화 경량", "fashion>shoes", 90, tags=["러닝", "운동화"]),
    item("shoe-2", "러닝화 쿠션", "fashion>shoes", 110, tags=["러닝", "운동화"]),
    item("sock", "Sport socks", "fashion>socks", 5),
]


async def _history(w: World) -> None:
    # Others who bought a TV also bought the cable and the soundbar.
    for n in range(4):
        c = f"other-{n}"
        await w.decide(c)
        await w.track(
            c,
            "Order Completed",
            {
                "products": [
                    {"product_id": "tv-1", "price": 1200},
                    {"product_id": "hdmi"},
                    {"product_id": "soundbar"},
                ]
            },
        )
    for n in range(3):
        await w.track(f"other-{n}", "Product Viewed", {"product_id": "shoe-1"})
        await w.track(f"other-{n}", "Product Viewed", {"product_id": "shoe-2"})


def _learned(w: World, cid: str) -> int:
    h = w.perso.engine.signals.histories.get(cid)  # type: ignore[attr-defined]
    return 0 if h is None else len(h.weights)


async def test_personal_answers_follow_events_consent_and_availability(world: World) -> None:
    w = world
    r = await w.upsert(CATALOG)
    assert r.accepted == len(CATALOG) and not r.rejected
    await _history(w)
    await w.decide("alice")
    await w.track("alice", "Order Completed", {"products": [{"product_id": "tv-1", "price": 1200}]})
    await eventually(lambda: _learned(w, "alice") == 1 and _learned(w, "other-3") == 3)

    got = await w.recommend("alice")
    ids = [i.item_id for i in got.items]
    assert not got.fallback
    assert "tv-1" not in ids  # bought: excluded
    assert ids[0] in ("hdmi", "soundbar")
    top = got.items[0]
    assert top.reason in (
        pb.RECOMMENDATION_REASON_SIMILAR_TO_HISTORY,
        pb.RECOMMENDATION_REASON_CONTENT_MATCH,
    )
    assert top.related_item_id == "tv-1" and "tv-1" in top.explanation
    assert top.strategy

    # Availability: the next request leaves the item out.
    await w.upsert([item(ids[0], available=False, category="electronics>accessories")])
    again = await w.recommend("alice")
    assert ids[0] not in [i.item_id for i in again.items]

    # A customer without consent: events not learned, non-personal answer.
    await w.track("bob", "Order Completed", {"products": [{"product_id": "tv-1"}]})
    await w.track("alice", "Product Viewed", {"product_id": "sock"})  # a marker after bob's
    await eventually(lambda: _learned(w, "alice") == 2)
    assert _learned(w, "bob") == 0
    bob = await w.recommend("bob")
    assert bob.fallback
    assert all(
        i.reason
        in (
            pb.RECOMMENDATION_REASON_POPULAR,
            pb.RECOMMENDATION_REASON_POPULAR_IN_CONTEXT,
            pb.RECOMMENDATION_REASON_TRENDING,
        )
        for i in bob.items
    )
    assert w.perso.db is not None
    with w.perso.db.session() as s:
        rows = s.execute(
            sa.text("select count(*) from pers_interaction where customer_id = 'bob'")
        ).scalar_one()
    assert rows == 0

    # Withdrawal: non-personal at once, and out of the models.
    await w.decide("alice", granted=False)
    after = await w.recommend("alice")
    assert after.fallback
    assert _learned(w, "alice") == 0


async def test_context_changes_the_answer(world: World) -> None:
    w = world
    await w.upsert(CATALOG)
    await _history(w)
    await eventually(lambda: _learned(w, "other-0") == 5)
    plain = await w.recommend("anon-1", n=3)
    viewing = await w.recommend("anon-1", n=3, context={"current_item": "shoe-1"})
    assert viewing.items[0].item_id == "shoe-2"
    assert viewing.items[0].reason == pb.RECOMMENDATION_REASON_VIEWING_NOW
    assert viewing.items[0].related_item_id == "shoe-1"
    cart = await w.recommend("anon-1", n=3, context={"cart": "tv-1"})
    assert cart.items[0].item_id in ("hdmi", "soundbar")
    assert cart.items[0].reason == pb.RECOMMENDATION_REASON_BOUGHT_TOGETHER
    assert [i.item_id for i in plain.items] != [i.item_id for i in viewing.items]
    cheap = await w.recommend("anon-1", n=5, context={"price_max": "100"})
    assert cheap.items and all(i.item_id in ("hdmi", "shoe-1", "sock") for i in cheap.items)
    # Similar items: co-occurrence, and content for an item nobody touched.
    await w.upsert([item("shoe-3", "러닝화 신상", "fashion>shoes", 100, tags=["러닝", "운동화"])])

    async def similar() -> pb.SimilarItemsResponse:
        return await w.stub.SimilarItems(
            pb.SimilarItemsRequest(item_id="shoe-3", limit=2), timeout=5
        )

    # The content index is rebuilt off the request path, within a moment.
    for _ in range(100):
        sim = await similar()
        if sim.items:
            break
        await asyncio.sleep(0.05)
    assert {i.item_id for i in sim.items} == {"shoe-1", "shoe-2"}
    assert all(i.strategy == "content" for i in sim.items)
    unknown = await w.stub.SimilarItems(pb.SimilarItemsRequest(item_id="nope", limit=2), timeout=5)
    assert list(unknown.items) == []
    cold = await w.recommend("never-seen", n=2, strategy="ease")
    assert cold.fallback and len(cold.items) == 2


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 101}, "limit"),
        ({"limit": 5, "strategy": "magic"}, "strategy"),
        ({"limit": 5, "context": {"weather": "rain"}}, "context.weather"),
        ({"limit": 5, "context": {"hour": "25"}}, "context.hour"),
    ],
)
async def test_bad_requests_name_the_field(
    world: World, kwargs: dict[str, object], field: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await world.stub.Recommend(pb.RecommendRequest(customer_id="x", **kwargs), timeout=5)  # type: ignore[arg-type]
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in (err.value.details() or "")


async def test_upsert_keeps_good_items_and_names_bad_fields(world: World) -> None:
    from personalization.tests.conftest import item as mk

    r = await world.upsert([mk("ok-1"), mk(""), mk("neg", price=-1), mk("ok-2")])
    assert r.accepted == 2
    assert [(x.index, x.field) for x in r.rejected] == [(1, "item.item_id"), (2, "item.price")]


async def test_erasure_removes_interactions_and_memory(world: World) -> None:
    w = world
    await w.upsert(CATALOG)
    await w.decide("carol")
    await w.track("carol", "Product Viewed", {"product_id": "tv-2"})
    await eventually(lambda: _learned(w, "carol") == 1)
    from cxloop.consent.v1 import events_pb2

    await w.consent_pub.publish(
        PendingEvent.of(
            ev.ERASURE_REQUESTED,
            events_pb2.ErasureRequested(request_id="r1", customer_id="carol"),
            subject="carol",
        )
    )
    await eventually(lambda: _learned(w, "carol") == 0)
    assert w.perso.db is not None

    def rows() -> int:
        with w.perso.db.session() as s:  # type: ignore[union-attr]
            return int(
                s.execute(
                    sa.text("select count(*) from pers_interaction where customer_id = 'carol'")
                ).scalar_one()
            )

    await eventually(lambda: rows() == 0)
    _ = cev
