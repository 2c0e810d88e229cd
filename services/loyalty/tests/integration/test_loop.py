"""Engagement, identity merges and splits, consent-gated offers, coupons,
tiers, expiry and erasure — the loop around the ledger."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta

import grpc
import nats
import pytest
import sqlalchemy as sa
from cxloop.feedback.v1 import events_pb2 as fpb
from cxloop.identity.v1 import events_pb2 as ipb
from cxloop.loyalty.v1 import loyalty_service_pb2 as pb
from cxloop.personalization.v1 import events_pb2 as ppb

from cxloop_libs.messaging import catalog as ev
from cxloop_libs.privacy import RequestKind
from cxloop_libs.runtime import ServiceRuntime
from cxloop_testing.infra import eventually
from loyalty.adapters import tables as t
from loyalty.adapters.store import Tx
from loyalty.service_layer import membership
from loyalty.service_layer.schedule import check_books, ledger_balances

pytestmark = pytest.mark.integration


def balances(runtime: ServiceRuntime, cid: str) -> tuple[int, int]:
    assert runtime.db is not None
    with runtime.db.session() as s:
        row = s.execute(
            sa.select(t.account.c.available, t.account.c.pending).where(
                t.account.c.customer_id == cid
            )
        ).first()
    return (0, 0) if row is None else (int(row[0]), int(row[1]))


async def next_event(upstream, kind):  # type: ignore[no-untyped-def]
    """The first event of ``kind`` on the LOYALTY stream (as a consumer sees it)."""
    sub = await upstream.bus.js.pull_subscribe(kind.subject, stream="LOYALTY")
    try:
        msgs = await sub.fetch(1, timeout=10)
        return kind.decode(msgs[0].data)
    finally:
        await sub.unsubscribe()


def books_ok(runtime: ServiceRuntime) -> None:
    assert runtime.db is not None
    with runtime.db.session() as s:
        assert check_books(s) == []


async def test_engagement_rewards_with_caps(loyalty, upstream) -> None:  # type: ignore[no-untyped-def]
    for i in range(4):  # 100 each, capped at 300 a day
        await upstream.send(
            ev.REVIEW_SUBMITTED,
            fpb.ReviewSubmitted(
                review_id=f"rv-{i}", customer_id="e1", product_id="p", rating=5, text_length=80
            ),
        )
    await upstream.send(
        ev.REVIEW_SUBMITTED,
        fpb.ReviewSubmitted(review_id="rv-short", customer_id="e1", text_length=3),
    )
    await upstream.send(
        ev.RESPONSE_RECEIVED,
        fpb.ResponseReceived(response_id="resp-1", customer_id="e1", survey_id="s"),
    )
    await upstream.track("e1", "Profile Completed", {})
    await upstream.track("e1", "Profile Completed", {})  # once a year
    await eventually(lambda: balances(loyalty, "e1")[0] == 300 + 50 + 200)
    await asyncio.sleep(0.3)
    assert balances(loyalty, "e1")[0] == 550
    books_ok(loyalty)


async def test_goodwill_and_offers_only_with_marketing_consent(loyalty, upstream) -> None:  # type: ignore[no-untyped-def]
    await upstream.consent("happy", "marketing_app", True)
    await upstream.consent("private", "marketing_app", False)
    await eventually(lambda: loyalty.consent.may_use("happy", "marketing_app"))
    for cid in ("happy", "private"):
        await upstream.send(
            ev.DETRACTOR_DETECTED,
            fpb.DetractorDetected(response_id=f"d-{cid}", customer_id=cid, score=2),
        )
        params = {"points": 250}
        action = ppb.ActionTriggered(
            action_id=f"a-{cid}",
            customer_id=cid,
            kind=ppb.ACTION_KIND_AWARD_POINTS,
            purpose="marketing_app",
            journey_id="winback",
        )
        action.parameters.update(params)
        await upstream.send(ev.ACTION_TRIGGERED, action)
        coupon = ppb.ActionTriggered(
            action_id=f"c-{cid}",
            customer_id=cid,
            kind=ppb.ACTION_KIND_ISSUE_COUPON,
            purpose="marketing_app",
        )
        coupon.parameters.update({"amount_off_minor_units": 5000, "reward_id": "5k"})
        await upstream.send(ev.ACTION_TRIGGERED, coupon)
    await eventually(lambda: balances(loyalty, "happy")[0] == 500 + 250)
    await eventually(lambda: loyalty.consumers_api.offers_withheld == 3)
    assert balances(loyalty, "private") == (0, 0)
    with loyalty.db.session() as s:
        coupons = s.execute(sa.select(t.coupon.c.customer_id)).scalars().all()
    assert coupons == ["happy"]


async def test_merge_keeps_lots_and_split_moves_them_back(loyalty, stub, upstream) -> None:  # type: ignore[no-untyped-def]
    old = datetime.now(UTC) - timedelta(days=40)
    await upstream.purchase("m1", "mo-1", 10000, when=old)  # 100 available
    await upstream.purchase("m2", "mo-2", 30000, when=old)  # 300 available
    await upstream.purchase("m2", "mo-3", 5000)  # 50 pending
    await eventually(
        lambda: balances(loyalty, "m2") == (300, 50) and balances(loyalty, "m1") == (100, 0)
    )
    with loyalty.db.session() as s:
        expiry_before = s.execute(
            sa.select(t.lot.c.expires_at).where(t.lot.c.reference_id == "mo-2")
        ).scalar_one()
    await upstream.send(
        ev.PROFILE_MERGED, ipb.ProfileMerged(surviving_customer_id="m1", merged_customer_ids=["m2"])
    )
    await eventually(lambda: balances(loyalty, "m1") == (400, 50))
    assert balances(loyalty, "m2") == (0, 0)
    with loyalty.db.session() as s:
        lot = s.execute(
            sa.select(t.lot.c.customer_id, t.lot.c.expires_at).where(t.lot.c.reference_id == "mo-2")
        ).one()
    assert lot[0] == "m1" and lot[1] == expiry_before
    # A late purchase for the merged id lands on the survivor.
    await upstream.purchase("m2", "mo-4", 1000, when=old)
    await eventually(lambda: balances(loyalty, "m1") == (410, 50))
    a = await stub.GetAccount(pb.GetAccountRequest(customer_id="m2"), timeout=5)
    assert a.customer_id == "m1" and a.available_points == 410
    # The tier score follows the merge: m1's 100 + m2's 300 + 50 + 10 base points.
    assert a.tier_score == 460
    # The 360's member view of the merged-away id is the survivor's, both halves.
    view = await stub.GetMemberView(pb.GetMemberViewRequest(customer_id="m2"), timeout=5)
    assert view.account == a
    survivor = await stub.GetHistory(pb.GetHistoryRequest(customer_id="m1"), timeout=5)
    assert view.history == survivor and len(view.history.entries) >= 3
    await upstream.send(
        ev.PROFILE_SPLIT,
        ipb.ProfileSplit(original_customer_id="m1", resulting_customer_ids=["m1", "m2"]),
    )
    await eventually(lambda: balances(loyalty, "m2") == (300, 50))
    assert balances(loyalty, "m1") == (110, 0)
    back = await stub.GetAccount(pb.GetAccountRequest(customer_id="m2"), timeout=5)
    assert (back.customer_id, back.tier_score) == ("m2", 350)
    assert (
        await stub.GetAccount(pb.GetAccountRequest(customer_id="m1"), timeout=5)
    ).tier_score == 110
    books_ok(loyalty)


async def test_coupon_issue_validate_use_once_even_when_raced(loyalty, stub) -> None:  # type: ignore[no-untyped-def]
    issued = await stub.IssueCoupon(
        pb.IssueCouponRequest(
            customer_id="k1",
            reward_id="10pct",
            percent_off_basis_points=1000,
            minimum_spend_minor_units=20000,
            idempotency_key="i-1",
        ),
        timeout=5,
    )
    code = issued.coupon.code
    assert len(code) == 12
    again = await stub.IssueCoupon(
        pb.IssueCouponRequest(
            customer_id="k1", percent_off_basis_points=1000, idempotency_key="i-1"
        ),
        timeout=5,
    )
    assert again.coupon.code == code
    low = await stub.ValidateCoupon(
        pb.ValidateCouponRequest(code=code, customer_id="k1", order_total_minor_units=1000),
        timeout=5,
    )
    assert (low.valid, low.reason) == (False, "minimum_spend")
    other = await stub.ValidateCoupon(
        pb.ValidateCouponRequest(code=code, customer_id="k2", order_total_minor_units=50000),
        timeout=5,
    )
    assert (other.valid, other.reason) == (False, "other_customer")
    ok = await stub.ValidateCoupon(
        pb.ValidateCouponRequest(code=code, customer_id="k1", order_total_minor_units=50000),
        timeout=5,
    )
    assert ok.valid and ok.discount_minor_units == 5000
    uses = await asyncio.gather(
        *(
            stub.ValidateCoupon(
                pb.ValidateCouponRequest(
                    code=code,
                    customer_id="k1",
                    order_total_minor_units=50000,
                    redeem=True,
                    order_id=f"ord-{i}",
                ),
                timeout=10,
            )
            for i in range(8)
        )
    )
    assert sum(1 for u in uses if u.valid) == 1
    assert {u.reason for u in uses if not u.valid} == {"used"}
    winner = next(u for u in uses if u.valid)
    assert winner.coupon.status == pb.COUPON_STATUS_USED
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.IssueCoupon(
            pb.IssueCouponRequest(customer_id="k1", amount_off_minor_units=-1, currency_code="KRW"),
            timeout=5,
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "amount_off_minor_units" in (err.value.details() or "")
    # Per-member limit of a campaign's coupons.
    limited = pb.IssueCouponRequest(
        customer_id="k1", percent_off_basis_points=500, campaign_id="spring", max_per_customer=2
    )
    for i in range(2):
        limited.idempotency_key = f"spring-{i}"
        await stub.IssueCoupon(limited, timeout=5)
    limited.idempotency_key = "spring-3"
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.IssueCoupon(limited, timeout=5)
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "max_per_customer" in (err.value.details() or "")


async def test_tier_upgrade_event_and_expiry_with_notice_and_breakage(
    loyalty, stub, upstream
) -> None:  # type: ignore[no-untyped-def]
    long_ago = datetime.now(UTC) - timedelta(days=20)
    await upstream.purchase("t1", "to-1", 600000, when=long_ago)  # base 6000 -> gold (5000)
    await eventually(lambda: balances(loyalty, "t1")[0] == 6000)
    a = await stub.GetAccount(pb.GetAccountRequest(customer_id="t1"), timeout=5)
    assert a.tier == "gold" and a.tier_benefits["free_shipping"] == "true"
    changed = await next_event(upstream, ev.TIER_CHANGED)
    assert (changed.customer_id, changed.previous_tier, changed.new_tier) == ("t1", "", "gold")
    # Expiry: the lot is due in 10 days -> a notice; then past due -> expired.
    with loyalty.db.session() as s:
        s.execute(
            t.lot.update()
            .where(t.lot.c.customer_id == "t1")
            .values(expires_at=datetime.now(UTC) + timedelta(days=10))
        )
    assert loyalty.schedule.run_once()["expiry_notices"] == 1
    assert loyalty.schedule.run_once()["expiry_notices"] == 0
    with loyalty.db.session() as s:
        s.execute(
            t.lot.update()
            .where(t.lot.c.customer_id == "t1")
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    assert loyalty.schedule.run_once()["lots_expired"] == 1
    assert balances(loyalty, "t1")[0] == 0
    with loyalty.db.session() as s:
        assert ledger_balances(s)[("programme", "expired")] == 6000
    totals = await stub.GetProgrammeTotals(pb.GetProgrammeTotalsRequest(), timeout=5)
    assert (totals.issued, totals.expired, totals.liability) == (6000, 6000, 0)
    assert totals.breakage_rate == 1.0
    books_ok(loyalty)


async def test_erasure_anonymises_and_keeps_the_books(loyalty, stub, upstream) -> None:  # type: ignore[no-untyped-def]
    old = datetime.now(UTC) - timedelta(days=30)
    await upstream.purchase("gone", "go-1", 20000, when=old)
    await upstream.purchase("stay", "st-1", 10000, when=old)
    await eventually(
        lambda: balances(loyalty, "gone")[0] == 200 and balances(loyalty, "stay")[0] == 100
    )
    with loyalty.db.session() as s:
        before = ledger_balances(s)
        answer = membership.answer_privacy(Tx(s), "gone", RequestKind.ERASURE)
    assert answer.row_counts["loyalty_posting"] >= 1
    with loyalty.db.session() as s:
        after = ledger_balances(s)
        assert (
            s.execute(
                sa.select(sa.func.count())
                .select_from(t.posting)
                .where(t.posting.c.customer_id == "gone")
            ).scalar_one()
            == 0
        )
        assert check_books(s) == []
    assert after[("programme", "issued")] == before[("programme", "issued")]
    liability = lambda b: sum(v for (o, book), v in b.items() if o != "programme")  # noqa: E731
    assert liability(after) == liability(before)
    a = await stub.GetAccount(pb.GetAccountRequest(customer_id="gone"), timeout=5)
    assert a.available_points == 0


async def test_tier_downgrade_waits_for_cycle_end_and_grace(loyalty, stub, upstream) -> None:  # type: ignore[no-untyped-def]
    old = datetime.now(UTC) - timedelta(days=30)
    await upstream.purchase("g1", "go-10", 150000, when=old)  # base 1500 -> silver
    await eventually(lambda: balances(loyalty, "g1")[0] == 1500)
    a = await stub.GetAccount(pb.GetAccountRequest(customer_id="g1"), timeout=5)
    assert a.tier == "silver"
    # The purchase is returned: the score drops, but the tier holds until its cycle ends.
    await upstream.refund("g1", "go-10")
    await eventually(lambda: balances(loyalty, "g1")[0] == 0)
    loyalty.schedule.run_once()
    assert (
        await stub.GetAccount(pb.GetAccountRequest(customer_id="g1"), timeout=5)
    ).tier == "silver"
    with loyalty.db.session() as s:
        s.execute(
            t.account.update()
            .where(t.account.c.customer_id == "g1")
            .values(tier_valid_until=datetime.now(UTC) - timedelta(seconds=1))
        )
    loyalty.schedule.run_once()  # cycle over: grace starts, still silver
    with loyalty.db.session() as s:
        grace = s.execute(
            sa.select(t.account.c.tier, t.account.c.tier_grace_until).where(
                t.account.c.customer_id == "g1"
            )
        ).one()
    assert grace[0] == "silver" and grace[1] is not None
    with loyalty.db.session() as s:
        s.execute(
            t.account.update()
            .where(t.account.c.customer_id == "g1")
            .values(tier_grace_until=datetime.now(UTC) - timedelta(seconds=1))
        )
    loyalty.schedule.run_once()
    assert (
        await stub.GetAccount(pb.GetAccountRequest(customer_id="g1"), timeout=5)
    ).tier == "member"
    sub = await upstream.bus.js.pull_subscribe(ev.TIER_CHANGED.subject, stream="LOYALTY")
    msgs: list[object] = []
    try:
        for _ in range(20):  # a fetch may return what is there before the rest arrives
            with contextlib.suppress(TimeoutError, nats.errors.TimeoutError):
                msgs += await sub.fetch(2 - len(msgs), timeout=1)
            if len(msgs) == 2:
                break
    finally:
        await sub.unsubscribe()
    changes = [ev.TIER_CHANGED.decode(m.data) for m in msgs]  # type: ignore[attr-defined]
    assert [(c.previous_tier, c.new_tier, c.direction) for c in changes] == [
        ("", "silver", 1),
        ("silver", "member", 2),
    ]
    books_ok(loyalty)
