from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cxloop_libs.errors import FailedPrecondition, InvalidArgument
from loyalty.domain.ledger import (
    Book,
    Kind,
    LotView,
    ReturnPolicy,
    allocate,
    check_points,
    legs_for,
    plan_reversal,
    return_target,
)
from loyalty.domain.rules import default_rule_set
from loyalty.domain.tiers import TierState, decide_tier

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("kind", "deltas"),
    [
        (Kind.PENDING, {"pending": 10}),
        (Kind.EARN, {"available": 10}),
        (Kind.ACTIVATE, {"available": 10, "pending": -10}),
        (Kind.RESERVE, {"available": -10, "reserved": 10}),
        (Kind.RELEASE, {"available": 10, "reserved": -10}),
        (Kind.REDEEM, {"reserved": -10}),
        (Kind.EXPIRE, {"available": -10}),
        (Kind.REVERSE, {"available": -3, "pending": -7}),
        (Kind.ADJUST, {"available": -4}),
        (Kind.TRANSFER, {"available": 5, "pending": 5}),
    ],
)
def test_every_posting_balances(kind: Kind, deltas: dict[str, int]) -> None:
    legs = legs_for(kind, "c1", **deltas)
    assert sum(leg.amount for leg in legs) == 0
    member = {leg.book: leg.amount for leg in legs if leg.owner == "c1"}
    assert member == {Book(k): v for k, v in deltas.items()}


def test_internal_moves_may_not_create_points() -> None:
    with pytest.raises(ValueError):
        legs_for(Kind.ACTIVATE, "c1", available=10)


def test_spending_takes_the_soonest_expiring_lots_first() -> None:
    lots = [
        LotView("late", 100, T0 + timedelta(days=300), T0),
        LotView("soon", 30, T0 + timedelta(days=10), T0 + timedelta(days=5)),
        LotView("mid", 50, T0 + timedelta(days=100), T0),
    ]
    assert allocate(lots, 60) == [("soon", 30), ("mid", 30)]
    with pytest.raises(FailedPrecondition):
        allocate(lots, 181)


def test_partial_returns_add_up_to_exactly_the_full_reversal() -> None:
    earned, total = 1001, 30000
    reversed_so_far = 0
    cum = 0
    for part in (7001, 9999, 13000):
        cum += part
        target = return_target(earned, total, cum)
        assert target >= reversed_so_far
        reversed_so_far = target
    assert reversed_so_far == earned
    assert return_target(100, 1000, 500) == 50
    assert return_target(100, 1000, 5000) == 100  # never more than earned


def test_return_policies() -> None:
    only = plan_reversal(
        100, lot_pending=0, lot_active=60, other_available=500, policy=ReturnPolicy.ONLY_PENDING
    )
    assert (only.from_pending, only.forgiven) == (0, 100)
    within = plan_reversal(
        100, lot_pending=0, lot_active=60, other_available=20, policy=ReturnPolicy.WITHIN_BALANCE
    )
    assert (within.from_lot, within.from_others, within.debt, within.forgiven) == (60, 20, 0, 20)
    neg = plan_reversal(
        100, lot_pending=0, lot_active=60, other_available=20, policy=ReturnPolicy.ALLOW_NEGATIVE
    )
    assert (neg.from_lot, neg.from_others, neg.debt, neg.forgiven) == (60, 20, 20, 0)


def test_absurd_point_amounts_are_refused() -> None:
    for bad in (0, -1, 10**11):
        with pytest.raises(InvalidArgument):
            check_points(bad)
    assert check_points(-5, allow_negative=True) == -5


def test_tier_upgrades_at_once_and_downgrades_only_after_cycle_and_grace() -> None:
    rs = default_rule_set()  # member 0, silver 1000, gold 5000; 365 d cycle, 30 d grace
    up = decide_tier(rs, TierState("member", T0 + timedelta(days=365), None), 6000, T0)
    assert (up.state.tier, up.change) == ("gold", "upgrade")
    gold = up.state
    mid = decide_tier(rs, gold, 0, T0 + timedelta(days=100))
    assert mid.state == gold and mid.change == ""
    end = T0 + timedelta(days=366)
    grace = decide_tier(rs, gold, 1200, end)
    assert grace.state.tier == "gold" and grace.state.grace_until == end + timedelta(days=30)
    down = decide_tier(rs, grace.state, 1200, end + timedelta(days=31))
    assert (down.state.tier, down.change) == ("silver", "downgrade")
    floored = decide_tier(
        rs, TierState("gold", end, end, floor="gold"), 0, end + timedelta(days=40)
    )
    assert floored.state.tier == "gold" and floored.change == ""
