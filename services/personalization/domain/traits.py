"""Computed traits and the lifecycle stage (issue #15), plain data, no I/O.

Each customer has a small :class:`CustomerState`, updated incrementally by
every tracked event: the recent events inside the longest window (capped),
every order (time and value, for RFM, CLV and churn features) and lifetime
first/last times. Traits are read from the state at a given time, so windows
slide without re-reading history (the periodic sweep re-reads them for
time-based changes).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from personalization.domain.interactions import number

DAY = 86_400.0
#: Event names the segment language and triggers know (Segment's e-commerce
#: spec, lower case, spaces as underscores).
KNOWN_EVENTS: frozenset[str] = frozenset(
    {
        "product_viewed",
        "product_clicked",
        "product_added",
        "product_removed",
        "product_added_to_wishlist",
        "product_reviewed",
        "product_rated",
        "product_list_viewed",
        "products_searched",
        "cart_viewed",
        "checkout_started",
        "order_completed",
        "order_refunded",
        "order_cancelled",
        "coupon_applied",
        "signed_up",
        "signed_in",
        "page",
        "screen",
    }
)
ORDER = "order_completed"
MAX_RECENT = 500
MAX_ORDERS = 2000
WHERE_FIELDS = ("category", "item", "channel")


def event_key(name: str) -> str:
    return "_".join(name.strip().lower().replace("-", " ").split())


def _str(v: Any) -> str:
    return v.strip()[:128] if isinstance(v, str) else ""


@dataclass(slots=True)
class Seen:
    """One event as the traits see it: ids and numbers only."""

    at: float
    name: str
    category: str = ""
    item: str = ""
    channel: str = ""
    value: float = 0.0

    def to_list(self) -> list[Any]:
        return [self.at, self.name, self.category, self.item, self.channel, self.value]

    @classmethod
    def of_list(cls, r: Sequence[Any]) -> Seen:
        return cls(float(r[0]), str(r[1]), str(r[2]), str(r[3]), str(r[4]), float(r[5]))


def seen_from_tracked(
    name: str, props: Mapping[str, Any], at: float, channel: str = ""
) -> list[Seen]:
    """What one tracked event contributes: one entry per product (orders keep
    their total as the value of the first entry so sums are not doubled)."""
    key = event_key(name)
    if not key:
        return []
    products = props.get("products")
    plist = [p for p in products if isinstance(p, Mapping)] if isinstance(products, list) else []
    total = number(props.get("revenue")) or number(props.get("total"))
    if key == ORDER and not total:
        total = sum(
            number(p.get("price")) * max(number(p.get("quantity")) or 1.0, 1.0) for p in plist
        )
    if not plist:
        plist = [props]
    out = []
    for n, p in enumerate(plist):
        item = _str(p.get("product_id")) or _str(p.get("sku")) or _str(p.get("id"))
        value = total if key == ORDER else number(p.get("price"))
        out.append(
            Seen(at, key, _str(p.get("category")), item, channel[:32], value if n == 0 else 0.0)
        )
        if key == ORDER:
            out[-1].value = total if n == 0 else 0.0
    return out


@dataclass(slots=True)
class CustomerState:
    first_at: float = 0.0
    last_at: float = 0.0
    recent: list[Seen] = field(default_factory=list)
    #: (at, value) of every order, oldest first.
    orders: list[tuple[float, float]] = field(default_factory=list)
    event_ids: list[str] = field(default_factory=list)

    def add(self, event_id: str, seen: Sequence[Seen], horizon_s: float) -> bool:
        """Applies one event (idempotent by id); False when already applied."""
        if not seen:
            return False
        if event_id and event_id in self.event_ids:
            return False
        if event_id:
            self.event_ids.append(event_id)
            del self.event_ids[:-50]
        at = seen[0].at
        self.first_at = at if not self.first_at else min(self.first_at, at)
        self.last_at = max(self.last_at, at)
        self.recent.extend(seen)
        self.recent.sort(key=lambda s: s.at)
        newest = self.recent[-1].at
        self.recent = [s for s in self.recent if s.at > newest - horizon_s][-MAX_RECENT:]
        if seen[0].name == ORDER:
            self.orders.append((at, sum(s.value for s in seen)))
            self.orders.sort()
            del self.orders[:-MAX_ORDERS]
        return True

    def to_json(self) -> dict[str, Any]:
        return {
            "f": self.first_at,
            "l": self.last_at,
            "r": [s.to_list() for s in self.recent],
            "o": [list(o) for o in self.orders],
            "e": self.event_ids,
        }

    @classmethod
    def of_json(cls, d: Mapping[str, Any]) -> CustomerState:
        return cls(
            float(d.get("f", 0.0)),
            float(d.get("l", 0.0)),
            [Seen.of_list(r) for r in d.get("r", [])],
            [(float(a), float(v)) for a, v in d.get("o", [])],
            list(d.get("e", [])),
        )

    # -- window queries (the segment language uses these) -----------------------
    def window(
        self, name: str | None, since: float, until: float, where: tuple[str, str] | None = None
    ) -> list[Seen]:
        out = []
        for s in self.recent:
            if s.at <= since or s.at > until:
                continue
            if name is not None and s.name != name:
                continue
            if where is not None and getattr(s, where[0]) != where[1]:
                continue
            out.append(s)
        return out

    def count(self, name: str | None, window_s: float, now: float, where: Any = None) -> int:
        if name == ORDER and where is None:
            return sum(1 for at, _ in self.orders if now - window_s < at <= now)
        evs = self.window(name, now - window_s, now, where)
        # Several products of one event count once.
        return len({(s.at, s.name) for s in evs})

    def total(self, name: str | None, window_s: float, now: float, where: Any = None) -> float:
        if name == ORDER and where is None:
            return sum(v for at, v in self.orders if now - window_s < at <= now)
        return sum(s.value for s in self.window(name, now - window_s, now, where))


@dataclass(frozen=True, slots=True)
class TraitConfig:
    windows_days: tuple[int, ...] = (7, 30, 90)

    @property
    def horizon_s(self) -> float:
        return max(self.windows_days) * DAY


@dataclass(frozen=True, slots=True)
class LifecycleRules:
    new_days: float = 30.0
    active_days: float = 30.0
    at_risk_days: float = 45.0
    dormant_days: float = 90.0
    churned_days: float = 180.0
    loyal_orders_90d: int = 3


def lifecycle(
    traits: Mapping[str, Any], rules: LifecycleRules = LifecycleRules()
) -> tuple[str, str]:
    """The stage and the rule that produced it (checked in this order)."""
    seen = traits["days_since_last_seen"]
    first = traits["days_since_first_seen"]
    orders = traits["lifetime_orders"]
    since_order = traits["days_since_last_order"]
    recency = since_order if orders else seen
    what = "last order" if orders else "last event"
    if recency > rules.churned_days:
        return "churned", f"{what} {recency:.0f} days ago > {rules.churned_days:g}"
    if recency > rules.dormant_days:
        return "dormant", f"{what} {recency:.0f} days ago > {rules.dormant_days:g}"
    if orders and since_order > rules.at_risk_days:
        return "at_risk", f"last order {since_order:.0f} days ago > {rules.at_risk_days:g}"
    if traits.get("orders_90d", 0) >= rules.loyal_orders_90d:
        return "loyal", f"orders_90d {traits['orders_90d']} >= {rules.loyal_orders_90d}"
    if first <= rules.new_days and orders <= 1:
        return "new", f"first seen {first:.0f} days ago <= {rules.new_days:g}, orders <= 1"
    if seen <= rules.active_days:
        return "active", f"last event {seen:.0f} days ago <= {rules.active_days:g}"
    return "at_risk", f"no event for {seen:.0f} days > {rules.active_days:g}"


LIFECYCLE_STAGES = ("new", "active", "loyal", "at_risk", "dormant", "churned")


def trait_names(cfg: TraitConfig = TraitConfig()) -> dict[str, str]:
    """Every trait name and its type ("number" or "string")."""
    out = {
        "days_since_first_seen": "number",
        "days_since_last_seen": "number",
        "days_since_last_order": "number",
        "lifetime_orders": "number",
        "lifetime_revenue": "number",
        "average_order_value": "number",
        "lifecycle": "string",
        "rfm_recency": "number",
        "rfm_frequency": "number",
        "rfm_monetary": "number",
        "churn_probability": "number",
        "predicted_clv": "number",
    }
    for d in cfg.windows_days:
        for name in ("events", "orders", "revenue", "views", "cart_adds", "distinct_categories"):
            out[f"{name}_{d}d"] = "number"
        out[f"top_category_{d}d"] = "string"
    return out


#: Traits no event changes (the predictions refresh writes them): read
#: from ``extra``.
PREDICTED_TRAITS = frozenset(
    {"rfm_recency", "rfm_frequency", "rfm_monetary", "churn_probability", "predicted_clv"}
)


def traits_an_event_changes(name: str, cfg: TraitConfig = TraitConfig()) -> frozenset[str]:
    """The traits an event named ``name`` can change at a fixed ``now``
    (the segment dependency index, ADR 0260). Kept beside :func:`compute`:
    a unit test applies random events to random states and checks that
    every trait whose value moved is listed here. Time alone moves the
    window and ``days_since`` traits too; that is the sweep's part."""
    out = {"days_since_first_seen", "days_since_last_seen", "lifecycle", "lifecycle_rule"}
    for d in cfg.windows_days:
        out |= {f"events_{d}d", f"distinct_categories_{d}d", f"top_category_{d}d"}
        if name == ORDER:
            out |= {f"orders_{d}d", f"revenue_{d}d"}
        elif name == "product_viewed":
            out.add(f"views_{d}d")
        elif name == "product_added":
            out.add(f"cart_adds_{d}d")
    if name == ORDER:
        out |= {
            "lifetime_orders",
            "lifetime_revenue",
            "average_order_value",
            "days_since_last_order",
        }
    return frozenset(out)


def _by_count_then_name(kv: tuple[str, int]) -> tuple[int, str]:
    return -kv[1], kv[0]


def compute(
    state: CustomerState,
    now: float,
    cfg: TraitConfig = TraitConfig(),
    rules: LifecycleRules = LifecycleRules(),
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The customer's traits at ``now`` (extra: RFM scores, predictions)."""
    t: dict[str, Any] = {}
    t["days_since_first_seen"] = (now - state.first_at) / DAY if state.first_at else 0.0
    t["days_since_last_seen"] = (now - state.last_at) / DAY if state.last_at else 0.0
    t["lifetime_orders"] = len(state.orders)
    t["lifetime_revenue"] = round(sum(v for _, v in state.orders), 6)
    t["average_order_value"] = (
        t["lifetime_revenue"] / t["lifetime_orders"] if t["lifetime_orders"] else 0.0
    )
    t["days_since_last_order"] = (now - state.orders[-1][0]) / DAY if state.orders else 0.0
    # One pass over the recent events, newest first, for every window: the
    # windows are nested, so one set of counters grows as the pass goes back
    # in time and is read out each time it crosses a window's start (the
    # consumer computes traits for each changed customer of every batch).
    # Several products of one event count once: events are keyed by (time, name).
    windows = sorted(cfg.windows_days)
    since = [now - d * DAY for d in windows]
    events: set[tuple[float, str]] = set()
    views: set[float] = set()
    adds: set[float] = set()
    cats: dict[str, int] = {}
    snaps: list[tuple[int, int, int, int, str]] = []

    def snap() -> None:
        # Most frequent; ties go to the alphabetically first (deterministic).
        top = min(cats.items(), key=_by_count_then_name)[0] if cats else ""
        snaps.append((len(events), len(views), len(adds), len(cats), top))

    for s in reversed(state.recent):
        at = s.at
        if at > now:
            continue
        while at <= since[len(snaps)]:
            snap()
            if len(snaps) == len(windows):
                break
        if len(snaps) == len(windows):
            break
        name = s.name
        events.add((at, name))
        if name == "product_viewed":
            views.add(at)
        elif name == "product_added":
            adds.add(at)
        if s.category:
            cats[s.category] = cats.get(s.category, 0) + 1
    while len(snaps) < len(windows):
        snap()
    # Orders are sorted by time: each window is a slice (summed oldest first).
    order_at = [at for at, _ in state.orders]
    hi = bisect_right(order_at, now)
    for i, d in enumerate(windows):
        n_events, n_views, n_adds, n_cats, top = snaps[i]
        lo = bisect_right(order_at, since[i], 0, hi)
        t[f"events_{d}d"] = n_events
        t[f"orders_{d}d"] = hi - lo
        t[f"revenue_{d}d"] = round(sum(v for _, v in state.orders[lo:hi]), 6)
        t[f"views_{d}d"] = n_views
        t[f"cart_adds_{d}d"] = n_adds
        t[f"distinct_categories_{d}d"] = n_cats
        t[f"top_category_{d}d"] = top
    for k in ("rfm_recency", "rfm_frequency", "rfm_monetary", "churn_probability", "predicted_clv"):
        t[k] = 0.0
    t.update(extra or {})
    t["lifecycle"], t["lifecycle_rule"] = lifecycle(t, rules)
    return t


def rfm_scores(rows: Sequence[tuple[str, float, int, float]]) -> dict[str, tuple[int, int, int]]:
    """Quintile scores 1-5 over the customer base from (customer, days since
    last order, orders, revenue); recency scores 5 for the most recent."""
    import numpy as np

    if not rows:
        return {}
    ids = [r[0] for r in rows]
    arr = np.array([[r[1], r[2], r[3]] for r in rows], dtype=float)

    def quint(col: Any, invert: bool) -> Any:
        ranks = col.argsort(kind="stable").argsort(kind="stable") / max(len(col) - 1, 1)
        q = np.minimum((ranks * 5).astype(int) + 1, 5)
        return 6 - q if invert else q

    r, f, m = quint(arr[:, 0], True), quint(arr[:, 1], False), quint(arr[:, 2], False)
    return {c: (int(a), int(b), int(x)) for c, a, b, x in zip(ids, r, f, m, strict=True)}
