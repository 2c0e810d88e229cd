"""Behavioural KPIs in ClickHouse's SQL dialect (docs/adr/0270): the rows
``kpis.kpi_series`` makes of DuckDB's SQL, with the same meaning (tested
equal on the same events through chDB)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from analytics.adapters.clickhouse_store import ClickHouseEventStore, micros, property_expr
from analytics.domain.queries import KpiDefinition, KpiKind, TimeRange
from analytics.service_layer.clickhouse_journeys import period_sql
from analytics.service_layer.journeys import _period_start


def kpi_rows(
    store: ClickHouseEventStore, d: KpiDefinition, r: TimeRange
) -> list[tuple[datetime, str, float | None, int]]:
    """(window start, breakdown value, value, sample) per window and value,
    ordered by window then value."""
    db = store.db
    params: dict[str, Any] = {
        "e": d.event,
        "start": micros(r.start),
        "end": micros(r.end),
        "none": "(none)",
    }
    w = period_sql(d.window)
    b = (
        f"coalesce({property_expr(d.breakdown, params, 'bp')}, {{none:String}})"
        if d.breakdown
        else "''"
    )
    start = "fromUnixTimestamp64Micro({start:Int64}, 'UTC')"
    end = "fromUnixTimestamp64Micro({end:Int64}, 'UTC')"
    in_range = f"ts >= {start} AND ts < {end}"
    if d.kind is KpiKind.RATE:
        params["t"] = d.target_event
        sql = f"""
            SELECT base.w, base.b, sum(hit.h) / count(), count() FROM (
                SELECT customer_id, {w} AS w, any({b}) AS b FROM {db}.events FINAL
                WHERE event = {{e:String}} AND {in_range} GROUP BY customer_id, w
            ) AS base
            LEFT JOIN (
                SELECT DISTINCT customer_id, {w} AS w, toUInt8(1) AS h FROM {db}.events FINAL
                WHERE event = {{t:String}} AND {in_range}
            ) AS hit USING (customer_id, w)
            GROUP BY base.w, base.b
        """
    elif d.kind is KpiKind.AVERAGE:
        value = f"toFloat64OrNull(toString({property_expr(d.property, params, 'pp')}))"
        sql = f"""
            SELECT {w} AS w, {b} AS b, avg({value}), count({value}) FROM {db}.events FINAL
            WHERE event = {{e:String}} AND {in_range} GROUP BY w, b HAVING count({value}) > 0
        """
    elif d.kind is KpiKind.REPEAT_RATE:
        sql = f"""
            SELECT w, b, avg(n >= 2), count() FROM (
                SELECT customer_id, {w} AS w, any({b}) AS b, count() AS n FROM {db}.events FINAL
                WHERE event = {{e:String}} AND {in_range} GROUP BY customer_id, w
            ) GROUP BY w, b
        """
    else:
        sql = f"""
            SELECT {period_sql(d.window, "f")} AS w, b,
                   quantileExactInclusive(0.5)(
                       (toUnixTimestamp64Micro(f) - toUnixTimestamp64Micro(a)) / 1e6),
                   count()
            FROM (
                SELECT customer_id, minIf(ts, event = {{e:String}}) AS f, min(ts) AS a,
                       argMinIf({b}, ts, event = {{e:String}}) AS b
                FROM {db}.events FINAL WHERE ts < {end}
                GROUP BY customer_id HAVING countIf(event = {{e:String}}) > 0
            )
            WHERE f >= {start} AND f < {end} GROUP BY w, b
        """
    rows = store.sql.rows(sql + " ORDER BY 1, 2", params)
    return [
        (_period_start(int(w_), d.window), str(bv), None if v is None else float(v), int(n))
        for w_, bv, v, n in rows
    ]
