"""The points ledger: double-entry postings and the lots points live in.

Every posting moves points between books and its legs sum to zero, so the
programme's books always balance:

============  =================================================================
book          holds
============  =================================================================
available     a member's points that can be spent (owner: the member)
pending       a member's purchase points waiting for the return window
reserved      a member's points held by an open redemption (checkout)
issued        the programme's source of points (negative: all ever issued)
redeemed      points spent on rewards
expired       points that expired unspent (breakage)
reversed      points taken back (returns, negative corrections)
transit       points moving between two members (merge/split); nets to 0
============  =================================================================

The programme's liability is what members hold: available + pending +
reserved over all members, equal to -(issued + redeemed + expired + reversed
+ transit). Postings are only ever appended; a correction is a new posting.

Points live in **lots** (one per earning posting) with their earn date,
activation date, expiry and origin. Spending takes the soonest-expiring lots
first, so a member loses as little as possible to expiry.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import NamedTuple

from cxloop_libs.errors import FailedPrecondition, InvalidArgument

PROGRAMME = "programme"
# Above this one posting is refused as absurd.
MAX_POINTS = 10**10


class Book(StrEnum):
    AVAILABLE = "available"
    PENDING = "pending"
    RESERVED = "reserved"
    ISSUED = "issued"
    REDEEMED = "redeemed"
    EXPIRED = "expired"
    REVERSED = "reversed"
    TRANSIT = "transit"


MEMBER_BOOKS = (Book.AVAILABLE, Book.PENDING, Book.RESERVED)


class Kind(StrEnum):
    EARN = "earn"
    PENDING = "pending"
    ACTIVATE = "activate"
    RESERVE = "reserve"
    RELEASE = "release"
    REDEEM = "redeem"
    EXPIRE = "expire"
    REVERSE = "reverse"
    ADJUST = "adjust"
    TRANSFER = "transfer"


class ReturnPolicy(StrEnum):
    ONLY_PENDING = "only_pending"
    WITHIN_BALANCE = "within_balance"
    ALLOW_NEGATIVE = "allow_negative"


class Leg(NamedTuple):
    # A tuple: a frozen dataclass costs ~1 µs a construction, and every
    # posting of an accrual batch makes two.
    owner: str  # customer id, or PROGRAMME
    book: Book
    amount: int


_PROGRAMME_BOOK = {
    Kind.EARN: Book.ISSUED,
    Kind.PENDING: Book.ISSUED,
    Kind.REDEEM: Book.REDEEMED,
    Kind.EXPIRE: Book.EXPIRED,
    Kind.REVERSE: Book.REVERSED,
    Kind.TRANSFER: Book.TRANSIT,
}


def legs_for(
    kind: Kind, customer_id: str, *, available: int = 0, pending: int = 0, reserved: int = 0
) -> list[Leg]:
    """The balanced legs of a posting from the signed changes of the member's
    books; the programme's book takes the opposite of their sum."""
    legs = [
        Leg(customer_id, book, amount)
        for book, amount in (
            (Book.AVAILABLE, available),
            (Book.PENDING, pending),
            (Book.RESERVED, reserved),
        )
        if amount
    ]
    net = available + pending + reserved
    if kind is Kind.ADJUST:
        programme = Book.ISSUED if net > 0 else Book.REVERSED
    else:
        programme = _PROGRAMME_BOOK.get(kind, Book.TRANSIT)
    if net:
        if kind in (Kind.ACTIVATE, Kind.RESERVE, Kind.RELEASE):
            raise ValueError(f"a {kind} posting moves points inside the member's books only")
        legs.append(Leg(PROGRAMME, programme, -net))
    return legs


def check_points(points: int, field: str = "points", *, allow_negative: bool = False) -> int:
    if isinstance(points, bool) or not isinstance(points, int):
        raise InvalidArgument(field, "must be a whole number")
    if points == 0 or (points < 0 and not allow_negative):
        raise InvalidArgument(field, "must be positive" if not allow_negative else "must not be 0")
    if abs(points) > MAX_POINTS:
        raise InvalidArgument(field, f"must be at most {MAX_POINTS}")
    return points


@dataclass(frozen=True, slots=True)
class LotView:
    lot_id: str
    remaining: int
    expires_at: datetime
    earned_at: datetime


def allocate(lots: Iterable[LotView], points: int) -> list[tuple[str, int]]:
    """Which lots pay ``points``: soonest-expiring first (then oldest, then
    by id, so the order is total). FailedPrecondition when they cannot."""
    plan: list[tuple[str, int]] = []
    left = points
    for lot in sorted(lots, key=lambda x: (x.expires_at, x.earned_at, x.lot_id)):
        if left == 0:
            break
        if lot.remaining <= 0:
            continue
        take = min(lot.remaining, left)
        plan.append((lot.lot_id, take))
        left -= take
    if left:
        raise FailedPrecondition(f"points: {points} requested, {points - left} available")
    return plan


def return_target(earned: int, order_total: int, refunded_total: int) -> int:
    """Points a purchase should have lost once ``refunded_total`` of its
    ``order_total`` was refunded: proportional, half rounded up, never more
    than earned. Computed on cumulative amounts, so any sequence of partial
    returns adds up to exactly the share of the total refunded."""
    if order_total <= 0 or earned <= 0:
        return 0
    refunded = min(max(refunded_total, 0), order_total)
    return min(earned, (earned * refunded * 2 + order_total) // (2 * order_total))


@dataclass(frozen=True, slots=True)
class ReversalPlan:
    from_pending: int  # of the order's lot while still pending
    from_lot: int  # of the order's lot once active
    from_others: int  # other available points (soonest-expiring lots)
    debt: int  # owed, under ALLOW_NEGATIVE
    forgiven: int  # not taken back (policy limits)


def plan_reversal(
    points: int,
    *,
    lot_pending: int,
    lot_active: int,
    other_available: int,
    policy: ReturnPolicy,
) -> ReversalPlan:
    """Where ``points`` to reverse come from under the return policy."""
    from_pending = min(points, lot_pending)
    left = points - from_pending
    if policy is ReturnPolicy.ONLY_PENDING:
        return ReversalPlan(from_pending, 0, 0, 0, left)
    from_lot = min(left, lot_active)
    left -= from_lot
    from_others = min(left, max(other_available, 0))
    left -= from_others
    if policy is ReturnPolicy.ALLOW_NEGATIVE:
        return ReversalPlan(from_pending, from_lot, from_others, left, 0)
    return ReversalPlan(from_pending, from_lot, from_others, 0, left)


def balance_of(legs: Sequence[Leg], owner: str, book: Book) -> int:
    return sum(leg.amount for leg in legs if leg.owner == owner and leg.book is book)
