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


async def test_two_replicas_group_concurrent_redeems_of_one_member_exactly(
    loyalty_nats: str, database_url: str
) -> None:
    """Two loyalty processes' gRPC servers, one database: 120 Redeem calls of
    one member at once, some retried (same idempotency key) on the other
    replica. Never more reserved than the member had, each key one outcome,
    every answer matches the books, lots cover exactly what was reserved."""
    import json
    import random

    import sqlalchemy as sa

    from loyalty.adapters import tables as t

    a = await start_loyalty(loyalty_nats, database_url)
    b = await start_loyalty(loyalty_nats, database_url)
    try:
        assert a.grpc_server is not None and b.grpc_server is not None
        async with (
            grpc.aio.insecure_channel(f"127.0.0.1:{a.grpc_server.port}") as ca,
            grpc.aio.insecure_channel(f"127.0.0.1:{b.grpc_server.port}") as cb,
        ):
            stubs = [pb_grpc.LoyaltyServiceStub(ca), pb_grpc.LoyaltyServiceStub(cb)]
            for days, price in ((40, 50000), (30, 30000), (20, 20000)):
                when = Timestamp()
                when.FromDatetime(datetime.now(UTC) - timedelta(days=days))
                await stubs[0].PostPurchase(
                    pb.PostPurchaseRequest(
                        customer_id="hot",
                        order_id=f"g-{days}",
                        currency_code="KRW",
                        idempotency_key=f"g-{days}",
                        lines=[pb.PurchaseLine(quantity=1, unit_price_minor_units=price)],
                        purchased_at=when,
                    ),
                    timeout=5,
                )
            rng = random.Random(3)
            calls = [(f"k{i}", rng.choice((1, 7, 13, 25, 40))) for i in range(100)]
            # 20 retries of earlier calls, on the other replica.
            calls += [calls[i] for i in rng.sample(range(100), 20)]

            async def redeem(i: int, key: str, points: int) -> tuple[str, str, int, str]:
                try:
                    r = await stubs[i % 2 if i < 100 else 1 - (int(key[1:]) % 2)].Redeem(
                        pb.RedeemRequest(customer_id="hot", points=points, idempotency_key=key),
                        timeout=60,
                    )
                    return key, r.redemption_id, points, ""
                except grpc.aio.AioRpcError as err:
                    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION, err.details()
                    return key, "", points, err.details() or ""

            results = await asyncio.gather(*(redeem(i, k, p) for i, (k, p) in enumerate(calls)))
            outcome: dict[str, set[str]] = {}
            for key, rid, points, why in results:
                outcome.setdefault(key, set()).add(rid)
                if not rid:
                    left = int(why.split(", ")[1].split()[0])
                    assert left < points, why  # refused only when it did not fit
            twice = {k: v for k, v in outcome.items() if len(v) != 1}
            assert not twice, twice  # one outcome per key
            granted = {k: v.pop() for k, v in outcome.items() if "" not in v}
            want = dict(calls)
            spent = sum(want[k] for k in granted)
            assert 0 < spent <= 1000 and len(granted) < 100  # some refused: never overspent
            acct = await stubs[1].GetAccount(pb.GetAccountRequest(customer_id="hot"), timeout=5)
            assert (acct.available_points, acct.reserved_points) == (1000 - spent, spent)
            # A retry later still answers the same reservation.
            some = next(iter(granted))
            again = await stubs[0].Redeem(
                pb.RedeemRequest(customer_id="hot", points=want[some], idempotency_key=some),
                timeout=5,
            )
            assert again.redemption_id == granted[some]
        assert a.db is not None
        with a.db.session() as s:
            assert check_books(s) == []
            rows = s.execute(
                sa.select(
                    t.redemption.c.idempotency_key,
                    t.redemption.c.points,
                    t.redemption.c.allocations,
                )
            ).all()
            assert {r[0] for r in rows} == set(granted)
            taken: dict[str, int] = {}
            for _, points, allocations in rows:
                plan = json.loads(allocations)
                assert sum(n for _, n in plan) == points
                for lot, n in plan:
                    taken[lot] = taken.get(lot, 0) + n
            lots = s.execute(sa.select(t.lot.c.lot_id, t.lot.c.points, t.lot.c.remaining)).all()
            assert all(taken.get(lot, 0) == pts - rem for lot, pts, rem in lots)
        if "postgresql" in database_url:
            # Group commit happened: fewer transactions than calls.
            batches = a.redeems.batches + b.redeems.batches  # type: ignore[attr-defined]
            assert batches < len(calls)
    finally:
        await a.stop()
        await b.stop()


async def test_coupon_uses_raced_on_two_replicas_never_exceed_max_uses(
    loyalty_nats: str, database_url: str
) -> None:
    """Checkouts racing on two loyalty processes: a single-use coupon is used
    by exactly one of 10 orders, a 3-use coupon by exactly 3; a retried use
    of the same order on the other replica is the same use, not a new one."""
    a = await start_loyalty(loyalty_nats, database_url)
    b = await start_loyalty(loyalty_nats, database_url)
    try:
        assert a.grpc_server is not None and b.grpc_server is not None
        async with (
            grpc.aio.insecure_channel(f"127.0.0.1:{a.grpc_server.port}") as ca,
            grpc.aio.insecure_channel(f"127.0.0.1:{b.grpc_server.port}") as cb,
        ):
            stubs = [pb_grpc.LoyaltyServiceStub(ca), pb_grpc.LoyaltyServiceStub(cb)]
            codes = {}
            for uses in (1, 3):
                issued = await stubs[0].IssueCoupon(
                    pb.IssueCouponRequest(
                        customer_id="race",
                        amount_off_minor_units=1000,
                        currency_code="KRW",
                        max_uses=uses,
                        idempotency_key=f"issue-{uses}",
                    ),
                    timeout=10,
                )
                codes[uses] = issued.coupon.code

            async def use(i: int, code: str, order: str) -> pb.ValidateCouponResponse:
                resp: pb.ValidateCouponResponse = await stubs[i % 2].ValidateCoupon(
                    pb.ValidateCouponRequest(
                        code=code,
                        customer_id="race",
                        order_total_minor_units=50_000,
                        redeem=True,
                        order_id=order,
                    ),
                    timeout=30,
                )
                return resp

            for uses, code in codes.items():
                got = await asyncio.gather(*(use(i, code, f"o{uses}-{i}") for i in range(10)))
                won = [i for i, r in enumerate(got) if r.valid]
                assert len(won) == uses, [r.reason for r in got]
                assert {r.reason for r in got if not r.valid} == {"used"}
                # The winning order asks again on the other replica: the same use.
                again = await use(won[0] + 1, code, f"o{uses}-{won[0]}")
                assert again.valid, again.reason
                late = await use(0, code, f"o{uses}-late")
                assert (late.valid, late.reason) == (False, "used")
        assert a.db is not None
        with a.db.session() as s:
            assert check_books(s) == []
    finally:
        await b.stop()
        await a.stop()
