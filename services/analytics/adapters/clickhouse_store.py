"""The event store on ClickHouse, for when one machine is not enough
(docs/adr/0063). The same table as the DuckDB store, ordered by customer
and time; funnels through ClickHouse's own ``windowFunnel``.
Every statement uses server-side parameters (``{name:Type}``), so the
same text runs through clickhouse-connect against a server and through chDB
(the ClickHouse engine in-process), which is how it is tested.

Not wired as the service's backend yet: the service answers from DuckDB.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from analytics.adapters.event_store import EventRow, customer_key
from analytics.domain.queries import FunnelQuery

SCHEMA = """
CREATE TABLE IF NOT EXISTS {db}.events (
    event_id String,
    customer_id String,
    ck Int64,
    ts DateTime64(3, 'UTC'),
    event LowCardinality(String),
    kind LowCardinality(String),
    channel LowCardinality(String),
    source LowCardinality(String),
    properties String,
    inserted_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(inserted_at)
PARTITION BY toYYYYMM(ts)
ORDER BY (customer_id, ts, event_id)
"""


class ClickHouseSql(Protocol):
    """What the adapter needs of a ClickHouse connection."""

    def rows(self, sql: str, params: dict[str, Any] | None = None) -> list[tuple[Any, ...]]: ...

    def command(self, sql: str, params: dict[str, Any] | None = None) -> None: ...


class ConnectClient:
    """A ClickHouse server through clickhouse-connect (HTTP)."""

    def __init__(self, client: Any) -> None:
        self.client = client

    @classmethod
    def from_url(cls, url: str) -> ConnectClient:
        import clickhouse_connect

        return cls(clickhouse_connect.get_client(dsn=url))

    def rows(self, sql: str, params: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in self.client.query(sql, parameters=params or {}).result_rows]

    def command(self, sql: str, params: dict[str, Any] | None = None) -> None:
        self.client.command(sql, parameters=params or {})


class ChdbClient:
    """The ClickHouse engine in-process (chDB): tests and the benchmark."""

    def __init__(self, path: str = "") -> None:
        from chdb import session

        self.session = session.Session(path) if path else session.Session()

    def rows(self, sql: str, params: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        out = self.session.query(sql, "JSONCompact", params=_chdb_params(params))
        text = str(out)
        return [tuple(r) for r in json.loads(text)["data"]] if text.strip() else []

    def command(self, sql: str, params: dict[str, Any] | None = None) -> None:
        self.session.query(sql, "CSV", params=_chdb_params(params))

    def close(self) -> None:
        self.session.close()


def _chdb_params(params: dict[str, Any] | None) -> dict[str, str] | None:
    if not params:
        return None
    return {k: _literal(v) for k, v in params.items()}


def _literal(v: Any) -> str:
    if isinstance(v, list | tuple):
        return "[" + ",".join(_quoted(x) for x in v) + "]"
    if isinstance(v, datetime):
        return v.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    return str(v)


def _quoted(x: Any) -> str:
    if isinstance(x, str):
        return "'" + x.replace("\\", "\\\\").replace("'", "\\'") + "'"
    return str(x)


class ClickHouseEventStore:
    def __init__(self, sql: ClickHouseSql, database: str = "cxloop_analytics") -> None:
        if not database.replace("_", "").isalnum():
            raise ValueError("database name: letters, digits and _")
        self.sql = sql
        self.db = database

    def ensure_schema(self) -> None:
        self.sql.command(f"CREATE DATABASE IF NOT EXISTS {self.db}")
        self.sql.command(SCHEMA.format(db=self.db))

    def ingest(self, rows: Sequence[EventRow]) -> int:
        """Insert rows; a replayed event id collapses on merge
        (ReplacingMergeTree), and queries read with FINAL-free dedup by
        counting customers, which a duplicate cannot change."""
        if not rows:
            return 0
        self.sql.command(
            f"INSERT INTO {self.db}.events (event_id, customer_id, ck, ts, event, kind, channel, "
            "source, properties) SELECT r.1, r.2, r.3, fromUnixTimestamp64Milli(r.4, 'UTC'), r.5, "
            "r.6, r.7, r.8, r.9 FROM "
            "(SELECT arrayJoin(arrayZip({ids:Array(String)}, "
            "{customers:Array(String)}, {cks:Array(Int64)}, {ts:Array(Int64)}, "
            "{events:Array(String)}, {kinds:Array(String)}, {channels:Array(String)}, "
            "{sources:Array(String)}, {props:Array(String)})) AS r)",
            {
                "ids": [r.event_id for r in rows],
                "customers": [r.customer_id for r in rows],
                "cks": [customer_key(r.customer_id) for r in rows],
                "ts": [int(r.ts.timestamp() * 1000) for r in rows],
                "events": [r.event for r in rows],
                "kinds": [r.kind for r in rows],
                "channels": [r.channel for r in rows],
                "sources": [r.source for r in rows],
                "props": [json.dumps(r.properties, separators=(",", ":")) for r in rows],
            },
        )
        return len(rows)

    def count(self) -> int:
        return int(self.sql.rows(f"SELECT count() FROM {self.db}.events FINAL")[0][0])

    def erase(self, customer_ids: list[str]) -> None:
        # Lightweight delete: rows are hidden at once, purged on merge.
        self.sql.command(
            f"DELETE FROM {self.db}.events WHERE customer_id IN {{ids:Array(String)}}",
            {"ids": customer_ids},
        )

    def rekey(self, survivor: str, merged: list[str]) -> None:
        """customer_id is part of the sort key, which ClickHouse cannot
        update: copy the rows under the survivor, then delete the old ones."""
        params = {"ids": merged, "survivor": survivor, "ck": customer_key(survivor)}
        self.sql.command(
            f"INSERT INTO {self.db}.events (event_id, customer_id, ck, ts, event, kind, channel, "
            "source, properties) SELECT event_id, {survivor:String}, {ck:Int64}, ts, event, kind, "
            f"channel, source, properties FROM {self.db}.events "
            "WHERE customer_id IN {ids:Array(String)}",
            params,
        )
        self.erase(merged)

    def funnel_levels(self, q: FunnelQuery) -> list[int]:
        """Customers per step (reached at least that step) via windowFunnel.
        Step filters on columns only (channel, source, kind). Loose order
        only: windowFunnel's 'strict_order' breaks a chain on other events
        differently from the service's strict order (the customer's very
        next event), so answering with it would change the meaning."""
        if q.strict:
            raise ValueError("the ClickHouse store answers loose-order funnels only")
        conds = []
        params: dict[str, Any] = {
            "start": q.range.start,
            "end": q.range.end,
            "end_w": q.range.end + timedelta(seconds=q.window_s),
            "names": sorted({s.event for s in q.steps}),
        }
        for i, s in enumerate(q.steps):
            params[f"e{i}"] = s.event
            cond = f"event = {{e{i}:String}}"
            for j, f in enumerate(s.filters):
                if f.property not in ("channel", "source", "kind"):
                    raise ValueError("the ClickHouse funnel filters on channel, source, kind")
                params[f"f{i}_{j}"] = list(f.values)
                op = "NOT IN" if f.negate else "IN"
                cond += f" AND {f.property} {op} {{f{i}_{j}:Array(String)}}"
            conds.append(f"({cond})")
        # The first step must fall in the range: an entry outside it counts
        # as no entry (windowFunnel starts at the first matching event).
        conds[0] = f"({conds[0]} AND ts < {{end:DateTime64(3, 'UTC')}})"
        event_filter = "AND event IN {names:Array(String)}"
        rows = self.sql.rows(
            f"""
            SELECT level, count() FROM (
                SELECT customer_id,
                       windowFunnel({int(q.window_s) * 1000})(
                           toUInt64(toUnixTimestamp64Milli(ts)), {", ".join(conds)}) AS level
                FROM {self.db}.events FINAL
                WHERE ts >= {{start:DateTime64(3, 'UTC')}}
                  AND ts < {{end_w:DateTime64(3, 'UTC')}} {event_filter}
                GROUP BY customer_id
            ) WHERE level > 0 GROUP BY level ORDER BY level
            """,
            params,
        )
        levels = {int(lv): int(c) for lv, c in rows}
        return [sum(c for lv, c in levels.items() if lv >= k) for k in range(1, len(q.steps) + 1)]
