"""The ClickHouse store answers every query as the DuckDB store does: the
same events loaded into both (into ClickHouse through the store's ingest
path, on the ClickHouse engine itself via chDB), every query's answer
compared. Then what changes the data: a replayed event is not counted twice
(before any merge of the table), erasure, a merge (re-key), a later event of
a merged id, an erased customer's replay, the retention purge; and bad input
errors naming the field."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from analytics.adapters.clickhouse_store import ChdbClient, ClickHouseEventStore, connect
from analytics.adapters.event_store import EventRow, EventStore
from analytics.domain.batch import EventBatch
from analytics.domain.queries import (
    FunnelQuery,
    KpiDefinition,
    KpiKind,
    PathsQuery,
    Period,
    PropertyFilter,
    RetentionQuery,
    StagesQuery,
    Step,
    TimeRange,
)
from analytics.service_layer import kpis
from analytics.service_layer.clickhouse_journeys import ClickHouseJourneys
from analytics.service_layer.journeys import JourneyAnalytics
from analytics.tests.unit.test_store_queries import RANGE, STEPS, T0, sample
from cxloop_libs.errors import InvalidArgument

pytest.importorskip("chdb")


FULL = TimeRange(T0, T0 + timedelta(days=71))


def rows_of(df: Any) -> list[EventRow]:
    return [
        EventRow(
            r.event_id,
            r.customer_id,
            r.ts,
            r.event,
            "track",
            r.channel,
            "shop",
            {"plan": r.plan, "revenue": float(len(r.customer_id)) * 10, "n": 3},
        )
        for r in df.itertuples()
    ]


def load_both(duck: EventStore, ch: ClickHouseEventStore, rows: list[EventRow]) -> None:
    # Fetch-sized batches through ingest_batch, as the consumer stores them.
    for i in range(0, len(rows), 2000):
        b = EventBatch.of(rows[i : i + 2000])
        duck.ingest_batch(b)
        ch.ingest_batch(b)


@pytest.fixture(scope="module")
def client() -> Iterator[ChdbClient]:
    c = ChdbClient()
    yield c
    c.close()


@pytest.fixture(scope="module")
def both(client: ChdbClient) -> tuple[JourneyAnalytics, ClickHouseJourneys, list[EventRow]]:
    rows = rows_of(sample())
    duck = EventStore(":memory:")
    ch = ClickHouseEventStore(client, "cx_answers")
    ch.ensure_schema()
    load_both(duck, ch, rows)
    # A replay of a part of the stream, not merged away yet: must not count.
    ch.ingest_batch(EventBatch.of(rows[:3000]))
    ch.ingest_batch(EventBatch.of(rows[7000:8000]))
    return JourneyAnalytics(duck), ClickHouseJourneys(ch), rows


def funnel_dict(answer: Any) -> dict[str, Any]:
    r = answer.result
    return {
        "steps": r.steps,
        "breakdowns": dict(r.breakdowns),
        "total": r.breakdown_values_total,
        "capped": r.breakdown_capped,
        "note": answer.note,
    }


FUNNELS = [
    FunnelQuery(tuple(Step(s) for s in STEPS), 86_400, RANGE),
    FunnelQuery(tuple(Step(s) for s in STEPS), 3 * 86_400, RANGE, strict=True),
    FunnelQuery(tuple(Step(s) for s in STEPS), 3 * 86_400, RANGE, breakdown="channel"),
    FunnelQuery(tuple(Step(s) for s in STEPS), 2 * 86_400, RANGE, True, "plan"),
    FunnelQuery(
        (
            Step("view", (PropertyFilter("channel", ("web", "app")),)),
            Step("cart", (PropertyFilter("plan", ("pro",)),)),
            Step("buy", (PropertyFilter("channel", ("store",), negate=True),)),
        ),
        2 * 86_400,
        RANGE,
        breakdown="plan",
    ),
    FunnelQuery(
        (Step("view", (PropertyFilter("missing", ("x",), negate=True),)), Step("buy")),
        7 * 86_400,
        FULL,
        breakdown="missing",
    ),
    FunnelQuery(
        (Step("view"), Step("cart")), 86_400, RANGE, breakdown="revenue", breakdown_limit=3
    ),
]


@pytest.mark.parametrize("i", range(len(FUNNELS)))
def test_funnels_equal_duckdb(both, i: int) -> None:  # type: ignore[no-untyped-def]
    duck, ch, _ = both
    want = funnel_dict(duck.funnel(FUNNELS[i]))
    assert want["steps"][1].customers > 0
    assert funnel_dict(ch.funnel(FUNNELS[i])) == want


def test_loose_funnel_equals_window_funnel(both) -> None:  # type: ignore[no-untyped-def]
    _, ch, _ = both
    q = FUNNELS[0]
    assert [s.customers for s in ch.funnel(q).result.steps] == ch.store.funnel_levels(q)


@pytest.mark.parametrize(
    "q",
    [
        PathsQuery("checkout", FULL, depth=2, top_n=100, exclude=("other",)),
        PathsQuery("buy", RANGE, depth=2, top_n=100, before=True),
        PathsQuery("view", RANGE, depth=1, top_n=100),
    ],
)
def test_paths_equal_duckdb(both, q: PathsQuery) -> None:  # type: ignore[no-untyped-def]
    duck, ch, _ = both
    want, got = duck.paths(q), ch.paths(q)
    assert want.anchors > 0
    # Paths with equal counts may come in another order (codes differ).
    assert sorted(got.paths) == sorted(want.paths)
    assert (got.links, got.anchors) == (want.links, want.anchors)


@pytest.mark.parametrize(
    "q",
    [
        RetentionQuery(RANGE, Period.WEEK, 12),
        RetentionQuery(RANGE, Period.DAY, 20, "view", "buy"),
        RetentionQuery(FULL, Period.MONTH, 3, "cart"),
        RetentionQuery(
            TimeRange(T0 + timedelta(days=3), T0 + timedelta(days=40)), Period.WEEK, 4, "", "view"
        ),
    ],
)
def test_retention_equals_duckdb(both, q: RetentionQuery) -> None:  # type: ignore[no-untyped-def]
    duck, ch, _ = both
    want, got = duck.retention(q), ch.retention(q)
    assert want.cohorts
    assert got.cohorts == want.cohorts
    assert (got.mau, got.average_dau) == (want.mau, pytest.approx(want.average_dau))
    assert got.stickiness == pytest.approx(want.stickiness)


@pytest.mark.parametrize("period", [Period.WEEK, Period.DAY, Period.MONTH])
def test_stages_equal_duckdb(both, period: Period) -> None:  # type: ignore[no-untyped-def]
    duck, ch, _ = both
    q = StagesQuery(
        (("awareness", ("view",)), ("consideration", ("cart", "checkout")), ("purchase", ("buy",))),
        RANGE,
        period,
    )
    want = duck.stages(q)
    assert want
    assert ch.stages(q) == want


def test_recent_journeys_and_exports_equal_duckdb(both) -> None:  # type: ignore[no-untyped-def]
    duck, ch, rows = both
    for customer in ("c0", "c17", "c299", rows[0].customer_id):
        assert ch.recent(customer, 7) == duck.recent(customer, 7)
        assert ch.store.export(customer) == duck.store.export(customer)
    assert ch.recent("nobody") is None and duck.recent("nobody") is None
    assert ch.store.count() == duck.store.count() == len(rows)


KPIS = [
    KpiDefinition("conv", KpiKind.RATE, "view", target_event="buy", window=Period.WEEK),
    KpiDefinition("abandon", KpiKind.RATE, "cart", target_event="buy", invert=True),
    KpiDefinition("aov", KpiKind.AVERAGE, "buy", property="revenue", breakdown="channel"),
    KpiDefinition("plan_avg", KpiKind.AVERAGE, "buy", property="plan"),
    KpiDefinition("repeat", KpiKind.REPEAT_RATE, "buy", window=Period.WEEK),
    KpiDefinition("ttf", KpiKind.TIME_TO_FIRST, "buy", window=Period.WEEK),
    KpiDefinition("ttf_d", KpiKind.TIME_TO_FIRST, "checkout"),
]


@pytest.mark.parametrize("d", KPIS, ids=lambda d: d.name)
def test_kpis_equal_duckdb(both, d: KpiDefinition) -> None:  # type: ignore[no-untyped-def]
    duck, ch, _ = both
    want, want_capped = kpis.kpi_series(duck.store, d, RANGE)
    got, capped = kpis.kpi_series(ch.store, d, RANGE)
    assert capped == want_capped
    assert [(p.window_start, p.breakdown_value, p.sample) for p in got] == [
        (p.window_start, p.breakdown_value, p.sample) for p in want
    ]
    assert [p.value for p in got] == pytest.approx([p.value for p in want])
    if d.property != "plan":
        assert want


def test_bad_input_names_the_field(both) -> None:  # type: ignore[no-untyped-def]
    _, ch, _ = both
    cases: list[tuple[Any, str]] = [
        (lambda: ch.funnel(FunnelQuery((Step("view"),), 60, RANGE)), "steps"),
        (
            lambda: ch.funnel(FunnelQuery((Step("view"), Step("teleport")), 60, RANGE)),
            "steps[1].event",
        ),
        (
            lambda: ch.funnel(FunnelQuery(FUNNELS[0].steps, 60, RANGE, breakdown="$segment")),
            "breakdown",
        ),
        (lambda: ch.paths(PathsQuery("view", RANGE, depth=11)), "depth"),
        (lambda: ch.retention(RetentionQuery(RANGE, Period.WEEK, 99)), "periods"),
        (lambda: ch.retention(RetentionQuery(RANGE, Period.WEEK, 4, "nope")), "cohort_event"),
        (lambda: ch.stages(StagesQuery((("a", ("view",)),), RANGE)), "stages"),
    ]
    for call, field in cases:
        with pytest.raises(InvalidArgument) as err:
            call()
        assert err.value.field == field


# -- what changes the data ----------------------------------------------------------
@pytest.fixture
def pair(
    client: ChdbClient,
) -> Iterator[tuple[JourneyAnalytics, ClickHouseJourneys, list[EventRow]]]:
    rows = rows_of(sample(seed=11, customers=60, n=3000))
    duck = EventStore(":memory:")
    db = f"cx_change_{random.randrange(1 << 30)}"
    ch = ClickHouseEventStore(client, db)
    ch.ensure_schema()
    load_both(duck, ch, rows)
    yield JourneyAnalytics(duck), ClickHouseJourneys(ch), rows
    client.command(f"DROP DATABASE {db}")


def same(duck: JourneyAnalytics, ch: ClickHouseJourneys) -> None:
    q = FunnelQuery(tuple(Step(s) for s in STEPS), 3 * 86_400, FULL, breakdown="channel")
    assert funnel_dict(ch.funnel(q)) == funnel_dict(duck.funnel(q))
    r = RetentionQuery(FULL, Period.WEEK, 8, "view")
    assert ch.retention(r) == duck.retention(r)
    assert ch.store.count() == duck.store.count()


def test_a_replayed_event_counts_once(pair) -> None:  # type: ignore[no-untyped-def]
    duck, ch, rows = pair
    c = rows[0].customer_id
    before = ch.recent(c, 200)
    assert before is not None
    for _ in range(2):
        ch.store.ingest_batch(EventBatch.of([r for r in rows if r.customer_id == c]))
    # Three copies of each in the table until a merge; none counted twice.
    raw = ch.store.sql.rows(
        f"SELECT count() FROM {ch.db}.events WHERE customer_id = {{c:String}}", {"c": c}
    )[0][0]
    assert int(raw) == 3 * before.total
    assert ch.recent(c, 200) == before
    same(duck, ch)


def test_erasure_merge_and_what_comes_after(pair) -> None:  # type: ignore[no-untyped-def]
    duck, ch, rows = pair
    customers = sorted({r.customer_id for r in rows})
    victim, survivor, merged, other = customers[:4]
    for store in (duck.store, ch.store):
        assert store.erase(victim) > 0
        assert store.rekey(survivor, [merged]) > 0
    same(duck, ch)
    assert ch.recent(victim) is None and ch.recent(merged) is None
    assert ch.store.export(survivor) == duck.store.export(survivor)
    # Later: a replay of the erased customer's events (kept out), an event of
    # the merged id (stored under the survivor), a chain merge.
    late = EventRow(
        "late-1", merged, T0 + timedelta(days=10, seconds=7), "buy", "track", "web", "shop", {}
    )
    replay = [r for r in rows if r.customer_id == victim]
    for store in (duck.store, ch.store):
        store.ingest_batch(EventBatch.of([*replay, late]))
        store.rekey(other, [survivor])
    same(duck, ch)
    assert ch.recent(victim) is None
    survivor_events = ch.recent(other, 200)
    assert survivor_events is not None
    assert any(e.event == "buy" and e.occurred_at == late.ts for e in survivor_events.events)
    # An objection: rows deleted, not remembered (events come again if withdrawn).
    for store in (duck.store, ch.store):
        assert store.erase_many([other]) > 0
    same(duck, ch)
    again = EventRow("again-1", other, late.ts, "view", "track", "web", "shop", {})
    ch.store.ingest_batch(EventBatch.of([again]))
    assert ch.recent(other) is not None


def test_retention_purge(pair) -> None:  # type: ignore[no-untyped-def]
    duck, ch, _ = pair
    cutoff = T0 + timedelta(days=30)
    n = duck.store.purge_before(cutoff, 10**9)
    assert n > 0
    assert ch.store.purge_before(cutoff, 10**9) == n
    same(duck, ch)


def test_connect_picks_the_client_by_url() -> None:
    with pytest.raises(ValueError, match="clickhouse_url"):
        connect("ftp://x")
    c = connect("chdb://")
    try:
        assert isinstance(c, ChdbClient)
        assert c.rows("SELECT {x:String}", {"x": "it's"}) == [("it's",)]
    finally:
        c.close()


class _Racing:
    """A connection whose insert lets another replica act first: between
    the ingest's check of aliases/erasures and its insert."""

    def __init__(self, client: ChdbClient, before_insert: Any) -> None:
        self.client = client
        self.before_insert = before_insert

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)

    def insert_events(self, table: str, columns: dict[str, list[Any]]) -> None:
        self.before_insert()
        self.client.insert_events(table, columns)


def test_an_erasure_or_merge_by_another_replica_during_ingest_is_applied(
    client: ChdbClient,
) -> None:
    db = f"cx_race_{random.randrange(1 << 30)}"
    other = ClickHouseEventStore(client, db)
    other.ensure_schema()
    at = T0 + timedelta(days=1)

    def row(i: int, customer: str) -> EventRow:
        return EventRow(
            f"r{i}", customer, at + timedelta(minutes=i), "view", "track", "web", "s", {}
        )

    other.ingest([row(0, "erased"), row(1, "merged"), row(2, "survivor")])

    def meanwhile() -> None:
        other.erase("erased")
        other.rekey("survivor", ["merged"])

    store = ClickHouseEventStore(_Racing(client, meanwhile), db)  # type: ignore[arg-type]
    store.ingest([row(3, "erased"), row(4, "merged"), row(5, "kept")])
    counts = dict(
        client.rows(f"SELECT customer_id, count() FROM {db}.events FINAL GROUP BY customer_id")
    )
    assert {k: int(v) for k, v in counts.items()} == {"survivor": 3, "kept": 1}
    client.command(f"DROP DATABASE {db}")


def test_the_server_client_passes_parameters_and_inserts_columns(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The clickhouse-connect glue (no server here: a recording fake of the
    library's client; the SQL itself is tested on chDB above)."""
    import clickhouse_connect

    calls: list[tuple[Any, ...]] = []

    class Result:
        result_rows = [(1, "a")]
        result_columns = [[1], ["a"]]
        column_names = ("x", "y")

    class Client:
        def query(self, sql: str, parameters: dict[str, Any]) -> Result:
            calls.append(("query", sql, parameters))
            return Result()

        def command(self, sql: str, parameters: dict[str, Any]) -> None:
            calls.append(("command", sql, parameters))

        def insert(self, table: str, data: list[Any], **kw: Any) -> None:
            calls.append(("insert", table, data, kw))

    def get_client(**kw: Any) -> Client:
        calls.append(("connect", kw))
        return Client()

    monkeypatch.setattr(clickhouse_connect, "get_client", get_client)
    c = connect("http://cxloop@ch:8123/", "pw")
    assert calls[0] == (
        "connect",
        {"dsn": "http://cxloop@ch:8123/", "autogenerate_session_id": False, "password": "pw"},
    )
    assert c.rows("SELECT {a:String}", {"a": "x"}) == [(1, "a")]
    assert c.columns("SELECT 1") == [[1], ["a"]]
    store = ClickHouseEventStore(c, "db")
    at = T0 + timedelta(seconds=1, microseconds=5)
    c.insert_events(
        "db.events",
        {
            "seq": [7],
            "event_id": ["e"],
            "customer_id": ["c"],
            "ck": [1],
            "ts": [int(at.timestamp()) * 1_000_000 + 5],
            "event": ["view"],
            "kind": ["track"],
            "channel": ["web"],
            "source": ["s"],
            "properties": ["{}"],
        },
    )
    _, table, data, kw = calls[-1]
    assert table == "db.events" and kw["column_oriented"] is True
    assert kw["column_names"][4] == "ts" and data[4] == [at]
    assert store.db == "db"
