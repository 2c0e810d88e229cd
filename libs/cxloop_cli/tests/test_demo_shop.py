"""The demo shop is the same for the same seed, valid Segment, and has what
the console needs to show: Korean and English names, several channels, people
known twice, purchases with products, returns, reviews and NPS answers."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

from cxloop_cli.demo_shop import make_shop


def test_same_seed_same_ids_whatever_the_day() -> None:
    a = make_shop(40, 90, 5, now=datetime(2026, 1, 1, tzinfo=UTC))
    b = make_shop(40, 90, 5, now=datetime(2026, 3, 1, tzinfo=UTC))
    assert [e["messageId"] for e in a.events] == [e["messageId"] for e in b.events]
    assert len({e["messageId"] for e in a.events}) == len(a.events)
    assert make_shop(40, 90, 6).events[0]["messageId"] != a.events[0]["messageId"]


def test_every_call_is_attributable_and_inside_the_window() -> None:
    now = datetime(2026, 6, 1, tzinfo=UTC)
    shop = make_shop(60, 120, 1, now=now)
    for e in shop.events:
        assert e.get("userId") or e.get("anonymousId")
        at = datetime.fromisoformat(e["timestamp"].replace("Z", "+00:00"))
        assert now - timedelta(days=121) <= at <= now + timedelta(days=11)
    kinds = Counter(e.get("event", e["type"]) for e in shop.events)
    assert kinds["identify"] >= 60 and kinds["Order Completed"] > 0
    assert kinds["Order Refunded"] >= 0 and kinds["Product Viewed"] > kinds["Order Completed"]
    orders = [e for e in shop.events if e.get("event") == "Order Completed"]
    assert all(o["properties"]["products"] and o["properties"]["total"] > 0 for o in orders)


def test_people_span_scripts_channels_and_are_sometimes_known_twice() -> None:
    shop = make_shop(200, 365, 7)
    assert any(p.korean for p in shop.people) and any(not p.korean for p in shop.people)
    assert {c for p in shop.people for c in p.channels} == {"web", "app", "store", "call_centre"}
    assert any(p.second_email for p in shop.people)
    assert shop.reviews and shop.nps
    assert {r["rating"] for r in shop.reviews} & {1, 2} and {r["rating"] for r in shop.reviews} & {
        5
    }
