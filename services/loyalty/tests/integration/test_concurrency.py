"""50 redemptions of one member's points at once never overspend, on
PostgreSQL (row lock on the member's account)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from cxloop.loyalty.v1 import loyalty_service_pb2 as pb
from cxloop.loyalty.v1 import loyalty_service_pb2_grpc as pb_grpc
from google.protobuf.timestamp_pb2 import Timestamp

from loyalty.service_layer.schedule import check_books

from ..conftest import start_loyalty

pytestmark = pytest.mark.integration


async def test_fifty_concurrent_redemptions_never_overspend(
    loyalty_nats: str, postgres_url: str
) -> None:
    runtime = await start_loyalty(loyalty_nats, postgres_url)
    try:
        assert runtime.grpc_server is not None
        async with grpc.aio.insecure_channel(f"127.0.0.1:{runtime.grpc_server.port}") as ch:
            stub = pb_grpc.LoyaltyServiceStub(ch)
            when = Timestamp()
            when.FromDatetime(datetime.now(UTC) - timedelta(days=30))
            # Three lots: 500 + 300 + 200 = 1,000 points.
            for i, price in enumerate((50000, 30000, 20000)):
                await stub.PostPurchase(
                    pb.PostPurchaseRequest(
                        customer_id="hot",
                        order_id=f"h-{i}",
                        currency_code="KRW",
                        idempotency_key=f"h-{i}",
                        lines=[pb.PurchaseLine(quantity=1, unit_price_minor_units=price)],
                        purchased_at=when,
                    ),
                    timeout=5,
                )

            async def redeem(i: int) -> bool:
                try:
                    await stub.Redeem(
                        pb.RedeemRequest(customer_id="hot", points=70, idempotency_key=f"x-{i}"),
                        timeout=30,
                    )
                    return True
                except grpc.aio.AioRpcError as err:
                    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION, err.details()
                    return False

            results = await asyncio.gather(*(redeem(i) for i in range(50)))
            assert sum(results) == 1000 // 70  # 14 fit, 36 refused
            a = await stub.GetAccount(pb.GetAccountRequest(customer_id="hot"), timeout=5)
            assert (a.available_points, a.reserved_points) == (1000 - 14 * 70, 14 * 70)
        assert runtime.db is not None
        with runtime.db.session() as s:
            assert check_books(s) == []
    finally:
        await runtime.stop()
