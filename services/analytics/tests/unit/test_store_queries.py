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


@pytest.mark.parametrize("threads", [2, 5])
def test_queries_split_by_customer_answer_as_one_piece(
    loaded, threads: int, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    """A query run over customer ranges side by side (docs/adr/0215) gives
    exactly the one-piece answer: funnels (loose, strict, a breakdown, the
    SQL path) with their times to convert, and retention triangles."""
    import analytics.service_layer.journeys as journeys
    from analytics.domain.funnel import customer_bounds

    one, _ = loaded
    monkeypatch.setattr(journeys, "PARALLEL_MIN_EVENTS", 0)
    split = JourneyAnalytics(one.store, threads=threads)
    cols = one.store.ensure_layout().cols
    bounds = split._bounds(cols.customer)
    assert len(bounds) == threads
    assert bounds == customer_bounds(cols.customer, threads)
    for lo, _ in bounds[1:]:  # never a customer cut in two
        assert cols.customer[lo] != cols.customer[lo - 1]
    queries = [
        FunnelQuery(tuple(Step(s) for s in STEPS), 3 * 86_400, RANGE, False, "channel"),
        FunnelQuery(tuple(Step(s) for s in STEPS), 86_400, RANGE, True),
        FunnelQuery(
            (Step("view"), Step("cart", (PropertyFilter("plan", ("pro",)),)), Step("buy")),
            2 * 86_400,
            RANGE,
            breakdown="plan",
        ),
    ]
    for q in queries:
        assert split.funnel(q) == one.funnel(q)
        assert split.funnel(q).result.steps[1].median_seconds_to_convert > 0
    r = TimeRange(T0, T0 + timedelta(weeks=10))
    for rq in (
        RetentionQuery(r, Period.WEEK, 10),
        RetentionQuery(r, Period.DAY, 12, "view", "buy"),
    ):
        got, want = split.retention(rq), one.retention(rq)
        assert got == want
        assert sum(sum(c.retained) for c in got.cohorts) > 0
    split.close()


def test_derived_arrays_built_in_ranges_equal_one_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    """The per-event arrays a query caches (dense customer number, day,
    week, month, positions per event) are the same built in ranges side by
    side as in one pass, including where a range boundary falls inside a
    customer's events."""
    import analytics.service_layer.journeys as journeys

    monkeypatch.setattr(journeys, "PARALLEL_MIN_EVENTS", 0)
    rng = np.random.default_rng(5)
    customer = np.sort(rng.integers(0, 40, 1001)).astype(np.int64)
    ts = np.sort(rng.integers(1_700_000_000_000, 1_760_000_000_000, 1001)).astype(np.int64)
    event = rng.integers(0, 4, 1001).astype(np.int32)
    for threads in (2, 3, 7):
        a = JourneyAnalytics(EventStore(":memory:"), threads=threads)
        assert np.array_equal(a._dense_parallel(customer), journeys._dense(customer))
        day = a._day(ts)
        assert np.array_equal(day, ts // journeys.DAY_MS)
        for period in Period:
            assert np.array_equal(a._period(ts, day, period), journeys._period_index(ts, period))
        assert all(
            np.array_equal(got, np.flatnonzero(event == c))
            for c, got in zip([0, 3, 9], a._scan_positions(event, [0, 3, 9]), strict=True)
        )
        a.close()
