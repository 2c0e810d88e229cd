"""Earning rules: a declarative, versioned document and its evaluation.

A rule set is JSON (see services/loyalty/README.md for the language). The
evaluation of a purchase runs in a fixed, explicit order — never "last edited
wins":

1. ``base``: points per amount of the currency, per line, kept as exact
   fractions (Decimal);
2. ``product`` rules (SKU/category/brand multipliers) by ``priority``: the
   first matching *exclusive* rule of a line applies alone, otherwise every
   matching rule adds its bonus ``(factor - 1) x base``;
3. ``tier`` multiplier of the member's tier, on the sum so far;
4. ``campaign`` rules (time-boxed, optional channel), by priority: bonus
   factor on the base and/or fixed points; an exclusive campaign stops later
   campaigns;
5. caps (``max_points`` per order of a rule, per-customer per-period caps
   of a rule), then the order's total is rounded *down* once (floor): a
   member never gets a fraction of a point, and the rounding is done once,
   not per line, so 3 lines of 0.5 points earn 1 point, not 0.

Engagement rules (``kind: engagement``) pay fixed points for an activity,
with the same caps.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_FLOOR, Decimal, InvalidOperation
from typing import Any

from cxloop_libs.errors import InvalidArgument

KINDS = ("base", "product", "tier", "campaign", "engagement")
STAGE = {"base": 1, "product": 2, "tier": 3, "campaign": 4, "engagement": 5}
ACTIVITIES = (
    "review_submitted",
    "survey_answered",
    "profile_completed",
    "referral_converted",
    "birthday",
)
PERIODS = ("day", "month", "year")
# Per-member limits of a catalogue reward: a calendar period (UTC, as caps) or ever.
LIMIT_PERIODS = ("day", "month", "year", "ever")


@dataclass(frozen=True, slots=True)
class Cap:
    period: str  # day | month | year
    max_points: int


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    kind: str
    priority: int
    # base: points earned per `per_amount` minor units of each currency.
    rates: Mapping[str, tuple[int, int]] = field(default_factory=dict)
    # product: which lines (any of the listed values matches).
    skus: frozenset[str] = frozenset()
    categories: frozenset[str] = frozenset()
    brands: frozenset[str] = frozenset()
    factor: Decimal = Decimal(1)
    exclusive: bool = False
    # tier: multiplier per tier id.
    tier_factors: Mapping[str, Decimal] = field(default_factory=dict)
    # campaign
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    channels: frozenset[str] = frozenset()
    fixed_points: int = 0
    min_spend: int = 0
    # engagement
    activity: str = ""
    points: int = 0
    min_text_length: int = 0
    # caps
    max_points_per_order: int = 0
    caps: tuple[Cap, ...] = ()

    def active_at(self, when: datetime) -> bool:
        if self.starts_at is not None and when < self.starts_at:
            return False
        return not (self.ends_at is not None and when >= self.ends_at)


@dataclass(frozen=True, slots=True)
class TierDef:
    id: str
    min_score: int
    benefits: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RewardLimit:
    """At most ``max`` redemptions of a reward per member per ``period``."""

    period: str  # day | month | year | ever
    max: int

    def describe(self) -> str:
        times = "redemption" if self.max == 1 else "redemptions"
        per = "" if self.period == "ever" else f" per {self.period}"
        return f"{self.max} {times} per member{per}"


@dataclass(frozen=True, slots=True)
class Reward:
    """A catalogue entry: what ``points`` buy. With ``amount_off`` or
    ``percent_off_bp`` the reward is delivered as a coupon on confirmation."""

    id: str
    points: int
    title: str = ""
    amount_off: int | None = None
    percent_off_bp: int | None = None
    currency: str = ""
    valid_days: int = 30
    minimum_spend: int = 0
    # Units that can ever be handed out (None: unlimited). Open reservations
    # hold a unit; a cancelled or lapsed one gives it back.
    stock: int | None = None
    # Per-member limits: open and confirmed redemptions of the member count,
    # cancelled and lapsed ones do not (ADR 0170).
    limits: tuple[RewardLimit, ...] = ()


@dataclass(frozen=True, slots=True)
class RuleSet:
    version: int
    rules: tuple[Rule, ...]
    tiers: tuple[TierDef, ...]
    # Purchase points wait this long for returns before activating.
    return_window_days: int = 14
    # Lots expire this long after they were earned.
    expiry_days: int = 365
    return_policy: str = "within_balance"
    # Tier score: base points of purchases (net of returns) plus engagement
    # points times this weight, over the rolling window.
    tier_window_days: int = 365
    engagement_weight: Decimal = Decimal(1)
    tier_grace_days: int = 30
    rewards: tuple[Reward, ...] = ()
    source: str = ""
    # The evaluation order, sorted once (it was sorted per purchase).
    _ordered: tuple[Rule, ...] = field(default=(), compare=False, repr=False)

    def __post_init__(self) -> None:
        by_stage = sorted(self.rules, key=lambda r: (STAGE[r.kind], r.priority))
        object.__setattr__(self, "_ordered", tuple(by_stage))

    def reward(self, reward_id: str) -> Reward | None:
        return next((r for r in self.rewards if r.id == reward_id), None)

    def ordered(self) -> tuple[Rule, ...]:
        return self._ordered

    def tier(self, tier_id: str) -> TierDef | None:
        return next((t for t in self.tiers if t.id == tier_id), None)

    def tier_for_score(self, score: int) -> TierDef:
        best = self.tiers[0]
        for t in self.tiers:
            if score >= t.min_score:
                best = t
        return best

    def tier_rank(self, tier_id: str) -> int:
        for i, t in enumerate(self.tiers):
            if t.id == tier_id:
                return i
        return -1


@dataclass(frozen=True, slots=True)
class Line:
    sku: str
    category: str
    brand: str
    quantity: int
    unit_price: int  # minor units

    @property
    def amount(self) -> int:
        return self.quantity * self.unit_price


@dataclass(frozen=True, slots=True)
class Purchase:
    currency: str
    lines: tuple[Line, ...]
    channel: str = ""
    occurred_at: datetime = datetime(1970, 1, 1, tzinfo=UTC)

    @property
    def total(self) -> int:
        return sum(li.amount for li in self.lines)


@dataclass(frozen=True, slots=True)
class Contribution:
    rule_id: str
    points: Decimal
    applied: bool
    explanation: str


@dataclass(frozen=True, slots=True)
class Earning:
    points: int
    # Base points (before multipliers): what the tier score counts.
    base_points: int
    contributions: tuple[Contribution, ...]
    # Points per capped rule, for the per-period cap counters.
    by_rule: Mapping[str, int] = field(default_factory=dict)

    @property
    def rule_ids(self) -> list[str]:
        return [c.rule_id for c in self.contributions if c.applied and c.points]


# Used by a cap: points of a rule the customer already earned in a period.
CapUsage = Mapping[tuple[str, str], int]


def period_start(period: str, when: datetime) -> datetime | None:
    """Start of the calendar period (of ``when``'s zone, UTC in the service)
    holding ``when``, as ``period_key`` cuts periods; None for "ever"."""
    if period == "day":
        return when.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "month":
        return when.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    if period == "year":
        return when.replace(month=1, day=1, hour=0, minute=0, second=0, microsecond=0)
    return None


def _reward_limits(raw: Any, where: str) -> tuple[RewardLimit, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise InvalidArgument(where, 'must be a list of {"max": n, "period": ...}')
    out: list[RewardLimit] = []
    for j, lim in enumerate(raw):
        at = f"{where}[{j}]"
        if not isinstance(lim, dict):
            raise InvalidArgument(at, 'must be an object {"max": n, "period": ...}')
        period = lim.get("period")
        if period not in LIMIT_PERIODS:
            raise InvalidArgument(f"{at}.period", f"must be one of {', '.join(LIMIT_PERIODS)}")
        n = _int(lim, "max", at)
        if n < 1:
            raise InvalidArgument(f"{at}.max", "must be at least 1")
        if any(o.period == period for o in out):
            raise InvalidArgument(f"{at}.period", f"{period!r} is limited twice")
        out.append(RewardLimit(str(period), n))
    return tuple(out)


def period_key(period: str, when: datetime) -> str:
    if period == "day":
        return when.strftime("%Y-%m-%d")
    if period == "month":
        return when.strftime("%Y-%m")
    return when.strftime("%Y")


def _line_matches(rule: Rule, line: Line) -> bool:
    return (
        (bool(rule.skus) and line.sku in rule.skus)
        or (bool(rule.categories) and line.category in rule.categories)
        or (bool(rule.brands) and line.brand in rule.brands)
    )


def _fmt(d: Decimal) -> str:
    q = d.quantize(Decimal("0.01"))
    return f"{q.normalize():f}"


def _capped(
    rule: Rule, points: Decimal, usage: CapUsage, when: datetime, notes: list[str]
) -> Decimal:
    if rule.max_points_per_order and points > rule.max_points_per_order:
        points = Decimal(rule.max_points_per_order)
        notes.append(f"capped at {rule.max_points_per_order} per order")
    for cap in rule.caps:
        used = usage.get((rule.id, period_key(cap.period, when)), 0)
        room = Decimal(max(cap.max_points - used, 0))
        if points > room:
            points = room
            notes.append(f"capped at {cap.max_points} per {cap.period} ({used} used)")
    return points


def evaluate_purchase(
    rules: RuleSet, purchase: Purchase, tier: str, usage: CapUsage | None = None
) -> Earning:
    usage = usage or {}
    when = purchase.occurred_at
    contributions: list[Contribution] = []
    by_rule: dict[str, int] = {}
    base_per_line: list[Decimal] = [Decimal(0)] * len(purchase.lines)
    base_total = Decimal(0)
    total = Decimal(0)
    line_taken = [False] * len(purchase.lines)
    campaign_closed = False
    for rule in rules.ordered():
        if rule.kind == "engagement":
            continue
        if not rule.active_at(when):
            contributions.append(Contribution(rule.id, Decimal(0), False, "not in force then"))
            continue
        notes: list[str] = []
        pts = Decimal(0)
        if rule.kind == "base":
            rate = rule.rates.get(purchase.currency)
            if rate is None:
                contributions.append(
                    Contribution(rule.id, Decimal(0), False, f"no rate for {purchase.currency}")
                )
                continue
            per_amount, per_points = rate
            for i, line in enumerate(purchase.lines):
                b = Decimal(line.amount) * per_points / per_amount
                base_per_line[i] += b
                pts += b
            base_total += pts
            notes.append(f"{per_points} per {per_amount} {purchase.currency} minor units")
        elif rule.kind == "product":
            skipped = 0
            for i, line in enumerate(purchase.lines):
                if not _line_matches(rule, line):
                    continue
                if line_taken[i]:
                    skipped += 1
                    continue
                bonus = base_per_line[i] * (rule.factor - 1)
                pts += bonus
                if rule.exclusive:
                    line_taken[i] = True
                notes.append(f"x{_fmt(rule.factor)} on {line.sku or line.category}")
            if not notes:
                why = "an exclusive rule took the line" if skipped else "no line matched"
                contributions.append(Contribution(rule.id, Decimal(0), False, why))
                continue
        elif rule.kind == "tier":
            factor = rule.tier_factors.get(tier)
            if factor is None or factor == 1:
                contributions.append(Contribution(rule.id, Decimal(0), False, f"tier {tier!r}"))
                continue
            pts = total * (factor - 1)
            notes.append(f"x{_fmt(factor)} for tier {tier}")
        elif rule.kind == "campaign":
            if campaign_closed:
                contributions.append(
                    Contribution(rule.id, Decimal(0), False, "an exclusive campaign applied")
                )
                continue
            if rule.channels and purchase.channel not in rule.channels:
                contributions.append(Contribution(rule.id, Decimal(0), False, "other channel"))
                continue
            if purchase.total < rule.min_spend:
                contributions.append(
                    Contribution(rule.id, Decimal(0), False, f"below minimum {rule.min_spend}")
                )
                continue
            pts = base_total * (rule.factor - 1) + rule.fixed_points
            notes.append(
                f"campaign +{_fmt(rule.factor - 1)}x base"
                + (f" +{rule.fixed_points}" if rule.fixed_points else "")
            )
            if rule.exclusive:
                campaign_closed = True
        pts = _capped(rule, pts, usage, when, notes)
        if rule.caps:
            by_rule[rule.id] = int(pts.to_integral_value(ROUND_FLOOR))
        total += pts
        contributions.append(Contribution(rule.id, pts, True, "; ".join(notes)))
    points = int(total.to_integral_value(ROUND_FLOOR))
    return Earning(
        max(points, 0),
        int(base_total.to_integral_value(ROUND_FLOOR)),
        tuple(contributions),
        by_rule,
    )


def evaluate_activity(
    rules: RuleSet,
    activity: str,
    when: datetime,
    *,
    text_length: int = 0,
    usage: CapUsage | None = None,
) -> Earning:
    usage = usage or {}
    contributions: list[Contribution] = []
    by_rule: dict[str, int] = {}
    total = 0
    for rule in rules.ordered():
        if rule.kind != "engagement" or rule.activity != activity:
            continue
        if not rule.active_at(when):
            contributions.append(Contribution(rule.id, Decimal(0), False, "not in force then"))
            continue
        if text_length < rule.min_text_length:
            contributions.append(
                Contribution(
                    rule.id, Decimal(0), False, f"text shorter than {rule.min_text_length}"
                )
            )
            continue
        notes = [f"{rule.points} for {activity}"]
        pts = _capped(rule, Decimal(rule.points), usage, when, notes)
        n = int(pts)
        if rule.caps:
            by_rule[rule.id] = n
        total += n
        contributions.append(Contribution(rule.id, pts, True, "; ".join(notes)))
    return Earning(total, 0, tuple(contributions), by_rule)


# -- parsing -------------------------------------------------------------------


def _int(d: Mapping[str, Any], key: str, where: str, default: int | None = None) -> int:
    v = d.get(key, default)
    if v is None:
        raise InvalidArgument(f"{where}.{key}", "is required")
    if isinstance(v, bool) or not isinstance(v, int) or v < 0 or v > 10**12:
        raise InvalidArgument(f"{where}.{key}", "must be a whole number from 0 to 10^12")
    return v


def _dec(v: Any, where: str) -> Decimal:
    try:
        d = Decimal(str(v))
    except (InvalidOperation, ValueError):
        raise InvalidArgument(where, "must be a decimal number") from None
    if not d.is_finite() or d < 0 or d > 1000:
        raise InvalidArgument(where, "must be between 0 and 1000")
    return d


def _ts(v: Any, where: str) -> datetime | None:
    if v is None:
        return None
    try:
        t = datetime.fromisoformat(str(v))
    except ValueError:
        raise InvalidArgument(where, "must be an ISO 8601 time") from None
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def _strs(v: Any, where: str) -> frozenset[str]:
    if v is None:
        return frozenset()
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise InvalidArgument(where, "must be a list of strings")
    return frozenset(v)


def parse_rule_set(document: str | Mapping[str, Any], version: int = 0) -> RuleSet:
    """The rule set of a JSON document; InvalidArgument naming the bad field."""
    if isinstance(document, str):
        try:
            doc = json.loads(document)
        except ValueError:
            raise InvalidArgument("rule_set_json", "is not JSON") from None
    else:
        doc = document
    if not isinstance(doc, dict):
        raise InvalidArgument("rule_set_json", "must be a JSON object")
    raw_rules = doc.get("rules")
    if not isinstance(raw_rules, list) or not raw_rules:
        raise InvalidArgument("rules", "must be a non-empty list")
    rules: list[Rule] = []
    ids: set[str] = set()
    priorities: dict[tuple[int, int], str] = {}
    for i, r in enumerate(raw_rules):
        where = f"rules[{i}]"
        if not isinstance(r, dict):
            raise InvalidArgument(where, "must be an object")
        rid = r.get("id")
        if not isinstance(rid, str) or not rid or len(rid) > 64:
            raise InvalidArgument(f"{where}.id", "must be a string of 1-64 characters")
        if rid in ids:
            raise InvalidArgument(f"{where}.id", f"duplicate rule id {rid!r}")
        ids.add(rid)
        kind = r.get("kind")
        if kind not in KINDS:
            raise InvalidArgument(f"{where}.kind", f"must be one of {', '.join(KINDS)}")
        priority = _int(r, "priority", where, 0 if kind in ("base", "tier") else None)
        # Stacking order is explicit: two rules of a stage may not share a place.
        clash = priorities.get((STAGE[kind], priority))
        if clash is not None:
            raise InvalidArgument(
                f"{where}.priority", f"{priority} already taken by {clash!r} in stage {kind}"
            )
        priorities[(STAGE[kind], priority)] = rid
        caps: list[Cap] = []
        for j, c in enumerate(r.get("caps") or []):
            cw = f"{where}.caps[{j}]"
            if not isinstance(c, dict) or c.get("period") not in PERIODS:
                raise InvalidArgument(f"{cw}.period", f"must be one of {', '.join(PERIODS)}")
            caps.append(Cap(str(c["period"]), _int(c, "max_points", cw)))
        common: dict[str, Any] = {
            "id": rid,
            "kind": kind,
            "priority": priority,
            "starts_at": _ts(r.get("starts_at"), f"{where}.starts_at"),
            "ends_at": _ts(r.get("ends_at"), f"{where}.ends_at"),
            "max_points_per_order": _int(r, "max_points_per_order", where, 0),
            "caps": tuple(caps),
            "exclusive": bool(r.get("exclusive", False)),
        }
        if kind == "base":
            rates_raw = r.get("rates")
            if not isinstance(rates_raw, dict) or not rates_raw:
                raise InvalidArgument(f"{where}.rates", "must map currency codes to rates")
            rates: dict[str, tuple[int, int]] = {}
            for code, rate in rates_raw.items():
                rw = f"{where}.rates.{code}"
                if not isinstance(rate, dict):
                    raise InvalidArgument(rw, "must be {per_amount, points}")
                per = _int(rate, "per_amount", rw)
                if per == 0:
                    raise InvalidArgument(f"{rw}.per_amount", "must be positive")
                rates[str(code).upper()] = (per, _int(rate, "points", rw))
            rules.append(Rule(rates=rates, **common))
        elif kind == "product":
            skus = _strs(r.get("skus"), f"{where}.skus")
            cats = _strs(r.get("categories"), f"{where}.categories")
            brands = _strs(r.get("brands"), f"{where}.brands")
            if not (skus or cats or brands):
                raise InvalidArgument(where, "needs skus, categories or brands")
            rules.append(
                Rule(
                    skus=skus,
                    categories=cats,
                    brands=brands,
                    factor=_dec(r.get("factor", 1), f"{where}.factor"),
                    **common,
                )
            )
        elif kind == "tier":
            tf = r.get("factors")
            if not isinstance(tf, dict):
                raise InvalidArgument(f"{where}.factors", "must map tier ids to multipliers")
            rules.append(
                Rule(
                    tier_factors={str(k): _dec(v, f"{where}.factors.{k}") for k, v in tf.items()},
                    **common,
                )
            )
        elif kind == "campaign":
            rules.append(
                Rule(
                    factor=_dec(r.get("factor", 1), f"{where}.factor"),
                    fixed_points=_int(r, "fixed_points", where, 0),
                    channels=_strs(r.get("channels"), f"{where}.channels"),
                    min_spend=_int(r, "min_spend", where, 0),
                    **common,
                )
            )
        else:
            activity = r.get("activity")
            if activity not in ACTIVITIES:
                raise InvalidArgument(
                    f"{where}.activity", f"must be one of {', '.join(ACTIVITIES)}"
                )
            rules.append(
                Rule(
                    activity=str(activity),
                    points=_int(r, "points", where),
                    min_text_length=_int(r, "min_text_length", where, 0),
                    **common,
                )
            )
    tiers_raw = doc.get("tiers") or [{"id": "member", "min_score": 0}]
    if not isinstance(tiers_raw, list):
        raise InvalidArgument("tiers", "must be a list")
    tiers: list[TierDef] = []
    for i, t in enumerate(tiers_raw):
        where = f"tiers[{i}]"
        if not isinstance(t, dict) or not isinstance(t.get("id"), str) or not t["id"]:
            raise InvalidArgument(f"{where}.id", "is required")
        benefits = t.get("benefits") or {}
        if not isinstance(benefits, dict):
            raise InvalidArgument(f"{where}.benefits", "must be an object")
        tiers.append(
            TierDef(
                str(t["id"]),
                _int(t, "min_score", where),
                {
                    str(k): str(v).lower() if isinstance(v, bool) else str(v)
                    for k, v in benefits.items()
                },
            )
        )
    if tiers[0].min_score != 0:
        raise InvalidArgument("tiers[0].min_score", "the first tier must start at 0")
    for i in range(1, len(tiers)):
        if tiers[i].min_score <= tiers[i - 1].min_score:
            raise InvalidArgument(f"tiers[{i}].min_score", "must rise from tier to tier")
    policy = doc.get("return_policy", "within_balance")
    if policy not in ("only_pending", "within_balance", "allow_negative"):
        raise InvalidArgument(
            "return_policy", "must be only_pending, within_balance or allow_negative"
        )
    rewards: list[Reward] = []
    raw_rewards = doc.get("rewards") or []
    if not isinstance(raw_rewards, list):
        raise InvalidArgument("rewards", "must be a list")
    for i, r in enumerate(raw_rewards):
        where = f"rewards[{i}]"
        if not isinstance(r, dict) or not isinstance(r.get("id"), str) or not r["id"]:
            raise InvalidArgument(f"{where}.id", "is required")
        coupon = r.get("coupon") or {}
        if not isinstance(coupon, dict):
            raise InvalidArgument(f"{where}.coupon", "must be an object")
        amount = coupon.get("amount_off")
        pct = coupon.get("percent_off_bp")
        if amount is not None and pct is not None:
            raise InvalidArgument(f"{where}.coupon", "amount_off or percent_off_bp, not both")
        if amount is not None and not coupon.get("currency"):
            raise InvalidArgument(f"{where}.coupon.currency", "is required with amount_off")
        rewards.append(
            Reward(
                str(r["id"]),
                _int(r, "points", where),
                str(r.get("title") or ""),
                _int(coupon, "amount_off", f"{where}.coupon") if amount is not None else None,
                _int(coupon, "percent_off_bp", f"{where}.coupon") if pct is not None else None,
                str(coupon.get("currency") or "").upper(),
                _int(coupon, "valid_days", f"{where}.coupon", 30),
                _int(coupon, "minimum_spend", f"{where}.coupon", 0),
                _int(r, "stock", where) if r.get("stock") is not None else None,
                _reward_limits(r.get("per_member"), f"{where}.per_member"),
            )
        )
    return RuleSet(
        version=version,
        rewards=tuple(rewards),
        rules=tuple(rules),
        tiers=tuple(tiers),
        return_window_days=_int(doc, "return_window_days", "rule_set", 14),
        expiry_days=_int(doc, "expiry_days", "rule_set", 365),
        return_policy=str(policy),
        tier_window_days=_int(doc, "tier_window_days", "rule_set", 365),
        engagement_weight=_dec(doc.get("engagement_weight", 1), "engagement_weight"),
        tier_grace_days=_int(doc, "tier_grace_days", "rule_set", 30),
        source=json.dumps(doc, sort_keys=True),
    )


DEFAULT_RULE_SET: dict[str, Any] = {
    "return_window_days": 14,
    "expiry_days": 365,
    "return_policy": "within_balance",
    "tier_window_days": 365,
    "tier_grace_days": 30,
    "engagement_weight": 1,
    "tiers": [
        {"id": "member", "min_score": 0},
        {"id": "silver", "min_score": 1000, "benefits": {"free_shipping": False}},
        {"id": "gold", "min_score": 5000, "benefits": {"free_shipping": True}},
    ],
    # The reward catalogue: 500 points buy a 5,000-won coupon.
    "rewards": [
        {
            "id": "krw-5000-off",
            "points": 500,
            "title": "5,000 won off your next order",
            "coupon": {"amount_off": 5000, "currency": "KRW", "valid_days": 30},
        }
    ],
    "rules": [
        {
            "id": "base",
            "kind": "base",
            # 1 point per 100 won (1 %); 1 point per dollar.
            "rates": {
                "KRW": {"per_amount": 100, "points": 1},
                "USD": {"per_amount": 100, "points": 1},
                "EUR": {"per_amount": 100, "points": 1},
            },
        },
        {"id": "tier-bonus", "kind": "tier", "factors": {"silver": "1.25", "gold": "1.5"}},
        {
            "id": "review-written",
            "kind": "engagement",
            "priority": 1,
            "activity": "review_submitted",
            "points": 100,
            "min_text_length": 20,
            "caps": [{"period": "day", "max_points": 300}],
        },
        {
            "id": "survey-answered",
            "kind": "engagement",
            "priority": 2,
            "activity": "survey_answered",
            "points": 50,
            "caps": [{"period": "month", "max_points": 200}],
        },
        {
            "id": "profile-completed",
            "kind": "engagement",
            "priority": 3,
            "activity": "profile_completed",
            "points": 200,
            "caps": [{"period": "year", "max_points": 200}],
        },
        {
            "id": "referral-converted",
            "kind": "engagement",
            "priority": 4,
            "activity": "referral_converted",
            "points": 500,
        },
        {
            "id": "birthday",
            "kind": "engagement",
            "priority": 5,
            "activity": "birthday",
            "points": 300,
            "caps": [{"period": "year", "max_points": 300}],
        },
    ],
}


def default_rule_set() -> RuleSet:
    return parse_rule_set(DEFAULT_RULE_SET, version=0)


def purchase_lines(lines: Sequence[Line]) -> tuple[Line, ...]:
    return tuple(lines)
