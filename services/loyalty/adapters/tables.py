"""Loyalty's tables (SQLAlchemy Core: the ledger writes thousands of rows a
second and reads them back in aggregates)."""

from __future__ import annotations

import sqlalchemy as sa

METADATA = sa.MetaData()
TS = sa.DateTime(timezone=True)
BIG = sa.BigInteger

# One row per member: the lock a posting takes (so concurrent postings of one
# member queue), and the member's books as running sums of the ledger — a
# cache that GetAccount checks against the legs in tests (ledger_balances).
account = sa.Table(
    "loyalty_account",
    METADATA,
    sa.Column("customer_id", sa.String(64), primary_key=True),
    sa.Column("available", BIG, nullable=False, server_default="0"),
    sa.Column("pending", BIG, nullable=False, server_default="0"),
    sa.Column("reserved", BIG, nullable=False, server_default="0"),
    sa.Column("debt", BIG, nullable=False, server_default="0"),
    sa.Column("tier", sa.String(32), nullable=False, server_default=""),
    sa.Column("tier_floor", sa.String(32), nullable=False, server_default=""),
    sa.Column("tier_valid_until", TS, nullable=True),
    sa.Column("tier_grace_until", TS, nullable=True),
    sa.Column("version", BIG, nullable=False, server_default="0"),
    # Set when merged into another member: postings go to the survivor.
    sa.Column("merged_into", sa.String(64), nullable=False, server_default=""),
    sa.Column("created_at", TS, nullable=False),
    # "MM-DD" (no year) for the scheduled birthday reward; "" when not known.
    sa.Column("birthday", sa.String(5), nullable=False, server_default=""),
)
# Members with a birthday on a given day (the scheduler's look-up).
sa.Index(
    "ix_loyalty_account_birthday",
    account.c.birthday,
    postgresql_where=account.c.birthday != "",
    sqlite_where=account.c.birthday != "",
)

# Members merged into another (few): the tier score finds them per batch.
sa.Index(
    "ix_loyalty_account_merged",
    account.c.merged_into,
    postgresql_where=account.c.merged_into != "",
    sqlite_where=account.c.merged_into != "",
)

# The journal: one row per posting, append-only. `idempotency_key` is unique:
# the database itself refuses a second posting for one cause.
posting = sa.Table(
    "loyalty_posting",
    METADATA,
    sa.Column(
        "seq", BIG().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    sa.Column("posting_id", sa.String(36), nullable=False, unique=True),
    sa.Column("customer_id", sa.String(64), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("available", BIG, nullable=False, server_default="0"),
    sa.Column("pending", BIG, nullable=False, server_default="0"),
    sa.Column("reserved", BIG, nullable=False, server_default="0"),
    # Change of the member's tier score (qualifying points) by this posting.
    sa.Column("score", BIG, nullable=False, server_default="0"),
    sa.Column("idempotency_key", sa.String(200), nullable=False, unique=True),
    sa.Column("reference_id", sa.String(128), nullable=False, server_default=""),
    sa.Column("cause_event_id", sa.String(128), nullable=False, server_default=""),
    sa.Column("rule_ids", sa.Text, nullable=False, server_default="[]"),
    sa.Column("description", sa.String(200), nullable=False, server_default=""),
    sa.Column("reverses_posting_id", sa.String(36), nullable=True),
    sa.Column("occurred_at", TS, nullable=False),
)
sa.Index("ix_loyalty_posting_customer", posting.c.customer_id, posting.c.seq)
sa.Index("ix_loyalty_posting_score", posting.c.customer_id, posting.c.occurred_at)

# Double-entry legs of each posting; they sum to zero per posting.
leg = sa.Table(
    "loyalty_leg",
    METADATA,
    sa.Column("id", BIG().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("posting_id", sa.String(36), nullable=False),
    sa.Column("owner", sa.String(64), nullable=False),
    sa.Column("book", sa.String(16), nullable=False),
    sa.Column("amount", BIG, nullable=False),
)
sa.Index("ix_loyalty_leg_owner", leg.c.owner, leg.c.book)

# Lots: where points live, with earn date, activation, expiry and origin.
lot = sa.Table(
    "loyalty_lot",
    METADATA,
    sa.Column("lot_id", sa.String(36), primary_key=True),
    sa.Column("customer_id", sa.String(64), nullable=False),
    # Who earned it: a split moves it back to them after a merge.
    sa.Column("earned_by", sa.String(64), nullable=False),
    sa.Column("origin", sa.String(32), nullable=False),
    sa.Column("reference_id", sa.String(128), nullable=False, server_default=""),
    sa.Column("points", BIG, nullable=False),
    sa.Column("remaining", BIG, nullable=False),
    # pending -> active -> closed (spent, expired or reversed to zero)
    sa.Column("state", sa.String(8), nullable=False),
    sa.Column("earned_at", TS, nullable=False),
    sa.Column("activates_at", TS, nullable=False),
    sa.Column("expires_at", TS, nullable=False),
    sa.Column("notified", sa.Boolean, nullable=False, server_default=sa.false()),
)
sa.Index("ix_loyalty_lot_member", lot.c.customer_id, lot.c.state, lot.c.expires_at)
sa.Index("ix_loyalty_lot_due", lot.c.state, lot.c.activates_at)
sa.Index("ix_loyalty_lot_expiry", lot.c.state, lot.c.expires_at)

# Purchases that earned points, for returns.
order = sa.Table(
    "loyalty_order",
    METADATA,
    sa.Column("order_id", sa.String(128), primary_key=True),
    sa.Column("customer_id", sa.String(64), nullable=False),
    # False while only a return is known (it arrived before its purchase).
    sa.Column("purchased", sa.Boolean, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("total", BIG, nullable=False),
    sa.Column("points", BIG, nullable=False),
    sa.Column("base_points", BIG, nullable=False),
    sa.Column("lot_id", sa.String(36), nullable=False),
    sa.Column("refunded", BIG, nullable=False, server_default="0"),
    sa.Column("reversed_points", BIG, nullable=False, server_default="0"),
    sa.Column("reversed_base", BIG, nullable=False, server_default="0"),
    sa.Column("ordered_at", TS, nullable=False),
)
sa.Index("ix_loyalty_order_customer", order.c.customer_id)

redemption = sa.Table(
    "loyalty_redemption",
    METADATA,
    sa.Column("redemption_id", sa.String(36), primary_key=True),
    sa.Column("customer_id", sa.String(64), nullable=False),
    sa.Column("points", BIG, nullable=False),
    sa.Column("reward_id", sa.String(64), nullable=False, server_default=""),
    sa.Column("status", sa.String(12), nullable=False),
    sa.Column("idempotency_key", sa.String(200), nullable=False, unique=True),
    # JSON [[lot_id, points], ...]: given back to the same lots on cancel.
    sa.Column("allocations", sa.Text, nullable=False),
    sa.Column("reserved_at", TS, nullable=False),
    sa.Column("expires_at", TS, nullable=False),
    sa.Column("closed_at", TS, nullable=True),
    # True when the reservation holds a unit of a limited reward's stock
    # (given back on cancel or lapse).
    sa.Column("stock_taken", sa.Boolean, nullable=False, server_default=sa.false()),
)
sa.Index("ix_loyalty_redemption_open", redemption.c.status, redemption.c.expires_at)
# A reward's per-member limits count the member's redemptions of it (ADR 0170).
sa.Index("ix_loyalty_redemption_member", redemption.c.customer_id, redemption.c.reward_id)

coupon = sa.Table(
    "loyalty_coupon",
    METADATA,
    sa.Column("coupon_id", sa.String(36), primary_key=True),
    sa.Column("code", sa.String(32), nullable=False, unique=True),
    sa.Column("customer_id", sa.String(64), nullable=False),
    sa.Column("reward_id", sa.String(64), nullable=False, server_default=""),
    sa.Column("title", sa.String(200), nullable=False, server_default=""),
    sa.Column("amount_off", BIG, nullable=True),
    sa.Column("percent_off_bp", sa.Integer, nullable=True),
    sa.Column("currency", sa.String(3), nullable=False, server_default=""),
    sa.Column("minimum_spend", BIG, nullable=False, server_default="0"),
    sa.Column("max_uses", sa.Integer, nullable=False, server_default="1"),
    sa.Column("uses", sa.Integer, nullable=False, server_default="0"),
    sa.Column("status", sa.String(8), nullable=False),
    sa.Column("campaign_id", sa.String(64), nullable=False, server_default=""),
    sa.Column("idempotency_key", sa.String(200), nullable=False, unique=True),
    sa.Column("issued_at", TS, nullable=False),
    sa.Column("expires_at", TS, nullable=False),
    sa.Column("used_at", TS, nullable=True),
)
sa.Index("ix_loyalty_coupon_customer", coupon.c.customer_id)

coupon_use = sa.Table(
    "loyalty_coupon_use",
    METADATA,
    sa.Column("coupon_id", sa.String(36), primary_key=True),
    sa.Column("order_id", sa.String(128), primary_key=True),
    sa.Column("discount", BIG, nullable=False),
    sa.Column("used_at", TS, nullable=False),
)

rule_set = sa.Table(
    "loyalty_rule_set",
    METADATA,
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("document", sa.Text, nullable=False),
    sa.Column("author", sa.String(100), nullable=False, server_default=""),
    sa.Column("activated_at", TS, nullable=False),
)

# Points a member earned from a capped rule per period.
cap_usage = sa.Table(
    "loyalty_cap_usage",
    METADATA,
    sa.Column("customer_id", sa.String(64), primary_key=True),
    sa.Column("rule_id", sa.String(64), primary_key=True),
    sa.Column("period", sa.String(10), primary_key=True),
    sa.Column("points", BIG, nullable=False),
)

# Answers to partner requests by Idempotency-Key (kept >= 24 h).
request = sa.Table(
    "loyalty_request",
    METADATA,
    sa.Column("idempotency_key", sa.String(200), primary_key=True),
    sa.Column("method", sa.String(32), nullable=False),
    sa.Column("response", sa.LargeBinary, nullable=False),
    sa.Column("created_at", TS, nullable=False),
)
sa.Index("ix_loyalty_request_created", request.c.created_at)

# Units of a limited catalogue reward held by open reservations and confirmed
# redemptions; taken with a conditional update, never above the stock.
reward_stock = sa.Table(
    "loyalty_reward_stock",
    METADATA,
    sa.Column("reward_id", sa.String(64), primary_key=True),
    sa.Column("taken", BIG, nullable=False),
)

# One scheduled birthday reward per member and year: the scheduler claims the
# row before granting, so two replicas never both grant.
birthday_grant = sa.Table(
    "loyalty_birthday_grant",
    METADATA,
    sa.Column("customer_id", sa.String(64), primary_key=True),
    sa.Column("year", sa.Integer, primary_key=True),
    sa.Column("granted_at", TS, nullable=False),
)

ALL = (
    account,
    posting,
    leg,
    lot,
    order,
    redemption,
    coupon,
    coupon_use,
    rule_set,
    cap_usage,
    request,
    reward_stock,
    birthday_grant,
)
