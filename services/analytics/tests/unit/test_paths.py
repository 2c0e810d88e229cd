"""Top paths after / before an anchor equal a plain per-customer count."""

from __future__ import annotations

import numpy as np
import pytest

from analytics.domain.paths import paths
from analytics.tests.reference import paths_reference
from analytics.tests.unit.test_funnel import EVENTS, sample


@pytest.mark.parametrize("before", [False, True])
def test_paths_equal_reference(before: bool) -> None:
    df = sample(11, customers=200, events=3000)
    labels = EVENTS
    codes = np.array([labels.index(e) for e in df["event"]], dtype=np.int64)
    got = paths(
        df["customer"].to_numpy(),
        codes,
        labels,
        labels.index("cart"),
        depth=3,
        top_n=1000,
        before=before,
    )
    want = paths_reference(df, "cart", 3, before=before)
    assert got.anchors == int((df["event"] == "cart").sum())
    assert {tuple(p): c for p, c in got.paths} == dict(want)
    # Sankey: what leaves the anchor position equals the anchors counted.
    anchor_step = 3 if before else 0
    out_of_anchor = sum(c for s, a, _, c in got.links if s == anchor_step and a == "cart")
    if not before:
        assert out_of_anchor == got.anchors


def test_top_n_orders_by_count() -> None:
    customer = np.array([1, 1, 2, 2, 3, 3], dtype=np.int64)
    codes = np.array([0, 1, 0, 1, 0, 2], dtype=np.int64)
    got = paths(customer, codes, ["a", "b", "c"], 0, depth=1, top_n=1)
    assert got.paths == [(["a", "b"], 2)]
