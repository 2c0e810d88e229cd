"""Analytics benchmark (issue 16), written to bench/results/analytics.json.

- ingest: interactions consumed from the IDENTITY stream into the DuckDB
  store by the service's own consumer (consent check, de-dup, layout merge),
  beside a raw DuckDB bulk insert of the same rows in the same run;
- a 5-step funnel with a 7-day window over EVENTS events of CUSTOMERS
  customers: the service's engine on its sorted layout, beside a
  straightforward DuckDB SQL funnel and ClickHouse's windowFunnel via chDB on
  the same data; a 12-week retention triangle;
- freshness: a track call accepted by the gateway -> counted by a Funnel
  answer (gateway, identity, consent, analytics as processes);
- anomaly detection precision/recall on synthetic KPI years, beside a
  fixed-threshold baseline.

Scale with CXLOOP_BENCH_ANALYTICS_EVENTS / _CUSTOMERS (default 10 M / 1 M).
"""

from __future__ import annotations

import asyncio
import gc
import os
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import percentile, write_result

EVENTS = int(os.environ.get("CXLOOP_BENCH_ANALYTICS_EVENTS", 10_000_000))
CUSTOMERS = int(os.environ.get("CXLOOP_BENCH_ANALYTICS_CUSTOMERS", 1_000_000))
INGEST_EVENTS = int(os.environ.get("CXLOOP_BENCH_ANALYTICS_INGEST", 100_000))
# Interactions per fetch, as the service's CXLOOP_ANALYTICS_INGEST_BATCH_SIZE.
INGEST_BATCH = int(os.environ.get("CXLOOP_BENCH_ANALYTICS_BATCH", 2000))
# Decode in a child process, as the service does by default ("0": in-process).
INGEST_DECODE_PROCESS = os.environ.get("CXLOOP_BENCH_ANALYTICS_DECODE_PROCESS", "1") != "0"
# Ingest runs (each beside an in-process-decode run): the spread is reported.
INGEST_RUNS = int(os.environ.get("CXLOOP_BENCH_ANALYTICS_INGEST_RUNS", 3))
# Latency is reported as the spread of this many runs of the queries part.
QUERY_RUNS = int(os.environ.get("CXLOOP_BENCH_ANALYTICS_QUERY_RUNS", 3))
DAYS = 91
T0 = datetime(2026, 1, 5, tzinfo=UTC)  # a Monday
NAMES = [
    "Product Viewed",
    "Product Added",
    "Checkout Started",
    "Payment Info Entered",
    "Order Completed",
    "Page Viewed",
    "Search",
    "Support Call",
]
WEIGHTS = [0.3, 0.15, 0.08, 0.06, 0.05, 0.25, 0.08, 0.03]
STEPS = NAMES[:5]
WINDOW_S = 7 * 86_400


def _stats(samples: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(statistics.median(samples) * 1000, 1),
        "p99_ms": round(percentile(samples, 99) * 1000, 1),
        "runs": len(samples),
    }


# -- data ---------------------------------------------------------------------
def generate(store: Any, n: int, customers: int) -> None:
    """n events of `customers` customers over DAYS days, straight into the
    store's table (SQL generation: Python rows would take longer than the
    queries measured)."""
    names = "[" + ", ".join(f"'{x}'" for x in NAMES) + "]"
    cum = np.cumsum(WEIGHTS)
    cases = (
        " ".join(f"WHEN r < {c:.4f} THEN {i + 1}" for i, c in enumerate(cum[:-1]))
        + f" ELSE {len(NAMES)}"
    )
    store._con.execute(
        f"""
        INSERT INTO events
        SELECT i AS seq, 'e' || i, customer_id, (hash(customer_id) >> 1)::BIGINT,
               TIMESTAMP '{T0:%Y-%m-%d}' + to_seconds(((hash(i * 7919) % ({DAYS} * 86400)))::BIGINT),
               {names}[CASE {cases} END], 'track',
               ['web', 'app', 'store'][1 + (hash(i * 31) % 3)::INTEGER], 'shop', '{{}}'
        FROM (
            SELECT i, 'c' || (hash(i) % {customers}) AS customer_id,
                   (hash(i * 104729) % 1000000) / 1000000.0 AS r
            FROM range({n}) t(i)
        )
        """
    )


def funnel_sql(start: datetime, end: datetime) -> str:
    """The same funnel in plain DuckDB SQL, with the engine's semantics (every
    entry, not only the first; greedy earliest next step, loose order;
    a customer's level is their deepest entry): each next step is an ASOF
    JOIN to the customer's first step event after the previous one."""
    s, e = f"TIMESTAMP '{start:%Y-%m-%d %H:%M:%S}'", f"TIMESTAMP '{end:%Y-%m-%d %H:%M:%S}'"
    window_ms = WINDOW_S * 1000
    parts = [
        f"""e AS (SELECT ck, epoch_ms(ts) AS t, event,
                        row_number() OVER (ORDER BY ck, ts, seq) AS rn
                 FROM events WHERE ts < {e} + INTERVAL {WINDOW_S} SECOND
                   AND event IN ({", ".join(f"'{x}'" for x in STEPS)}))""",
        f"""c1 AS (SELECT ck, t AS t0, rn AS r1, t AS t1 FROM e
                  WHERE event = '{STEPS[0]}' AND t >= epoch_ms({s}) AND t < epoch_ms({e}))""",
    ]
    cols = "ck, t0, r1, t1"
    for k in range(2, len(STEPS) + 1):
        parts.append(
            f"""c{k} AS (SELECT c.*, n.rn AS r{k}, n.t AS t{k} FROM c{k - 1} c
                ASOF LEFT JOIN (SELECT ck, rn, t FROM e WHERE event = '{STEPS[k - 1]}') n
                ON c.ck = n.ck AND n.rn > c.r{k - 1})"""
        )
        cols += f", r{k}, t{k}"
    reached = " + ".join(
        f"(t{k} IS NOT NULL AND t{k} - t0 <= {window_ms})::INT" for k in range(2, len(STEPS) + 1)
    )
    parts.append(f"lv AS (SELECT ck, max(1 + {reached}) AS level FROM c{len(STEPS)} GROUP BY ck)")
    counts = ", ".join(f"count(*) FILTER (level >= {k})" for k in range(1, len(STEPS) + 1))
    return f"WITH {', '.join(parts)} SELECT {counts} FROM lv"


def bench_queries() -> dict[str, Any]:
    from analytics.adapters.event_store import EventStore
    from analytics.domain.queries import FunnelQuery, Period, RetentionQuery, Step, TimeRange
    from analytics.service_layer.journeys import JourneyAnalytics

    tmp = Path(tempfile.mkdtemp(prefix="cxloop-bench-analytics-"))
    store = EventStore(tmp / "analytics.duckdb")
    t = time.perf_counter()
    generate(store, EVENTS, CUSTOMERS)
    generated_s = time.perf_counter() - t
    t = time.perf_counter()
    store.ensure_layout()
    layout_s = time.perf_counter() - t
    analytics = JourneyAnalytics(store)
    r = TimeRange(T0, T0 + timedelta(days=DAYS))
    q = FunnelQuery(tuple(Step(s) for s in STEPS), WINDOW_S, r)
    ours: list[float] = []
    answer = None
    for _ in range(30):
        t = time.perf_counter()
        answer = analytics.funnel(q).result
        ours.append(time.perf_counter() - t)
    assert answer is not None
    q_channel = FunnelQuery(tuple(Step(s) for s in STEPS), WINDOW_S, r, breakdown="channel")
    by_channel: list[float] = []
    for _ in range(10):
        t = time.perf_counter()
        analytics.funnel(q_channel)
        by_channel.append(time.perf_counter() - t)

    sql = funnel_sql(r.start, r.end)
    naive: list[float] = []
    naive_counts = None
    for _ in range(5):
        t = time.perf_counter()
        naive_counts = store.sql(sql)[0]
        naive.append(time.perf_counter() - t)

    retention: list[float] = []
    triangle = None
    rq = RetentionQuery(TimeRange(T0, T0 + timedelta(weeks=12)), Period.WEEK, 12)
    for _ in range(10):
        t = time.perf_counter()
        triangle = analytics.retention(rq)
        retention.append(time.perf_counter() - t)
    assert triangle is not None
    retention_sql: list[float] = []
    sql_triangle = None
    for _ in range(2):
        t = time.perf_counter()
        sql_triangle = analytics.retention_sql(rq)
        retention_sql.append(time.perf_counter() - t)
    assert sql_triangle is not None

    def rows(a: Any) -> list[tuple[Any, int, list[int]]]:
        return [(c.start, c.customers, c.retained) for c in a.cohorts]

    retention_equal = rows(triangle) == rows(sql_triangle) and triangle.mau == sql_triangle.mau
    engine_counts = [s.customers for s in answer.steps]
    funnel_equal = list(naive_counts or []) == engine_counts
    # Correctness on the bench data: the engine's answers are the plain
    # SQL answers (a mismatch fails the bench rather than report a time).
    assert funnel_equal, (engine_counts, naive_counts)
    assert retention_equal, (rows(triangle)[:2], rows(sql_triangle)[:2])

    chdb_result = bench_chdb(store, tmp, r)
    store.close()
    return {
        "events": EVENTS,
        "customers": CUSTOMERS,
        "days": DAYS,
        "generate_s": round(generated_s, 1),
        "layout_build_s": round(layout_s, 2),
        "funnel_5_steps_7d": {
            **_stats(ours),
            "customers_per_step": [s.customers for s in answer.steps],
        },
        "funnel_5_steps_7d_by_channel": _stats(by_channel),
        "duckdb_sql_funnel": {
            **_stats(naive),
            "customers_per_step": list(naive_counts or []),
            "equal_to_engine": funnel_equal,
            "note": "plain DuckDB SQL with the engine's semantics (every entry, greedy "
            "earliest next step via ASOF JOIN, deepest entry per customer)",
        },
        "chdb_window_funnel": chdb_result,
        "retention_12_weeks": {
            **_stats(retention),
            "cohorts": len(triangle.cohorts),
            "first_row": triangle.cohorts[0].retained if triangle.cohorts else [],
        },
        "duckdb_sql_retention": {**_stats(retention_sql), "equal_to_engine": retention_equal},
    }


def bench_chdb(store: Any, tmp: Path, r: Any) -> dict[str, Any]:
    try:
        from chdb import session as chs
    except ImportError:
        return {"skipped": "chdb not installed"}
    parquet = tmp / "events.parquet"
    store.sql(f"COPY (SELECT customer_id, ts, event FROM events) TO '{parquet}' (FORMAT parquet)")
    sess = chs.Session(str(tmp / "chdb"))
    sess.query("CREATE DATABASE IF NOT EXISTS b")
    sess.query(
        "CREATE TABLE b.events (customer_id String, ts DateTime, event LowCardinality(String)) "
        "ENGINE = MergeTree ORDER BY (customer_id, ts)"
    )
    t = time.perf_counter()
    sess.query(
        f"INSERT INTO b.events SELECT customer_id, ts, event FROM file('{parquet}', Parquet)"
    )
    load_s = time.perf_counter() - t
    conds = ", ".join(f"event = '{s}'" for s in STEPS)
    query = f"""
        SELECT level, count() FROM (
            SELECT customer_id, windowFunnel({WINDOW_S})(ts, {conds}) AS level
            FROM b.events
            WHERE ts >= toDateTime('{r.start:%Y-%m-%d %H:%M:%S}', 'UTC')
              AND ts < toDateTime('{(r.end + timedelta(days=7)):%Y-%m-%d %H:%M:%S}', 'UTC')
              AND event IN ({", ".join(f"'{s}'" for s in STEPS)})
            GROUP BY customer_id
        ) WHERE level > 0 GROUP BY level ORDER BY level FORMAT CSV
    """
    samples = []
    out = ""
    for _ in range(5):
        t = time.perf_counter()
        out = str(sess.query(query))
        samples.append(time.perf_counter() - t)
    levels = {int(a): int(b) for a, b in (line.split(",") for line in out.strip().splitlines())}
    per_step = [sum(c for lv, c in levels.items() if lv >= k) for k in range(1, len(STEPS) + 1)]
    sess.close()
    return {
        **_stats(samples),
        "load_s": round(load_s, 1),
        "customers_per_step": per_step,
        "note": "windowFunnel counts each customer's deepest entry, as the engine does",
    }


# -- ingest ---------------------------------------------------------------------
async def bench_ingest(decode_process: bool = INGEST_DECODE_PROCESS) -> dict[str, Any]:
    import nats
    from cxloop.consent.v1 import events_pb2 as consent_pb

    from analytics.adapters.decoder import ProcessDecoder
    from analytics.adapters.event_store import EventStore
    from analytics.config import GC_YOUNG_THRESHOLD
    from analytics.domain.batch import decode_interactions
    from analytics.entrypoints.consumers import EventStoreConsumer
    from analytics.service_layer.ingest import Ingest
    from analytics.tests.conftest import interaction
    from cxloop_libs.consent.projection import ConsentProjection
    from cxloop_libs.db import Database
    from cxloop_libs.messaging import ConsumerSpec, NatsBus, ensure_stream, stream_for
    from cxloop_libs.messaging import catalog as ev
    from cxloop_libs.messaging.cloudevents import ce_headers
    from cxloop_libs.runtime import collect_young_less_often, settle_heap
    from cxloop_testing import infra

    url = infra.nats_url()
    await infra.reset_streams(url)
    nc = await nats.connect(url)
    js = nc.jetstream()
    await ensure_stream(js, stream_for("identity"))
    msgs = [
        interaction(
            f"c{i % 20_000}", NAMES[i % len(NAMES)], T0 + timedelta(seconds=i), sku=f"S{i % 97}"
        )
        for i in range(INGEST_EVENTS)
    ]
    for i, m in enumerate(msgs):
        await nc.publish(
            ev.INTERACTION_RESOLVED.subject,
            m.SerializeToString(),
            headers=ce_headers(
                ev.INTERACTION_RESOLVED, event_id=m.interaction.message_id, source="/bench"
            ),
        )
        if i % 5000 == 0:
            await nc.flush()
    await nc.flush()
    while (await js.stream_info("IDENTITY")).state.messages < INGEST_EVENTS:
        await asyncio.sleep(0.1)

    tmp = Path(tempfile.mkdtemp(prefix="cxloop-bench-ingest-"))
    store = EventStore(tmp / "analytics.duckdb")
    store.ensure_layout()
    projection = ConsentProjection()
    projection.apply_notice(
        consent_pb.NoticePublished(
            purpose="analytics",
            legal_basis=consent_pb.LEGAL_BASIS_LEGITIMATE_INTEREST,
            notice_version="1",
            reconsent_from_version="1",
        )
    )
    ingest = Ingest(store, lambda cid: projection.may_use(cid, "analytics"))
    bus = NatsBus(url, name="bench-analytics", streams=[])
    bus.start()
    await bus.ready()
    db = Database(f"sqlite:///{tmp / 'analytics.db'}")
    results: dict[str, Any] = {}
    decoder = ProcessDecoder() if decode_process else None
    consumer = EventStoreConsumer(
        bus,
        db,
        ConsumerSpec(
            stream="IDENTITY",
            durable="bench-analytics",
            filter_subject=ev.INTERACTION_RESOLVED.subject,
            batch_size=INGEST_BATCH,
        ),
        ingest.on_interactions,
        # As the service runs it by default (CXLOOP_ANALYTICS_INGEST_DECODE_PROCESS).
        decoder=decoder,
        store_decoded=ingest.store_decoded if decoder is not None else None,
    )
    # As run_service does once a service has started: what is alive now
    # (here also the bench's own 100,000 messages) is frozen out of the
    # collector's sight, so collections walk only what ingest allocates.
    settle_heap()
    # As the analytics process sets its collector (entrypoints/main.py).
    young = gc.get_threshold()
    collect_young_less_often(GC_YOUNG_THRESHOLD)
    if decoder is not None:
        await decoder.start()
        child_cpu = await decoder.cpu_seconds()
    t = time.perf_counter()
    cpu = time.process_time()
    task = asyncio.ensure_future(consumer.run())
    # The service's own counter: a DuckDB query from the event loop would
    # wait on the writer's transaction and stall the consumer.
    while ingest.stored < INGEST_EVENTS:
        await asyncio.sleep(0.02)
    elapsed = time.perf_counter() - t
    cpu_s = time.process_time() - cpu
    if decoder is not None:
        # The decoder child's CPU is the service's too.
        decoder_cpu_s = await decoder.cpu_seconds() - child_cpu
        cpu_s += decoder_cpu_s
        results["decoder_cpu_us_per_event"] = round(decoder_cpu_s / INGEST_EVENTS * 1e6, 1)
        decoder.close()
    results["decode"] = "process" if decoder is not None else "inline"
    consumer.stop()
    await task
    gc.set_threshold(*young)
    results["stream_events_per_s"] = round(INGEST_EVENTS / elapsed, 1)
    results["events"] = INGEST_EVENTS
    results["batch_size"] = INGEST_BATCH
    # CPU of this process (event loop + worker thread) per event: what the
    # path costs, whatever else the machine runs; 1e6 / it is the rate one
    # free core would give.
    results["cpu_us_per_event"] = round(cpu_s / INGEST_EVENTS * 1e6, 1)
    results["one_core_events_per_s"] = round(INGEST_EVENTS / cpu_s, 1)

    # Baseline: the same rows as one DuckDB bulk insert (no stream, no
    # decoding, no de-dup).
    wanted = ev.INTERACTION_RESOLVED.ce_type
    rows = decode_interactions(
        [(wanted, m.interaction.message_id, m.SerializeToString()) for m in msgs], wanted
    ).batch
    raw = EventStore(tmp / "raw.duckdb")
    batch = {
        "event_id": np.array(rows.event_id, dtype=object),
        "customer_id": np.array(rows.customer_id, dtype=object),
        "ts": np.array(rows.ts_us, dtype="datetime64[us]"),
        "event": np.array(rows.event, dtype=object),
    }
    t = time.perf_counter()
    raw._con.register("b", batch)
    raw._con.execute(
        "INSERT INTO events SELECT row_number() OVER (), event_id, customer_id, "
        "(hash(customer_id) >> 1)::BIGINT, ts, event, 'track', 'web', 'shop', '{}' FROM b"
    )
    raw_s = time.perf_counter() - t
    results["raw_duckdb_bulk_insert_events_per_s"] = round(INGEST_EVENTS / raw_s, 1)
    results["stream_vs_raw"] = round(raw_s / elapsed, 3)
    await bus.close()
    await nc.close()
    store.close()
    raw.close()
    db.dispose()
    return results


# -- freshness --------------------------------------------------------------------
def bench_freshness(samples: int = 30) -> dict[str, Any]:
    from bench.common import running_suite

    with running_suite(["identity", "consent", "analytics", "gateway"]) as suite:
        spec = suite.supervisor._procs["analytics"].spec
        address = f"127.0.0.1:{spec.env['CXLOOP_ANALYTICS_GRPC_PORT']}"
        latencies = asyncio.run(_freshness(suite.gateway_url, address, samples))
        return {**_stats(latencies), "database": suite.database}


async def _freshness(gateway_url: str, address: str, samples: int) -> list[float]:
    import grpc
    import httpx
    from cxloop.analytics.v1 import analytics_service_pb2 as pb
    from cxloop.analytics.v1 import analytics_service_pb2_grpc as pb_grpc

    run = uuid.uuid4().hex[:6]
    steps = [f"fresh view {run}", f"fresh buy {run}"]
    latencies: list[float] = []
    async with grpc.aio.insecure_channel(address) as ch:
        stub = pb_grpc.AnalyticsServiceStub(ch)

        async def converted() -> int:
            try:
                r = await stub.Funnel(
                    pb.FunnelRequest(
                        steps=[pb.FunnelStep(event=s) for s in steps],
                        conversion_window_seconds=3600,
                    ),
                    timeout=5,
                )
            except grpc.aio.AioRpcError:
                return 0
            return r.steps[1].customers

        async with httpx.AsyncClient(base_url=gateway_url, auth=("dev", "")) as http:
            for i in range(samples + 3):
                user = f"fresh-{run}-{i}"
                before = await converted()
                first = await http.post(
                    "/v1/track",
                    json={"userId": user, "event": steps[0], "messageId": uuid.uuid4().hex},
                )
                if first.status_code != 200:
                    await asyncio.sleep(0.5)
                    continue
                t = time.perf_counter()
                r = await http.post(
                    "/v1/track",
                    json={"userId": user, "event": steps[1], "messageId": uuid.uuid4().hex},
                )
                if r.status_code == 503:  # the gateway asks to retry: not a sample
                    await asyncio.sleep(0.5)
                    continue
                assert r.status_code == 200, r.text
                while await converted() <= before:
                    if time.perf_counter() - t > 30:
                        raise RuntimeError("event never reached the funnel")
                    await asyncio.sleep(0.01)
                if i >= 3:  # the first calls warm the processes up
                    latencies.append(time.perf_counter() - t)
    return latencies


# -- anomalies --------------------------------------------------------------------
def bench_anomalies(years: int = 20) -> dict[str, Any]:
    from analytics.domain.anomaly import fixed_threshold, judge
    from analytics.tests.reference import synthetic_kpi_year

    def score(pairs: list[tuple[set[int], set[int]]]) -> dict[str, float]:
        tp = sum(len(f & i) for f, i in pairs)
        flagged = sum(len(f) for f, _ in pairs)
        injected = sum(len(i) for _, i in pairs)
        return {
            "precision": round(tp / flagged, 3) if flagged else 1.0,
            "recall": round(tp / injected, 3) if injected else 1.0,
            "alerts": flagged,
        }

    ours, base = [], []
    for seed in range(years):
        y, injected = synthetic_kpi_year(1000 + seed)
        ours.append(({j.index for j in judge(y) if j.is_anomaly}, injected))
        base.append((set(fixed_threshold(y)), injected))
    return {
        "years": years,
        "injected_per_year": 12,
        "seasonal_median_mad": score(ours),
        "fixed_threshold_20pct": score(base),
    }


def ingest_runs() -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The ingest part INGEST_RUNS times, each beside the same consumer
    decoding in the service's process (CXLOOP_ANALYTICS_INGEST_DECODE_PROCESS
    =false) right after it: the median run's details and every run's
    figures, for the spread."""
    runs: list[dict[str, Any]] = []
    for _ in range(max(1, INGEST_RUNS)):
        r = asyncio.run(bench_ingest())
        if INGEST_DECODE_PROCESS:
            inline = asyncio.run(bench_ingest(decode_process=False))
            r["inline_decode_events_per_s"] = inline["stream_events_per_s"]
            r["inline_decode_cpu_us_per_event"] = inline["cpu_us_per_event"]
        r["measured_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        r["load_average_1_5_15m"] = [round(x, 2) for x in os.getloadavg()]
        runs.append(r)
    ordered = sorted(runs, key=lambda x: x["stream_events_per_s"])
    return ordered[len(ordered) // 2], runs


def queries_runs() -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The queries part QUERY_RUNS times (data generated anew each time):
    the last run's details and each run's latencies, for the spread."""
    runs = []
    last: dict[str, Any] = {}
    for _ in range(max(1, QUERY_RUNS)):
        last = bench_queries()
        runs.append(run_summary(last))
    return last, runs


def run_summary(q: dict[str, Any]) -> dict[str, Any]:
    f, t = q["funnel_5_steps_7d"], q["retention_12_weeks"]
    return {
        "funnel_p50_ms": f["p50_ms"],
        "funnel_p99_ms": f["p99_ms"],
        "retention_p50_ms": t["p50_ms"],
        "retention_p99_ms": t["p99_ms"],
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "load_average_1_5_15m": [round(x, 2) for x in os.getloadavg()],
    }


def _spread(runs: list[dict[str, Any]], key: str) -> str:
    values = [r[key] for r in runs]
    return f"{min(values)}" if len(set(values)) == 1 else f"{min(values)} to {max(values)}"


def analytics_rows() -> list[str]:
    """bench/README.md rows (bench/report.py)."""
    import json

    from bench.common import RESULTS

    r = json.loads((RESULTS / "analytics.json").read_text())
    rows = []
    ing = r.get("ingest", {})
    runs = r.get("ingest_runs") or ([ing] if ing else [])
    if runs:
        rate = [x["stream_events_per_s"] for x in runs]
        cpu = [x["cpu_us_per_event"] for x in runs]
        over = f" ({len(runs)} runs)" if len(runs) > 1 else ""
        child = ", decoded in a child process" if ing.get("decode") == "process" else ""
        inline = [
            x["inline_decode_events_per_s"] for x in runs if "inline_decode_events_per_s" in x
        ]
        same_run = (
            f"; decoded in the service's process {min(inline):,.0f} to {max(inline):,.0f} events/s"
            if inline
            else ""
        )
        rows.append(
            f"| analytics | ingest from the stream into DuckDB{child}{over} | "
            f"{min(rate):,.0f} to {max(rate):,.0f} events/s (CPU {min(cpu)} to {max(cpu)} "
            "µs/event) | ≥ 20,000 | raw DuckDB bulk insert "
            f"{ing['raw_duckdb_bulk_insert_events_per_s']:,.0f} events/s{same_run} |"
        )
    q = r.get("queries", {})
    if q:
        n, c = q["duckdb_sql_funnel"], q["chdb_window_funnel"]
        ch = f"chDB windowFunnel p50 {c['p50_ms']} ms" if "p50_ms" in c else "chDB: n/a"
        runs = r.get("queries_runs") or [run_summary(q)]
        over = f" ({len(runs)} runs)" if len(runs) > 1 else ""
        rows.append(
            f"| analytics | 5-step funnel, 7-day window, {q['events']:,} events / "
            f"{q['customers']:,} customers, p50 / p99{over} | {_spread(runs, 'funnel_p50_ms')} / "
            f"{_spread(runs, 'funnel_p99_ms')} ms | "
            f"p99 ≤ 500 ms | DuckDB SQL p50 {n['p50_ms']} ms; {ch} |"
        )
        rs = q.get("duckdb_sql_retention", {})
        base = f"DuckDB SQL p50 {rs['p50_ms']} ms" if "p50_ms" in rs else "—"
        rows.append(
            f"| analytics | 12-week retention triangle p50 / p99{over} | "
            f"{_spread(runs, 'retention_p50_ms')} / {_spread(runs, 'retention_p99_ms')} ms "
            f"| ≤ 1 s | {base} |"
        )
    fr = r.get("freshness", {})
    if "p99_ms" in fr:
        rows.append(
            f"| analytics | gateway → funnel freshness p50 / p99 | {fr['p50_ms']} / {fr['p99_ms']} ms "
            "| p99 ≤ 2 s | — |"
        )
    a = r.get("anomalies", {})
    if a:
        o, b = a["seasonal_median_mad"], a["fixed_threshold_20pct"]
        rows.append(
            f"| analytics | KPI anomaly precision / recall ({a['years']} synthetic years) | "
            f"{o['precision']} / {o['recall']} | ≥ 0.9 / 0.9 | fixed ±20 %: "
            f"{b['precision']} / {b['recall']} |"
        )
    return rows


def main() -> dict[str, Any]:
    """Everything; ``CXLOOP_BENCH_ANALYTICS_ONLY=queries`` (comma list of
    anomalies, ingest, queries, freshness) re-measures parts and keeps the
    rest of the previous results file."""
    only = {p for p in os.environ.get("CXLOOP_BENCH_ANALYTICS_ONLY", "").split(",") if p}
    if only:
        import json

        from bench.common import RESULTS

        previous = json.loads((RESULTS / "analytics.json").read_text())
        previous.pop("machine", None)
        previous.pop("measured_at", None)
        if "anomalies" in only:
            previous["anomalies"] = bench_anomalies()
        if "ingest" in only:
            previous["ingest"], previous["ingest_runs"] = ingest_runs()
            previous.pop("ingest_runs_on_a_quiet_machine", None)
        if "queries" in only:
            previous["queries"], previous["queries_runs"] = queries_runs()
        if "freshness" in only:
            previous["freshness"] = bench_freshness()
        write_result("analytics", previous)
        return previous
    result: dict[str, Any] = {
        "targets": {
            "ingest_events_per_s": 20_000,
            "funnel_p99_ms": 500,
            "retention_12_weeks_ms": 1000,
            "freshness_p99_ms": 2000,
            "anomaly_precision": 0.9,
            "anomaly_recall": 0.9,
        },
    }
    result["anomalies"] = bench_anomalies()
    result["ingest"], result["ingest_runs"] = ingest_runs()
    result["queries"], result["queries_runs"] = queries_runs()
    try:
        result["freshness"] = bench_freshness()
    except Exception as exc:  # the suite could not start here: say so
        result["freshness"] = {"error": repr(exc)[:300]}
    write_result("analytics", result)
    return result


if __name__ == "__main__":
    import json

    print(json.dumps(main(), indent=2))
