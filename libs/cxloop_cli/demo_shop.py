"""A synthetic shop for `cxloop demo`: a catalogue, customers with Korean and
English names who come by web, app, store and call centre (some the same
person under two identifiers), a year of behaviour — views, carts, purchases
and returns — consent choices, reviews and survey answers. Plain data, the
same for the same seed; `demo.py` sends it through the public APIs."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

FAMILY_KO = "김이박최정강조윤장임한오서신권황안송류홍"
GIVEN_KO = [
    "민준",
    "서연",
    "도윤",
    "하은",
    "지호",
    "수아",
    "예준",
    "지유",
    "시우",
    "서윤",
    "주원",
    "하린",
]
FAMILY_EN = ["Smith", "Brown", "Wilson", "Taylor", "Clark", "Lewis", "Walker", "Hall", "Young"]
GIVEN_EN = ["Emma", "Liam", "Olivia", "Noah", "Ava", "James", "Mia", "Lucas", "Grace", "Ethan"]
CATEGORIES = {
    "fashion>shoes": ("러닝화", "Running shoes", 89_000),
    "fashion>outer": ("경량 패딩", "Light down jacket", 129_000),
    "beauty>skincare": ("수분 크림", "Moisture cream", 32_000),
    "beauty>makeup": ("쿠션 팩트", "Cushion compact", 28_000),
    "home>kitchen": ("무쇠 팬", "Cast-iron pan", 45_000),
    "home>bedding": ("호텔 베개", "Hotel pillow", 39_000),
    "food>coffee": ("원두 1kg", "Coffee beans 1 kg", 27_000),
    "food>snacks": ("견과류 세트", "Mixed nuts", 19_000),
}
CHANNELS = ("web", "app", "store", "call_centre")
REVIEWS_GOOD = [
    "배송이 빠르고 품질이 좋아요. 재구매 의사 있습니다",
    "Great quality, arrived quickly. Would buy again.",
    "사이즈가 딱 맞고 편해요",
    "Exactly as described, very happy.",
]
REVIEWS_BAD = [
    "배송이 너무 늦고 포장이 엉망이었어요",
    "Broke after a week, very disappointed.",
    "색상이 사진과 달라요. 실망입니다",
    "Customer service never answered my call.",
]


@dataclass
class Person:
    index: int
    name: str
    korean: bool
    email: str
    phone: str
    user_id: str
    channels: tuple[str, ...]
    # Signed up twice: a second email the identity graph must link by phone.
    second_email: str = ""
    devices: dict[str, str] = field(default_factory=dict)
    consents: dict[str, bool] = field(default_factory=dict)
    activity: float = 1.0  # expected purchases per quarter


@dataclass
class Shop:
    items: list[dict[str, Any]]
    people: list[Person]
    events: list[dict[str, Any]]  # Segment calls, oldest first
    reviews: list[dict[str, Any]]
    nps: list[dict[str, Any]]


def _phone(rng: random.Random) -> str:
    return f"010-{rng.randrange(2000, 9999)}-{rng.randrange(1000, 9999)}"


def catalogue(rng: random.Random) -> list[dict[str, Any]]:
    items = []
    for cat, (ko, en, price) in CATEGORIES.items():
        for n in range(1, 7):
            items.append(
                {
                    "item_id": f"sku-{cat.split('>')[1]}-{n}",
                    "title": f"{ko} {n} / {en} {n}",
                    "category": cat,
                    "price": float(round(price * rng.uniform(0.7, 1.5), -2)),
                    "brand": rng.choice(["cx", "loop", "hanok", "seoul"]),
                }
            )
    return items


def people(n: int, rng: random.Random) -> list[Person]:
    out = []
    for i in range(n):
        korean = rng.random() < 0.65
        if korean:
            name = rng.choice(FAMILY_KO) + rng.choice(GIVEN_KO)
            local = f"user{i}"
        else:
            given, family = rng.choice(GIVEN_EN), rng.choice(FAMILY_EN)
            name = f"{given} {family}"
            local = f"{given}.{family}{i}".lower()
        channels = tuple(c for c in CHANNELS if rng.random() < {"web": 0.8, "app": 0.5}.get(c, 0.3))
        p = Person(
            index=i,
            name=name,
            korean=korean,
            email=f"{local}@example.com",
            phone=_phone(rng),
            user_id=f"demo-u{i}",
            channels=channels or ("web",),
            activity=rng.choice([0.2, 0.5, 1, 1, 2, 4]),
        )
        if rng.random() < 0.15:
            p.second_email = f"{local}.alt@example.net"
        p.devices = {c: f"demo-dev-{i}-{c}" for c in p.channels if c in ("web", "app")}
        p.consents = {
            "analytics": rng.random() < 0.9,
            "personalization": rng.random() < 0.75,
            "profiling": rng.random() < 0.6,
            "marketing_email": rng.random() < 0.45,
            "marketing_app": rng.random() < 0.35,
            "survey_contact": rng.random() < 0.55,
        }
        out.append(p)
    return out


def _call(kind: str, p: Person, channel: str, at: datetime, **body: Any) -> dict[str, Any]:
    msg: dict[str, Any] = {
        "type": kind,
        "timestamp": at.isoformat().replace("+00:00", "Z"),
        "context": {"channel": channel, "locale": "ko-KR" if p.korean else "en-US"},
        **body,
    }
    # A till or a call-centre desk has no cookie: its own session id.
    msg["anonymousId"] = p.devices.get(channel, f"demo-{channel}-{p.index}")
    if channel in ("web", "app"):
        msg["userId"] = p.user_id
    return msg


def timeline(
    ps: list[Person],
    items: list[dict[str, Any]],
    days: int,
    rng: random.Random,
    now: datetime,
    seed: int = 0,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    events: list[dict[str, Any]] = []
    reviews: list[dict[str, Any]] = []
    nps: list[dict[str, Any]] = []
    start = now - timedelta(days=days)
    for p in ps:
        first = start + timedelta(days=rng.uniform(0, days * 0.8))
        ch = p.channels[0]
        traits: dict[str, Any] = {"email": p.email, "phone": p.phone, "name": p.name}
        events.append(_call("identify", p, ch, first, traits=traits))
        if p.second_email:  # the same person again, by phone, another email
            again = first + timedelta(days=rng.uniform(1, 60))
            traits2 = {"email": p.second_email, "phone": p.phone, "name": p.name}
            second = _call("identify", p, "store", again, traits=traits2)
            second.pop("userId", None)
            events.append(second)
        orders = max(1, int(rng.expovariate(1 / (p.activity * days / 91))))
        for o in range(orders):
            at = first + timedelta(days=rng.uniform(0, max(1.0, (now - first).days - 1)))
            channel = rng.choice(p.channels)
            basket = rng.sample(items, k=rng.choice([1, 1, 2, 3]))
            for it in basket:
                props = {"product_id": it["item_id"], "category": it["category"]}
                events.append(
                    _call("track", p, channel, at, event="Product Viewed", properties=props)
                )
                at += timedelta(minutes=rng.uniform(1, 20))
            if rng.random() < 0.3:  # abandoned
                continue
            events.append(
                _call(
                    "track",
                    p,
                    channel,
                    at,
                    event="Product Added",
                    properties={"product_id": basket[0]["item_id"]},
                )
            )
            at += timedelta(minutes=rng.uniform(1, 30))
            order_id = f"demo-o{p.index}-{o}"
            total = int(sum(it["price"] for it in basket))
            products = [
                {
                    "product_id": it["item_id"],
                    "sku": it["item_id"],
                    "category": it["category"],
                    "price": int(it["price"]),
                    "quantity": 1,
                }
                for it in basket
            ]
            purchase = _call(
                "track",
                p,
                channel,
                at,
                event="Order Completed",
                properties={
                    "order_id": order_id,
                    "total": total,
                    "currency": "KRW",
                    "products": products,
                },
            )
            if channel in ("store", "call_centre"):
                purchase["userId"] = p.user_id  # the POS knows the member
            events.append(purchase)
            if rng.random() < 0.08:
                refund = _call(
                    "track",
                    p,
                    channel,
                    at + timedelta(days=rng.uniform(1, 10)),
                    event="Order Refunded",
                    properties={"order_id": order_id, "currency": "KRW"},
                )
                refund["userId"] = p.user_id
                events.append(refund)
            if rng.random() < 0.25:
                bad = rng.random() < 0.25
                reviews.append(
                    {
                        "person": p.index,
                        "product_id": basket[0]["item_id"],
                        "rating": rng.choice([1, 2]) if bad else rng.choice([4, 5, 5]),
                        "text": rng.choice(REVIEWS_BAD if bad else REVIEWS_GOOD),
                        "at": at + timedelta(days=3),
                        "key": f"demo-review-{order_id}",
                    }
                )
            if rng.random() < 0.2:
                score = rng.choice([0, 3, 5, 6, 7, 8, 8, 9, 9, 10, 10])
                nps.append(
                    {
                        "person": p.index,
                        "score": score,
                        "text": rng.choice(REVIEWS_BAD if score <= 6 else REVIEWS_GOOD),
                        "at": at + timedelta(days=2),
                        "key": f"demo-nps-{order_id}",
                    }
                )
    # Ids from the order of generation, not from times (which move with
    # ``now``): the same seed sends the same message ids, so a rerun is
    # de-duplicated by the gateway.
    for n, e in enumerate(events):
        e["messageId"] = f"demo-{seed}-{n}"
    events.sort(key=lambda e: e["timestamp"])
    return events, reviews, nps


def make_shop(
    customers: int = 200, days: int = 365, seed: int = 7, now: datetime | None = None
) -> Shop:
    rng = random.Random(seed)
    now = now or datetime.now(UTC)
    items = catalogue(rng)
    ps = people(customers, rng)
    events, reviews, nps = timeline(ps, items, days, rng, now, seed)
    return Shop(items, ps, events, reviews, nps)
