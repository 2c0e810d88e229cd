"""The event store on ClickHouse, for when one machine is not enough
(docs/adr/0063, 0270): the service's backend when
``CXLOOP_ANALYTICS_STORE=clickhouse``.

Tables (database ``cxloop_analytics`` by default):
- ``events``: one row per interaction, a ``ReplacingMergeTree`` ordered by
  (customer key, customer id, time, event id), so a replayed or redelivered
  event collapses; every read uses ``FINAL``, so nothing is counted twice
  before the background merge happens. ``seq`` is the arrival order (ties of
  one customer's events at the same microsecond are ordered by it, as in the
  DuckDB store).
- ``customer_alias``: merged customer id -> survivor (latest ``version``
  wins), so an event of a merged id arriving late joins the survivor.
- ``erased_customer``: ids erased; a replay of the stream cannot bring their
  events back.

There is no in-memory state: replicas share the server and read aliases and
erasures from it for each batch, so they stay consistent with each other.

Every statement uses server-side parameters (``{name:Type}``), so the same
text runs through clickhouse-connect against a server and through chDB (the
ClickHouse engine in-process), which is how it is tested.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Protocol
from urllib.parse import urlsplit

import numpy as np

from analytics.domain.batch import EventBatch, EventRow, customer_key, event_keys
from analytics.domain.queries import COLUMNS, FunnelQuery

EVENTS_SCHEMA = """
CREATE TABLE IF NOT EXISTS {db}.events (
    seq UInt64,
    event_id String,
    customer_id String,
    ck Int64,
    ts DateTime64(6, 'UTC'),
    event LowCardinality(String),
    kind LowCardinality(String),
    channel LowCardinality(String),
    source LowCardinality(String),
    properties String
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (ck, customer_id, ts, event_id)
"""
ALIAS_SCHEMA = """
CREATE TABLE IF NOT EXISTS {db}.customer_alias (
    merged_id String,
    survivor_id String,
    version UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY merged_id
"""
ERASED_SCHEMA = """
CREATE TABLE IF NOT EXISTS {db}.erased_customer (customer_id String)
ENGINE = ReplacingMergeTree
ORDER BY customer_id
"""
EVENT_COLUMNS = (
    "seq",
    "event_id",
    "customer_id",
    "ck",
    "ts",
    "event",
    "kind",
    "channel",
    "source",
    "properties",
)


class ClickHouseSql(Protocol):
    """What the store needs of a ClickHouse connection."""

    def rows(self, sql: str, params: dict[str, Any] | None = None) -> list[tuple[Any, ...]]: ...

    def columns(self, sql: str, params: dict[str, Any] | None = None) -> list[Any]:
        """The answer as one sequence (list or numpy array) per column
        (large answers: funnels, paths)."""
        ...

    def command(self, sql: str, params: dict[str, Any] | None = None) -> None: ...

    def insert_events(self, table: str, columns: dict[str, list[Any]]) -> None:
        """Insert rows given as columns named as :data:`EVENT_COLUMNS`
        (``ts`` in microseconds since the epoch)."""
        ...

    def close(self) -> None: ...


class ConnectClient:
    """A ClickHouse server through clickhouse-connect (HTTP). One client is
    shared by the service's threads: no session id, so concurrent queries
    are allowed."""

    def __init__(self, client: Any) -> None:
        self.client = client

    @classmethod
    def from_url(cls, url: str, password: str = "") -> ConnectClient:
        import clickhouse_connect

        kwargs: dict[str, Any] = {"dsn": url, "autogenerate_session_id": False}
        if password:
            kwargs["password"] = password
        return cls(clickhouse_connect.get_client(**kwargs))

    def rows(self, sql: str, params: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in self.client.query(sql, parameters=params or {}).result_rows]

    def columns(self, sql: str, params: dict[str, Any] | None = None) -> list[Any]:
        result = self.client.query(sql, parameters=params or {})
        cols = result.result_columns
        return [list(c) for c in cols] if cols else [[] for _ in result.column_names]

    def command(self, sql: str, params: dict[str, Any] | None = None) -> None:
        self.client.command(sql, parameters=params or {})

    def insert_events(self, table: str, columns: dict[str, list[Any]]) -> None:
        # The native format, columns as they are (no SQL text of the data).
        ts = columns["ts"]
        data = dict(columns)
        data["ts"] = [from_micros(t) for t in ts]
        names = list(EVENT_COLUMNS)
        self.client.insert(
            table, [data[n] for n in names], column_names=names, column_oriented=True
        )

    def close(self) -> None:
        self.client.close()


class ChdbClient:
    """The ClickHouse engine in-process (chDB): tests, the benchmark and a
    server-free run of the service (``CXLOOP_ANALYTICS_CLICKHOUSE_URL=chdb://``
    or ``chdb:///a/directory``). One query at a time (a lock)."""

    def __init__(self, path: str = "") -> None:
        from chdb import session

        self.session = session.Session(path) if path else session.Session()
        self._lock = threading.Lock()

    def rows(self, sql: str, params: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        with self._lock:
            out = self.session.query(sql, "JSONCompact", params=_chdb_params(params))
        text = str(out)
        return [tuple(r) for r in json.loads(text)["data"]] if text.strip() else []

    def columns(self, sql: str, params: dict[str, Any] | None = None) -> list[Any]:
        # Arrow (pyarrow comes with chDB): numpy arrays without a Python
        # object per value; a third of a funnel's CPU was the JSON before.
        import pyarrow as pa

        with self._lock:
            out = self.session.query(sql, "Arrow", params=_chdb_params(params))
        data = out.bytes()
        if not data:
            return []
        table = pa.ipc.open_file(pa.BufferReader(data)).read_all()
        return [table.column(i).to_numpy() for i in range(table.num_columns)]

    def command(self, sql: str, params: dict[str, Any] | None = None) -> None:
        with self._lock:
            self.session.query(sql, "CSV", params=_chdb_params(params))

    def insert_events(self, table: str, columns: dict[str, list[Any]]) -> None:
        self.command(
            f"INSERT INTO {table} ({', '.join(EVENT_COLUMNS)}) SELECT r.1, r.2, r.3, r.4, "
            "fromUnixTimestamp64Micro(r.5, 'UTC'), r.6, r.7, r.8, r.9, r.10 FROM "
            "(SELECT arrayJoin(arrayZip({seq:Array(UInt64)}, {ids:Array(String)}, "
            "{customers:Array(String)}, {cks:Array(Int64)}, {ts:Array(Int64)}, "
            "{events:Array(String)}, {kinds:Array(String)}, {channels:Array(String)}, "
            "{sources:Array(String)}, {props:Array(String)})) AS r)",
            {
                "seq": columns["seq"],
                "ids": columns["event_id"],
                "customers": columns["customer_id"],
                "cks": columns["ck"],
                "ts": columns["ts"],
                "events": columns["event"],
                "kinds": columns["kind"],
                "channels": columns["channel"],
                "sources": columns["source"],
                "props": columns["properties"],
            },
        )

    def close(self) -> None:
        self.session.close()


def connect(url: str, password: str = "") -> ClickHouseSql:
    """A client for ``CXLOOP_ANALYTICS_CLICKHOUSE_URL``: ``http(s)://user@host:8123``
    (a server; the password apart, from a secret) or ``chdb://[/path]``
    (the engine in-process: tests and a one-machine trial)."""
    parts = urlsplit(url)
    if parts.scheme == "chdb":
        return _SharedChdb.open(parts.path if parts.path not in ("", "/") else "")
    if parts.scheme in ("http", "https", "clickhouse", "clickhouses"):
        return ConnectClient.from_url(url, password)
    raise ValueError("clickhouse_url: http(s)://user@host:8123/ or chdb://[/path]")


class _SharedChdb(ChdbClient):
    """One chDB session per directory in a process (two replicas of the
    service in one test process share it, as they share a server); closed
    when its last user closes it."""

    _open: ClassVar[dict[str, _SharedChdb]] = {}
    _registry = threading.Lock()

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.key = path
        self.users = 0

    @classmethod
    def open(cls, path: str) -> _SharedChdb:
        with cls._registry:
            client = cls._open.get(path) if path else None
            if client is None:
                client = cls(path)
                if path:
                    cls._open[path] = client
            client.users += 1
            return client

    def close(self) -> None:
        with self._registry:
            self.users -= 1
            if self.users > 0:
                return
            self._open.pop(self.key, None)
        super().close()


def _chdb_params(params: dict[str, Any] | None) -> dict[str, str] | None:
    if not params:
        return None
    return {k: _literal(v) for k, v in params.items()}


def _literal(v: Any) -> str:
    if isinstance(v, list | tuple | np.ndarray):
        return "[" + ",".join(_quoted(x) for x in v) + "]"
    if isinstance(v, datetime):
        return v.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    return str(v)


def _quoted(x: Any) -> str:
    if isinstance(x, str):
        return "'" + x.replace("\\", "\\\\").replace("'", "\\'") + "'"
    return str(x)


def property_expr(name: str, params: dict[str, Any], slot: str) -> str:
    """A property as ClickHouse SQL, as DuckDB's ``json_extract_string``
    reads it: a column, or a key of the JSON properties (a string as is,
    other values as their JSON text, missing or null as NULL). ClickHouse
    writes a whole double without its fraction (``40``), DuckDB as ``40.0``:
    the fraction is put back. (Numbers inside arrays or objects keep
    ClickHouse's spelling.) The key is a parameter (``slot``)."""
    if name in COLUMNS:
        return name
    params[slot] = name
    key = f"{{{slot}:String}}"
    kind = f"JSONType(properties, {key})"
    raw = f"JSONExtractRaw(properties, {key})"
    return (
        f"multiIf({kind} = 'String', JSONExtractString(properties, {key}), "
        f"{kind} = 'Null', NULL, "
        f"{kind} = 'Double' AND NOT match({raw}, '[.eE]'), concat({raw}, '.0'), {raw})"
    )


def micros(dt: datetime) -> int:
    return (dt.astimezone(UTC) - _EPOCH) // timedelta(microseconds=1)


def from_micros(us: Any) -> datetime:
    return _EPOCH + timedelta(microseconds=int(us))


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class ClickHouseEventStore:
    """The store interface the ingest, privacy and retention paths use
    (``ingest_batch``, ``erase``, ``erase_many``, ``rekey``, ``export``,
    ``purge_before``, ``known_events``, ``count``), on ClickHouse."""

    dialect = "clickhouse"

    def __init__(self, sql: ClickHouseSql, database: str = "cxloop_analytics") -> None:
        if not database.replace("_", "").isalnum():
            raise ValueError("database name: letters, digits and _")
        self.sql = sql
        self.db = database
        self._seq_lock = threading.Lock()
        self._last_seq = 0
        # Merges and erasures of this process, one at a time (with ingest):
        # a merge's copy-then-delete must not interleave with an erasure.
        self._write = threading.Lock()

    # -- schema ---------------------------------------------------------------
    def ensure_schema(self) -> None:
        self.sql.command(f"CREATE DATABASE IF NOT EXISTS {self.db}")
        for ddl in (EVENTS_SCHEMA, ALIAS_SCHEMA, ERASED_SCHEMA):
            self.sql.command(ddl.format(db=self.db))

    def close(self) -> None:
        self.sql.close()

    def _seqs(self, n: int) -> np.ndarray[Any, np.dtype[np.uint64]]:
        """Arrival order: microseconds of the wall clock, strictly growing in
        this process (replicas' clocks order their arrivals roughly)."""
        with self._seq_lock:
            first = max(self._last_seq + 1, time.time_ns() // 1000)
            self._last_seq = first + n - 1
        return np.arange(first, first + n, dtype=np.uint64)

    def _version(self) -> int:
        return int(self._seqs(1)[0])

    # -- reading --------------------------------------------------------------
    def count(self) -> int:
        return int(self.sql.rows(f"SELECT count() FROM {self.db}.events FINAL")[0][0])

    def known_events(self) -> set[str]:
        return {str(r[0]) for r in self.sql.rows(f"SELECT DISTINCT event FROM {self.db}.events")}

    def ensure_layout(self) -> None:
        """Nothing to build: ClickHouse answers from its tables."""

    def aliases_of(self, ids: Sequence[str]) -> dict[str, str]:
        return self.changes_of(ids)[0]

    def erased_of(self, ids: Sequence[str]) -> set[str]:
        return self.changes_of(ids)[1]

    def changes_of(self, ids: Sequence[str]) -> tuple[dict[str, str], set[str]]:
        """Of these customer ids: those merged into another (-> survivor),
        and those erased. One query."""
        if not ids:
            return {}, set()
        rows = self.sql.rows(
            f"SELECT 'a', merged_id, argMax(survivor_id, version) FROM {self.db}.customer_alias "
            "WHERE merged_id IN {ids:Array(String)} GROUP BY merged_id "
            f"UNION ALL SELECT DISTINCT 'e', customer_id, '' FROM {self.db}.erased_customer "
            "WHERE customer_id IN {ids:Array(String)}",
            {"ids": list(ids)},
        )
        aliases = {str(m): str(s) for kind, m, s in rows if kind == "a"}
        return aliases, {str(c) for kind, c, _ in rows if kind == "e"}

    def export(self, customer_id: str) -> list[dict[str, Any]]:
        """What the store holds about a customer (access requests)."""
        rows = self.sql.rows(
            "SELECT toUnixTimestamp64Micro(ts), event, kind, channel, source, properties "
            f"FROM {self.db}.events FINAL WHERE ck = {{ck:Int64}} AND customer_id = {{c:String}} "
            "ORDER BY ts, seq",
            {"ck": customer_key(customer_id), "c": customer_id},
        )
        return [
            {
                "occurred_at": from_micros(us).isoformat(),
                "event": e,
                "kind": k,
                "channel": c,
                "source": src,
                "properties": json.loads(p),
            }
            for us, e, k, c, src, p in rows
        ]

    # -- writing --------------------------------------------------------------
    def ingest(self, rows: list[EventRow]) -> int:
        return self.ingest_batch(EventBatch.of(rows)) if rows else 0

    def ingest_batch(self, b: EventBatch) -> int:
        """Insert a fetch's events: duplicates inside the batch dropped, ids
        merged by identity stored under their survivor, erased customers'
        events dropped (both read from ClickHouse, shared by the replicas).
        An event stored before collapses with its replay in the table (every
        read is ``FINAL``); the count returned includes such replays.

        Another replica may erase or merge a customer of the batch between
        the check and the insert: the check is made again after the insert,
        and rows stored under an id erased or merged meanwhile are deleted
        or moved. (Erasure and merge write their tombstone or alias before
        they delete: either this second check sees it, or their delete comes
        after this insert and takes its rows.)"""
        n_in = len(b)
        if not n_in:
            return 0
        keys = b.event_keys if b.event_keys is not None else event_keys(b.event_id)
        _, first = np.unique(keys, return_index=True)
        keep = np.zeros(n_in, dtype=np.bool_)
        keep[first] = True
        distinct = sorted(set(b.customer_id))
        with self._write:
            aliases, erased = self.changes_of(distinct)
            customers = [aliases.get(c, c) for c in b.customer_id] if aliases else b.customer_id
            if aliases:
                erased |= self.erased_of(sorted(set(aliases.values())))
            if erased:
                keep &= np.fromiter(
                    (c not in erased for c in customers), dtype=np.bool_, count=n_in
                )
            idx = np.flatnonzero(keep).tolist()
            if not idx:
                return 0
            cust = [customers[i] for i in idx]
            if b.customer_keys is not None and not aliases:
                cks = b.customer_keys[idx].tolist()
            else:
                ck_of = {c: customer_key(c) for c in set(cust)}
                cks = [ck_of[c] for c in cust]
            self.sql.insert_events(
                f"{self.db}.events",
                {
                    "seq": self._seqs(len(idx)).tolist(),
                    "event_id": [b.event_id[i] for i in idx],
                    "customer_id": cust,
                    "ck": cks,
                    "ts": [int(b.ts_us[i]) for i in idx],
                    "event": [b.event[i] for i in idx],
                    "kind": [b.kind[i] for i in idx],
                    "channel": [b.channel[i] for i in idx],
                    "source": [b.source[i] for i in idx],
                    "properties": [b.properties[i] for i in idx],
                },
            )
            merged_since, erased_since = self.changes_of(sorted(set(cust)))
            if erased_since:
                self._delete_rows(sorted(erased_since))
            by_survivor: dict[str, list[str]] = {}
            for m, survivor in merged_since.items():
                by_survivor.setdefault(survivor, []).append(m)
            for survivor, ids in sorted(by_survivor.items()):
                self._move_rows(survivor, sorted(ids))
            return len(idx)

    def _delete_rows(self, ids: list[str]) -> None:
        self.sql.command(
            f"DELETE FROM {self.db}.events WHERE customer_id IN {{ids:Array(String)}}",
            {"ids": ids},
        )

    def _move_rows(self, survivor: str, merged: list[str]) -> int:
        """The merged ids' rows copied under the survivor, then deleted."""
        n = self._count_of(merged)
        if n:
            self.sql.command(
                f"INSERT INTO {self.db}.events ({', '.join(EVENT_COLUMNS)}) "
                "SELECT seq, event_id, {survivor:String}, {ck:Int64}, ts, event, kind, "
                f"channel, source, properties FROM {self.db}.events FINAL "
                "WHERE customer_id IN {ids:Array(String)}",
                {"ids": merged, "survivor": survivor, "ck": customer_key(survivor)},
            )
            self._delete_rows(merged)
        return n

    def _count_of(self, ids: list[str]) -> int:
        return int(
            self.sql.rows(
                f"SELECT count() FROM {self.db}.events FINAL "
                "WHERE customer_id IN {ids:Array(String)}",
                {"ids": ids},
            )[0][0]
        )

    def erase(self, customer_id: str) -> int:
        """Erasure: every row of the customer (and of ids merged into it)
        deleted, and the ids remembered so a replay cannot store them again."""
        return self.erase_many([customer_id], tombstone=True)

    def erase_many(self, customer_ids: list[str], *, tombstone: bool = False) -> int:
        """Delete the customers' rows (lightweight ``DELETE``: hidden at once,
        purged by the next merge)."""
        wanted = sorted(set(customer_ids))
        if not wanted:
            return 0
        with self._write:
            merged = self.sql.rows(
                f"SELECT merged_id FROM {self.db}.customer_alias FINAL "
                "WHERE survivor_id IN {ids:Array(String)}",
                {"ids": wanted},
            )
            ids = sorted({*wanted, *(str(m[0]) for m in merged)})
            if tombstone:
                # First: from now on no ingest stores them again.
                self.sql.command(
                    f"INSERT INTO {self.db}.erased_customer (customer_id) "
                    "SELECT arrayJoin({ids:Array(String)})",
                    {"ids": ids},
                )
            n = self._count_of(ids)
            if n:
                self._delete_rows(ids)
            self.sql.command(
                f"DELETE FROM {self.db}.customer_alias WHERE merged_id IN {{ids:Array(String)}} "
                "OR survivor_id IN {ids:Array(String)}",
                {"ids": ids},
            )
            return n

    def rekey(self, survivor: str, merged: list[str]) -> int:
        """A merge: the merged customers' history becomes the survivor's.
        ``customer_id`` is in the sort key, which ClickHouse cannot update:
        the alias is written first (later events go to the survivor), then
        the rows are copied under the survivor and the old ones deleted."""
        merged = sorted({m for m in merged if m and m != survivor})
        if not merged:
            return 0
        params: dict[str, Any] = {
            "ids": merged,
            "survivor": survivor,
            "ck": customer_key(survivor),
            "v": self._version(),
        }
        with self._write:
            # Chains: whatever pointed at a merged id now points at the survivor.
            self.sql.command(
                f"INSERT INTO {self.db}.customer_alias (merged_id, survivor_id, version) "
                f"SELECT merged_id, {{survivor:String}}, {{v:UInt64}} "
                f"FROM {self.db}.customer_alias FINAL WHERE survivor_id IN {{ids:Array(String)}}",
                params,
            )
            self.sql.command(
                f"INSERT INTO {self.db}.customer_alias (merged_id, survivor_id, version) "
                "SELECT arrayJoin({ids:Array(String)}), {survivor:String}, {v:UInt64}",
                params,
            )
            return self._move_rows(survivor, merged)

    def purge_before(self, cutoff: datetime, limit: int) -> int:
        """Retention: rows older than ``cutoff`` deleted. One lightweight
        delete takes them all (it is one mutation however many rows), so
        ``limit`` only bounds what is reported, and the next round finds
        nothing left."""
        params = {"cutoff": micros(cutoff)}
        with self._write:
            n = int(
                self.sql.rows(
                    f"SELECT count() FROM {self.db}.events "
                    "WHERE ts < fromUnixTimestamp64Micro({cutoff:Int64}, 'UTC')",
                    params,
                )[0][0]
            )
            if n:
                self.sql.command(
                    f"DELETE FROM {self.db}.events "
                    "WHERE ts < fromUnixTimestamp64Micro({cutoff:Int64}, 'UTC')",
                    params,
                )
        return min(n, limit) if limit else n

    # -- the windowFunnel answer (tests and the benchmark) ---------------------
    def funnel_levels(self, q: FunnelQuery) -> list[int]:
        """Customers per step (reached at least that step) through
        ClickHouse's ``windowFunnel``: loose order, column filters only
        (channel, source, kind). The service's funnels go through
        :mod:`analytics.service_layer.clickhouse_journeys`, which also does
        strict order, any property and breakdowns; this is the engine's own
        answer, tested equal."""
        if q.strict:
            raise ValueError("windowFunnel answers loose-order funnels only")
        conds = []
        params: dict[str, Any] = {
            "start": micros(q.range.start),
            "end": micros(q.range.end),
            "end_w": micros(q.range.end + timedelta(seconds=q.window_s)),
            "names": sorted({s.event for s in q.steps}),
        }
        for i, s in enumerate(q.steps):
            params[f"e{i}"] = s.event
            cond = f"event = {{e{i}:String}}"
            for j, f in enumerate(s.filters):
                if f.property not in COLUMNS:
                    raise ValueError("windowFunnel filters on channel, source, kind")
                params[f"f{i}_{j}"] = list(f.values)
                op = "NOT IN" if f.negate else "IN"
                cond += f" AND {f.property} {op} {{f{i}_{j}:Array(String)}}"
            conds.append(f"({cond})")
        # The first step must fall in the range: an entry outside it counts
        # as no entry (windowFunnel starts at the first matching event).
        conds[0] = f"({conds[0]} AND ts < fromUnixTimestamp64Micro({{end:Int64}}, 'UTC'))"
        rows = self.sql.rows(
            f"""
            SELECT level, count() FROM (
                SELECT customer_id,
                       windowFunnel({int(q.window_s) * 1000})(
                           toUInt64(toUnixTimestamp64Milli(ts)), {", ".join(conds)}) AS level
                FROM {self.db}.events FINAL
                WHERE ts >= fromUnixTimestamp64Micro({{start:Int64}}, 'UTC')
                  AND ts < fromUnixTimestamp64Micro({{end_w:Int64}}, 'UTC')
                  AND event IN {{names:Array(String)}}
                GROUP BY customer_id
            ) WHERE level > 0 GROUP BY level ORDER BY level
            """,
            params,
        )
        levels = {int(lv): int(c) for lv, c in rows}
        return [sum(c for lv, c in levels.items() if lv >= k) for k in range(1, len(q.steps) + 1)]
