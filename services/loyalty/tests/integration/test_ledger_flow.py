"""Purchases and returns arrive as resolved Segment events; points go
pending, activate, are reserved and redeemed; the books always balance."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import grpc
import pytest
from cxloop.loyalty.v1 import loyalty_service_pb2 as pb

from cxloop_libs.runtime import ServiceRuntime
from cxloop_testing.infra import eventually
from loyalty.service_layer.schedule import check_books

pytestmark = pytest.mark.integration


async def account(stub, cid: str) -> pb.GetAccountResponse:  # type: ignore[no-untyped-def]
    return await stub.GetAccount(pb.GetAccountRequest(customer_id=cid), timeout=5)


def books_ok(runtime: ServiceRuntime) -> None:
    assert runtime.db is not None
    with runtime.db.session() as s:
        assert check_books(s) == []


async def test_purchase_pending_then_active_then_partial_and_full_return(
    loyalty, stub, upstream
) -> None:  # type: ignore[no-untyped-def]
    # 35,050 won at 1 point per 100 won: 350.5 -> 350 (floored once per order).
    await upstream.purchase("c1", "o-1", 35050)
    await eventually(lambda: _pending(loyalty, "c1", 350))
    a = await account(stub, "c1")
    assert (a.available_points, a.pending_points, a.tier) == (0, 350, "member")
    # The same purchase again (another event id, a replay): nothing more.
    await upstream.purchase("c1", "o-1", 35050)
    await upstream.purchase("c1", "o-2", 10000, when=datetime.now(UTC) - timedelta(days=30))
    await eventually(lambda: _pending_and_available(loyalty, "c1", 350, 100))
    # A partial return of o-1 (pending): 10,000 of 35,050 -> 100 points back.
    await upstream.refund("c1", "o-1", 10000)
    await eventually(lambda: _pending(loyalty, "c1", 250))
    # The return window of o-1 closes: the rest activates.
    loyalty.handlers.rules.current = _no_window(loyalty)
    with loyalty.db.session() as s:  # type: ignore[union-attr]
        from loyalty.adapters import tables as t

        s.execute(
            t.lot.update()
            .values(activates_at=datetime.now(UTC) - timedelta(seconds=1))
            .where(t.lot.c.state == "pending")
        )
    done = loyalty.schedule.run_once()
    assert done["lots_activated"] == 1
    a = await account(stub, "c1")
    assert (a.available_points, a.pending_points) == (350, 0)
    # The rest of o-1 returned: exactly the remaining 250 go, 100 stay (o-2).
    await upstream.refund("c1", "o-1")
    await eventually(lambda: _available(loyalty, "c1", 100))
    history = await stub.GetHistory(pb.GetHistoryRequest(customer_id="c1", page_size=2), timeout=5)
    assert len(history.entries) == 2 and history.next_page_token
    assert history.entries[0].kind == pb.LEDGER_ENTRY_KIND_REVERSE
    assert history.entries[0].points == -250
    page2 = await stub.GetHistory(
        pb.GetHistoryRequest(customer_id="c1", page_token=history.next_page_token), timeout=5
    )
    assert {e.entry_id for e in page2.entries}.isdisjoint({e.entry_id for e in history.entries})
    # The customer 360's one call: GetAccount's and GetHistory's answers.
    view = await stub.GetMemberView(
        pb.GetMemberViewRequest(customer_id="c1", history_page_size=2), timeout=5
    )
    assert view.account == await account(stub, "c1")
    assert view.history == history
    with pytest.raises(grpc.aio.AioRpcError) as bad:
        await stub.GetMemberView(
            pb.GetMemberViewRequest(customer_id="c1", history_page_size=501), timeout=5
        )
    assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    books_ok(loyalty)


def _no_window(runtime: ServiceRuntime):  # type: ignore[no-untyped-def]
    return runtime.handlers.rules.current  # type: ignore[attr-defined]


def _balances(runtime: ServiceRuntime, cid: str) -> tuple[int, int]:
    import sqlalchemy as sa

    from loyalty.adapters import tables as t

    assert runtime.db is not None
    with runtime.db.session() as s:
        row = s.execute(
            sa.select(t.account.c.available, t.account.c.pending).where(
                t.account.c.customer_id == cid
            )
        ).first()
    return (0, 0) if row is None else (int(row[0]), int(row[1]))


def _pending(runtime: ServiceRuntime, cid: str, n: int) -> bool:
    return _balances(runtime, cid)[1] == n


def _available(runtime: ServiceRuntime, cid: str, n: int) -> bool:
    return _balances(runtime, cid)[0] == n


def _pending_and_available(runtime: ServiceRuntime, cid: str, p: int, a: int) -> bool:
    return _balances(runtime, cid) == (a, p)


async def test_redeem_reserve_confirm_cancel_and_errors(loyalty, stub) -> None:  # type: ignore[no-untyped-def]
    buy = pb.PostPurchaseRequest(
        customer_id="c2",
        order_id="pos-1",
        currency_code="KRW",
        idempotency_key="k-1",
        lines=[pb.PurchaseLine(sku="a", quantity=2, unit_price_minor_units=50000)],
        purchased_at=_ts(datetime.now(UTC) - timedelta(days=20)),
    )
    first = await stub.PostPurchase(buy, timeout=5)
    assert (first.points, first.pending, first.replayed) == (1000, False, False)
    again = await stub.PostPurchase(buy, timeout=5)
    assert again.replayed and again.entry_id == first.entry_id
    r = await stub.Redeem(
        pb.RedeemRequest(customer_id="c2", points=300, reward_id="mug", idempotency_key="r-1"),
        timeout=5,
    )
    assert r.available_after == 700 and r.status == pb.REDEMPTION_STATUS_RESERVED
    retry = await stub.Redeem(
        pb.RedeemRequest(customer_id="c2", points=300, reward_id="mug", idempotency_key="r-1"),
        timeout=5,
    )
    assert retry.redemption_id == r.redemption_id
    c = await stub.ConfirmRedemption(
        pb.ConfirmRedemptionRequest(redemption_id=r.redemption_id), timeout=5
    )
    assert c.redemption.status == pb.REDEMPTION_STATUS_CONFIRMED
    r2 = await stub.Redeem(
        pb.RedeemRequest(customer_id="c2", points=200, idempotency_key="r-2"), timeout=5
    )
    x = await stub.CancelRedemption(
        pb.CancelRedemptionRequest(redemption_id=r2.redemption_id), timeout=5
    )
    assert x.redemption.available_after == 700
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.ConfirmRedemption(
            pb.ConfirmRedemptionRequest(redemption_id=r2.redemption_id), timeout=5
        )
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.Redeem(
            pb.RedeemRequest(customer_id="c2", points=701, idempotency_key="r-3"), timeout=5
        )
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    for bad, field in (
        (pb.RedeemRequest(customer_id="c2", points=-5, idempotency_key="r-4"), "points"),
        (pb.RedeemRequest(customer_id="c2", points=5), "idempotency_key"),
        (pb.RedeemRequest(points=5, idempotency_key="r-5"), "customer_id"),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.Redeem(bad, timeout=5)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert field in (err.value.details() or "")
    bad_buy = pb.PostPurchaseRequest(
        customer_id="c2",
        order_id="pos-2",
        currency_code="XXX",
        idempotency_key="k-2",
        lines=[pb.PurchaseLine(quantity=1, unit_price_minor_units=5)],
    )
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.PostPurchase(bad_buy, timeout=5)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "currency_code" in (
        err.value.details() or ""
    )
    # An unconfirmed reservation lapses: the schedule gives the points back.
    r3 = await stub.Redeem(
        pb.RedeemRequest(customer_id="c2", points=100, idempotency_key="r-6", hold_seconds=1),
        timeout=5,
    )
    assert r3.available_after == 600
    from loyalty.adapters import tables as t

    with loyalty.db.session() as s:  # type: ignore[union-attr]
        s.execute(
            t.redemption.update()
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
            .where(t.redemption.c.redemption_id == r3.redemption_id)
        )
    assert loyalty.schedule.run_once()["reservations_released"] == 1
    a = await account(stub, "c2")
    assert (a.available_points, a.reserved_points) == (700, 0)
    books_ok(loyalty)


def _ts(d: datetime):  # type: ignore[no-untyped-def]
    from google.protobuf.timestamp_pb2 import Timestamp

    out = Timestamp()
    out.FromDatetime(d)
    return out


async def test_poison_purchase_goes_to_dead_letters_and_good_ones_post(
    loyalty, stub, upstream
) -> None:  # type: ignore[no-untyped-def]
    await upstream.purchase("c3", "o-bad", -5000)
    await upstream.purchase("c3", "o-bad2", 100, currency="ZZZ")
    await upstream.purchase("c3", "o-good", 20000)
    await eventually(lambda: _pending(loyalty, "c3", 200))
    consumer = next(c for c in loyalty.consumers if c.spec.durable == "loyalty-interactions")
    await eventually(lambda: consumer.dead_lettered == 2, timeout=30)
    books_ok(loyalty)


async def test_catalogue_reward_is_delivered_as_a_coupon_once(loyalty, stub) -> None:  # type: ignore[no-untyped-def]
    buy = pb.PostPurchaseRequest(
        customer_id="rw",
        order_id="rw-1",
        currency_code="KRW",
        idempotency_key="rw-1",
        lines=[pb.PurchaseLine(quantity=1, unit_price_minor_units=80000)],
        purchased_at=_ts(datetime.now(UTC) - timedelta(days=20)),
    )
    await stub.PostPurchase(buy, timeout=5)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.Redeem(
            pb.RedeemRequest(
                customer_id="rw", points=400, reward_id="krw-5000-off", idempotency_key="q0"
            ),
            timeout=5,
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "500" in (
        err.value.details() or ""
    )
    r = await stub.Redeem(
        pb.RedeemRequest(
            customer_id="rw", points=500, reward_id="krw-5000-off", idempotency_key="q1"
        ),
        timeout=5,
    )
    c = await stub.ConfirmRedemption(
        pb.ConfirmRedemptionRequest(redemption_id=r.redemption_id), timeout=5
    )
    coupon = c.redemption.coupon
    assert (
        coupon.amount_off_minor_units == 5000
        and coupon.currency_code == "KRW"
        and len(coupon.code) == 12
    )
    again = await stub.ConfirmRedemption(
        pb.ConfirmRedemptionRequest(redemption_id=r.redemption_id), timeout=5
    )
    assert again.redemption.coupon.code == coupon.code
    listed = await stub.ListCoupons(pb.ListCouponsRequest(customer_id="rw"), timeout=5)
    assert [x.code for x in listed.coupons] == [coupon.code]
    a = await stub.GetAccount(pb.GetAccountRequest(customer_id="rw"), timeout=5)
    assert (a.available_points, a.reserved_points) == (300, 0)
    books_ok(loyalty)
