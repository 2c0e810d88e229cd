"""Analytics on the ClickHouse store (docs/adr/0270), written to
bench/results/analytics_clickhouse.json: the same queries on the DuckDB
store (the service's default) and on the ClickHouse store through chDB (the
ClickHouse engine in this process), interleaved round by round on the same
CH_EVENTS events, every answer compared; wall and process CPU time per
query, ClickHouse's own windowFunnel beside them; the store's ingest path
into chDB.

Scale with CXLOOP_BENCH_ANALYTICS_CH_EVENTS / _CUSTOMERS (default 1 M /
100 k), rounds with CXLOOP_BENCH_ANALYTICS_CH_ROUNDS (default 10).
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from bench.analytics import DAYS, INGEST_BATCH, STEPS, T0, WINDOW_S, generate
from bench.common import write_result

CH_EVENTS = int(os.environ.get("CXLOOP_BENCH_ANALYTICS_CH_EVENTS", 1_000_000))
CH_CUSTOMERS = int(os.environ.get("CXLOOP_BENCH_ANALYTICS_CH_CUSTOMERS", 100_000))
CH_ROUNDS = int(os.environ.get("CXLOOP_BENCH_ANALYTICS_CH_ROUNDS", 10))


def bench_clickhouse() -> dict[str, Any]:
    """The same queries on the DuckDB store (the service's default path) and
    on the ClickHouse store through chDB (the ClickHouse engine in this
    process, so process CPU time counts its threads too), interleaved round
    by round on the same events; every answer compared. Wall time and
    process CPU time per query (docs/adr/0270)."""
    from chdb import session as _chs  # noqa: F401  (skip cleanly without chDB)

    from analytics.adapters.clickhouse_store import ChdbClient, ClickHouseEventStore
    from analytics.adapters.event_store import EventStore
    from analytics.domain.batch import EventBatch
    from analytics.domain.queries import FunnelQuery, Period, RetentionQuery, Step, TimeRange
    from analytics.service_layer.clickhouse_journeys import ClickHouseJourneys
    from analytics.service_layer.journeys import JourneyAnalytics

    tmp = Path(tempfile.mkdtemp(prefix="cxloop-bench-analytics-ch-"))
    duck = EventStore(tmp / "analytics.duckdb")
    generate(duck, CH_EVENTS, CH_CUSTOMERS)
    duck.ensure_layout()
    parquet = tmp / "events.parquet"
    duck.sql(
        "COPY (SELECT seq, event_id, customer_id, ck, ts, event, kind, channel, source, "
        f"properties FROM events) TO '{parquet}' (FORMAT parquet)"
    )
    client = ChdbClient(str(tmp / "chdb"))
    ch = ClickHouseEventStore(client, "bench")
    ch.ensure_schema()
    t = time.perf_counter()
    client.command(
        "INSERT INTO bench.events SELECT toUInt64(seq), event_id, customer_id, ck, "
        f"toDateTime64(ts, 6, 'UTC'), event, kind, channel, source, properties FROM file('{parquet}', Parquet)"
    )
    load_s = time.perf_counter() - t
    # The service's ingest path into chDB (fetch-sized batches), for scale.
    rows = duck.sql(
        "SELECT event_id || '-i', customer_id, epoch_us(ts), event, kind, channel, source, "
        "properties FROM events LIMIT 100000"
    )
    batches = []
    for i in range(0, len(rows), INGEST_BATCH):
        b = EventBatch()
        for eid, cid, us, ev_, kind, chn, src, props in rows[i : i + INGEST_BATCH]:
            b.event_id.append(eid)
            b.customer_id.append(cid)
            b.ts_us.append(int(us))
            b.event.append(ev_)
            b.kind.append(kind)
            b.channel.append(chn)
            b.source.append(src)
            b.properties.append(props)
        batches.append(b)
    ingest_db = ClickHouseEventStore(client, "bench_ingest")
    ingest_db.ensure_schema()
    t, c = time.perf_counter(), time.process_time()
    for b in batches:
        ingest_db.ingest_batch(b)
    ingest_wall, ingest_cpu = time.perf_counter() - t, time.process_time() - c

    duck_j, ch_j = JourneyAnalytics(duck), ClickHouseJourneys(ch)
    r = TimeRange(T0, T0 + timedelta(days=DAYS))
    steps = tuple(Step(s) for s in STEPS)
    queries: dict[str, tuple[Any, Any]] = {
        "funnel_5_steps_7d": (
            lambda j: j.funnel(FunnelQuery(steps, WINDOW_S, r)).result,
            None,
        ),
        "funnel_5_steps_7d_by_source": (
            lambda j: j.funnel(FunnelQuery(steps, WINDOW_S, r, breakdown="source")).result,
            None,
        ),
        "funnel_5_steps_7d_strict": (
            lambda j: j.funnel(FunnelQuery(steps, WINDOW_S, r, strict=True)).result,
            None,
        ),
        "retention_12_weeks": (
            lambda j: j.retention(
                RetentionQuery(TimeRange(T0, T0 + timedelta(weeks=12)), Period.WEEK, 12)
            ),
            None,
        ),
    }
    out: dict[str, Any] = {}
    for name, (run, _) in queries.items():
        samples: dict[str, dict[str, list[float]]] = {
            k: {"wall": [], "cpu": []} for k in ("duckdb", "clickhouse")
        }
        answers: dict[str, Any] = {}
        run(duck_j)  # warm: the layout's per-query arrays
        for _ in range(CH_ROUNDS):
            for k, j in (("duckdb", duck_j), ("clickhouse", ch_j)):
                t, c = time.perf_counter(), time.process_time()
                answers[k] = run(j)
                samples[k]["wall"].append(time.perf_counter() - t)
                samples[k]["cpu"].append(time.process_time() - c)
        out[name] = {
            k: {
                "wall_p50_ms": round(statistics.median(v["wall"]) * 1000, 1),
                "cpu_p50_ms": round(statistics.median(v["cpu"]) * 1000, 1),
                "rounds": CH_ROUNDS,
            }
            for k, v in samples.items()
        }
        out[name]["equal"] = answers["duckdb"] == answers["clickhouse"]
        assert out[name]["equal"], name
    # ClickHouse's own windowFunnel (loose order, counts only), same events.
    wf: list[float] = []
    wf_cpu: list[float] = []
    levels: list[int] = []
    for _ in range(CH_ROUNDS):
        t, c = time.perf_counter(), time.process_time()
        levels = ch.funnel_levels(FunnelQuery(steps, WINDOW_S, r))
        wf.append(time.perf_counter() - t)
        wf_cpu.append(time.process_time() - c)
    ours = duck_j.funnel(FunnelQuery(steps, WINDOW_S, r)).result
    out["window_funnel_counts_only"] = {
        "wall_p50_ms": round(statistics.median(wf) * 1000, 1),
        "cpu_p50_ms": round(statistics.median(wf_cpu) * 1000, 1),
        "equal_counts": levels == [s.customers for s in ours.steps],
    }
    duck_j.close()
    client.close()
    duck.close()
    return {
        "events": CH_EVENTS,
        "customers": CH_CUSTOMERS,
        "chdb_bulk_load_s": round(load_s, 2),
        "chdb_ingest_batch": {
            "events": len(rows),
            "events_per_s": round(len(rows) / ingest_wall),
            "cpu_us_per_event": round(ingest_cpu / len(rows) * 1e6, 1),
        },
        "queries": out,
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "load_average_1_5_15m": [round(x, 2) for x in os.getloadavg()],
    }


def clickhouse_rows() -> list[str]:
    """bench/README.md rows (bench/report.py)."""
    import json

    from bench.common import RESULTS

    r = json.loads((RESULTS / "analytics_clickhouse.json").read_text())
    rows = []
    names = {
        "funnel_5_steps_7d": "5-step funnel, 7-day window",
        "funnel_5_steps_7d_by_source": "the same, broken down by a column",
        "funnel_5_steps_7d_strict": "the same, strict order",
        "retention_12_weeks": "12-week retention triangle",
    }
    load = r.get("load_average_1_5_15m", ["?"])[0]
    for key, what in names.items():
        q = r["queries"].get(key)
        if not q:
            continue
        c, d = q["clickhouse"], q["duckdb"]
        rows.append(
            f"| analytics | ClickHouse store (chDB): {what}, {r['events']:,} events, "
            f"p50 wall / CPU (load {load}) | "
            f"{c['wall_p50_ms']} / {c['cpu_p50_ms']} ms | — | DuckDB store {d['wall_p50_ms']} / "
            f"{d['cpu_p50_ms']} ms; equal answers: {q['equal']} |"
        )
    return rows


def main() -> dict[str, Any]:
    result = bench_clickhouse()
    write_result("analytics_clickhouse", result)
    return result
