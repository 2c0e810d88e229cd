"""Customer intelligence domain (issue #15): traits, lifecycle, the segment
language, trigger rules and the CLV / churn models, without I/O."""

from __future__ import annotations

import math
from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from cxloop_libs.errors import InvalidArgument
from personalization.domain import predictions as pr
from personalization.domain import segments as sg
from personalization.domain import triggers as tg
from personalization.domain.traits import (
    DAY,
    CustomerState,
    compute,
    rfm_scores,
    seen_from_tracked,
    trait_names,
)

NOW = 1_800_000_000.0
NAMES = trait_names()


def state_with(*events: tuple[str, dict, float]) -> CustomerState:
    s = CustomerState()
    for n, (name, props, at) in enumerate(events):
        s.add(f"e{n}", seen_from_tracked(name, props, at), 90 * DAY)
    return s


def order(category: str, days_ago: float, revenue: float = 10.0) -> tuple[str, dict, float]:
    return (
        "Order Completed",
        {"revenue": revenue, "products": [{"product_id": "p", "category": category}]},
        NOW - days_ago * DAY,
    )


def test_windows_slide_and_events_apply_once() -> None:
    s = state_with(
        order("shoes", 3),
        order("shoes", 20),
        order("hats", 60),
        ("Product Viewed", {"product_id": "x", "category": "hats"}, NOW - 1 * DAY),
    )
    assert not s.add("e0", seen_from_tracked("Order Completed", {"revenue": 5}, NOW), 90 * DAY)
    t = compute(s, NOW)
    assert (t["orders_7d"], t["orders_30d"], t["orders_90d"]) == (1, 2, 3)
    assert t["revenue_30d"] == 20 and t["lifetime_orders"] == 3
    assert t["top_category_30d"] == "shoes" and t["distinct_categories_90d"] == 2
    assert t["views_7d"] == 1
    later = compute(s, NOW + 10 * DAY)
    assert later["orders_7d"] == 0 and later["orders_30d"] == 1


@pytest.mark.parametrize(
    ("events", "stage"),
    [
        ([order("a", 2)], "new"),
        ([order("a", 200), order("a", 50)], "at_risk"),
        ([order("a", 300), order("a", 100)], "dormant"),
        ([order("a", 400), order("a", 190)], "churned"),
        ([order("a", 80), order("a", 40), order("a", 20), order("a", 1)], "loyal"),
        (
            [
                order("a", 100),
                ("Product Viewed", {"product_id": "x"}, NOW - 2 * DAY),
                order("a", 10),
            ],
            "active",
        ),
    ],
)
def test_lifecycle_names_its_rule(events: list, stage: str) -> None:
    t = compute(state_with(*events), NOW)
    assert t["lifecycle"] == stage, t["lifecycle_rule"]
    assert t["lifecycle_rule"]


def test_segment_language_evaluates_windows_and_consent() -> None:
    rule = sg.parse(
        'count(order_completed where category = "shoes" within 30d) >= 2 '
        'and count(order_completed where category = "shoes" within 14d) = 0 and consent("marketing_email")',
        NAMES,
    )
    s = state_with(order("shoes", 20), order("shoes", 25))
    assert rule.evaluate(s, compute(s, NOW), NOW, lambda p: True)
    assert not rule.evaluate(s, compute(s, NOW), NOW, lambda p: False)
    s2 = state_with(order("shoes", 20), order("shoes", 5))
    assert not rule.evaluate(s2, compute(s2, NOW), NOW, lambda p: True)
    assert rule.needs() == {"marketing_email"} and rule.time_based()
    r2 = sg.parse(
        'lifecycle in ("new", "active") or (lifetime_revenue > 100 and not orders_7d = 0)', NAMES
    )
    assert compute(s, NOW)["lifecycle"] == "active" and r2.evaluate(
        s, compute(s, NOW), NOW, lambda p: True
    )
    gone = state_with(order("shoes", 200), order("shoes", 60))
    assert not r2.evaluate(gone, compute(gone, NOW), NOW, lambda p: True)


def test_window_traits_match_their_definitions_on_random_states() -> None:
    # compute() reads every window in one pass; each trait's definition,
    # window by window through CustomerState's queries, is the reference.
    import random

    rng = random.Random(5)
    for _ in range(300):
        s = CustomerState()
        for n in range(rng.randint(0, 15)):
            name = rng.choice(["Order Completed", "Product Viewed", "Product Added", "Signed In"])
            products = [
                {"category": rng.choice(["shoes", "hats", "bags", ""]), "product_id": "p"}
                for _ in range(rng.randint(1, 3))
            ]
            at = NOW - rng.uniform(-0.5, 120) * DAY  # some after NOW, some past 90 days
            s.add(
                f"e{n}",
                seen_from_tracked(name, {"revenue": 7.1, "products": products}, at),
                90 * DAY,
            )
        t = compute(s, NOW)
        for d in (7, 30, 90):
            w = s.window(None, NOW - d * DAY, NOW)
            cats: dict[str, int] = {}
            for e in w:
                if e.category:
                    cats[e.category] = cats.get(e.category, 0) + 1
            top = sorted(cats.items(), key=lambda kv: (-kv[1], kv[0]))[0][0] if cats else ""
            assert t[f"events_{d}d"] == len({(e.at, e.name) for e in w})
            assert t[f"views_{d}d"] == s.count("product_viewed", d * DAY, NOW)
            assert t[f"cart_adds_{d}d"] == s.count("product_added", d * DAY, NOW)
            assert t[f"orders_{d}d"] == s.count("order_completed", d * DAY, NOW)
            assert t[f"revenue_{d}d"] == round(s.total("order_completed", d * DAY, NOW), 6)
            assert t[f"distinct_categories_{d}d"] == len(cats)
            assert t[f"top_category_{d}d"] == top


def test_compiled_rules_agree_with_the_tree_walker() -> None:
    # The consumer evaluates rules compiled once (one Python expression, a
    # shared memo of window aggregates); the tree walker is the reference.
    import random

    rng = random.Random(7)
    rules = [
        sg.parse(r, NAMES)
        for r in (
            'count(order_completed where category = "shoes" within 30d) >= 2 '
            'and count(order_completed where category = "shoes" within 14d) = 0',
            'consent("marketing_email") and not (views_7d >= 2 or cart_adds_30d = 0)',
            'lifecycle in ("new", "active") or (lifetime_revenue > 30 and top_category_30d != "hats")',
            "sum(order_completed within 90d) >= 20 and count(product_viewed within 7d) >= 1",
            'not consent("marketing_sms") or days_since_last_seen <= 10',
        )
    ]
    cats = ["shoes", "hats", ""]
    agree = 0
    for _ in range(300):
        events = []
        for _ in range(rng.randint(0, 12)):
            name = rng.choice(["Order Completed", "Product Viewed", "Product Added"])
            props = {"revenue": 10.0, "price": 5.0, "category": rng.choice(cats), "product_id": "p"}
            events.append((name, props, NOW - rng.uniform(0, 100) * DAY))
        s = state_with(*events)
        traits = compute(s, NOW)
        granted = rng.random() < 0.5
        memo: dict = {}
        for r in rules:
            got = r.evaluate(s, traits, NOW, lambda p, g=granted: g, memo)
            assert got == sg._eval(r.root, s, traits, NOW, lambda p, g=granted: g), r.source
            agree += got
    assert 0 < agree < 300 * len(rules)  # both outcomes were exercised


def test_rule_set_agrees_with_each_rule_and_the_tree_walker() -> None:
    # The consumer evaluates all segments at once (aggregates in one pass
    # over the recent events); each rule alone and the tree walker are the
    # reference, on random states with multi-product orders, filters on
    # several fields, sums and events after "now".
    import random

    rng = random.Random(11)
    sources = [
        'count(order_completed where category = "shoes" within 30d) >= 2 '
        'and count(order_completed where category = "shoes" within 14d) = 0',
        'consent("marketing_email") and not (views_7d >= 2 or cart_adds_30d = 0)',
        "sum(order_completed within 90d) >= 20 and count(product_viewed within 7d) >= 1",
        'sum(product_viewed where category = "hats" within 30d) >= 9',
        'count(product_viewed where item = "p2" within 7d) >= 2',
        'count(product_added where channel = "web" within 12h) >= 1 or orders_7d >= 1',
        "count(order_completed within 30d) >= 2 and sum(order_completed within 7d) < 15",
        'lifecycle in ("new", "active") and count(product_viewed within 90d) >= 3',
        'not consent("marketing_sms") or days_since_last_seen <= 10',
    ]
    rules = [(f"s{i}", sg.parse(r, NAMES)) for i, r in enumerate(sources)]
    rs = sg.RuleSet(rules)
    assert rs.ids == tuple(sid for sid, _ in rules)
    cats, items = ["shoes", "hats", ""], ["p1", "p2"]
    hits = [0] * len(rules)
    for _ in range(400):
        events = []
        for _ in range(rng.randint(0, 14)):
            name = rng.choice(["Order Completed", "Product Viewed", "Product Added"])
            products = [
                {"category": rng.choice(cats), "product_id": rng.choice(items), "price": 4.5}
                for _ in range(rng.randint(1, 3))
            ]
            props = {"revenue": rng.choice([5.0, 10.0, 12.5]), "products": products}
            at = NOW - rng.uniform(-0.2, 95) * DAY  # a few slightly after NOW
            events.append(seen_from_tracked(name, props, at, rng.choice(["web", "app"])))
        s = CustomerState()
        for n, seen in enumerate(events):
            s.add(f"e{n}", seen, 90 * DAY)
        traits = compute(s, NOW)
        granted = rng.random() < 0.5
        got = rs.evaluate(s, traits, NOW, lambda p, g=granted: g)
        for k, (_, r) in enumerate(rules):
            alone = r.evaluate(s, traits, NOW, lambda p, g=granted: g)
            assert got[k] == alone == sg._eval(r.root, s, traits, NOW, lambda p, g=granted: g), (
                r.source
            )
            hits[k] += got[k]
    assert all(0 < h < 400 for h in hits), hits  # every rule both in and out
    assert sg.RuleSet([]).evaluate(CustomerState(), {}, NOW, lambda p: True) == ()


def _random_seen(rng, name: str | None = None) -> list:
    name = name or rng.choice(
        ["Order Completed", "Product Viewed", "Product Added", "Checkout Started", "Signed In"]
    )
    products = [
        {
            "category": rng.choice(["shoes", "hats", ""]),
            "product_id": rng.choice(["p1", "p2"]),
            "price": 4.5,
        }
        for _ in range(rng.randint(1, 3))
    ]
    props = {"revenue": rng.choice([5.0, 10.0, 12.5]), "products": products}
    # Half in the last days (short windows fill), a few slightly after NOW.
    at = NOW - (rng.uniform(-0.2, 8) if rng.random() < 0.5 else rng.uniform(0, 95)) * DAY
    return seen_from_tracked(name, props, at, rng.choice(["web", "app"]))


def test_traits_an_event_changes_lists_every_trait_it_moves() -> None:
    # The dependency index (ADR 0260) skips a segment when no trait it reads
    # can change with the event: a trait that moves and is not listed would
    # leave a member in (or out of) a segment it no longer matches.
    import random

    from personalization.domain.traits import traits_an_event_changes

    rng = random.Random(5)
    moved: dict[str, set[str]] = {}
    for _ in range(1500):
        s = CustomerState()
        for n in range(rng.randint(0, 10)):
            s.add(f"e{n}", _random_seen(rng), 90 * DAY)
        extra = {"predicted_clv": 7.0, "rfm_recency": 3}
        before = compute(s, NOW, extra=extra)
        seen = _random_seen(rng)
        assert s.add("new", seen, 90 * DAY)
        after = compute(s, NOW, extra=extra)
        changes = traits_an_event_changes(seen[0].name)
        for k in after:
            if after[k] != before[k]:
                assert k in changes, (seen[0].name, k)
                moved.setdefault(seen[0].name, set()).add(k)
    # Every event kind moved something and the order-only traits moved.
    assert {"lifetime_orders", "orders_7d", "revenue_90d"} <= moved["order_completed"]
    assert "views_7d" in moved["product_viewed"] and "cart_adds_30d" in moved["product_added"]
    assert "views_7d" not in traits_an_event_changes("product_added")


def test_dependency_index_re_evaluates_every_segment_an_event_can_change() -> None:
    # Membership after an event = the last evaluation for the segments the
    # index skips + a fresh evaluation of those it names; at a fixed time
    # that must equal evaluating every segment again. A rule whose trait or
    # aggregate is missing from the index fails here.
    import random

    rng = random.Random(23)
    sources = [
        'count(order_completed where category = "shoes" within 30d) >= 1',
        'count(product_viewed where item = "p2" within 7d) >= 2',
        'count(product_added where channel = "web" within 12h) >= 1',
        "sum(order_completed within 90d) >= 20",
        "views_7d >= 2",
        "cart_adds_30d >= 1 and orders_7d = 0",
        "lifetime_revenue > 20",
        "days_since_last_order > 10",
        "predicted_clv > 5",
        'top_category_30d = "hats"',
        'lifecycle in ("new", "active")',
        "distinct_categories_90d >= 2",
        'consent("marketing_email") and lifetime_orders >= 1',
        "count(checkout_started within 30d) >= 1 and not count(order_completed within 30d) >= 1",
    ]
    rules = [(f"s{i:02d}", sg.parse(r, NAMES)) for i, r in enumerate(sources)]
    rs = sg.RuleSet(rules)
    skipped = 0
    for _ in range(1500):
        s = CustomerState()
        for n in range(rng.randint(0, 10)):
            s.add(f"e{n}", _random_seen(rng), 90 * DAY)
        granted = rng.random() < 0.5
        extra = {"predicted_clv": rng.choice([0.0, 9.0])}
        last = rs.evaluate(s, compute(s, NOW, extra=extra), NOW, lambda p, g=granted: g)
        if rng.random() < 0.3:
            granted = not granted  # consent given or withdrawn since: read on the next event
        seen = _random_seen(rng)
        assert s.add("new", seen, 90 * DAY)
        traits = compute(s, NOW, extra=extra)
        mask = rs.changed_by(seen)
        plan = rs.plan(mask)
        fresh = dict(zip(plan.idx, plan.run(s, traits, NOW, lambda p, g=granted: g), strict=True))
        got = tuple(fresh.get(k, last[k]) for k in range(len(rules)))
        assert got == rs.evaluate(s, traits, NOW, lambda p, g=granted: g), [
            sources[k] for k in range(len(rules)) if got[k] != last[k] or k in fresh
        ]
        skipped += len(rules) - len(plan.idx)
    assert skipped > 1500 * 3  # the index does leave segments out


@pytest.mark.parametrize(
    ("rule", "position", "words"),
    [
        ("orders_30d >", 13, "expected a number"),
        ("orders_30d >= 2 and", 20, "expected a trait"),
        ("(orders_30d > 1", 16, "expected ')'"),
        ("nope = 1", 1, "unknown trait 'nope'"),
        ("count(flew within 3d) > 0", 7, "unknown event 'flew'"),
        ("count(product_added within 120d) > 0", 28, "longer than the 90 days"),
        ("count(product_added within 3d) > 1.5", 34, "whole number"),
        ('lifecycle > "new"', 13, "only = and !="),
        ("orders_30d > 5 and orders_30d < 3", 1, "never be true"),
        ("count(product_added within 3d) < 0", 1, "never be true"),
        ('lifecycle = "new" and lifecycle = "loyal"', 1, "never be true"),
        ("orders_30d > 1 $", 16, "unexpected character"),
        ("", 1, "empty rule"),
    ],
)
def test_segment_errors_give_the_position(rule: str, position: int, words: str) -> None:
    with pytest.raises(sg.RuleError) as err:
        sg.parse(rule, NAMES)
    assert err.value.position + 1 == position, str(err.value)
    assert words in str(err.value)


def trig(**kw: object) -> tg.Trigger:
    base: dict = {"trigger_id": "t1", "on": "event:product_added", "action": "send_message"}
    base.update(kw)
    return tg.Trigger(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"on": "event:teleported"}, "trigger.on"),
        ({"on": "segment:missing"}, "trigger.on"),
        ({"on": "action:t1"}, "trigger.on"),
        ({"action": "explode"}, "trigger.action"),
        ({"unless": "product_added"}, "trigger.unless"),
        ({"max_per_customer": 0}, "trigger.max_per_customer"),
        ({"delay_s": -1}, "trigger.delay_seconds"),
        ({"channels": ("email",)}, "trigger.channels"),
    ],
)
def test_bad_triggers_name_the_field(kw: dict, field: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        tg.validate(trig(**kw), {"vip"}, [])
    assert err.value.field == field


def test_trigger_loops_through_others_are_refused() -> None:
    other = trig(trigger_id="t2", on="action:t1")
    with pytest.raises(InvalidArgument, match="loop"):
        tg.validate(trig(on="action:t2"), set(), [other])
    tg.validate(trig(trigger_id="t3", on="action:t2"), set(), [other, trig()])


def test_channel_follows_consent_and_quiet_hours_defer() -> None:
    t = trig(channels=("push:marketing_push", "email:marketing_email"))
    assert tg.choose_channel(t, lambda p: p == "marketing_email") == ("email", "marketing_email")
    assert tg.choose_channel(t, lambda p: False) is None
    assert tg.action_id("t", "c", "e") == tg.action_id("t", "c", "e") != tg.action_id("t", "c", "f")
    tz = ZoneInfo("Asia/Seoul")
    q = tg.QuietHours.parse("22-8")
    late = datetime(2026, 1, 5, 23, 30, tzinfo=tz).timestamp()
    assert datetime.fromtimestamp(q.defer(late, tz), tz).hour == 8
    noon = datetime(2026, 1, 5, 12, 0, tzinfo=tz).timestamp()
    assert q.defer(noon, tz) == noon


def test_rfm_quintiles() -> None:
    rows = [(f"c{i}", float(100 - i), i, float(i * 10)) for i in range(10)]
    scores = rfm_scores(rows)
    assert scores["c9"] == (5, 5, 5) and scores["c0"] == (1, 1, 1)


def synthetic(n: int, seed: int = 7) -> list[list[tuple[float, float]]]:
    """Customers who buy at a Poisson rate until they drop out (the BG/NBD story)."""
    rng = np.random.default_rng(seed)
    start = NOW - 400 * DAY
    out = []
    for _ in range(n):
        lam = rng.gamma(0.5, 1 / 10)  # purchases per day
        p = rng.beta(1.0, 4.0)  # dropout after each purchase
        t = start + rng.uniform(0, 60) * DAY
        orders = [(t, float(rng.gamma(4, 10)))]
        while True:
            if rng.random() < p:
                break
            t += rng.exponential(1 / lam) * DAY
            if t > NOW:
                break
            orders.append((t, float(rng.gamma(4, 10))))
        out.append(orders)
    return out


def test_bgnbd_recovers_a_sensible_forecast_and_churn_is_calibrated() -> None:
    data = synthetic(600)
    cut = NOW - 100 * DAY
    model = pr.fit_clv(data, cut)
    s = pr.summarise(data, cut)
    pred = model.purchases(100, s)
    actual = np.array([len({int(a // DAY) for a, _ in o if cut < a <= NOW}) for o in data])
    assert abs(pred.sum() / actual.sum() - 1) < 0.25
    assert np.corrcoef(pred, actual)[0, 1] > 0.5
    assert (model.p_alive(s) <= 1).all()
    churn = pr.train_churn(data, NOW, 60)
    assert churn is not None
    assert churn.metrics["auc"] > 0.6 and churn.metrics["brier"] < 0.25


def test_churn_model_beats_recency_alone_on_a_known_process() -> None:
    # BG/NBD customers: how overdue a purchase is depends on each customer's
    # own rate, which recency alone cannot see. Time-based holdout.
    data = synthetic(3000, seed=11)
    churn = pr.train_churn(data, NOW, 90)
    assert churn is not None
    m = churn.metrics
    assert m["auc"] > m["recency_auc"] + 0.01, m
    assert m["brier"] < m["recency_brier"], m
    # Reliability: predicted and observed churn agree per decile.
    assert all(abs(pred - obs) < 0.15 for pred, obs in m["reliability"]), m["reliability"]


def test_never_dropout_share_is_recovered() -> None:
    # A known population: 30 % of customers never drop out, the rest follow
    # BG/NBD. The mixture should find the share and forecast the holdout
    # total; with no such share it should find (almost) none.
    rng = np.random.default_rng(3)
    start, cut = NOW - 500 * DAY, NOW - 200 * DAY

    def population(share: float) -> list[list[tuple[float, float]]]:
        out = []
        for _ in range(4000):
            lam = rng.gamma(0.6, 1 / 12)
            p = 0.0 if rng.random() < share else rng.beta(1.0, 3.0)
            t = start + rng.uniform(0, 90) * DAY
            orders = [(t, 10.0)]
            while rng.random() >= p:
                t += rng.exponential(1 / lam) * DAY
                if t > NOW:
                    break
                orders.append((t, 10.0))
            out.append(orders)
        return out

    data = population(0.3)
    s = pr.summarise(data, cut)
    actual = np.array([len({int(a // DAY) for a, _ in o if cut < a <= NOW}) for o in data])
    mixed, plain = pr.BGNBD.fit(s), pr.BGNBD.fit(s, mixture=False)
    assert 0.15 < mixed.pi < 0.45, mixed
    pm, pp = mixed.expected(200, s.x, s.t_x, s.T), plain.expected(200, s.x, s.t_x, s.T)
    assert abs(pm.sum() / actual.sum() - 1) < 0.08
    # Here a plain BG/NBD can mimic the share with a U-shaped Beta, so the
    # mixture is not asked to win, only not to lose ground.
    rmse_m, rmse_p = (float(np.sqrt(np.mean((p - actual) ** 2))) for p in (pm, pp))
    assert rmse_m < rmse_p * 1.05, (rmse_m, rmse_p)
    assert (mixed.p_alive(s.x, s.t_x, s.T) <= 1).all()
    none = pr.BGNBD.fit(pr.summarise(population(0.0), cut))
    assert none.pi < 0.05, none


def seasonal_population(
    lull: float, seed: int = 3, new_customer: float = 1.0
) -> tuple[list[list[tuple[float, float]]], float]:
    """BG/NBD customers whose purchase rate is ``lull`` times the usual in
    the three calendar months before the cut (1 elsewhere) and, after the
    cut, the mean rate of the calibration span's days; ``new_customer`` times
    that in a customer's first NEW_CUSTOMER_DAYS: the month-clock BG/NBD's
    own story, average months ahead included."""
    rng = np.random.default_rng(seed)
    start, cut = NOW - 540 * DAY, NOW - 200 * DAY

    def month(t: float) -> int:
        return int(np.datetime64(int(t // DAY), "D").astype("datetime64[M]").astype(np.int64))

    lull_months = {month(cut - d * DAY) for d in range(90)}
    mean = float(
        np.mean([lull if month(d) in lull_months else 1.0 for d in np.arange(start, cut, DAY)])
    )
    out = []
    for _ in range(3000):
        lam, p = rng.gamma(0.6, 1 / 10), rng.beta(1.0, 3.0)
        t = t0 = start + rng.uniform(0, 60) * DAY
        orders = [(t, 10.0)]
        top = max(1.0, new_customer)
        while True:  # thinning: candidates at lam * top, kept with the day's relative rate
            t += rng.exponential(1 / (lam * top)) * DAY
            if t > NOW:
                break
            rate = mean if t > cut else lull if month(t) in lull_months else 1.0
            if t - t0 < pr.NEW_CUSTOMER_DAYS * DAY:
                rate *= new_customer
            if rng.random() * top < rate:
                orders.append((t, 10.0))
                if rng.random() < p:
                    break
        out.append(orders)
    return out, cut


@pytest.mark.timeout(300)  # three fits of the month clock on 3,000 customers
def test_calendar_month_clock_reads_a_lull_before_the_cut_as_a_lull_not_dropout() -> None:
    data, cut = seasonal_population(0.4)
    s = pr.summarise(data, cut)
    actual = np.array([len({int(a // DAY) for a, _ in o if cut < a <= NOW}) for o in data])
    served = pr.fit_clv(data, cut)
    calendar = pr.fit_clv(data, cut, seasonal=False, mixture=False)
    season = served.season
    assert season is not None
    # The lull months (the last three) at 0.4 / 0.84 of the mean day, the others above 1.
    rates = np.array(season.rates)
    assert np.all(np.abs(rates[-3:] - 0.4 / 0.843) < 0.08), rates
    assert np.all(rates[1:-3] > 1.05), rates
    days = np.ones(len(season.day_rates))
    days[-1] = season.end_day - math.floor(season.end_day)
    assert abs(season.day_rates @ days / days.sum() - 1) < 1e-9
    err = served.purchases(200, s).sum() / actual.sum() - 1
    plain_err = calendar.purchases(200, s).sum() / actual.sum() - 1
    assert abs(err) < 0.06, err
    assert plain_err < -0.15, plain_err  # the calendar clock reads the lull as dropout
    assert (served.p_alive(s) <= 1).all()
    # Orders after the cut are never read.
    before = [[(a, v) for a, v in o if a <= cut] for o in data]
    again = pr.fit_clv(before, cut)
    assert again.season is not None and again.season.rates == season.rates
    assert again.bgnbd == served.bgnbd


def test_calendar_month_clock_stays_flat_without_seasons_and_after_the_cut() -> None:
    data, cut = seasonal_population(1.0)
    model = pr.fit_clv(data, cut)
    # BIC: no never-dropout share and no new-customer rate on plain BG/NBD data.
    assert model.season is not None and model.bgnbd.pi == 0.0
    assert model.season.new_customer_rate == 1.0
    # The first (partial, acquisition) month aside, every month near 1.
    assert np.all(np.abs(np.array(model.season.rates[1:]) - 1) < 0.1), model.season.rates
    season = model.season
    end = season.end_day
    assert season.clock([end + 10])[0] - season.clock([end])[0] == pytest.approx(10)
    s = pr.summarise(data, cut)
    w = season.warp(s)
    assert np.allclose(w.x, s.x) and (w.t_x <= w.T + 1e-9).all()
    # Too little history for a month's rate: the calendar clock.
    short = [[(a, v) for a, v in o if a <= cut] for o in data[:10]]
    assert pr.fit_clv(short, cut).season is None


def test_new_customers_first_weeks_are_not_read_as_a_busy_season() -> None:
    # Customers buy twice as fast in their first NEW_CUSTOMER_DAYS; the cohort
    # joins in the first 60 days, so without the new-customer rate those
    # months look busy and lift the mean day the forecast uses.
    data, cut = seasonal_population(1.0, seed=4, new_customer=2.0)
    model = pr.fit_clv(data, cut)
    assert model.season is not None
    assert abs(model.season.new_customer_rate - 2.0) < 0.3, model.season.new_customer_rate
    assert np.all(np.abs(np.array(model.season.rates[1:]) - 1) < 0.12), model.season.rates
    s = pr.summarise(data, cut)
    actual = np.array([len({int(a // DAY) for a, _ in o if cut < a <= NOW}) for o in data])
    err = model.purchases(200, s).sum() / actual.sum() - 1
    assert abs(err) < 0.06, err


def test_backtest_choice_picks_the_model_that_forecasts_the_validation_part() -> None:
    # BG/NBD customers: the maximum-likelihood fit describes them; a strong
    # L2 penalty (a prior far from the truth) forecasts the last third of
    # the data worse. The choice uses only data before the cut, and does not
    # depend on the candidates' order (the bad one comes first).
    data = synthetic(600, seed=5)
    cut = NOW - 60 * DAY
    ml, bad = pr.ClvCandidate("ml"), pr.ClvCandidate("strong-prior", penalizer=0.5)
    choice = pr.choose_clv(data, cut, (bad, ml))
    s = choice.scores
    assert choice.candidate == ml, s
    assert s["ml"]["rmse"] < s["strong-prior"]["rmse"]
    assert abs(s["ml"]["total_error"]) < abs(s["strong-prior"]["total_error"])
    # Validation = the last third of the span from the first purchase to the cut.
    first = min(o[0][0] for o in data)
    assert choice.validation_days == round((cut - first) / DAY / 3)
    # Orders after the cut are never read: dropping them changes nothing.
    before = [[(a, v) for a, v in o if a <= cut] for o in data]
    assert pr.choose_clv(before, cut, (bad, ml)).scores == s


def test_penalized_bgnbd_is_lifetimes_prior_towards_small_a_b() -> None:
    s = pr.summarise(synthetic(500, seed=9), NOW - 100 * DAY)
    ml = pr.BGNBD.fit(s, mixture=False)
    pen = pr.BGNBD.fit(s, mixture=False, penalizer=0.01)
    assert pen.a + pen.b < ml.a + ml.b and pen.pi == 0.0


def test_segment_entered_parts_serialize_as_one_message_with_the_same_id() -> None:
    # The consumer builds each entry's bytes and id from per-customer parts.
    import uuid

    from cxloop.personalization.v1 import events_pb2 as ev_pb

    from personalization.service_layer import intelligence as intel
    from personalization.service_layer.messages import ts

    at = ts(NOW + 0.125)
    for cid, sid, cause in (
        ("c1", "s01", str(uuid.uuid4())),
        ("c-ü", "vip", ""),
        ("x" * 64, "y" * 64, "z" * 160),
    ):
        whole = ev_pb.SegmentEntered(
            customer_id=cid, segment_id=sid, entered_at=at, cause_event_id=cause
        ).SerializeToString()
        parts = (
            ev_pb.SegmentEntered(customer_id=cid).SerializeToString()
            + intel._segment_field(sid)
            + ev_pb.SegmentEntered(entered_at=at, cause_event_id=cause).SerializeToString()
        )
        assert parts == whole
        name = f"entered|{sid}|{cid}|{cause}|{NOW:.3f}"
        tail = f"|{cid}|{cause}|{NOW:.3f}".encode()
        expected = str(uuid.uuid5(intel._NS, name))
        assert intel._uuid5_after(intel._id_prefix("entered", sid), tail) == expected
        assert intel._uuid5(name) == expected


def test_event_properties_read_as_message_to_dict_gives_them() -> None:
    # The consumer reads a Struct's values directly; MessageToDict is the
    # reference for every kind of value, nested ones included.
    from google.protobuf.json_format import MessageToDict
    from google.protobuf.struct_pb2 import Struct

    from cxloop_libs.structs import struct_dict

    s = Struct()
    s.update(
        {
            "product_id": "p1",
            "price": 12.5,
            "quantity": 3,
            "gift": True,
            "coupon": None,
            "products": [{"sku": "a", "price": 2}, {"sku": "b", "tags": ["x", 1, None]}],
            "meta": {"source": {"campaign": "spring", "n": 0}},
            "empty": [],
        }
    )
    assert struct_dict(s) == MessageToDict(s)
    assert struct_dict(Struct()) == {}
    # Where MessageToDict raises, the value stays a float (read as 0 later).
    s["price"] = float("nan")
    assert np.isnan(struct_dict(s)["price"])
