"""A customer's recent journey from the sorted layout equals the one the
store's SQL reads (docs/adr/0310): same events in the same order (stored
microseconds, then arrival), same kinds, sources, channel counts and first
and last times — with rows still pending in the layout, after an erasure
and after a merge."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from analytics.adapters.event_store import EventRow, EventStore
from analytics.service_layer.journeys import JourneyAnalytics, WouldBlock

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
CUSTOMERS = [f"c{i}" for i in range(12)]


def rows(seed: int, n: int, offset: int) -> list[EventRow]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        # Microsecond times, many within the same millisecond and some at
        # the same instant: the order then comes from microseconds and
        # arrival, as in SQL.
        us = int(rng.integers(0, 40)) * 1000 + int(rng.choice([0, 1, 999, 500]))
        out.append(
            EventRow(
                f"e{offset + i}",
                str(rng.choice(CUSTOMERS)),
                T0 + timedelta(microseconds=us),
                str(rng.choice(["Order Completed", "Page Viewed", "Points Earned"])),
                str(rng.choice(["track", "page", "identify"])),
                str(rng.choice(["web", "app", "store", "loyalty"])),
                str(rng.choice(["shop", "loyalty", "pos"])),
                {},
            )
        )
    return out


def assert_same(j: JourneyAnalytics, customers: list[str]) -> None:
    for cid in [*customers, "nobody"]:
        for limit in (1, 3, 20, 200):
            from_layout = j.recent(cid, limit, wait=False)
            assert from_layout == j._recent_from_sql(cid, limit), (cid, limit)


@pytest.fixture()
def journeys() -> JourneyAnalytics:
    store = EventStore(":memory:")
    store.ingest(rows(1, 300, 0))
    store.ensure_layout()
    return JourneyAnalytics(store)


def test_layout_answers_as_sql_also_with_rows_not_merged_yet(journeys: JourneyAnalytics) -> None:
    journeys.store.ingest(rows(2, 200, 1000))
    # Ingested rows wait in the layout until a read of every column merges
    # them; a journey reads them where they are.
    assert journeys.store.layout._pending
    assert_same(journeys, CUSTOMERS)
    assert journeys.store.layout._pending
    assert len(journeys.store.layout.cols) == 500  # a read of every column merges them
    assert not journeys.store.layout._pending
    assert_same(journeys, CUSTOMERS)


def test_layout_answers_as_sql_after_an_erasure_and_a_merge(journeys: JourneyAnalytics) -> None:
    store = journeys.store
    assert journeys.recent("c3", 20, wait=False) is not None
    store.erase("c3")
    assert journeys.recent("c3", 20, wait=False) is None
    store.rekey("c1", ["c2", "c4"])
    assert journeys.recent("c2", 20, wait=False) is None
    assert_same(journeys, CUSTOMERS)


def test_before_the_layout_is_built_the_answer_comes_from_sql() -> None:
    store = EventStore(":memory:")
    store.ingest(rows(3, 50, 0))
    j = JourneyAnalytics(store)
    with pytest.raises(WouldBlock):
        j.recent("c1", 20, wait=False)
    from_sql = j.recent("c1", 20)
    store.ensure_layout()
    assert j.recent("c1", 20, wait=False) == from_sql


def test_a_busy_layout_is_not_waited_for_on_request(journeys: JourneyAnalytics) -> None:
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with journeys.store.layout.lock:
            held.set()
            release.wait(10)

    t = threading.Thread(target=hold)
    t.start()
    held.wait(10)
    try:
        with pytest.raises(WouldBlock):
            journeys.recent("c1", 20, wait=False)
    finally:
        release.set()
        t.join()
    assert journeys.recent("c1", 20, wait=False) is not None
