"""gRPC edge of the loyalty service: validate, run a handler in one
transaction, translate back. Errors are cxloop_libs.errors (the server's
interceptor maps them to status codes naming the field)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import sqlalchemy as sa
from cxloop.loyalty.v1 import loyalty_service_pb2 as pb
from cxloop.loyalty.v1 import loyalty_service_pb2_grpc as pb_grpc
from sqlmodel import Session

from cxloop_libs.audit import ANONYMOUS, Action, AuditLog
from cxloop_libs.batching import KeyedRequestBatcher
from cxloop_libs.db import Database, is_transient_db_error
from cxloop_libs.errors import InvalidArgument, NotFound, PermissionDenied, Unavailable
from loyalty.adapters import tables as t
from loyalty.adapters.store import Tx, aware
from loyalty.domain.birthdays import birthday_of
from loyalty.domain.ledger import Kind
from loyalty.domain.money import checked_minor_units, currency
from loyalty.domain.rules import Line, Purchase, evaluate_purchase, parse_rule_set
from loyalty.service_layer import birthdays
from loyalty.service_layer.commands import PurchaseIn, RedeemIn, ReturnIn
from loyalty.service_layer.handlers import LoyaltyHandlers, Reservation, ts

T = TypeVar("T")
KIND_TO_PROTO = {
    Kind.EARN: pb.LEDGER_ENTRY_KIND_EARN,
    Kind.PENDING: pb.LEDGER_ENTRY_KIND_PENDING,
    Kind.ACTIVATE: pb.LEDGER_ENTRY_KIND_ACTIVATE,
    Kind.RESERVE: pb.LEDGER_ENTRY_KIND_RESERVE,
    Kind.RELEASE: pb.LEDGER_ENTRY_KIND_RELEASE,
    Kind.REDEEM: pb.LEDGER_ENTRY_KIND_REDEEM,
    Kind.EXPIRE: pb.LEDGER_ENTRY_KIND_EXPIRE,
    Kind.REVERSE: pb.LEDGER_ENTRY_KIND_REVERSE,
    Kind.ADJUST: pb.LEDGER_ENTRY_KIND_ADJUST,
    Kind.TRANSFER: pb.LEDGER_ENTRY_KIND_TRANSFER,
}
REDEMPTION_TO_PROTO = {
    "reserved": pb.REDEMPTION_STATUS_RESERVED,
    "confirmed": pb.REDEMPTION_STATUS_CONFIRMED,
    "cancelled": pb.REDEMPTION_STATUS_CANCELLED,
    "expired": pb.REDEMPTION_STATUS_EXPIRED,
}
COUPON_TO_PROTO = {
    "active": pb.COUPON_STATUS_ACTIVE,
    "used": pb.COUPON_STATUS_USED,
    "expired": pb.COUPON_STATUS_EXPIRED,
    "revoked": pb.COUPON_STATUS_REVOKED,
}
POLICY_FROM_PROTO = {
    pb.RETURN_POLICY_ONLY_PENDING: "only_pending",
    pb.RETURN_POLICY_WITHIN_BALANCE: "within_balance",
    pb.RETURN_POLICY_ALLOW_NEGATIVE: "allow_negative",
}
MAX_ID = 128


def _expiring_days(value: int) -> int:
    days = value or 30
    if not 0 < days <= 3650:
        raise InvalidArgument("expiring_within_days", "must be 1 to 3650")
    return days


def _page_size(value: int, field: str) -> int:
    size = value or 50
    if not 0 < size <= 500:
        raise InvalidArgument(field, "must be 1 to 500")
    return size


def _id(value: str, field: str) -> str:
    v = value.strip()
    if not v:
        raise InvalidArgument(field, "is required")
    if len(v) > MAX_ID:
        raise InvalidArgument(field, f"at most {MAX_ID} characters")
    return v


def coupon_pb(c: Any) -> pb.Coupon:
    out = pb.Coupon(
        coupon_id=c["coupon_id"],
        code=c["code"],
        reward_id=c["reward_id"],
        title=c["title"],
        status=COUPON_TO_PROTO.get(c["status"], pb.COUPON_STATUS_UNSPECIFIED),
        currency_code=c["currency"],
        minimum_spend_minor_units=int(c["minimum_spend"]),
        issued_at=ts(aware(c["issued_at"]) or datetime.now(UTC)),
        expires_at=ts(aware(c["expires_at"]) or datetime.now(UTC)),
        max_uses=int(c["max_uses"]),
        uses=int(c["uses"]),
        customer_id=c["customer_id"],
    )
    if c["amount_off"] is not None:
        out.amount_off_minor_units = int(c["amount_off"])
    else:
        out.percent_off_basis_points = int(c["percent_off_bp"])
    if c["used_at"] is not None:
        out.used_at.CopyFrom(ts(aware(c["used_at"]) or datetime.now(UTC)))
    return out


def redemption_pb(r: Reservation) -> pb.Redemption:
    out = pb.Redemption(
        redemption_id=r.redemption_id,
        customer_id=r.customer_id,
        points=r.points,
        status=REDEMPTION_TO_PROTO[r.status],
        available_after=r.available_after,
    )
    if r.coupon is not None:
        out.coupon.CopyFrom(coupon_pb(r.coupon))
    return out


def lines_of(lines: Any, cur: str) -> tuple[Line, ...]:
    out = []
    if not lines:
        raise InvalidArgument("lines", "at least one line is required")
    if len(lines) > 500:
        raise InvalidArgument("lines", "at most 500")
    for i, li in enumerate(lines):
        if not 0 < li.quantity <= 100_000:
            raise InvalidArgument(f"lines[{i}].quantity", "must be 1 to 100000")
        checked_minor_units(li.unit_price_minor_units, f"lines[{i}].unit_price_minor_units")
        out.append(Line(li.sku, li.category, li.brand, li.quantity, li.unit_price_minor_units))
    return tuple(out)


class LoyaltyServicer(pb_grpc.LoyaltyServiceServicer):
    def __init__(
        self,
        db: Database,
        handlers: LoyaltyHandlers,
        *,
        is_ready: Callable[[], bool],
        after_commit: Callable[[], None],
        audit: AuditLog,
        admin_callers: frozenset[str] = frozenset(),
        auth_required: bool = False,
    ) -> None:
        self.db = db
        self.h = handlers
        self.is_ready = is_ready
        self.after_commit = after_commit
        self.audit = audit
        self.admin_callers = admin_callers
        self.auth_required = auth_required
        self.redeems: KeyedRequestBatcher[str, RedeemIn, Reservation] = KeyedRequestBatcher(
            self._redeem_group, max_batch=500, max_wait_s=0.0
        )

    async def _redeem_group(
        self, cid: str, items: Sequence[RedeemIn]
    ) -> list[Reservation | Exception]:
        return await self._tx(lambda tx: self.h.reserve_group(tx, cid, items))

    async def _tx(self, fn: Callable[[Tx], T]) -> T:
        if not self.is_ready():
            raise Unavailable("the loyalty database is not ready yet")

        def run(session: Session) -> T:
            tx = Tx(session)
            out = fn(tx)
            tx.flush()
            return out

        delay = 0.02
        for attempt in range(8):
            try:
                out = await self.db.in_transaction(run)
            except Exception as exc:
                # SQLite's snapshot conflicts, PostgreSQL deadlocks: run again.
                if not is_transient_db_error(exc) or attempt == 7:
                    raise
                await asyncio.sleep(delay)
                delay = min(delay * 2, 0.5)
                continue
            self.after_commit()
            return out
        raise AssertionError("unreachable")

    def _admin(self, context: Any) -> str:
        actor = self.audit.actor(context)
        if self.auth_required and actor.name not in self.admin_callers:
            raise PermissionDenied("this call needs an admin caller (CXLOOP_LOYALTY_ADMIN_CALLERS)")
        return actor.name

    # -- reading ------------------------------------------------------------------
    async def GetAccount(
        self, request: pb.GetAccountRequest, context: Any
    ) -> pb.GetAccountResponse:
        cid = _id(request.customer_id, "customer_id")
        days = _expiring_days(request.expiring_within_days)
        return await self._tx(lambda tx: self._account(tx, cid, days))

    def _account(
        self, tx: Tx, cid: str, days: int, who: str | None = None
    ) -> pb.GetAccountResponse:
        who = who or tx.survivor(cid)
        acct = (
            tx.s.execute(sa.select(t.account).where(t.account.c.customer_id == who))
            .mappings()
            .first()
        )
        rules = self.h.rules.current
        resp = pb.GetAccountResponse(customer_id=who)
        if acct is None:
            resp.tier = rules.tiers[0].id
            nxt = rules.tiers[1] if len(rules.tiers) > 1 else None
            if nxt is not None:
                resp.next_tier, resp.score_to_next_tier = nxt.id, nxt.min_score
            return resp
        # Balances straight from the ledger's legs (the account row's running
        # sums must agree; ledger_balances in tests checks they do).
        sums = dict(
            tx.s.execute(
                sa.select(t.leg.c.book, sa.func.coalesce(sa.func.sum(t.leg.c.amount), 0))
                .where(t.leg.c.owner == who)
                .group_by(t.leg.c.book)
            ).all()
        )
        resp.available_points = int(sums.get("available", 0))
        resp.pending_points = int(sums.get("pending", 0))
        resp.reserved_points = int(sums.get("reserved", 0))
        resp.debt_points = int(acct["debt"])
        tier = acct["tier"] or rules.tiers[0].id
        resp.tier, resp.tier_floor = tier, acct["tier_floor"]
        if acct["tier_valid_until"] is not None:
            resp.tier_valid_until.CopyFrom(ts(aware(acct["tier_valid_until"]) or tx.now))
        score = self.h.scores(tx, [who])[who]
        resp.tier_score = score
        rank = rules.tier_rank(tier)
        if 0 <= rank < len(rules.tiers) - 1:
            nxt = rules.tiers[rank + 1]
            resp.next_tier, resp.score_to_next_tier = nxt.id, max(nxt.min_score - score, 0)
        td = rules.tier(tier)
        if td is not None:
            resp.tier_benefits.update(dict(td.benefits))
        horizon = tx.now + timedelta(days=days)
        for exp, pts in tx.s.execute(
            sa.select(t.lot.c.expires_at, sa.func.sum(t.lot.c.remaining))
            .where(
                t.lot.c.customer_id == who,
                t.lot.c.state == "active",
                t.lot.c.remaining > 0,
                t.lot.c.expires_at <= horizon,
            )
            .group_by(t.lot.c.expires_at)
            .order_by(t.lot.c.expires_at)
        ):
            resp.expiring_soon.append(
                pb.ExpiringPoints(points=int(pts), expires_at=ts(aware(exp) or tx.now))
            )
        return resp

    async def GetHistory(
        self, request: pb.GetHistoryRequest, context: Any
    ) -> pb.GetHistoryResponse:
        cid = _id(request.customer_id, "customer_id")
        size = _page_size(request.page_size, "page_size")
        before: int | None = None
        if request.page_token:
            try:
                before = int(request.page_token)
            except ValueError:
                raise InvalidArgument("page_token", "is not a token this service gave") from None
        return await self._tx(lambda tx: self._history(tx, cid, size, before))

    def _history(
        self, tx: Tx, cid: str, size: int, before: int | None, who: str | None = None
    ) -> pb.GetHistoryResponse:
        who = who or tx.survivor(cid)
        q = sa.select(t.posting).where(t.posting.c.customer_id == who)
        if before is not None:
            q = q.where(t.posting.c.seq < before)
        rows = tx.s.execute(q.order_by(t.posting.c.seq.desc()).limit(size + 1)).mappings().all()
        resp = pb.GetHistoryResponse()
        for r in rows[:size]:
            resp.entries.append(
                pb.LedgerEntry(
                    entry_id=r["posting_id"],
                    kind=KIND_TO_PROTO[Kind(r["kind"])],
                    points=int(r["available"]),
                    pending_points=int(r["pending"]),
                    reference_id=r["reference_id"],
                    description=r["description"],
                    occurred_at=ts(aware(r["occurred_at"]) or tx.now),
                    rule_ids=json.loads(r["rule_ids"]),
                    reverses_entry_id=r["reverses_posting_id"] or "",
                )
            )
        if len(rows) > size:
            resp.next_page_token = str(rows[size - 1]["seq"])
        return resp

    async def GetMemberView(
        self, request: pb.GetMemberViewRequest, context: Any
    ) -> pb.GetMemberViewResponse:
        cid = _id(request.customer_id, "customer_id")
        days = _expiring_days(request.expiring_within_days)
        size = _page_size(request.history_page_size, "history_page_size")

        # One transaction instead of two calls: the 360's loyalty part. Both
        # halves read the same snapshot; the member behind a merged-away id is
        # looked up once.
        def read(tx: Tx) -> pb.GetMemberViewResponse:
            who = tx.survivor(cid)
            return pb.GetMemberViewResponse(
                account=self._account(tx, cid, days, who),
                history=self._history(tx, cid, size, None, who),
            )

        return await self._tx(read)

    # -- redemption ------------------------------------------------------------------
    async def Redeem(self, request: pb.RedeemRequest, context: Any) -> pb.RedeemResponse:
        cid = _id(request.customer_id, "customer_id")
        if not self.is_ready():
            raise Unavailable("the loyalty database is not ready yet")
        self.h.check_redeem(
            request.points, request.reward_id, request.idempotency_key, request.hold_seconds
        )
        # Calls for one member queue and are reserved together (group commit).
        r = await self.redeems.submit(
            cid,
            RedeemIn(
                cid,
                request.points,
                request.reward_id,
                request.idempotency_key,
                request.hold_seconds,
            ),
        )
        return pb.RedeemResponse(
            redemption_id=r.redemption_id,
            entry_id=r.posting_id,
            points_reserved=r.points,
            available_after=r.available_after,
            status=REDEMPTION_TO_PROTO[r.status],
            expires_at=ts(r.expires_at),
        )

    async def ConfirmRedemption(
        self, request: pb.ConfirmRedemptionRequest, context: Any
    ) -> pb.ConfirmRedemptionResponse:
        rid = _id(request.redemption_id, "redemption_id")
        r = await self._tx(lambda tx: self.h.confirm(tx, rid))
        return pb.ConfirmRedemptionResponse(redemption=redemption_pb(r))

    async def CancelRedemption(
        self, request: pb.CancelRedemptionRequest, context: Any
    ) -> pb.CancelRedemptionResponse:
        rid = _id(request.redemption_id, "redemption_id")
        r = await self._tx(lambda tx: self.h.cancel(tx, rid))
        return pb.CancelRedemptionResponse(redemption=redemption_pb(r))

    # -- partner postings ----------------------------------------------------------------
    def _replay(self, tx: Tx, key: str, method: str, cls: type[Any]) -> Any:
        row = tx.s.execute(
            sa.select(t.request.c.method, t.request.c.response).where(
                t.request.c.idempotency_key == key
            )
        ).first()
        if row is None:
            return None
        if row[0] != method:
            raise InvalidArgument("idempotency_key", f"already used for {row[0]}")
        out = cls()
        out.ParseFromString(row[1])
        out.replayed = True
        return out

    def _remember(self, tx: Tx, key: str, method: str, response: Any) -> None:
        tx.s.execute(
            t.request.insert().values(
                idempotency_key=key,
                method=method,
                response=response.SerializeToString(),
                created_at=tx.now,
            )
        )

    async def PostPurchase(
        self, request: pb.PostPurchaseRequest, context: Any
    ) -> pb.PostPurchaseResponse:
        cid = _id(request.customer_id, "customer_id")
        oid = _id(request.order_id, "order_id")
        key = _id(request.idempotency_key, "idempotency_key")
        cur = currency(request.currency_code)
        lines = lines_of(request.lines, cur)
        when = (
            request.purchased_at.ToDatetime(UTC)
            if request.HasField("purchased_at")
            else datetime.now(UTC)
        )

        def post(tx: Tx) -> pb.PostPurchaseResponse:
            seen = self._replay(tx, key, "PostPurchase", pb.PostPurchaseResponse)
            if seen is not None:
                return seen  # type: ignore[no-any-return]
            res = self.h.purchases(
                tx, [PurchaseIn(cid, oid, cur, lines, request.channel, when, f"partner:{key}")]
            )[0]
            resp = pb.PostPurchaseResponse(
                entry_id=res.posting_id,
                points=res.points,
                pending=res.pending,
                replayed=res.replayed,
            )
            resp.activates_at.CopyFrom(ts(res.activates_at))
            if res.earning is not None:
                for c in res.earning.contributions:
                    resp.breakdown.append(
                        pb.RuleContribution(
                            rule_id=c.rule_id,
                            points=int(c.points),
                            applied=c.applied,
                            explanation=c.explanation,
                        )
                    )
            self._remember(tx, key, "PostPurchase", resp)
            return resp

        return await self._tx(post)

    async def PostReturn(
        self, request: pb.PostReturnRequest, context: Any
    ) -> pb.PostReturnResponse:
        cid = _id(request.customer_id, "customer_id")
        oid = _id(request.order_id, "order_id")
        key = _id(request.idempotency_key, "idempotency_key")
        if request.full_return == bool(request.refunded_minor_units):
            raise InvalidArgument(
                "refunded_minor_units", "set a positive amount, or full_return, not both"
            )
        refunded = (
            None
            if request.full_return
            else checked_minor_units(request.refunded_minor_units, "refunded_minor_units")
        )
        policy = POLICY_FROM_PROTO.get(request.policy, "")

        def post(tx: Tx) -> pb.PostReturnResponse:
            seen = self._replay(tx, key, "PostReturn", pb.PostReturnResponse)
            if seen is not None:
                return seen  # type: ignore[no-any-return]
            row = tx.s.execute(
                sa.select(t.order.c.currency).where(t.order.c.order_id == oid)
            ).first()
            if row is None:
                raise NotFound("order_id: no purchase with this order id")
            if request.currency_code and row[0] and currency(request.currency_code) != row[0]:
                raise InvalidArgument("currency_code", f"the order was in {row[0]}")
            n = self.h.returns(
                tx, [ReturnIn(cid, oid, refunded, tx.now, f"partner:{key}", policy)]
            )[0]
            resp = pb.PostReturnResponse(points_reversed=n)
            self._remember(tx, key, "PostReturn", resp)
            return resp

        return await self._tx(post)

    # -- coupons ---------------------------------------------------------------------------
    async def IssueCoupon(
        self, request: pb.IssueCouponRequest, context: Any
    ) -> pb.IssueCouponResponse:
        cid = _id(request.customer_id, "customer_id")
        which = request.WhichOneof("discount")
        cur = currency(request.currency_code) if which == "amount_off_minor_units" else ""
        row = await self._tx(
            lambda tx: self.h.issue_coupon(
                tx,
                cid,
                reward_id=request.reward_id,
                title=request.title,
                amount_off=request.amount_off_minor_units
                if which == "amount_off_minor_units"
                else None,
                percent_off_bp=request.percent_off_basis_points
                if which == "percent_off_basis_points"
                else None,
                currency=cur,
                minimum_spend=request.minimum_spend_minor_units,
                valid_days=request.valid_days,
                max_uses=request.max_uses,
                campaign_id=request.campaign_id,
                idem=request.idempotency_key,
                max_per_customer=request.max_per_customer,
            )
        )
        return pb.IssueCouponResponse(coupon=coupon_pb(row))

    async def ValidateCoupon(
        self, request: pb.ValidateCouponRequest, context: Any
    ) -> pb.ValidateCouponResponse:
        cur = currency(request.currency_code) if request.currency_code else ""
        reason, row, discount = await self._tx(
            lambda tx: self.h.validate_coupon(
                tx,
                request.code,
                request.customer_id.strip(),
                request.order_total_minor_units,
                cur,
                request.redeem,
                request.order_id.strip(),
            )
        )
        resp = pb.ValidateCouponResponse(
            valid=not reason, reason=reason, discount_minor_units=discount
        )
        if row is not None and (not request.customer_id or reason != "other_customer"):
            resp.coupon.CopyFrom(coupon_pb(row))
        return resp

    async def ListCoupons(
        self, request: pb.ListCouponsRequest, context: Any
    ) -> pb.ListCouponsResponse:
        cid = _id(request.customer_id, "customer_id")
        status = {v: k for k, v in COUPON_TO_PROTO.items()}.get(request.status)

        def read(tx: Tx) -> pb.ListCouponsResponse:
            q = sa.select(t.coupon).where(t.coupon.c.customer_id == tx.survivor(cid))
            if status:
                q = q.where(t.coupon.c.status == status)
            return pb.ListCouponsResponse(
                coupons=[
                    coupon_pb(r)
                    for r in tx.s.execute(q.order_by(t.coupon.c.issued_at.desc())).mappings()
                ]
            )

        return await self._tx(read)

    # -- rules ---------------------------------------------------------------------------------
    async def Simulate(self, request: pb.SimulateRequest, context: Any) -> pb.SimulateResponse:
        p = request.purchase
        cur = currency(p.currency_code, "purchase.currency_code")
        lines = lines_of(p.lines, cur)
        rules = (
            parse_rule_set(request.rule_set_json) if request.rule_set_json else self.h.rules.current
        )
        when = p.purchased_at.ToDatetime(UTC) if p.HasField("purchased_at") else datetime.now(UTC)
        tier = p.tier
        if not tier and p.customer_id:

            def member_tier(tx: Tx) -> str:
                row = tx.s.execute(
                    sa.select(t.account.c.tier).where(
                        t.account.c.customer_id == tx.survivor(p.customer_id)
                    )
                ).first()
                return str(row[0]) if row is not None else ""

            tier = await self._tx(member_tier)
        earning = evaluate_purchase(
            rules, Purchase(cur, lines, p.channel, when), tier or rules.tiers[0].id
        )
        return pb.SimulateResponse(
            total_points=earning.points,
            rule_set_version=0 if request.rule_set_json else rules.version,
            breakdown=[
                pb.RuleContribution(
                    rule_id=c.rule_id,
                    points=int(c.points),
                    applied=c.applied,
                    explanation=c.explanation,
                )
                for c in earning.contributions
            ],
        )

    async def PutRuleSet(
        self, request: pb.PutRuleSetRequest, context: Any
    ) -> pb.PutRuleSetResponse:
        who = self._admin(context)
        parse_rule_set(request.rule_set_json)  # refuse a bad document before the transaction
        actor = self.audit.actor(context)

        def put(tx: Tx) -> int:
            rs = self.h.rules.put(tx.s, request.rule_set_json, who)
            self.audit.record(
                tx.s,
                actor,
                Action.CHANGE,
                "loyalty.rule_set",
                operation="PutRuleSet",
                fields=[f"version:{rs.version}"],
            )
            return rs.version

        return pb.PutRuleSetResponse(version=await self._tx(put))

    async def GetRuleSet(
        self, request: pb.GetRuleSetRequest, context: Any
    ) -> pb.GetRuleSetResponse:
        if request.version < 0:
            raise InvalidArgument("version", "must not be negative")
        got = await self._tx(lambda tx: self.h.rules.get(tx.s, request.version))
        if got is None:
            raise NotFound(f"version: no rule set version {request.version}")
        resp = pb.GetRuleSetResponse(version=got[0], rule_set_json=got[1])
        if got[2] is not None:
            resp.activated_at.CopyFrom(ts(got[2]))
        return resp

    # -- operator corrections ------------------------------------------------------------------
    async def Adjust(self, request: pb.AdjustRequest, context: Any) -> pb.AdjustResponse:
        self._admin(context)
        cid = _id(request.customer_id, "customer_id")
        reason = request.reason.strip()
        if not reason:
            raise InvalidArgument("reason", "is required for a manual adjustment")
        if len(reason) > 500:
            raise InvalidArgument("reason", "at most 500 characters")
        actor = self.audit.actor(context)
        if actor.name == ANONYMOUS and self.auth_required:
            raise PermissionDenied("an adjustment needs a known caller")
        key = "adjust:" + (
            request.idempotency_key.strip() or f"{actor.name}:{datetime.now(UTC).isoformat()}"
        )

        def adjust(tx: Tx) -> pb.AdjustResponse:
            posted = self.h.adjust(tx, cid, request.points, key, reason)
            self.audit.record(
                tx.s,
                actor,
                Action.CHANGE,
                "loyalty.points",
                subject=posted.customer_id,
                fields=["points"],
                operation="Adjust",
                reason=reason,
            )
            return pb.AdjustResponse(
                entry_id=posted.posting_id, available_after=posted.available_after
            )

        return await self._tx(adjust)

    async def GetProgrammeTotals(
        self, request: pb.GetProgrammeTotalsRequest, context: Any
    ) -> pb.GetProgrammeTotalsResponse:
        def read(tx: Tx) -> pb.GetProgrammeTotalsResponse:
            books = dict(
                tx.s.execute(
                    sa.select(t.leg.c.book, sa.func.coalesce(sa.func.sum(t.leg.c.amount), 0))
                    .where(t.leg.c.owner == "programme")
                    .group_by(t.leg.c.book)
                ).all()
            )
            issued = -int(books.get("issued", 0))
            expired = int(books.get("expired", 0))
            return pb.GetProgrammeTotalsResponse(
                liability=-sum(int(v) for v in books.values()),
                issued=issued,
                redeemed=int(books.get("redeemed", 0)),
                expired=expired,
                reversed=int(books.get("reversed", 0)),
                breakage_rate=expired / issued if issued else 0.0,
            )

        return await self._tx(read)

    async def SetBirthday(
        self, request: pb.SetBirthdayRequest, context: Any
    ) -> pb.SetBirthdayResponse:
        cid = _id(request.customer_id, "customer_id")
        # Checked before any I/O: a bad day is INVALID_ARGUMENT naming the field.
        birthday_of(request.month, request.day)

        def store(tx: Tx) -> pb.SetBirthdayResponse:
            return pb.SetBirthdayResponse(
                birthday=birthdays.set_birthday(tx, cid, request.month, request.day)
            )

        return await self._tx(store)

    async def SetTierFloor(
        self, request: pb.SetTierFloorRequest, context: Any
    ) -> pb.SetTierFloorResponse:
        self._admin(context)
        cid = _id(request.customer_id, "customer_id")
        if not request.reason.strip():
            raise InvalidArgument("reason", "is required")
        actor = self.audit.actor(context)

        def floor(tx: Tx) -> pb.SetTierFloorResponse:
            tier = self.h.set_tier_floor(tx, cid, request.tier.strip())
            self.audit.record(
                tx.s,
                actor,
                Action.CHANGE,
                "loyalty.tier",
                subject=cid,
                fields=["tier_floor"],
                operation="SetTierFloor",
                reason=request.reason.strip(),
            )
            return pb.SetTierFloorResponse(tier=tier)

        return await self._tx(floor)
