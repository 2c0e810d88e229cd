"""A partner POS over gRPC (PostPurchase / PostReturn with an
Idempotency-Key) beside the Segment events of the same shop: one order earns
once whichever path brings it, a retried return reverses once (also when the
retry goes to the other replica), a return event that arrives before its
purchase is applied when the purchase comes, and bad input names the field."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from cxloop.loyalty.v1 import loyalty_service_pb2 as pb
from cxloop.loyalty.v1 import loyalty_service_pb2_grpc as pb_grpc
from google.protobuf.timestamp_pb2 import Timestamp

from cxloop_testing.infra import eventually
from loyalty.service_layer.schedule import check_books

from ..conftest import Upstream, start_loyalty

pytestmark = pytest.mark.integration

# Base points only: 1 point per 100 won, no tier multipliers.
RULES = {
    "return_window_days": 14,
    "return_policy": "within_balance",
    "tiers": [{"id": "member", "min_score": 0}],
    "rules": [{"id": "base", "kind": "base", "rates": {"KRW": {"per_amount": 100, "points": 1}}}],
}


async def _points(stub: pb_grpc.LoyaltyServiceStub, cid: str) -> tuple[int, int]:
    a = await stub.GetAccount(pb.GetAccountRequest(customer_id=cid), timeout=5)
    return a.available_points, a.pending_points


async def test_partner_purchases_and_returns_beside_segment_events_post_once(
    loyalty_nats: str, database_url: str, upstream: Upstream
) -> None:
    a = await start_loyalty(loyalty_nats, database_url, rules=json.dumps(RULES))
    b = await start_loyalty(loyalty_nats, database_url, rules=json.dumps(RULES))
    try:
        assert a.grpc_server is not None and b.grpc_server is not None
        async with (
            grpc.aio.insecure_channel(f"127.0.0.1:{a.grpc_server.port}") as ca,
            grpc.aio.insecure_channel(f"127.0.0.1:{b.grpc_server.port}") as cb,
        ):
            sa_, sb = pb_grpc.LoyaltyServiceStub(ca), pb_grpc.LoyaltyServiceStub(cb)
            when = Timestamp()
            when.FromDatetime(datetime.now(UTC) - timedelta(days=30))  # past the window
            buy = pb.PostPurchaseRequest(
                customer_id="p1",
                order_id="pos-1",
                currency_code="KRW",
                idempotency_key="pos-1",
                lines=[pb.PurchaseLine(quantity=2, unit_price_minor_units=50_000, sku="tee")],
                purchased_at=when,
            )
            first = await sa_.PostPurchase(buy, timeout=10)
            assert (first.points, first.pending, first.replayed) == (1000, False, False)
            retry = await sb.PostPurchase(buy, timeout=10)  # the other replica
            assert (retry.points, retry.replayed, retry.entry_id) == (
                1000,
                True,
                first.entry_id,
            )
            # The shop's web tracking reports the same order as a Segment event:
            # one order, one earning, whichever path came first.
            await upstream.purchase("p1", "pos-1", 100_000)

            ret = pb.PostReturnRequest(
                customer_id="p1",
                order_id="pos-1",
                currency_code="KRW",
                refunded_minor_units=25_000,
                idempotency_key="ret-1",
            )
            r1 = await sb.PostReturn(ret, timeout=10)
            assert (r1.points_reversed, r1.replayed) == (250, False)
            r1b = await sa_.PostReturn(ret, timeout=10)  # retried on the other replica
            assert (r1b.points_reversed, r1b.replayed) == (250, True)
            assert await _points(sa_, "p1") == (750, 0)

            # The rest, as a full return under a new key: exactly what is left.
            rest = pb.PostReturnRequest(
                customer_id="p1", order_id="pos-1", full_return=True, idempotency_key="ret-2"
            )
            assert (await sa_.PostReturn(rest, timeout=10)).points_reversed == 750
            # A Segment refund of the fully returned order takes nothing more.
            await upstream.refund("p1", "pos-1")

            # A return event before its purchase: kept, applied when the purchase comes.
            await upstream.refund("p2", "web-9", 10_000)
            await upstream.purchase("p2", "web-9", 40_000)
            await eventually(lambda: _equals(_points(sa_, "p2"), (0, 300)), timeout=30)

            # Bad input names the field; an unknown order is NOT_FOUND.
            for req, code, field in (
                (
                    pb.PostReturnRequest(
                        customer_id="p1",
                        order_id="pos-1",
                        refunded_minor_units=100,
                        full_return=True,
                        idempotency_key="x1",
                    ),
                    grpc.StatusCode.INVALID_ARGUMENT,
                    "refunded_minor_units",
                ),
                (
                    pb.PostReturnRequest(
                        customer_id="p1",
                        order_id="pos-1",
                        currency_code="USD",
                        refunded_minor_units=100,
                        idempotency_key="x2",
                    ),
                    grpc.StatusCode.INVALID_ARGUMENT,
                    "currency_code",
                ),
                (
                    pb.PostReturnRequest(
                        customer_id="p1",
                        order_id="pos-1",
                        refunded_minor_units=100,
                    ),
                    grpc.StatusCode.INVALID_ARGUMENT,
                    "idempotency_key",
                ),
                (
                    pb.PostReturnRequest(
                        customer_id="p1",
                        order_id="nope",
                        refunded_minor_units=100,
                        idempotency_key="x3",
                    ),
                    grpc.StatusCode.NOT_FOUND,
                    "order_id",
                ),
                (
                    pb.PostReturnRequest(
                        customer_id="p1",
                        order_id="pos-1",
                        refunded_minor_units=100,
                        idempotency_key="pos-1",  # a PostPurchase key
                    ),
                    grpc.StatusCode.INVALID_ARGUMENT,
                    "idempotency_key",
                ),
            ):
                with pytest.raises(grpc.aio.AioRpcError) as err:
                    await sa_.PostReturn(req, timeout=10)
                assert err.value.code() == code, err.value.details()
                assert field in (err.value.details() or ""), err.value.details()

            # Wait for the consumer to have seen every event, then nothing moved.
            await eventually(lambda: _inbox(a) >= 4, timeout=30)
            assert await _points(sa_, "p1") == (0, 0)
        assert a.db is not None
        with a.db.session() as s:
            assert check_books(s) == []
    finally:
        await b.stop()
        await a.stop()


async def _equals(coro: Any, want: tuple[int, int]) -> bool:
    return bool(await coro == want)


def _inbox(*runtimes: object) -> int:
    """Events the interactions consumer has taken (either replica)."""
    import sqlalchemy as sa

    rt = runtimes[0]
    with rt.db.session() as s:  # type: ignore[attr-defined]
        return int(
            s.execute(
                sa.text("SELECT COUNT(*) FROM inbox_event WHERE consumer = 'loyalty-interactions'")
            ).scalar_one()
        )
