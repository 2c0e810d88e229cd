"""The vectorised funnel engine equals a plain per-customer computation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analytics.domain.funnel import customer_levels, funnel
from analytics.tests.reference import funnel_reference

EVENTS = ["view", "cart", "checkout", "buy", "other"]
STEPS = ["view", "cart", "checkout", "buy"]
HOUR = 3_600_000


def sample(seed: int, customers: int = 300, events: int = 4000) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            "customer": rng.integers(0, customers, events).astype(np.int64),
            # Coarse times: ties between events of one customer happen.
            "ts": (rng.integers(0, 24 * 14, events) * HOUR // 4).astype(np.int64),
            "event": rng.choice(EVENTS, events, p=[0.35, 0.25, 0.15, 0.1, 0.15]),
            "channel": rng.choice(["web", "app", "store"], events),
        }
    )
    df["seq"] = np.arange(events)
    return df.sort_values(["customer", "ts", "seq"]).reset_index(drop=True)


def run(df: pd.DataFrame, *, start: int, end: int, window: int, strict: bool, breakdown: bool):  # type: ignore[no-untyped-def]
    masks = [(df["event"] == s).to_numpy() for s in STEPS]
    levels = customer_levels(
        df["customer"].to_numpy(),
        df["ts"].to_numpy(),
        masks,
        range_start_ms=start,
        range_end_ms=end,
        window_ms=window,
        strict=strict,
    )
    if not breakdown:
        return funnel(STEPS, levels)
    labels, codes = np.unique(df["channel"].to_numpy(), return_inverse=True)
    return funnel(
        STEPS, levels, breakdown_codes=codes.astype(np.int64), breakdown_labels=list(labels)
    )


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("strict", [False, True])
def test_engine_equals_reference(seed: int, strict: bool) -> None:
    df = sample(seed)
    start, end, window = 24 * HOUR, 24 * 10 * HOUR, 36 * HOUR
    got = run(df, start=start, end=end, window=window, strict=strict, breakdown=True)
    want = funnel_reference(
        df, STEPS, start_ms=start, end_ms=end, window_ms=window, strict=strict, breakdown="channel"
    )
    assert want["steps"][0]["customers"] > 100
    assert want["steps"][-1]["customers"] > 0
    for g, w in zip(got.steps, want["steps"], strict=True):
        assert g.customers == w["customers"]
        assert g.median_seconds_to_convert == pytest.approx(w["median"])
        assert g.p90_seconds_to_convert == pytest.approx(w["p90"])
    assert {v for v, _ in got.breakdowns} == set(want["breakdown"])
    for value, steps in got.breakdowns:
        assert [s.customers for s in steps] == [x["customers"] for x in want["breakdown"][value]]


def test_rates_and_drop_off_follow_from_counts() -> None:
    df = sample(7)
    got = run(df, start=0, end=24 * 14 * HOUR, window=24 * HOUR, strict=False, breakdown=False)
    first = got.steps[0].customers
    for prev, step in zip(got.steps, got.steps[1:], strict=False):
        assert step.dropped == prev.customers - step.customers
        assert step.conversion_from_previous == pytest.approx(step.customers / prev.customers)
        assert step.conversion_from_start == pytest.approx(step.customers / first)


def test_window_and_order_decide_conversion() -> None:
    # c1: view, cart 2 h later, buy 30 h later; c2: cart before view.
    df = pd.DataFrame(
        {
            "customer": [1, 1, 1, 2, 2],
            "ts": [0, 2 * HOUR, 30 * HOUR, 0, HOUR],
            "event": ["view", "cart", "buy", "cart", "view"],
            "seq": range(5),
        }
    )
    masks = [(df["event"] == s).to_numpy() for s in ["view", "cart", "buy"]]
    args = dict(range_start_ms=0, range_end_ms=100 * HOUR, strict=False)
    day = customer_levels(
        df["customer"].to_numpy(), df["ts"].to_numpy(), masks, window_ms=24 * HOUR, **args
    )  # type: ignore[arg-type]
    two = customer_levels(
        df["customer"].to_numpy(), df["ts"].to_numpy(), masks, window_ms=48 * HOUR, **args
    )  # type: ignore[arg-type]
    assert sorted(day.level.tolist()) == [1, 2]
    assert sorted(two.level.tolist()) == [1, 3]


def test_breakdown_is_capped_and_says_so() -> None:
    df = sample(5)
    df["channel"] = df["customer"].astype(str)  # one value per customer
    masks = [(df["event"] == s).to_numpy() for s in STEPS]
    levels = customer_levels(
        df["customer"].to_numpy(),
        df["ts"].to_numpy(),
        masks,
        range_start_ms=0,
        range_end_ms=10**12,
        window_ms=10**9,
    )
    labels, codes = np.unique(df["channel"].to_numpy(), return_inverse=True)
    got = funnel(
        STEPS,
        levels,
        breakdown_codes=codes.astype(np.int64),
        breakdown_labels=list(labels),
        breakdown_limit=5,
    )
    assert got.breakdown_capped
    assert len(got.breakdowns) == 5
    assert got.breakdown_values_total == len(levels.level)


@pytest.mark.parametrize("strict", [False, True])
def test_positions_and_masks_agree(strict: bool) -> None:
    """The layout hands the engine cached positions instead of masks, and
    skips the range test when every event is inside: same answer."""
    df = sample(7)
    masks = [(df["event"] == s).to_numpy() for s in STEPS]
    args = (df["customer"].to_numpy(), df["ts"].to_numpy())
    kw = {"range_start_ms": 0, "range_end_ms": 10**12, "window_ms": 36 * HOUR, "strict": strict}
    a = customer_levels(*args, masks, **kw)  # type: ignore[arg-type]
    b = customer_levels(*args, [np.flatnonzero(m) for m in masks], in_range=True, **kw)  # type: ignore[arg-type]
    assert a.level.sum() > len(a.level)  # some customers go past the first step
    assert funnel(STEPS, a) == funnel(STEPS, b)
    assert (a.start_index == b.start_index).all()


def test_layout_positions_follow_every_change() -> None:
    from analytics.adapters.layout import Columns, SortedLayout

    def cols(customer: list[int], ts: list[int], event: list[int]) -> Columns:
        n = len(ts)
        return Columns(
            np.asarray(customer, dtype=np.int64),
            np.asarray(ts, dtype=np.int64),
            np.arange(n, dtype=np.int64) + 100 * ts[0],
            np.asarray(event, dtype=np.int32),
            np.zeros(n, dtype=np.int32),
        )

    layout = SortedLayout()
    layout.load(cols([1, 2, 2], [10, 5, 20], [0, 1, 0]), watermark=3)
    c, (p0,) = layout.snapshot([0])
    assert c.event[p0].tolist() == [0, 0] and layout.span() == (5, 20)
    layout.merge(cols([1, 3], [30, 1], [0, 0]))
    c, (p0,) = layout.snapshot([0])
    assert len(p0) == 4 and (c.event[p0] == 0).all() and layout.span() == (1, 30)
    layout.drop_customers([1])
    c, (p0,) = layout.snapshot([0])
    assert sorted(c.customer[p0].tolist()) == [2, 3]


def test_layout_pending_writes_merge_to_the_full_sort() -> None:
    """Batches held back and merged at the next read (late events, new
    customers, same instants) give exactly the sorted columns of all rows."""
    from analytics.adapters.layout import Columns, SortedLayout

    rng = np.random.default_rng(5)
    n = 3000
    every = Columns(
        rng.integers(0, 200, n).astype(np.int64),
        rng.integers(0, 50, n).astype(np.int64),
        np.arange(n, dtype=np.int64),
        rng.integers(0, 4, n).astype(np.int32),
        rng.integers(0, 3, n).astype(np.int32),
    )
    layout = SortedLayout()
    layout.load(every.take(np.arange(1000)), watermark=999)
    _, (before,) = layout.snapshot([1])
    for a in range(1000, n, 250):
        layout.merge(every.take(np.arange(a, min(a + 250, n))))
    assert layout.watermark == n - 1
    want = every.sorted()
    got, (p1,) = layout.snapshot([1])
    for name in ("customer", "ts_ms", "seq", "event", "channel"):
        assert (getattr(got, name) == getattr(want, name)).all(), name
    assert len(p1) > len(before) and (got.event[p1] == 1).all()
