"""The ledger's use cases. Each runs inside one transaction (a consumer's
batch or a gRPC call) on a :class:`~loyalty.adapters.store.Tx`."""

from __future__ import annotations

import json
import logging
import secrets
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta, tzinfo
from decimal import ROUND_FLOOR, Decimal
from typing import Any

import sqlalchemy as sa
from cxloop.loyalty.v1 import events_pb2 as epb
from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from cxloop_libs.db import bulk_insert
from cxloop_libs.errors import FailedPrecondition, InvalidArgument, NotFound
from cxloop_libs.messaging import catalog as ev
from loyalty.adapters import tables as t
from loyalty.adapters.store import (
    Account,
    NewReservation,
    Posted,
    Tx,
    aware,
    held_redemptions,
    lock_for_reservations,
    new_id,
    reserve_fast,
    reserve_many,
)
from loyalty.domain.ledger import (
    Kind,
    ReturnPolicy,
    allocate,
    check_points,
    plan_reversal,
    return_target,
)
from loyalty.domain.rules import (
    Earning,
    Purchase,
    Reward,
    RuleSet,
    evaluate_activity,
    evaluate_purchase,
    period_key,
    period_start,
)
from loyalty.domain.tiers import TierState, decide_tier
from loyalty.service_layer import birthdays
from loyalty.service_layer.commands import ActivityIn, PurchaseIn, RedeemIn, ReturnIn
from loyalty.service_layer.rulebook import RuleBook

log = logging.getLogger(__name__)
MAX_COUPON_USES = 1000
CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I


def ts(d: datetime) -> Timestamp:
    # Timestamp.FromDatetime goes through timetuple(); this is the same for
    # aware datetimes at a fraction of the cost (one per event staged).
    if d.tzinfo is None:
        d = d.replace(tzinfo=UTC)
    return Timestamp(seconds=int(d.timestamp() // 1), nanos=d.microsecond * 1000)


@dataclass(frozen=True, slots=True)
class PurchaseResult:
    posting_id: str
    points: int
    pending: bool
    activates_at: datetime
    earning: Earning | None
    replayed: bool


@dataclass(frozen=True, slots=True)
class Reservation:
    redemption_id: str
    customer_id: str
    points: int
    reward_id: str
    status: str
    expires_at: datetime
    posting_id: str
    available_after: int
    # The coupon a catalogue reward was delivered as (on confirmation).
    coupon: sa.RowMapping | None = None


# Tier scores of a batch's members over the window, with the postings of
# members merged into them. Written so the plan stays index look-ups however
# stale the statistics: the ids as an init-plan array (the partial index on
# merged_into finds merged members), and each member's sum a correlated
# subquery on the (customer_id, occurred_at) index — a join let the planner
# pick a sequential scan and sort of every posting per batch (112 ms at 30,000
# postings, growing with the ledger).
_SCORES = sa.text(
    """
WITH ids AS (SELECT json_array_elements_text(CAST(:ids AS json)) AS cid),
who AS (
  SELECT cid AS owner, cid AS member FROM ids
  UNION ALL
  SELECT a.merged_into, a.customer_id FROM loyalty_account AS a
  WHERE a.merged_into <> '' AND a.merged_into = ANY(ARRAY(SELECT cid FROM ids))
)
SELECT w.owner, SUM(w.score) FROM (
  SELECT who.owner, (
    SELECT COALESCE(SUM(p.score), 0) FROM loyalty_posting AS p
    WHERE p.customer_id = who.member AND p.occurred_at >= :since AND p.score <> 0
  ) AS score
  FROM who
) AS w
GROUP BY w.owner
"""
)


class LoyaltyHandlers:
    def __init__(
        self,
        rules: RuleBook,
        *,
        hold_seconds: int = 900,
        goodwill_points: int = 500,
        offer_max_points: int = 100_000,
        coupon_valid_days: int = 30,
        birthday_zone: tzinfo = UTC,
    ) -> None:
        self.rules = rules
        # Birthdays are celebrated on the day in the programme's time zone.
        self.birthday_zone = birthday_zone
        self.hold_seconds = hold_seconds
        self.goodwill_points = goodwill_points
        self.offer_max_points = offer_max_points
        self.coupon_valid_days = coupon_valid_days

    # -- purchases -------------------------------------------------------------
    def _cap_usage(
        self, tx: Tx, rules: RuleSet, cids: Sequence[str], *, engagement: bool
    ) -> dict[tuple[str, str, str], int]:
        """Points the members already earned this period from the capped rules
        that can apply (engagement rules to activities, the others to
        purchases): no look-up when none is capped."""
        capped = [r.id for r in rules.rules if r.caps and (r.kind == "engagement") == engagement]
        if not capped or not cids:
            return {}
        rows = tx.s.execute(
            sa.select(t.cap_usage).where(
                tx._in(t.cap_usage.c.customer_id, list(set(cids))),
                tx._in(t.cap_usage.c.rule_id, capped),
            )
        ).mappings()
        return {(r["customer_id"], r["rule_id"], r["period"]): int(r["points"]) for r in rows}

    def _use_caps(
        self,
        tx: Tx,
        rules: RuleSet,
        usage: dict[tuple[str, str, str], int],
        cid: str,
        earning: Earning,
        when: datetime,
    ) -> None:
        for rule in rules.rules:
            n = earning.by_rule.get(rule.id, 0)
            if not n:
                continue
            for cap in rule.caps:
                key = (cid, rule.id, period_key(cap.period, when))
                if key in usage:
                    tx.s.execute(
                        t.cap_usage.update()
                        .where(
                            t.cap_usage.c.customer_id == cid,
                            t.cap_usage.c.rule_id == rule.id,
                            t.cap_usage.c.period == key[2],
                        )
                        .values(points=t.cap_usage.c.points + n)
                    )
                else:
                    tx.s.execute(
                        t.cap_usage.insert().values(
                            customer_id=cid, rule_id=rule.id, period=key[2], points=n
                        )
                    )
                usage[key] = usage.get(key, 0) + n

    @staticmethod
    def _usage_of(usage: dict[tuple[str, str, str], int], cid: str) -> dict[tuple[str, str], int]:
        return {(r, p): n for (c, r, p), n in usage.items() if c == cid}

    def purchases(self, tx: Tx, items: Sequence[PurchaseIn]) -> list[PurchaseResult]:
        """Post purchases: pending points (or available when the rule set has
        no return window), one lot each. A purchase already posted (same order
        id, by any path) is answered, not posted again."""
        rules = self.rules.current
        order_ids = list({p.order_id for p in items})
        known = {
            r["order_id"]: r
            for r in tx.s.execute(
                sa.select(t.order).where(tx._in(t.order.c.order_id, order_ids))
            ).mappings()
        }
        owners = tx.lock_owners(p.customer_id for p in items)
        usage = self._cap_usage(tx, rules, list(owners.values()), engagement=False)
        results: list[PurchaseResult] = []
        touched: set[str] = set()
        new_orders: list[dict[str, Any]] = []
        window = timedelta(days=rules.return_window_days)
        for p in items:
            row = known.get(p.order_id)
            if row is not None and row["purchased"]:
                results.append(
                    PurchaseResult(row["lot_id"], int(row["points"]), False, tx.now, None, True)
                )
                continue
            cid = owners[p.customer_id]
            acct = tx.accounts[cid]
            earning = evaluate_purchase(
                rules,
                Purchase(p.currency, p.lines, p.channel, p.occurred_at),
                acct.tier or rules.tiers[0].id,
                self._usage_of(usage, cid),
            )
            self._use_caps(tx, rules, usage, cid, earning, p.occurred_at)
            total = sum(li.amount for li in p.lines)
            lot_id = new_id()
            activates = p.occurred_at + window
            pending = rules.return_window_days > 0 and activates > tx.now
            pts = earning.points
            if pts:
                posted = tx.post(
                    Kind.PENDING if pending else Kind.EARN,
                    cid,
                    f"purchase:{p.order_id}",
                    pending=pts if pending else 0,
                    available=0 if pending else pts,
                    score=earning.base_points,
                    reference_id=p.order_id,
                    cause_event_id=p.cause_event_id,
                    rule_ids=earning.rule_ids,
                    description=f"Purchase {p.order_id}",
                    posting_id=lot_id,
                    occurred_at=p.occurred_at,
                )
                tx.new_lot(
                    lot_id,
                    cid,
                    pts,
                    origin="purchase",
                    reference_id=p.order_id,
                    earned_at=p.occurred_at,
                    activates_at=activates if pending else tx.now,
                    expires_at=(activates if pending else tx.now)
                    + timedelta(days=rules.expiry_days),
                    pending=pending,
                )
                if pending:
                    tx.stage(
                        ev.POINTS_PENDING,
                        epb.PointsPending(
                            entry_id=lot_id,
                            customer_id=cid,
                            points=pts,
                            reference_id=p.order_id,
                            rule_ids=earning.rule_ids,
                            activates_at=ts(activates),
                            cause_event_id=p.cause_event_id,
                        ),
                        cid,
                    )
                else:
                    tx.pay_debt(cid, lot_id, pts)
                    self._earned_event(
                        tx,
                        posted,
                        p.order_id,
                        p.cause_event_id,
                        activates + timedelta(days=rules.expiry_days),
                    )
                touched.add(cid)
            values = {
                "customer_id": cid,
                "purchased": True,
                "currency": p.currency,
                "total": total,
                "points": pts,
                "base_points": earning.base_points,
                "lot_id": lot_id if pts else "",
                "ordered_at": p.occurred_at,
            }
            if row is None:
                new_orders.append(
                    {
                        **values,
                        "order_id": p.order_id,
                        "refunded": 0,
                        "reversed_points": 0,
                        "reversed_base": 0,
                    }
                )
                known[p.order_id] = new_orders[-1]
            else:
                # A return came first: post the purchase, then what it reversed.
                tx.s.execute(
                    t.order.update().where(t.order.c.order_id == p.order_id).values(**values)
                )
                tx.flush_lots()
                self._reverse_order(tx, p.order_id, f"late:{p.order_id}", "", p.occurred_at)
            results.append(PurchaseResult(lot_id, pts, pending, activates, earning, False))
        # One multi-row insert (COPY on PostgreSQL) for the batch's orders.
        bulk_insert(tx.s, t.order, new_orders)
        self.evaluate_tiers(tx, touched)
        return results

    def _earned_event(
        self, tx: Tx, posted: Posted, reference: str, cause: str, expires: datetime
    ) -> None:
        tx.stage(
            ev.POINTS_EARNED,
            epb.PointsEarned(
                entry_id=posted.posting_id,
                customer_id=posted.customer_id,
                points=posted.available,
                balance_after=posted.available_after,
                reference_id=reference,
                rule_ids=posted.rule_ids,
                earned_at=ts(posted.occurred_at),
                expires_at=ts(expires),
                cause_event_id=cause,
            ),
            posted.customer_id,
        )

    # -- returns -----------------------------------------------------------------
    def returns(self, tx: Tx, items: Sequence[ReturnIn]) -> list[int]:
        """Reverse the share of each order's points its refunds cover. A
        return of an order not seen yet is kept and applied when it arrives."""
        out: list[int] = []
        for r in items:
            key = f"return:{r.order_id}:{r.cause}"
            if tx.existing_keys([key]):
                out.append(0)
                continue
            row = (
                tx.s.execute(sa.select(t.order).where(t.order.c.order_id == r.order_id))
                .mappings()
                .first()
            )
            if row is None:
                cid = tx.survivor(r.customer_id)
                tx.lock([cid])
                tx.s.execute(
                    t.order.insert().values(
                        order_id=r.order_id,
                        customer_id=cid,
                        purchased=False,
                        currency="",
                        total=0,
                        points=0,
                        base_points=0,
                        lot_id="",
                        refunded=r.refunded if r.refunded is not None else -1,
                        ordered_at=r.occurred_at,
                    )
                )
                # Records the return itself (exactly once), no points yet.
                tx.post(
                    Kind.REVERSE,
                    cid,
                    key,
                    reference_id=r.order_id,
                    cause_event_id=r.cause,
                    description=f"Return {r.order_id} (before its purchase)",
                )
                out.append(0)
                continue
            tx.lock([row["customer_id"]])
            refunded = int(row["refunded"])
            if refunded >= 0:
                refunded = refunded + r.refunded if r.refunded is not None else -1
            tx.s.execute(
                t.order.update().where(t.order.c.order_id == r.order_id).values(refunded=refunded)
            )
            out.append(self._reverse_order(tx, r.order_id, key, r.cause, r.occurred_at, r.policy))
        return out

    def _reverse_order(
        self, tx: Tx, order_id: str, key: str, cause: str, when: datetime, policy: str = ""
    ) -> int:
        row = (
            tx.s.execute(sa.select(t.order).where(t.order.c.order_id == order_id)).mappings().one()
        )
        cid = row["customer_id"]
        tx.lock([cid])
        total, points, base = int(row["total"]), int(row["points"]), int(row["base_points"])
        refunded = int(row["refunded"])
        cum = total if refunded < 0 else min(refunded, total)
        target = return_target(points, total, cum)
        base_target = return_target(base, total, cum)
        delta = target - int(row["reversed_points"])
        base_delta = base_target - int(row["reversed_base"])
        rules = self.rules.current
        pol = ReturnPolicy(policy or rules.return_policy)
        acct = tx.accounts[cid]
        lot_pending = lot_active = 0
        lot_state = ""
        if row["lot_id"]:
            tx.flush_lots()
            lot = tx.s.execute(
                sa.select(t.lot.c.state, t.lot.c.remaining).where(t.lot.c.lot_id == row["lot_id"])
            ).first()
            if lot is not None:
                lot_state = lot[0]
                if lot_state == "pending":
                    lot_pending = int(lot[1])
                elif lot_state == "active":
                    lot_active = int(lot[1])
        plan = plan_reversal(
            max(delta, 0),
            lot_pending=lot_pending,
            lot_active=lot_active,
            other_available=acct.available - lot_active,
            policy=pol,
        )
        if plan.from_pending or plan.from_lot:
            tx.s.execute(
                t.lot.update()
                .where(t.lot.c.lot_id == row["lot_id"])
                .values(remaining=t.lot.c.remaining - (plan.from_pending + plan.from_lot))
            )
        if plan.from_others:
            tx.take_from_lots(
                allocate(tx.active_lots(cid, exclude=row["lot_id"]), plan.from_others)
            )
        if plan.debt:
            acct.debt += plan.debt
            acct.dirty = True
        taken = plan.from_lot + plan.from_others + plan.debt
        posted = tx.post(
            Kind.REVERSE,
            cid,
            key,
            available=-taken,
            pending=-plan.from_pending,
            score=-max(base_delta, 0),
            reference_id=order_id,
            cause_event_id=cause,
            description=f"Return {order_id}"
            + (f" ({plan.forgiven} not taken back: {pol.value})" if plan.forgiven else ""),
            reverses=row["lot_id"] or None,
            occurred_at=when,
        )
        tx.s.execute(
            t.order.update()
            .where(t.order.c.order_id == order_id)
            .values(reversed_points=target, reversed_base=base_target)
        )
        n = taken + plan.from_pending
        if n:
            tx.stage(
                ev.POINTS_REVERSED,
                epb.PointsReversed(
                    entry_id=posted.posting_id,
                    customer_id=cid,
                    points=n,
                    balance_after=posted.available_after,
                    reversed_entry_id=row["lot_id"],
                    reason=epb.REVERSAL_REASON_RETURN,
                    reversed_at=ts(when),
                    cause_event_id=cause,
                ),
                cid,
            )
        return n

    # -- engagement, goodwill, offers -------------------------------------------
    def activities(self, tx: Tx, items: Sequence[ActivityIn]) -> list[int]:
        rules = self.rules.current
        keys = [f"activity:{a.cause}" for a in items]
        done = tx.existing_keys(keys)
        todo = [a for a, k in zip(items, keys, strict=True) if k not in done]
        owners = tx.lock_owners(a.customer_id for a in todo)
        usage = self._cap_usage(tx, rules, list(owners.values()), engagement=True)
        out: list[int] = []
        touched: set[str] = set()
        seen: set[str] = set()
        for a in todo:
            key = f"activity:{a.cause}"
            if key in seen:
                continue
            seen.add(key)
            cid = owners[a.customer_id]
            if a.activity == "birthday" and not birthdays.claim(
                tx, cid, birthdays.year_of(a.occurred_at, self.birthday_zone)
            ):
                out.append(0)  # this year's birthday reward was granted already
                continue
            earning = evaluate_activity(
                rules,
                a.activity,
                a.occurred_at,
                text_length=a.text_length,
                usage=self._usage_of(usage, cid),
            )
            self._use_caps(tx, rules, usage, cid, earning, a.occurred_at)
            if earning.points <= 0:
                out.append(0)
                continue
            score = int(
                (Decimal(earning.points) * rules.engagement_weight).to_integral_value(ROUND_FLOOR)
            )
            self.credit(
                tx,
                cid,
                earning.points,
                key,
                origin=a.activity,
                reference=a.reference_id or a.activity,
                cause=a.cause,
                rule_ids=earning.rule_ids,
                score=score,
            )
            touched.add(cid)
            out.append(earning.points)
        self.evaluate_tiers(tx, touched)
        return out

    def credit(
        self,
        tx: Tx,
        cid: str,
        points: int,
        key: str,
        *,
        origin: str,
        reference: str,
        cause: str = "",
        rule_ids: Sequence[str] = (),
        score: int = 0,
        kind: Kind = Kind.EARN,
    ) -> Posted:
        """Points available at once, in a new lot."""
        tx.lock([cid])
        rules = self.rules.current
        lot_id = str(uuid.uuid4())
        posted = tx.post(
            kind,
            cid,
            key,
            available=points,
            score=score,
            reference_id=reference,
            cause_event_id=cause,
            rule_ids=rule_ids,
            description=origin.replace("_", " "),
            posting_id=lot_id,
        )
        expires = tx.now + timedelta(days=rules.expiry_days)
        tx.new_lot(
            lot_id,
            cid,
            points,
            origin=origin,
            reference_id=reference,
            earned_at=tx.now,
            activates_at=tx.now,
            expires_at=expires,
            pending=False,
        )
        tx.pay_debt(cid, lot_id, points)
        self._earned_event(tx, posted, reference, cause, expires)
        return posted

    def debit(
        self,
        tx: Tx,
        cid: str,
        points: int,
        key: str,
        *,
        kind: Kind,
        reference: str,
        description: str,
        cause: str = "",
    ) -> Posted:
        """Take available points, soonest-expiring lots first."""
        tx.lock([cid])
        acct = tx.accounts[cid]
        if acct.available < points:
            raise FailedPrecondition(
                f"points: {points} requested, {max(acct.available, 0)} available"
            )
        tx.take_from_lots(allocate(tx.active_lots(cid), points))
        return tx.post(
            kind,
            cid,
            key,
            available=-points,
            reference_id=reference,
            description=description,
            cause_event_id=cause,
        )

    def goodwill(self, tx: Tx, cid: str, cause: str) -> int:
        key = f"goodwill:{cause}"
        if self.goodwill_points <= 0 or tx.existing_keys([key]):
            return 0
        cid = tx.survivor(cid)
        self.credit(
            tx, cid, self.goodwill_points, key, origin="goodwill", reference=cause, cause=cause
        )
        return self.goodwill_points

    def offer_points(self, tx: Tx, cid: str, points: int, action_id: str, journey: str) -> int:
        key = f"offer:{action_id}"
        if tx.existing_keys([key]):
            return 0
        check_points(points, "parameters.points")
        if points > self.offer_max_points:
            raise InvalidArgument("parameters.points", f"at most {self.offer_max_points}")
        cid = tx.survivor(cid)
        self.credit(
            tx, cid, points, key, origin="offer", reference=journey or action_id, cause=action_id
        )
        return points

    def adjust(self, tx: Tx, cid: str, points: int, key: str, reason: str) -> Posted:
        check_points(points, allow_negative=True)
        if not reason.strip():
            raise InvalidArgument("reason", "is required for a manual adjustment")
        cid = tx.survivor(cid)
        existing = tx.s.execute(
            sa.select(t.posting.c.posting_id, t.posting.c.customer_id).where(
                t.posting.c.idempotency_key == key
            )
        ).first()
        if existing is not None:
            tx.lock([existing[1]])
            return Posted(
                existing[0],
                existing[1],
                Kind.ADJUST,
                points,
                0,
                0,
                tx.accounts[existing[1]].available,
                tx.now,
            )
        if points > 0:
            return self.credit(
                tx, cid, points, key, origin="adjustment", reference="manual", kind=Kind.ADJUST
            )
        return self.debit(
            tx,
            cid,
            -points,
            key,
            kind=Kind.ADJUST,
            reference="manual",
            description=f"Correction: {reason[:150]}",
        )

    # -- redemption (two phases) -------------------------------------------------
    def _reservation(
        self, row: sa.RowMapping, available_after: int, posting_id: str = ""
    ) -> Reservation:
        return Reservation(
            row["redemption_id"],
            row["customer_id"],
            int(row["points"]),
            row["reward_id"],
            row["status"],
            aware(row["expires_at"]) or row["expires_at"],
            posting_id,
            available_after,
        )

    def check_redeem(self, points: int, reward_id: str, idem: str, hold_seconds: int) -> None:
        """A redemption's own fields (no I/O): checked before it queues."""
        check_points(points)
        if not idem.strip():
            raise InvalidArgument("idempotency_key", "is required")
        if hold_seconds < 0 or hold_seconds > 86_400:
            raise InvalidArgument("hold_seconds", "must be between 0 and 86400")
        reward = self.rules.current.reward(reward_id) if reward_id else None
        if reward is not None and points != reward.points:
            raise InvalidArgument("points", f"reward {reward_id!r} costs {reward.points} points")

    def reserve_group(
        self, tx: Tx, cid: str, items: Sequence[RedeemIn]
    ) -> list[Reservation | Exception]:
        """Reserve for one member the calls that queued together (group
        commit, ADR 0070): one row lock, one statement writing them all, one
        commit. Each call is decided in arrival order against the balance left
        by those before it and gets its own answer: its reservation, the one
        already stored under its idempotency key, or why it was refused."""
        if not tx.pg or any(self._limited(i.reward_id) for i in items):
            # Limited rewards take a unit of stock or count the member's
            # redemptions per call: the general path.
            return self._reserve_each(tx, items)
        locked = lock_for_reservations(tx.s, cid, [i.idempotency_key for i in items])
        if locked is None or locked[1]:
            # No account yet (nothing to spend), or merged into another member.
            return self._reserve_each(tx, items)
        available, _, held = locked
        if sum(i.points for i in items) > available:
            # Some may be refused: first learn of every key stored before the
            # lock was taken (another replica's group may have just committed).
            held = held_redemptions(tx.s, [i.idempotency_key for i in items])
        out: list[Reservation | Exception] = []
        new: list[NewReservation] = []
        first: dict[str, int] = {}
        for it in items:
            key = it.idempotency_key
            if key in first:  # the same call twice in one group: one answer
                out.append(out[first[key]])
                continue
            first[key] = len(out)
            h = held.get(key)
            if h is not None:
                after = available if h.customer_id == cid else self._available(tx, h.customer_id)
                out.append(
                    Reservation(
                        h.redemption_id,
                        h.customer_id,
                        h.points,
                        h.reward_id,
                        h.status,
                        h.expires_at,
                        "",
                        after,
                    )
                )
                continue
            if available < it.points:
                out.append(
                    FailedPrecondition(
                        f"points: {it.points} requested, {max(available, 0)} available"
                    )
                )
                continue
            available -= it.points
            r = NewReservation(
                str(uuid.uuid4()),
                new_id(),
                it.points,
                it.reward_id,
                key,
                tx.now + timedelta(seconds=it.hold_seconds or self.hold_seconds),
            )
            new.append(r)
            out.append(
                Reservation(
                    r.redemption_id,
                    cid,
                    r.points,
                    r.reward_id,
                    "reserved",
                    r.expires_at,
                    r.posting_id,
                    available,
                )
            )
        reserve_many(tx.s, cid, new, tx.now)
        return out

    def _stocked(self, reward_id: str) -> Reward | None:
        reward = self.rules.current.reward(reward_id) if reward_id else None
        return reward if reward is not None and reward.stock is not None else None

    def _limited(self, reward_id: str) -> Reward | None:
        """The catalogue reward if it has stock or per-member limits."""
        reward = self.rules.current.reward(reward_id) if reward_id else None
        if reward is not None and (reward.stock is not None or reward.limits):
            return reward
        return None

    @staticmethod
    def _check_member_limits(tx: Tx, cid: str, reward: Reward) -> None:
        """FailedPrecondition naming the limit when the member (with the
        members merged into it) already holds ``max`` open or confirmed
        redemptions of the reward in the period. Called with the member's
        account row locked: every redemption of the member takes that lock
        first, so the count cannot change before this transaction commits —
        two concurrent calls (in one replica or two) cannot both pass."""
        if not reward.limits:
            return
        merged_in = sa.select(t.account.c.customer_id).where(
            t.account.c.merged_into != "", t.account.c.merged_into == cid
        )
        rows = [
            aware(r[0]) or r[0]
            for r in tx.s.execute(
                sa.select(t.redemption.c.reserved_at).where(
                    sa.or_(
                        t.redemption.c.customer_id == cid,
                        t.redemption.c.customer_id.in_(merged_in),
                    ),
                    t.redemption.c.reward_id == reward.id,
                    t.redemption.c.status.in_(("reserved", "confirmed")),
                )
            )
        ]
        for lim in reward.limits:
            start = period_start(lim.period, tx.now)
            used = sum(1 for at in rows if start is None or at >= start)
            if used >= lim.max:
                when = "" if start is None else f" this {lim.period}"
                raise FailedPrecondition(
                    f"reward_id: {reward.id!r} is limited to {lim.describe()}"
                    f" ({used} already{when})"
                )

    @staticmethod
    def _take_stock(tx: Tx, reward: Reward) -> None:
        """One unit of a limited reward, or FailedPrecondition: a conditional
        upsert on the reward's row (concurrent takers queue on its row lock
        and each re-checks the count it finds), never above the stock."""
        stock = reward.stock or 0
        if stock > 0:
            insert = pg_insert if tx.pg else sqlite_insert
            taken = tx.s.execute(
                insert(t.reward_stock)
                .values(reward_id=reward.id, taken=1)
                .on_conflict_do_update(
                    index_elements=[t.reward_stock.c.reward_id],
                    set_={"taken": t.reward_stock.c.taken + 1},
                    where=t.reward_stock.c.taken < stock,
                )
                .returning(t.reward_stock.c.taken)
            ).first()
            if taken is not None:
                return
        raise FailedPrecondition(f"reward_id: {reward.id!r} is out of stock")

    def stock_left(self, tx: Tx, reward_id: str) -> int | None:
        """Units of a limited reward still free (None: unlimited or unknown)."""
        reward = self._stocked(reward_id)
        if reward is None or reward.stock is None:
            return None
        taken = tx.s.execute(
            sa.select(t.reward_stock.c.taken).where(t.reward_stock.c.reward_id == reward_id)
        ).scalar()
        return max(reward.stock - int(taken or 0), 0)

    def _reserve_each(self, tx: Tx, items: Sequence[RedeemIn]) -> list[Reservation | Exception]:
        out: list[Reservation | Exception] = []
        for it in items:
            try:
                out.append(
                    self.reserve(
                        tx,
                        it.customer_id,
                        it.points,
                        it.reward_id,
                        it.idempotency_key,
                        it.hold_seconds,
                    )
                )
            except (FailedPrecondition, InvalidArgument) as exc:
                out.append(exc)
        return out

    @staticmethod
    def _available(tx: Tx, cid: str) -> int:
        n = tx.s.execute(
            sa.select(t.account.c.available).where(t.account.c.customer_id == cid)
        ).scalar()
        return int(n or 0)

    def _held(self, tx: Tx, idem: str) -> Reservation | None:
        """The reservation stored under ``idem``, its member locked; None if none."""
        row = (
            tx.s.execute(sa.select(t.redemption).where(t.redemption.c.idempotency_key == idem))
            .mappings()
            .first()
        )
        if row is None:
            return None
        tx.lock([row["customer_id"]])
        return self._reservation(row, tx.accounts[row["customer_id"]].available)

    def reserve(
        self, tx: Tx, cid: str, points: int, reward_id: str, idem: str, hold_seconds: int = 0
    ) -> Reservation:
        self.check_redeem(points, reward_id, idem, hold_seconds)
        cid = tx.survivor(cid)
        # Before the lock: a retry is answered without queueing behind others
        # (the unique key catches two first attempts racing).
        if (held := self._held(tx, idem)) is not None:
            return held
        expires = tx.now + timedelta(seconds=hold_seconds or self.hold_seconds)
        stocked = self._stocked(reward_id)
        limited = self._limited(reward_id)
        if tx.pg and cid not in tx.accounts and limited is None:
            rid, pid = str(uuid.uuid4()), str(uuid.uuid4())
            after = reserve_fast(
                tx.s,
                cid,
                points,
                redemption_id=rid,
                posting_id=pid,
                reward_id=reward_id,
                idem=idem,
                now=tx.now,
                expires=expires,
            )
            if after is not None:
                return Reservation(rid, cid, points, reward_id, "reserved", expires, pid, after)
            tx.lock([cid])  # too few points (or no account): say how many there are
        tx.lock([cid])
        acct = tx.accounts[cid]
        if limited is not None and limited.limits:
            try:
                self._check_member_limits(tx, cid, limited)
            except FailedPrecondition:
                # As below: a call another replica stored meanwhile is answered.
                if (held := self._held(tx, idem)) is not None:
                    return held
                raise
        if acct.available < points:
            # This very call may have been stored by another replica between
            # the look-up above and the lock (a retry sent elsewhere while
            # the first attempt was still running): answer with it, never
            # refuse a call that was granted.
            if (held := self._held(tx, idem)) is not None:
                return held
            raise FailedPrecondition(
                f"points: {points} requested, {max(acct.available, 0)} available"
            )
        plan = allocate(tx.active_lots(cid), points)
        if stocked is not None:
            self._take_stock(tx, stocked)  # last check, before anything is written
        tx.take_from_lots(plan)
        rid = str(uuid.uuid4())
        posted = tx.post(
            Kind.RESERVE,
            cid,
            f"reserve:{rid}",
            available=-points,
            reserved=points,
            reference_id=rid,
            description=f"Reserved for {reward_id or 'checkout'}",
        )
        values = {
            "redemption_id": rid,
            "customer_id": cid,
            "points": points,
            "reward_id": reward_id[:64],
            "status": "reserved",
            "idempotency_key": idem[:200],
            "allocations": json.dumps(plan),
            "reserved_at": tx.now,
            "expires_at": expires,
            "stock_taken": stocked is not None,
        }
        tx.s.execute(t.redemption.insert().values(**values))
        return Reservation(
            rid,
            cid,
            points,
            reward_id,
            "reserved",
            expires,
            posted.posting_id,
            posted.available_after,
        )

    def _open(self, tx: Tx, redemption_id: str) -> sa.RowMapping:
        row = tx.s.execute(
            sa.select(t.redemption.c.customer_id).where(
                t.redemption.c.redemption_id == redemption_id
            )
        ).first()
        if row is None:
            raise NotFound(f"redemption_id: no redemption {redemption_id!r}")
        tx.lock([row[0]])
        return (
            tx.s.execute(
                sa.select(t.redemption).where(t.redemption.c.redemption_id == redemption_id)
            )
            .mappings()
            .one()
        )

    def confirm(self, tx: Tx, redemption_id: str) -> Reservation:
        row = self._open(tx, redemption_id)
        cid = row["customer_id"]
        if row["status"] == "confirmed":
            done = self._reservation(row, tx.accounts[cid].available)
            return replace(done, coupon=self._reward_coupon(tx, row))
        if row["status"] != "reserved":
            raise FailedPrecondition(f"redemption_id: the reservation is {row['status']}")
        n = int(row["points"])
        posted = tx.post(
            Kind.REDEEM,
            cid,
            f"redeem:{redemption_id}",
            reserved=-n,
            reference_id=redemption_id,
            description=f"Redeemed for {row['reward_id'] or 'checkout'}",
        )
        tx.s.execute(
            t.redemption.update()
            .where(t.redemption.c.redemption_id == redemption_id)
            .values(status="confirmed", closed_at=tx.now)
        )
        tx.stage(
            ev.POINTS_REDEEMED,
            epb.PointsRedeemed(
                entry_id=posted.posting_id,
                customer_id=cid,
                points=n,
                balance_after=posted.available_after,
                redemption_id=redemption_id,
                reward_id=row["reward_id"],
                redeemed_at=ts(tx.now),
            ),
            cid,
        )
        return Reservation(
            redemption_id,
            cid,
            n,
            row["reward_id"],
            "confirmed",
            aware(row["expires_at"]) or tx.now,
            posted.posting_id,
            posted.available_after,
            self._reward_coupon(tx, row),
        )

    def _reward_coupon(self, tx: Tx, row: sa.RowMapping) -> sa.RowMapping | None:
        """The catalogue reward's coupon: issued once per redemption."""
        reward = self.rules.current.reward(row["reward_id"]) if row["reward_id"] else None
        if reward is None or (reward.amount_off is None and reward.percent_off_bp is None):
            return None
        return self.issue_coupon(
            tx,
            row["customer_id"],
            reward_id=reward.id,
            title=reward.title,
            amount_off=reward.amount_off,
            percent_off_bp=reward.percent_off_bp,
            currency=reward.currency,
            minimum_spend=reward.minimum_spend,
            valid_days=reward.valid_days,
            max_uses=1,
            campaign_id="",
            idem=f"redemption:{row['redemption_id']}",
            cause=row["redemption_id"],
        )

    def cancel(self, tx: Tx, redemption_id: str, *, status: str = "cancelled") -> Reservation:
        row = self._open(tx, redemption_id)
        cid = row["customer_id"]
        if row["status"] in ("cancelled", "expired"):
            return self._reservation(row, tx.accounts[cid].available)
        if row["status"] != "reserved":
            raise FailedPrecondition(f"redemption_id: the reservation is {row['status']}")
        n = int(row["points"])
        tx.give_to_lots([(str(a), int(b)) for a, b in json.loads(row["allocations"])])
        if row["stock_taken"]:
            # The unit goes back to the reward's stock (once: the status
            # changes in this transaction, under the member's lock).
            tx.s.execute(
                t.reward_stock.update()
                .where(t.reward_stock.c.reward_id == row["reward_id"])
                .values(taken=t.reward_stock.c.taken - 1)
            )
        posted = tx.post(
            Kind.RELEASE,
            cid,
            f"release:{redemption_id}",
            available=n,
            reserved=-n,
            reference_id=redemption_id,
            description="Reservation " + status,
        )
        tx.s.execute(
            t.redemption.update()
            .where(t.redemption.c.redemption_id == redemption_id)
            .values(status=status, closed_at=tx.now)
        )
        return Reservation(
            redemption_id,
            cid,
            n,
            row["reward_id"],
            status,
            aware(row["expires_at"]) or tx.now,
            posted.posting_id,
            posted.available_after,
        )

    # -- scheduled work -------------------------------------------------------------
    def release_expired_reservations(self, tx: Tx, limit: int = 200) -> int:
        ids = [
            r[0]
            for r in tx.s.execute(
                sa.select(t.redemption.c.redemption_id)
                .where(t.redemption.c.status == "reserved", t.redemption.c.expires_at <= tx.now)
                .limit(limit)
            )
        ]
        for rid in ids:
            self.cancel(tx, rid, status="expired")
        return len(ids)

    def activate_due(self, tx: Tx, limit: int = 500) -> int:
        rows = list(
            tx.s.execute(
                sa.select(t.lot.c.lot_id, t.lot.c.customer_id)
                .where(t.lot.c.state == "pending", t.lot.c.activates_at <= tx.now)
                .order_by(t.lot.c.activates_at)
                .limit(limit)
            )
        )
        if not rows:
            return 0
        tx.lock(r[1] for r in rows)
        n = 0
        for lot_id, _ in rows:
            lot = tx.s.execute(sa.select(t.lot).where(t.lot.c.lot_id == lot_id)).mappings().one()
            if lot["state"] != "pending":  # another replica was first
                continue
            cid, rem = lot["customer_id"], int(lot["remaining"])
            tx.s.execute(
                t.lot.update()
                .where(t.lot.c.lot_id == lot_id)
                .values(state="active" if rem else "closed")
            )
            if not rem:
                continue
            posted = tx.post(
                Kind.ACTIVATE,
                cid,
                f"activate:{lot_id}",
                available=rem,
                pending=-rem,
                reference_id=lot["reference_id"],
                description=f"Points for {lot['reference_id']} available",
            )
            tx.pay_debt(cid, lot_id, rem)
            tx.stage(
                ev.POINTS_ACTIVATED,
                epb.PointsActivated(
                    entry_id=posted.posting_id,
                    customer_id=cid,
                    points=rem,
                    balance_after=posted.available_after,
                    lot_id=lot_id,
                    activated_at=ts(tx.now),
                    expires_at=ts(aware(lot["expires_at"]) or tx.now),
                ),
                cid,
            )
            n += 1
        return n

    def expire_due(self, tx: Tx, limit: int = 500) -> int:
        rows = list(
            tx.s.execute(
                sa.select(t.lot.c.lot_id, t.lot.c.customer_id)
                .where(t.lot.c.state == "active", t.lot.c.expires_at <= tx.now)
                .limit(limit)
            )
        )
        if not rows:
            return 0
        tx.lock(r[1] for r in rows)
        by_member: dict[str, list[tuple[str, int]]] = defaultdict(list)
        for lot_id, _ in rows:
            lot = tx.s.execute(
                sa.select(t.lot.c.state, t.lot.c.remaining, t.lot.c.customer_id).where(
                    t.lot.c.lot_id == lot_id
                )
            ).one()
            if lot[0] != "active":
                continue
            tx.s.execute(
                t.lot.update().where(t.lot.c.lot_id == lot_id).values(state="closed", remaining=0)
            )
            if int(lot[1]) > 0:
                by_member[lot[2]].append((lot_id, int(lot[1])))
        for cid, lots in by_member.items():
            pts = sum(n for _, n in lots)
            posted = tx.post(
                Kind.EXPIRE,
                cid,
                f"expire:{lots[0][0]}:{uuid.uuid4()}",
                available=-pts,
                description="Points expired",
            )
            tx.stage(
                ev.POINTS_EXPIRED,
                epb.PointsExpired(
                    entry_id=posted.posting_id,
                    customer_id=cid,
                    points=pts,
                    balance_after=posted.available_after,
                    lot_ids=[i for i, _ in lots],
                    expired_at=ts(tx.now),
                ),
                cid,
            )
        return len(rows)

    def notify_expiring(self, tx: Tx, within_days: int, limit: int = 1000) -> int:
        horizon = tx.now + timedelta(days=within_days)
        rows = list(
            tx.s.execute(
                sa.select(
                    t.lot.c.lot_id, t.lot.c.customer_id, t.lot.c.remaining, t.lot.c.expires_at
                )
                .where(
                    t.lot.c.state == "active",
                    t.lot.c.notified.is_(False),
                    t.lot.c.remaining > 0,
                    t.lot.c.expires_at <= horizon,
                )
                .limit(limit)
            )
        )
        by_member: dict[str, list[sa.Row[tuple[str, str, int, datetime]]]] = defaultdict(list)
        for r in rows:
            by_member[r[1]].append(r)
        for cid, lots in by_member.items():
            tx.stage(
                ev.POINTS_EXPIRING,
                epb.PointsExpiring(
                    customer_id=cid,
                    points=sum(int(r[2]) for r in lots),
                    expires_at=ts(min(aware(r[3]) or tx.now for r in lots)),
                    lot_ids=[r[0] for r in lots],
                ),
                cid,
            )
        if rows:
            tx.s.execute(
                t.lot.update()
                .where(tx._in(t.lot.c.lot_id, [r[0] for r in rows]))
                .values(notified=True)
            )
        return len(by_member)

    def grant_birthdays(self, tx: Tx, limit: int = 500) -> int:
        """Today's birthday rewards not granted yet (scheduled; replica-safe)."""
        todo = birthdays.due(tx, self.birthday_zone, limit)
        return sum(1 for n in self.activities(tx, todo) if n) if todo else 0

    # -- tiers -----------------------------------------------------------------------
    def scores(self, tx: Tx, cids: Sequence[str]) -> dict[str, int]:
        if not cids:
            return {}
        since = tx.now - timedelta(days=self.rules.current.tier_window_days)
        tx.flush_rows()
        if tx.pg:
            # One statement: the members' own postings and those of members
            # merged into them (a split clears merged_into, and the history
            # goes back with it).
            found = {
                r[0]: int(r[1])
                for r in tx.s.execute(_SCORES, {"ids": json.dumps(list(cids)), "since": since})
            }
            return {c: found.get(c, 0) for c in cids}
        # What members merged into these earned counts for them too (a split
        # clears merged_into, and the history goes back with it).
        aliases = {
            r[0]: r[1]
            for r in tx.s.execute(
                sa.select(t.account.c.customer_id, t.account.c.merged_into).where(
                    # The condition of the partial index (else a scan per batch).
                    t.account.c.merged_into != "",
                    tx._in(t.account.c.merged_into, list(cids)),
                )
            )
        }
        rows = tx.s.execute(
            sa.select(t.posting.c.customer_id, sa.func.coalesce(sa.func.sum(t.posting.c.score), 0))
            .where(
                tx._in(t.posting.c.customer_id, [*cids, *aliases]),
                t.posting.c.occurred_at >= since,
                t.posting.c.score != 0,
            )
            .group_by(t.posting.c.customer_id)
        )
        got: dict[str, int] = {}
        for who, score in rows:
            owner = aliases.get(who, who)
            got[owner] = got.get(owner, 0) + int(score)
        return {c: got.get(c, 0) for c in cids}

    def evaluate_tiers(self, tx: Tx, cids: set[str] | Sequence[str]) -> None:
        if not cids:
            return
        rules = self.rules.current
        accounts = tx.lock(cids)
        for cid, score in self.scores(tx, sorted(cids)).items():
            self._apply_tier(tx, rules, accounts[cid], score)

    def _apply_tier(self, tx: Tx, rules: RuleSet, acct: Account, score: int) -> None:
        state = TierState(acct.tier, acct.tier_valid_until, acct.tier_grace_until, acct.tier_floor)
        d = decide_tier(rules, state, score, tx.now)
        if d.state == state:
            return
        previous = acct.tier
        acct.tier, acct.tier_valid_until, acct.tier_grace_until = (
            d.state.tier,
            d.state.valid_until,
            d.state.grace_until,
        )
        acct.tier_dirty = True
        if d.change:
            msg = epb.TierChanged(
                customer_id=acct.customer_id,
                previous_tier=previous,
                new_tier=d.state.tier,
                direction=epb.TIER_CHANGE_DIRECTION_UPGRADE
                if d.change == "upgrade"
                else epb.TIER_CHANGE_DIRECTION_DOWNGRADE,
                changed_at=ts(tx.now),
            )
            if d.state.valid_until is not None:
                msg.valid_until.CopyFrom(ts(d.state.valid_until))
            tx.stage(ev.TIER_CHANGED, msg, acct.customer_id)

    def review_tiers(self, tx: Tx, limit: int = 500) -> int:
        """Members whose tier cycle (or grace) ended: renew, start grace, or
        downgrade."""
        due = [
            r[0]
            for r in tx.s.execute(
                sa.select(t.account.c.customer_id)
                .where(
                    t.account.c.merged_into == "",
                    t.account.c.tier != "",
                    sa.or_(
                        t.account.c.tier_valid_until <= tx.now,
                        t.account.c.tier_grace_until <= tx.now,
                    ),
                )
                .limit(limit)
            )
        ]
        if due:
            tx.lock(due)
            self.evaluate_tiers(tx, due)
        return len(due)

    def set_tier_floor(self, tx: Tx, cid: str, tier: str) -> str:
        rules = self.rules.current
        if tier and rules.tier(tier) is None:
            raise InvalidArgument(
                "tier", f"unknown tier; known: {', '.join(x.id for x in rules.tiers)}"
            )
        cid = tx.survivor(cid)
        acct = tx.lock([cid])[cid]
        acct.tier_floor = tier
        acct.tier_dirty = True
        if tier and rules.tier_rank(acct.tier) < rules.tier_rank(tier):
            # The floor lifts at once; a lower floor takes effect at cycle end.
            acct.tier_valid_until = tx.now
        self.evaluate_tiers(tx, [cid])
        return acct.tier

    # -- coupons -------------------------------------------------------------------------
    def issue_coupon(
        self,
        tx: Tx,
        cid: str,
        *,
        reward_id: str,
        title: str,
        amount_off: int | None,
        percent_off_bp: int | None,
        currency: str,
        minimum_spend: int,
        valid_days: int,
        max_uses: int,
        campaign_id: str,
        idem: str,
        cause: str = "",
        max_per_customer: int = 0,
    ) -> sa.RowMapping:
        if not cid:
            raise InvalidArgument("customer_id", "is required")
        if (amount_off is None) == (percent_off_bp is None):
            raise InvalidArgument(
                "discount", "set exactly one of amount_off_minor_units, percent_off_basis_points"
            )
        if amount_off is not None and not 0 < amount_off <= 10**10:
            raise InvalidArgument("amount_off_minor_units", "must be positive and plausible")
        if amount_off is not None and not currency:
            raise InvalidArgument("currency_code", "is required with amount_off_minor_units")
        if percent_off_bp is not None and not 0 < percent_off_bp <= 10_000:
            raise InvalidArgument("percent_off_basis_points", "must be 1 to 10000")
        if not 0 <= valid_days <= 3650:
            raise InvalidArgument("valid_days", "must be 0 to 3650")
        if not 0 <= max_uses <= MAX_COUPON_USES:
            raise InvalidArgument("max_uses", f"must be 0 to {MAX_COUPON_USES}")
        if minimum_spend < 0:
            raise InvalidArgument("minimum_spend_minor_units", "must not be negative")
        idem = idem or str(uuid.uuid4())
        found = (
            tx.s.execute(sa.select(t.coupon).where(t.coupon.c.idempotency_key == idem[:200]))
            .mappings()
            .first()
        )
        if found is not None:
            return found
        cid = tx.survivor(cid)
        if max_per_customer < 0:
            raise InvalidArgument("max_per_customer", "must not be negative")
        if max_per_customer:
            if not campaign_id:
                raise InvalidArgument("campaign_id", "is required with max_per_customer")
            tx.lock([cid])  # two issues at once cannot both take the last one
            held = tx.s.execute(
                sa.select(sa.func.count())
                .select_from(t.coupon)
                .where(t.coupon.c.customer_id == cid, t.coupon.c.campaign_id == campaign_id[:64])
            ).scalar_one()
            if held >= max_per_customer:
                raise FailedPrecondition(
                    f"max_per_customer: the member already holds {held} of campaign {campaign_id!r}"
                )
        coupon_id = str(uuid.uuid4())
        code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(12))
        values = {
            "coupon_id": coupon_id,
            "code": code,
            "customer_id": cid,
            "reward_id": reward_id[:64],
            "title": title[:200],
            "amount_off": amount_off,
            "percent_off_bp": percent_off_bp,
            "currency": currency,
            "minimum_spend": minimum_spend,
            "max_uses": max_uses or 1,
            "uses": 0,
            "status": "active",
            "campaign_id": campaign_id[:64],
            "idempotency_key": idem[:200],
            "issued_at": tx.now,
            "expires_at": tx.now + timedelta(days=valid_days or self.coupon_valid_days),
            "used_at": None,
        }
        tx.s.execute(t.coupon.insert().values(**values))
        tx.stage(
            ev.COUPON_ISSUED,
            epb.CouponIssued(
                coupon_id=coupon_id,
                customer_id=cid,
                reward_id=reward_id,
                campaign_id=campaign_id,
                issued_at=ts(tx.now),
                expires_at=ts(values["expires_at"]),
                cause_id=cause or idem,
            ),
            cid,
        )
        return (
            tx.s.execute(sa.select(t.coupon).where(t.coupon.c.coupon_id == coupon_id))
            .mappings()
            .one()
        )

    def validate_coupon(
        self,
        tx: Tx,
        code: str,
        cid: str,
        order_total: int,
        currency: str,
        redeem: bool,
        order_id: str,
    ) -> tuple[str, sa.RowMapping | None, int]:
        """(reason it does not apply or "", coupon, discount). Using it takes a
        conditional update, so two checkouts cannot both use a last use."""
        if not code.strip():
            raise InvalidArgument("code", "is required")
        if order_total < 0 or order_total > 10**13:
            raise InvalidArgument("order_total_minor_units", "must be 0 or more and plausible")
        if redeem and not order_id:
            raise InvalidArgument("order_id", "is required to use a coupon")
        c = (
            tx.s.execute(sa.select(t.coupon).where(t.coupon.c.code == code.strip().upper()))
            .mappings()
            .first()
        )
        if c is None:
            return "unknown", None, 0
        if cid and tx.survivor(cid) != c["customer_id"]:
            return "other_customer", c, 0
        if redeem:
            used = tx.s.execute(
                sa.select(t.coupon_use.c.discount).where(
                    t.coupon_use.c.coupon_id == c["coupon_id"], t.coupon_use.c.order_id == order_id
                )
            ).first()
            if used is not None:
                return "", c, int(used[0])
        if c["status"] == "revoked":
            return "revoked", c, 0
        if (aware(c["expires_at"]) or tx.now) <= tx.now:
            return "expired", c, 0
        if c["uses"] >= c["max_uses"]:
            return "used", c, 0
        if c["amount_off"] is not None and currency and currency != c["currency"]:
            return "currency", c, 0
        if order_total < c["minimum_spend"]:
            return "minimum_spend", c, 0
        if c["amount_off"] is not None:
            discount = min(int(c["amount_off"]), order_total)
        else:
            discount = order_total * int(c["percent_off_bp"]) // 10_000
        if redeem:
            res = tx.s.execute(
                t.coupon.update()
                .where(
                    t.coupon.c.coupon_id == c["coupon_id"], t.coupon.c.uses < t.coupon.c.max_uses
                )
                .values(
                    uses=t.coupon.c.uses + 1,
                    used_at=tx.now,
                    status=sa.case(
                        (t.coupon.c.uses + 1 >= t.coupon.c.max_uses, "used"), else_="active"
                    ),
                )
            )
            if res.rowcount != 1:  # type: ignore[attr-defined]
                return "used", c, 0
            tx.s.execute(
                t.coupon_use.insert().values(
                    coupon_id=c["coupon_id"],
                    order_id=order_id[:128],
                    discount=discount,
                    used_at=tx.now,
                )
            )
            tx.stage(
                ev.COUPON_REDEEMED,
                epb.CouponRedeemed(
                    coupon_id=c["coupon_id"],
                    customer_id=c["customer_id"],
                    order_id=order_id,
                    discount_minor_units=discount,
                    redeemed_at=ts(tx.now),
                ),
                c["customer_id"],
            )
            c = (
                tx.s.execute(sa.select(t.coupon).where(t.coupon.c.coupon_id == c["coupon_id"]))
                .mappings()
                .one()
            )
        return "", c, discount
