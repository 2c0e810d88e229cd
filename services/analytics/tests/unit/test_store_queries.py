"""Funnels, paths and retention read from a real DuckDB store (in memory)
equal plain pandas computations on the same sample — through the sorted
layout, through the SQL path (property filters and breakdowns), and after
the layout was kept current incrementally."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from analytics.adapters.event_store import EventRow, EventStore
from analytics.domain.queries import (
    FunnelQuery,
    PathsQuery,
    Period,
    PropertyFilter,
    RetentionQuery,
    Step,
    TimeRange,
)
from analytics.service_layer.journeys import JourneyAnalytics
from analytics.tests.reference import funnel_reference, paths_reference

T0 = datetime(2026, 1, 5, tzinfo=UTC)  # a Monday
EVENTS = ["view", "cart", "checkout", "buy", "other"]
STEPS = ["view", "cart", "checkout", "buy"]


def sample(seed: int = 3, customers: int = 300, n: int = 16000) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            "customer_id": [f"c{i}" for i in rng.integers(0, customers, n)],
            "ts": [T0 + timedelta(minutes=int(m)) for m in rng.integers(0, 60 * 24 * 70, n)],
            "event": rng.choice(EVENTS, n, p=[0.35, 0.25, 0.15, 0.1, 0.15]),
            "channel": rng.choice(["web", "app", "store"], n),
            "plan": rng.choice(["free", "pro"], n),
        }
    )
    df["event_id"] = [f"e{i}" for i in range(n)]
    return df


def load(store: EventStore, df: pd.DataFrame) -> None:
    rows = [
        EventRow(
            r.event_id, r.customer_id, r.ts, r.event, "track", r.channel, "shop", {"plan": r.plan}
        )
        for r in df.itertuples()
    ]
    # In a few batches, the layout built in between: incremental merging.
    store.ingest(rows[:5000])
    store.ensure_layout()
    store.ingest(rows[5000:10000])
    store.ingest(rows[10000:])


def as_reference(df: pd.DataFrame) -> pd.DataFrame:
    ref = df.copy()
    ref["customer"] = ref["customer_id"]
    ref["ts"] = [int(t.timestamp() * 1000) for t in ref["ts"]]
    ref["seq"] = np.arange(len(ref))
    return ref


@pytest.fixture(scope="module")
def loaded() -> tuple[JourneyAnalytics, pd.DataFrame]:
    store = EventStore(":memory:")
    df = sample()
    load(store, df)
    return JourneyAnalytics(store), df


RANGE = TimeRange(T0 + timedelta(days=7), T0 + timedelta(days=49))


@pytest.mark.parametrize("strict", [False, True])
def test_funnel_through_the_layout_equals_pandas(loaded, strict: bool) -> None:  # type: ignore[no-untyped-def]
    analytics, df = loaded
    q = FunnelQuery(tuple(Step(s) for s in STEPS), 3 * 86_400, RANGE, strict, "channel")
    got = analytics.funnel(q).result
    want = funnel_reference(
        as_reference(df),
        STEPS,
        start_ms=RANGE.start_ms,
        end_ms=RANGE.end_ms,
        window_ms=3 * 86_400_000,
        strict=strict,
        breakdown="channel",
    )
    assert [s.customers for s in got.steps] == [w["customers"] for w in want["steps"]]
    assert [s.median_seconds_to_convert for s in got.steps] == pytest.approx(
        [w["median"] for w in want["steps"]]
    )
    assert {v: [s.customers for s in st] for v, st in got.breakdowns} == {
        v: [x["customers"] for x in st] for v, st in want["breakdown"].items()
    }
    assert got.steps[-1].customers > 0


def test_funnel_with_property_filter_and_breakdown_reads_sql(loaded) -> None:  # type: ignore[no-untyped-def]
    analytics, df = loaded
    steps = (Step("view"), Step("cart", (PropertyFilter("plan", ("pro",)),)), Step("buy"))
    q = FunnelQuery(steps, 2 * 86_400, RANGE, breakdown="plan")
    got = analytics.funnel(q).result
    ref = as_reference(df)
    # In the reference, a cart that is not "pro" is simply not that step.
    ref.loc[(ref["event"] == "cart") & (ref["plan"] != "pro"), "event"] = "cart-free"
    want = funnel_reference(
        ref,
        ["view", "cart", "buy"],
        start_ms=RANGE.start_ms,
        end_ms=RANGE.end_ms,
        window_ms=2 * 86_400_000,
        breakdown="plan",
    )
    assert [s.customers for s in got.steps] == [w["customers"] for w in want["steps"]]
    assert {v: [s.customers for s in st] for v, st in got.breakdowns} == {
        v: [x["customers"] for x in st] for v, st in want["breakdown"].items()
    }


def test_layout_and_sql_paths_agree(loaded) -> None:  # type: ignore[no-untyped-def]
    analytics, _ = loaded
    q = FunnelQuery(tuple(Step(s) for s in STEPS), 86_400, RANGE)
    fast = analytics.funnel(q).result
    customer, ts, masks, _, _, _ = analytics._funnel_from_sql(q)
    from analytics.domain.funnel import customer_levels, summarise

    levels = customer_levels(
        customer,
        ts,
        masks,
        range_start_ms=RANGE.start_ms,
        range_end_ms=RANGE.end_ms,
        window_ms=86_400_000,
    )
    assert summarise(STEPS, levels.level, levels.seconds) == fast.steps


def test_paths_equal_pandas(loaded) -> None:  # type: ignore[no-untyped-def]
    analytics, df = loaded
    full = TimeRange(T0, T0 + timedelta(days=80))
    got = analytics.paths(PathsQuery("checkout", full, depth=2, top_n=100, exclude=("other",)))
    ref = as_reference(df)
    want = paths_reference(ref[ref["event"] != "other"], "checkout", 2)
    assert {tuple(p): c for p, c in got.paths} == dict(want.most_common(100))


@pytest.mark.parametrize("period", [Period.DAY, Period.WEEK, Period.MONTH])
def test_retention_triangle_equals_pandas(loaded, period: Period) -> None:  # type: ignore[no-untyped-def]
    analytics, df = loaded
    r = TimeRange(T0, T0 + timedelta(days=63))
    got = analytics.retention(RetentionQuery(r, period, 12, "view", "buy"))
    ref = df.copy()
    ref["ts"] = pd.to_datetime(ref["ts"]).dt.tz_convert(None)
    freq = {"day": "D", "week": "W-MON", "month": "MS"}[period.value]

    def trunc(s: pd.Series) -> pd.Series:
        if period is Period.DAY:
            return s.dt.floor("D")
        if period is Period.WEEK:
            return (s - pd.to_timedelta(s.dt.day_of_week, unit="D")).dt.floor("D")
        return s.dt.to_period("M").dt.to_timestamp()

    end = pd.Timestamp(r.end.replace(tzinfo=None))
    first = ref[(ref["event"] == "view") & (ref["ts"] < end)].groupby("customer_id")["ts"].min()
    first = first[first >= pd.Timestamp(r.start.replace(tzinfo=None))]
    cohort = trunc(first)
    buys = ref[(ref["event"] == "buy") & (ref["ts"] < end)].copy()
    buys["p"] = trunc(buys["ts"])
    assert freq
    want: dict[pd.Timestamp, list[int]] = {}
    for c, members in cohort.groupby(cohort):
        row = []
        k = 0
        start = c
        while start < end and k < 12:
            active = buys[buys["customer_id"].isin(members.index) & (buys["p"] == start)]
            row.append(active["customer_id"].nunique())
            k += 1
            start = start + (
                pd.DateOffset(months=1)
                if period is Period.MONTH
                else pd.Timedelta(days=1 if period is Period.DAY else 7)
            )
        want[c] = row
    assert len(got.cohorts) == len(want)
    for row in got.cohorts:
        key = pd.Timestamp(row.start.replace(tzinfo=None))
        assert row.customers == int((cohort == key).sum())
        assert row.retained == want[key], key
    assert got.mau > 0 and 0 < got.stickiness <= 1
    # The numpy answer on the layout equals DuckDB SQL's.
    sql = analytics.retention_sql(RetentionQuery(r, period, 12, "view", "buy"))
    assert [(c.start, c.customers, c.retained) for c in got.cohorts] == [
        (c.start, c.customers, c.retained) for c in sql.cohorts
    ]
    assert (got.mau, got.average_dau) == (sql.mau, pytest.approx(sql.average_dau))


def test_journey_stages_per_week_equal_pandas(loaded) -> None:  # type: ignore[no-untyped-def]
    from analytics.domain.queries import StagesQuery

    analytics, df = loaded
    mapping = (
        ("awareness", ("view",)),
        ("consideration", ("cart", "checkout")),
        ("purchase", ("buy",)),
    )
    r = TimeRange(T0, T0 + timedelta(days=28))
    got = analytics.stages(StagesQuery(mapping, r, Period.WEEK))
    ref = df[(df["ts"] >= r.start) & (df["ts"] < r.end)].copy()
    stage_of = {e: i for i, (_, events) in enumerate(mapping) for e in events}
    ref = ref[ref["event"].isin(stage_of)]
    ref["stage"] = ref["event"].map(stage_of)
    ref["week"] = [(t - timedelta(days=t.weekday())).date() for t in ref["ts"]]
    deepest = ref.groupby(["week", "customer_id"])["stage"].max().reset_index()
    assert len(got) == 4
    for start, rows in got:
        week = deepest[deepest["week"] == start.date()]
        want = [int((week["stage"] >= i).sum()) for i in range(3)]
        assert [c for _, c, _ in rows] == want
        assert rows[1][2] == pytest.approx(want[1] / want[0])
