"""The ClickHouse adapter's SQL on the ClickHouse engine itself (chDB,
in-process): windowFunnel answers equal the DuckDB engine's on the same
sample; replays collapse; erasure and merges change what is counted."""

from __future__ import annotations

from datetime import timedelta

import pytest

from analytics.adapters.event_store import EventRow, EventStore
from analytics.domain.queries import FunnelQuery, Step, TimeRange
from analytics.service_layer.journeys import JourneyAnalytics
from analytics.tests.unit.test_store_queries import RANGE, STEPS, T0, load, sample

chdb = pytest.importorskip("chdb")

from analytics.adapters.clickhouse_store import ChdbClient, ClickHouseEventStore  # noqa: E402


@pytest.fixture(scope="module")
def stores():  # type: ignore[no-untyped-def]
    df = sample()
    duck = EventStore(":memory:")
    load(duck, df)
    client = ChdbClient()
    ch = ClickHouseEventStore(client, "cx_test")
    ch.ensure_schema()
    rows = [
        EventRow(
            r.event_id, r.customer_id, r.ts, r.event, "track", r.channel, "shop", {"plan": r.plan}
        )
        for r in df.itertuples()
    ]
    for i in range(0, len(rows), 4000):
        ch.ingest(rows[i : i + 4000])
    yield JourneyAnalytics(duck), ch, rows
    client.close()


@pytest.mark.parametrize("window_days", [1, 3])
def test_window_funnel_equals_the_duckdb_engine(stores, window_days: int) -> None:  # type: ignore[no-untyped-def]
    duck, ch, _ = stores
    q = FunnelQuery(tuple(Step(s) for s in STEPS), window_days * 86_400, RANGE)
    want = [s.customers for s in duck.funnel(q).result.steps]
    assert want[-1] > 0
    assert ch.funnel_levels(q) == want
    with pytest.raises(ValueError, match="loose-order"):
        ch.funnel_levels(FunnelQuery(q.steps, q.window_s, RANGE, strict=True))


def test_replays_collapse_and_erasure_and_merge_apply(stores) -> None:  # type: ignore[no-untyped-def]
    _, ch, rows = stores
    before = ch.count()
    ch.ingest(rows[:500])  # a replay of the same event ids
    assert ch.count() == before
    q = FunnelQuery((Step("view"), Step("buy")), 86_400, TimeRange(T0, T0 + timedelta(days=80)))
    first = ch.funnel_levels(q)
    viewers = {r.customer_id for r in rows if r.event == "view"}
    victim = sorted(viewers)[0]
    ch.erase(victim)
    assert ch.funnel_levels(q)[0] == first[0] - 1
    # Merge two customers: one fewer customer enters the funnel.
    a, b = sorted(viewers)[1:3]
    ch.rekey(a, [b])
    assert ch.funnel_levels(q)[0] == first[0] - 2
    assert ch.sql.rows(
        "SELECT count() FROM cx_test.events WHERE customer_id = {c:String}", {"c": b}
    ) == [(0,)]
