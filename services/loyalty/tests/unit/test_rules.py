from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from cxloop_libs.errors import InvalidArgument
from loyalty.domain.money import currency, to_minor_units
from loyalty.domain.rules import (
    Line,
    Purchase,
    default_rule_set,
    evaluate_activity,
    evaluate_purchase,
    parse_rule_set,
    period_key,
    period_start,
)

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)


def rules(*extra: dict[str, object], **doc: object) -> object:
    base = {"id": "base", "kind": "base", "rates": {"KRW": {"per_amount": 100, "points": 1}}}
    return parse_rule_set({"rules": [base, *extra], **doc}, version=3)


def buy(*lines: Line, channel: str = "web", when: datetime = NOW) -> Purchase:
    return Purchase("KRW", tuple(lines), channel, when)


def line(price: int, *, sku: str = "s", category: str = "", brand: str = "", qty: int = 1) -> Line:
    return Line(sku, category, brand, qty, price)


def test_krw_base_rate_floors_once_per_order_not_per_line() -> None:
    rs = rules()
    # 3 lines of 150 won: 1.5 points each, 4.5 in all -> 4 (per line it would be 3).
    e = evaluate_purchase(rs, buy(line(150), line(150), line(150)), "member")  # type: ignore[arg-type]
    assert e.points == 4
    assert e.contributions[0].points == Decimal("4.5")


def test_amounts_convert_exactly_or_are_refused() -> None:
    assert to_minor_units(35000, "KRW", "total") == 35000
    assert to_minor_units(12.34, "USD", "total") == 1234
    with pytest.raises(InvalidArgument) as err:
        to_minor_units(100.5, "KRW", "properties.total")
    assert err.value.field == "properties.total"
    with pytest.raises(InvalidArgument):
        to_minor_units(-5, "KRW", "total")
    with pytest.raises(InvalidArgument):
        to_minor_units(1e20, "KRW", "total")
    with pytest.raises(InvalidArgument) as err2:
        currency("XYZ")
    assert err2.value.field == "currency_code"


def test_product_multipliers_add_and_an_exclusive_one_applies_alone() -> None:
    rs = rules(
        {"id": "shoes", "kind": "product", "priority": 2, "categories": ["shoes"], "factor": "2"},
        {"id": "nike", "kind": "product", "priority": 3, "brands": ["nike"], "factor": "1.5"},
    )
    e = evaluate_purchase(rs, buy(line(10000, category="shoes", brand="nike")), "member")  # type: ignore[arg-type]
    # base 100, +100 (x2), +50 (x1.5): additive bonuses.
    assert e.points == 250
    exclusive = rules(
        {
            "id": "nike",
            "kind": "product",
            "priority": 1,
            "brands": ["nike"],
            "factor": "3",
            "exclusive": True,
        },
        {"id": "shoes", "kind": "product", "priority": 2, "categories": ["shoes"], "factor": "2"},
    )
    e2 = evaluate_purchase(exclusive, buy(line(10000, category="shoes", brand="nike")), "member")  # type: ignore[arg-type]
    assert e2.points == 300
    assert [c.rule_id for c in e2.contributions if c.applied] == ["base", "nike"]


def test_two_rules_may_not_share_a_place_in_the_stacking_order() -> None:
    with pytest.raises(InvalidArgument) as err:
        rules(
            {"id": "a", "kind": "product", "priority": 1, "skus": ["x"], "factor": "2"},
            {"id": "b", "kind": "product", "priority": 1, "skus": ["y"], "factor": "2"},
        )
    assert err.value.field == "rules[2].priority"


def test_tier_multiplier_and_time_boxed_campaign_with_cap() -> None:
    rs = rules(
        {"id": "tier", "kind": "tier", "factors": {"gold": "2"}},
        {
            "id": "xmas",
            "kind": "campaign",
            "priority": 1,
            "factor": "2",
            "fixed_points": 10,
            "starts_at": "2026-12-01T00:00:00+00:00",
            "ends_at": "2026-12-26T00:00:00+00:00",
            "max_points_per_order": 50,
        },
        tiers=[{"id": "member", "min_score": 0}, {"id": "gold", "min_score": 10}],
    )
    e = evaluate_purchase(rs, buy(line(10000)), "gold")  # type: ignore[arg-type]
    # base 100, tier +100, campaign +100 +10 capped at 50.
    assert e.points == 250
    after = evaluate_purchase(rs, buy(line(10000), when=datetime(2027, 1, 2, tzinfo=UTC)), "gold")  # type: ignore[arg-type]
    assert after.points == 200
    why = {c.rule_id: c.explanation for c in after.contributions}
    assert why["xmas"] == "not in force then"


def test_engagement_rule_with_minimum_text_and_daily_cap() -> None:
    rs = default_rule_set()
    assert evaluate_activity(rs, "review_submitted", NOW, text_length=5).points == 0
    assert evaluate_activity(rs, "review_submitted", NOW, text_length=50).points == 100
    used = {("review-written", "2026-12-01"): 250}
    assert evaluate_activity(rs, "review_submitted", NOW, text_length=50, usage=used).points == 50


def test_bad_rule_documents_name_the_field() -> None:
    for doc, field in (
        ("not json", "rule_set_json"),
        ({"rules": []}, "rules"),
        ({"rules": [{"id": "x", "kind": "magic"}]}, "rules[0].kind"),
        (
            {
                "rules": [
                    {"id": "b", "kind": "base", "rates": {"KRW": {"per_amount": 0, "points": 1}}}
                ]
            },
            "rules[0].rates.KRW.per_amount",
        ),
        (
            {
                "rules": [
                    {"id": "b", "kind": "base", "rates": {"KRW": {"per_amount": 1, "points": 1}}}
                ],
                "tiers": [{"id": "a", "min_score": 5}],
            },
            "tiers[0].min_score",
        ),
    ):
        with pytest.raises(InvalidArgument) as err:
            parse_rule_set(doc)  # type: ignore[arg-type]
        assert err.value.field == field


def test_the_readme_example_earns_what_the_readme_says() -> None:
    import json
    import re
    from pathlib import Path

    readme = (Path(__file__).parents[2] / "README.md").read_text()
    doc = json.loads(re.search(r"```json\n(.*?)```", readme, re.S).group(1))  # type: ignore[union-attr]
    rs = parse_rule_set(doc)
    when = datetime(2026, 12, 10, 12, tzinfo=UTC)
    e = evaluate_purchase(
        rs, Purchase("KRW", (Line("n1", "shoes", "nike", 1, 100_000),), "app", when), "gold"
    )
    assert e.points == 5500
    applied = {c.rule_id: int(c.points) for c in e.contributions if c.applied}
    assert applied == {"base": 1000, "nike-3x": 2000, "tier-bonus": 1500, "xmas": 1000}
    web = evaluate_purchase(
        rs, Purchase("KRW", (Line("n1", "shoes", "nike", 1, 100_000),), "web", when), "gold"
    )
    assert web.points == 4500


def test_reward_stock_is_optional_and_checked() -> None:
    base = {"id": "b", "kind": "base", "rates": {"KRW": {"per_amount": 1, "points": 1}}}
    rs = parse_rule_set(
        {
            "rules": [base],
            "rewards": [{"id": "mug", "points": 100, "stock": 3}, {"id": "any", "points": 5}],
        }
    )
    assert rs.reward("mug").stock == 3  # type: ignore[union-attr]
    assert rs.reward("any").stock is None  # type: ignore[union-attr]
    for bad in (-1, "many", 1.5, True):
        with pytest.raises(InvalidArgument) as err:
            parse_rule_set({"rules": [base], "rewards": [{"id": "m", "points": 1, "stock": bad}]})
        assert err.value.field == "rewards[0].stock"


def test_reward_per_member_limits_parse_and_bad_ones_name_the_field() -> None:
    base = {"id": "base", "kind": "base", "rates": {"KRW": {"per_amount": 100, "points": 1}}}
    rs = parse_rule_set(
        {
            "rules": [base],
            "rewards": [
                {
                    "id": "lounge",
                    "points": 100,
                    "per_member": [{"max": 1, "period": "month"}, {"max": 5, "period": "year"}],
                },
                {"id": "welcome", "points": 5, "per_member": [{"max": 1, "period": "ever"}]},
                {"id": "any", "points": 5},
            ],
        }
    )
    lounge, welcome, free = (rs.reward(r) for r in ("lounge", "welcome", "any"))
    assert lounge is not None and welcome is not None and free is not None
    assert [(x.period, x.max) for x in lounge.limits] == [("month", 1), ("year", 5)]
    assert lounge.limits[0].describe() == "1 redemption per member per month"
    assert lounge.limits[1].describe() == "5 redemptions per member per year"
    assert welcome.limits[0].describe() == "1 redemption per member"
    assert free.limits == ()
    for bad, where in (
        ({"max": 1, "period": "week"}, "rewards[0].per_member[0].period"),
        ({"max": 0, "period": "day"}, "rewards[0].per_member[0].max"),
        ({"max": -1, "period": "day"}, "rewards[0].per_member[0].max"),
        ({"period": "day"}, "rewards[0].per_member[0].max"),
        ("1/month", "rewards[0].per_member[0]"),
    ):
        with pytest.raises(InvalidArgument) as err:
            parse_rule_set(
                {"rules": [base], "rewards": [{"id": "m", "points": 1, "per_member": [bad]}]}
            )
        assert err.value.field == where, bad
    with pytest.raises(InvalidArgument) as err:
        parse_rule_set(
            {"rules": [base], "rewards": [{"id": "m", "points": 1, "per_member": {"max": 1}}]}
        )
    assert err.value.field == "rewards[0].per_member"
    twice = [{"max": 1, "period": "day"}, {"max": 2, "period": "day"}]
    with pytest.raises(InvalidArgument) as err:
        parse_rule_set(
            {"rules": [base], "rewards": [{"id": "m", "points": 1, "per_member": twice}]}
        )
    assert err.value.field == "rewards[0].per_member[1].period"


def test_reward_limit_periods_are_calendar_periods_in_utc() -> None:
    at = datetime(2026, 3, 15, 17, 30, tzinfo=UTC)
    assert period_start("day", at) == datetime(2026, 3, 15, tzinfo=UTC)
    assert period_start("month", at) == datetime(2026, 3, 1, tzinfo=UTC)
    assert period_start("year", at) == datetime(2026, 1, 1, tzinfo=UTC)
    assert period_start("ever", at) is None
    # The same periods as the earning caps' counters.
    for p in ("day", "month", "year"):
        start = period_start(p, at)
        assert start is not None and period_key(p, start) == period_key(p, at)
