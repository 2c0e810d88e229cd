"""Segment membership in the event store (docs/adr/0275), on a real DuckDB
store in memory: the later change wins across calls, merged ids count as
their survivor, erased customers stay out; a funnel by `$segment` equals
pandas per segment (a customer in two segments counts in both), and the
retention of a segment's members is the same through the layout and SQL."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from analytics.adapters.event_store import EventStore, customer_key
from analytics.domain import funnel as engine
from analytics.domain.queries import FunnelQuery, Period, RetentionQuery, Step, TimeRange
from analytics.service_layer.journeys import NONE_LABEL, JourneyAnalytics
from analytics.tests.reference import funnel_reference
from analytics.tests.unit.test_store_queries import (
    RANGE,
    STEPS,
    T0,
    as_reference,
    load,
    sample,
)
from cxloop_libs.errors import InvalidArgument


def members(store: EventStore, segment: str) -> set[int]:
    return set(store.segment_members(segment).tolist())


def test_the_later_change_wins_whatever_the_order() -> None:
    store = EventStore(":memory:")
    store.apply_segment_changes([("c1", "vip", True, T0 + timedelta(hours=1))])
    store.apply_segment_changes([("c1", "vip", False, T0)])  # older: ignored
    assert members(store, "vip") == {customer_key("c1")}
    store.apply_segment_changes([("c1", "vip", False, T0 + timedelta(hours=2))])
    assert members(store, "vip") == set()
    # Inside one call too: the latest of the batch is applied.
    store.apply_segment_changes(
        [("c2", "vip", True, T0 + timedelta(hours=3)), ("c2", "vip", False, T0)]
    )
    assert members(store, "vip") == {customer_key("c2")}
    assert [m["member"] for m in store.export_segments("c1")] == [False]


def test_merged_ids_count_as_the_survivor_and_erased_stay_out() -> None:
    store = EventStore(":memory:")
    store.apply_segment_changes(
        [("c-old", "vip", True, T0), ("c-new", "vip", False, T0 + timedelta(hours=1))]
    )
    store.apply_segment_changes([("c-old", "new", True, T0)])
    store.rekey("c-new", ["c-old"])
    # Per segment the latest change of the two ids: vip exit (c-new, later), new entry.
    assert {(m["segment_id"], m["member"]) for m in store.export_segments("c-new")} == {
        ("vip", False),
        ("new", True),
    }
    assert store.export_segments("c-old") == []
    # A late change of the merged id lands on the survivor.
    store.apply_segment_changes([("c-old", "gold", True, T0 + timedelta(hours=2))])
    assert members(store, "gold") == {customer_key("c-new")}
    store.erase("c-new")
    assert store.export_segments("c-new") == [] and members(store, "new") == set()
    store.apply_segment_changes([("c-new", "vip", True, T0 + timedelta(days=1))])
    assert members(store, "vip") == set()


def test_funnel_by_groups_counts_a_customer_in_each_of_their_groups() -> None:
    levels = engine.CustomerLevels(
        customer=np.array([10, 20, 30, 40], dtype=np.int64),
        level=np.array([1, 2, 2, 1], dtype=np.int64),
        step_seconds=[np.array([60.0, 120.0])],
        start_index=np.zeros(4, dtype=np.int64),
    )
    groups = [("a", np.array([10, 20])), ("b", np.array([20, 30])), ("empty", np.array([99]))]
    got = engine.funnel_by_groups(["x", "y"], levels, groups, rest_label="(none)")
    assert {v: [s.customers for s in st] for v, st in got.breakdowns} == {
        "a": [2, 1],
        "b": [2, 2],
        "(none)": [1, 0],
    }
    assert dict(got.breakdowns)["b"][1].median_seconds_to_convert == 90.0
    capped = engine.funnel_by_groups(
        ["x", "y"], levels, groups, rest_label="(none)", breakdown_limit=1
    )
    assert capped.breakdown_capped and capped.breakdown_values_total == 3
    assert [v for v, _ in capped.breakdowns] == ["a"]  # ties by label


@pytest.fixture(scope="module")
def with_segments() -> tuple[JourneyAnalytics, pd.DataFrame, dict[str, set[str]]]:
    store = EventStore(":memory:")
    df = sample(seed=5)
    load(store, df)
    customers = sorted(df["customer_id"].unique())
    rng = np.random.default_rng(7)
    segs: dict[str, set[str]] = {"vip": set(), "new": set()}
    changes = []
    for c in customers:
        for name, p in (("vip", 0.3), ("new", 0.5)):
            if rng.random() < p:
                segs[name].add(c)
                changes.append((c, name, True, T0))
    store.apply_segment_changes(changes)
    return JourneyAnalytics(store), df, segs


def test_funnel_by_segment_equals_pandas_per_segment(with_segments) -> None:  # type: ignore[no-untyped-def]
    analytics, df, segs = with_segments
    q = FunnelQuery(tuple(Step(s) for s in STEPS), 3 * 86_400, RANGE, breakdown="$segment")
    got = analytics.funnel(q).result
    ref = as_reference(df)

    def reference(customers: set[str]) -> list[int]:
        want = funnel_reference(
            ref[ref["customer_id"].isin(customers)],
            STEPS,
            start_ms=RANGE.start_ms,
            end_ms=RANGE.end_ms,
            window_ms=3 * 86_400_000,
        )
        return [w["customers"] for w in want["steps"]]

    everyone = set(df["customer_id"])
    expected = {
        "vip": reference(segs["vip"]),
        "new": reference(segs["new"]),
        NONE_LABEL: reference(everyone - segs["vip"] - segs["new"]),
    }
    assert {v: [s.customers for s in st] for v, st in got.breakdowns} == expected
    assert [s.customers for s in got.steps] == reference(everyone)
    assert expected["vip"][0] > 0 and expected["new"][0] > 0


@pytest.mark.parametrize("period", [Period.WEEK, Period.MONTH])
def test_retention_of_a_segment_same_through_layout_and_sql(with_segments, period) -> None:  # type: ignore[no-untyped-def]
    analytics, _, segs = with_segments
    r = TimeRange(T0, T0 + timedelta(days=63))
    q = RetentionQuery(r, period, 12, "view", "buy", cohort_segment="vip")
    got = analytics.retention(q)
    sql = analytics.retention_sql(q)
    assert [(c.start, c.customers, c.retained) for c in got.cohorts] == [
        (c.start, c.customers, c.retained) for c in sql.cohorts
    ]
    everyone = analytics.retention(RetentionQuery(r, period, 12, "view", "buy"))
    in_vip = sum(c.customers for c in got.cohorts)
    assert 0 < in_vip < sum(c.customers for c in everyone.cohorts)
    assert in_vip <= len(segs["vip"])


def test_a_bad_segment_id_names_the_field() -> None:
    r = TimeRange(T0, T0 + timedelta(days=7))
    with pytest.raises(InvalidArgument) as err:
        RetentionQuery(r, cohort_segment="x\x07y").validate(set())
    assert err.value.field == "cohort_segment"
