"""A limited catalogue reward is never handed out beyond its stock, however
many members redeem it at once; a cancelled reservation gives its unit back."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import grpc
import pytest
import sqlalchemy as sa
from cxloop.loyalty.v1 import loyalty_service_pb2 as pb
from cxloop.loyalty.v1 import loyalty_service_pb2_grpc as pb_grpc
from google.protobuf.timestamp_pb2 import Timestamp

from loyalty.adapters import tables as t
from loyalty.service_layer.schedule import check_books

from ..conftest import start_loyalty

pytestmark = pytest.mark.integration

STOCK = 5
RULES = {
    "return_window_days": 14,
    "tiers": [{"id": "member", "min_score": 0}],
    "rules": [{"id": "base", "kind": "base", "rates": {"KRW": {"per_amount": 100, "points": 1}}}],
    "rewards": [
        {"id": "mug", "points": 100, "title": "Mug", "stock": STOCK},
        {"id": "sold-out", "points": 100, "stock": 0},
    ],
}


async def _fund(stub: pb_grpc.LoyaltyServiceStub, cid: str, points: int) -> None:
    when = Timestamp()
    when.FromDatetime(datetime.now(UTC) - timedelta(days=30))  # past the return window
    await stub.PostPurchase(
        pb.PostPurchaseRequest(
            customer_id=cid,
            order_id=f"fund-{cid}",
            currency_code="KRW",
            idempotency_key=f"fund-{cid}",
            lines=[pb.PurchaseLine(quantity=1, unit_price_minor_units=points * 100)],
            purchased_at=when,
        ),
        timeout=10,
    )


async def test_limited_reward_never_over_issued_under_concurrent_redemptions(
    loyalty_nats: str, database_url: str
) -> None:
    # Two replicas on one database, so the stock is shared across processes.
    a = await start_loyalty(loyalty_nats, database_url, rules=json.dumps(RULES))
    b = await start_loyalty(loyalty_nats, database_url, rules=json.dumps(RULES))
    try:
        assert a.grpc_server is not None and b.grpc_server is not None
        async with (
            grpc.aio.insecure_channel(f"127.0.0.1:{a.grpc_server.port}") as ca,
            grpc.aio.insecure_channel(f"127.0.0.1:{b.grpc_server.port}") as cb,
        ):
            stubs = [pb_grpc.LoyaltyServiceStub(ca), pb_grpc.LoyaltyServiceStub(cb)]
            members = [f"s{i}" for i in range(16)]
            for cid in members:
                await _fund(stubs[0], cid, 300)

            async def redeem(i: int, cid: str, key: str) -> str:
                try:
                    r = await stubs[i % 2].Redeem(
                        pb.RedeemRequest(
                            customer_id=cid, points=100, reward_id="mug", idempotency_key=key
                        ),
                        timeout=60,
                    )
                    return r.redemption_id
                except grpc.aio.AioRpcError as err:
                    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION, err.details()
                    assert "out of stock" in (err.details() or ""), err.details()
                    return ""

            # Every member at once, and two of them three times each (one
            # member's calls are grouped: the group takes stock unit by unit).
            calls = [(cid, f"{cid}-1") for cid in members]
            calls += [(cid, f"{cid}-{n}") for cid in members[:2] for n in (2, 3)]
            got = await asyncio.gather(*(redeem(i, c, k) for i, (c, k) in enumerate(calls)))
            granted = [rid for rid in got if rid]
            assert len(granted) == STOCK

            # Sold out: the next member is refused, naming the reward.
            assert await redeem(0, members[-1], "late") == ""
            # A cancelled reservation gives its unit back; exactly one more fits.
            await stubs[1].CancelRedemption(
                pb.CancelRedemptionRequest(redemption_id=granted[0]), timeout=10
            )
            await stubs[0].CancelRedemption(  # a retried cancel gives nothing back twice
                pb.CancelRedemptionRequest(redemption_id=granted[0]), timeout=10
            )
            again = await asyncio.gather(
                *(redeem(i, cid, f"{cid}-again") for i, cid in enumerate(members[4:12]))
            )
            assert sum(1 for rid in again if rid) == 1
            for rid in granted[1:]:  # confirmed units stay taken
                await stubs[0].ConfirmRedemption(
                    pb.ConfirmRedemptionRequest(redemption_id=rid), timeout=10
                )
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await stubs[0].Redeem(
                    pb.RedeemRequest(
                        customer_id=members[0],
                        points=100,
                        reward_id="sold-out",
                        idempotency_key="z",
                    ),
                    timeout=10,
                )
            assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert a.db is not None
        with a.db.session() as s:
            open_or_used = s.execute(
                sa.select(sa.func.count()).where(
                    t.redemption.c.reward_id == "mug",
                    t.redemption.c.status.in_(("reserved", "confirmed")),
                )
            ).scalar_one()
            taken = s.execute(
                sa.select(t.reward_stock.c.taken).where(t.reward_stock.c.reward_id == "mug")
            ).scalar_one()
            assert open_or_used == taken == STOCK
            assert check_books(s) == []
    finally:
        await b.stop()
        await a.stop()
