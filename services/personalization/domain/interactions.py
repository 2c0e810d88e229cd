"""Implicit feedback: which tracked events say something about a customer's
taste, how much (weights), and how it fades (time decay).

The gateway forwards Segment's e-commerce spec events; the ones read here:
``Product Viewed`` / ``Product Clicked`` (one product in the properties),
``Product Added`` (to cart), ``Product Added to Wishlist``, ``Order Completed``
(``products[]``), ``Product Reviewed`` (``rating``) and ``Product Rated``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Kind(StrEnum):
    VIEW = "view"
    CLICK = "click"
    ADD_TO_CART = "add_to_cart"
    WISHLIST = "wishlist"
    PURCHASE = "purchase"
    REVIEW = "review"
    RATING = "rating"


DEFAULT_WEIGHTS: Mapping[Kind, float] = {
    Kind.VIEW: 1.0,
    Kind.CLICK: 1.5,
    Kind.ADD_TO_CART: 3.0,
    Kind.WISHLIST: 2.0,
    Kind.PURCHASE: 5.0,
    Kind.REVIEW: 3.0,
    Kind.RATING: 3.0,
}

EVENT_KINDS: Mapping[str, Kind] = {
    "product viewed": Kind.VIEW,
    "product clicked": Kind.CLICK,
    "product added": Kind.ADD_TO_CART,
    "product added to wishlist": Kind.WISHLIST,
    "order completed": Kind.PURCHASE,
    "product reviewed": Kind.REVIEW,
    "product rated": Kind.RATING,
}


@dataclass(frozen=True, slots=True)
class Interaction:
    event_id: str
    customer_id: str
    item_id: str
    kind: Kind
    weight: float
    at: float  # epoch seconds
    channel: str = ""
    store: str = ""
    revenue: float = 0.0


def _product_id(p: Mapping[str, Any]) -> str:
    for key in ("product_id", "sku", "id"):
        v = p.get(key)
        if isinstance(v, str) and v.strip():
            return v.strip()
        if isinstance(v, int | float) and not isinstance(v, bool):
            return str(int(v)) if float(v).is_integer() else str(v)
    return ""


def number(v: Any) -> float:
    """A property's value as a finite float (0 for anything else)."""
    if isinstance(v, bool):
        return 0.0
    if isinstance(v, int | float) and math.isfinite(v):
        return float(v)
    if isinstance(v, str):
        try:
            f = float(v)
        except ValueError:
            return 0.0
        return f if math.isfinite(f) else 0.0
    return 0.0


def from_tracked_event(
    event_id: str,
    customer_id: str,
    name: str,
    properties: Mapping[str, Any],
    at: float,
    *,
    channel: str = "",
    weights: Mapping[Kind, float] = DEFAULT_WEIGHTS,
) -> list[Interaction]:
    """The interactions one tracked event carries (none for other events)."""
    kind = EVENT_KINDS.get(name.strip().lower())
    if kind is None or not customer_id:
        return []
    store = properties.get("store_id") or properties.get("store") or ""
    store = store if isinstance(store, str) else ""
    products: list[Mapping[str, Any]]
    raw = properties.get("products")
    if isinstance(raw, list):
        products = [p for p in raw if isinstance(p, Mapping)]
    else:
        products = [properties]
    out: list[Interaction] = []
    for n, p in enumerate(products):
        pid = _product_id(p)
        if not pid:
            continue
        qty = max(number(p.get("quantity")) or 1.0, 1.0)
        revenue = number(p.get("price")) * qty if kind is Kind.PURCHASE else 0.0
        out.append(
            Interaction(
                event_id=f"{event_id}:{n}",
                customer_id=customer_id,
                item_id=pid,
                kind=kind,
                weight=weights.get(kind, 1.0),
                at=at,
                channel=channel,
                store=store,
                revenue=revenue,
            )
        )
    return out
