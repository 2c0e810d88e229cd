"""The columnar event store: one DuckDB file, written by one process
(docs/adr/0060, 0061).

Tables:
- ``events``: one row per interaction, keyed by customer id; ``ck`` is a
  63-bit hash of the customer id (the sort key of the in-memory layout) and
  ``seq`` the arrival order.
- ``ingested``: the 128-bit hash of every event id taken in (idempotence:
  a redelivered or replayed event is dropped).
- ``customer_alias``: merged customer id -> survivor, so an event of a
  merged id arriving late still joins its person's journey.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import numpy as np

from analytics.adapters.layout import Columns, SortedLayout

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq BIGINT NOT NULL,
    event_id VARCHAR NOT NULL,
    customer_id VARCHAR NOT NULL,
    ck BIGINT NOT NULL,
    ts TIMESTAMP NOT NULL,
    event VARCHAR NOT NULL,
    kind VARCHAR NOT NULL,
    channel VARCHAR NOT NULL,
    source VARCHAR NOT NULL,
    properties VARCHAR NOT NULL
);
CREATE TABLE IF NOT EXISTS ingested (event_key UHUGEINT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS customer_alias (
    merged_id VARCHAR PRIMARY KEY,
    survivor_id VARCHAR NOT NULL
);
"""
CK = "(hash(customer_id) >> 1)::BIGINT"


@dataclass(frozen=True, slots=True)
class EventRow:
    event_id: str
    customer_id: str
    ts: datetime
    event: str
    kind: str
    channel: str
    source: str
    properties: dict[str, Any]


class EventStore:
    def __init__(self, path: str | Path, *, read_only: bool = False) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._con = duckdb.connect(self.path, read_only=read_only)
        if not read_only:
            self._con.execute(SCHEMA)
        self._write = threading.Lock()
        self.layout = SortedLayout()
        self._layout_ready = False
        self._next_seq = 1 + int(
            self._con.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()[0]
        )  # type: ignore[index]
        self.aliases: dict[str, str] = dict(
            self._con.execute("SELECT merged_id, survivor_id FROM customer_alias").fetchall()
        )

    # -- reading -----------------------------------------------------------
    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A connection of its own for one thread's query."""
        return self._con.cursor()

    def sql(self, query: str, params: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
        cur = self.cursor()
        try:
            return cur.execute(query, params or []).fetchall()
        finally:
            cur.close()

    def count(self) -> int:
        return int(self.sql("SELECT count(*) FROM events")[0][0])

    def known_events(self) -> set[str]:
        with self.layout.lock:
            if self._layout_ready:
                return set(self.layout.events.labels)
        return {r[0] for r in self.sql("SELECT DISTINCT event FROM events")}

    def close(self) -> None:
        self._con.close()

    # -- the layout ---------------------------------------------------------
    def ensure_layout(self) -> SortedLayout:
        """The sorted in-memory layout, built on first use, then caught up
        with rows written since (a replica's own writes normally arrive
        through :meth:`ingest`, which merges them at once)."""
        with self._write:
            if not self._layout_ready:
                cols, wm = self._columns("TRUE", [])
                self.layout.load(cols, wm)
                self._layout_ready = True
            else:
                cols, _ = self._columns("seq > ?", [self.layout.watermark])
                self.layout.merge(cols)
        return self.layout

    def _columns(self, where: str, params: list[Any]) -> tuple[Columns, int]:
        """Rows as columns, names dictionary-encoded inside DuckDB (a join
        with the small dictionaries) instead of row by row in Python."""
        cur = self.cursor()
        try:
            for name, column, dictionary in (
                ("dict_event", "event", self.layout.events),
                ("dict_channel", "channel", self.layout.channels),
            ):
                labels = [
                    r[0] for r in cur.execute(f"SELECT DISTINCT {column} FROM events").fetchall()
                ]
                codes = [dictionary.code(label) for label in labels]
                cur.register(
                    name,
                    {
                        "label": np.array(labels, dtype=object),
                        "code": np.array(codes, dtype=np.int32),
                    },
                )
            rel = cur.execute(
                "SELECT e.ck, epoch_ms(e.ts) AS t, e.seq, de.code AS ev, dc.code AS ch "
                "FROM events e JOIN dict_event de ON e.event = de.label "
                f"JOIN dict_channel dc ON e.channel = dc.label WHERE {where}",
                params,
            ).fetchnumpy()
        finally:
            cur.close()
        n = len(rel["ck"])
        if n == 0:
            return Columns.empty(), self.layout.watermark
        seq = np.asarray(rel["seq"], dtype=np.int64)
        cols = Columns(
            np.asarray(rel["ck"], dtype=np.int64),
            np.asarray(rel["t"], dtype=np.int64),
            seq,
            np.asarray(rel["ev"], dtype=np.int32),
            np.asarray(rel["ch"], dtype=np.int32),
        )
        return cols, int(seq.max())

    # -- writing -----------------------------------------------------------
    def ingest(self, rows: list[EventRow]) -> int:
        """Store new events (duplicates by event id dropped); returns how many
        were new. One transaction."""
        if not rows:
            return 0
        batch = {
            "pos": np.arange(len(rows), dtype=np.int64),
            "event_id": np.array([r.event_id for r in rows], dtype=object),
            "customer_id": np.array(
                [self.aliases.get(r.customer_id, r.customer_id) for r in rows], dtype=object
            ),
            "ts": np.array([_utc_naive(r.ts) for r in rows], dtype="datetime64[us]"),
            "event": np.array([r.event for r in rows], dtype=object),
            "kind": np.array([r.kind for r in rows], dtype=object),
            "channel": np.array([r.channel for r in rows], dtype=object),
            "source": np.array([r.source for r in rows], dtype=object),
            "properties": np.array(
                [json.dumps(r.properties, separators=(",", ":")) for r in rows], dtype=object
            ),
        }
        with self._write:
            con = self._con
            con.begin()
            try:
                con.register("batch", batch)
                # The primary key answers "seen before?" per row; RETURNING
                # gives the ids that were new (in-batch repeats once).
                keys = con.execute(
                    "INSERT OR IGNORE INTO ingested SELECT md5_number(event_id) FROM batch "
                    "RETURNING event_key::VARCHAR AS k"
                ).fetchnumpy()["k"]
                con.register("new_keys", {"k": np.asarray(keys, dtype=object)})
                # seq: arrival order (ties in time keep it).
                new = con.execute(
                    f"INSERT INTO events SELECT ? + pos, event_id, customer_id, {CK}, "
                    "ts, event, kind, channel, source, properties FROM "
                    "(SELECT * FROM batch WHERE md5_number(event_id) IN "
                    " (SELECT k::UHUGEINT FROM new_keys) "
                    " QUALIFY row_number() OVER (PARTITION BY event_id ORDER BY pos) = 1) "
                    "ORDER BY customer_id, ts RETURNING ck, epoch_ms(ts) AS t, seq, event, channel",
                    [self._next_seq],
                ).fetchnumpy()
                con.unregister("new_keys")
                con.unregister("batch")
                con.commit()
            except BaseException:
                con.rollback()
                raise
            self._next_seq += len(rows)
            n = len(new["ck"])
            if n and self._layout_ready:
                self.layout.merge(
                    Columns(
                        np.asarray(new["ck"], dtype=np.int64),
                        np.asarray(new["t"], dtype=np.int64),
                        np.asarray(new["seq"], dtype=np.int64),
                        _encode(self.layout.events, new["event"]),
                        _encode(self.layout.channels, new["channel"]),
                    )
                )
            return n

    def export(self, customer_id: str) -> list[dict[str, Any]]:
        """What the store holds about a customer (access requests)."""
        cur = self.cursor()
        try:
            rows = cur.execute(
                "SELECT ts, event, kind, channel, source, properties FROM events "
                "WHERE customer_id = ? ORDER BY ts, seq",
                [customer_id],
            ).fetchall()
        finally:
            cur.close()
        return [
            {
                "occurred_at": ts.replace(tzinfo=UTC).isoformat(),
                "event": e,
                "kind": k,
                "channel": c,
                "source": src,
                "properties": json.loads(p),
            }
            for ts, e, k, c, src, p in rows
        ]

    def erase(self, customer_id: str) -> int:
        """Delete every row of the customer (and of ids merged into it)."""
        return self.erase_many([customer_id])

    def erase_many(self, customer_ids: list[str]) -> int:
        wanted = set(customer_ids)
        ids = [*wanted, *(m for m, s in self.aliases.items() if s in wanted)]
        with self._write:
            con = self._con
            con.begin()
            try:
                n = con.execute(
                    "DELETE FROM events WHERE customer_id IN (SELECT unnest(?))", [ids]
                ).fetchone()
                con.execute(
                    "DELETE FROM customer_alias WHERE merged_id IN (SELECT unnest(?)) "
                    "OR survivor_id IN (SELECT unnest(?))",
                    [ids, ids],
                )
                keys = con.execute(f"SELECT {CK} FROM (SELECT unnest(?) AS customer_id)", [ids])
                cks = [int(r[0]) for r in keys.fetchall()]
                con.commit()
            except BaseException:
                con.rollback()
                raise
            for m in ids:
                self.aliases.pop(m, None)
            if self._layout_ready:
                self.layout.drop_customers(cks)
            return int(n[0]) if n else 0

    def rekey(self, survivor: str, merged: list[str]) -> int:
        """A merge: the merged customers' history becomes the survivor's."""
        merged = [m for m in merged if m and m != survivor]
        if not merged:
            return 0
        with self._write:
            con = self._con
            con.begin()
            try:
                n = con.execute(
                    "UPDATE events SET customer_id = ?, ck = (hash(?::VARCHAR) >> 1)::BIGINT "
                    "WHERE customer_id IN (SELECT unnest(?))",
                    [survivor, survivor, merged],
                ).fetchone()
                # Chains: whatever pointed at a merged id now points at the survivor.
                con.execute(
                    "UPDATE customer_alias SET survivor_id = ? WHERE survivor_id IN (SELECT unnest(?))",
                    [survivor, merged],
                )
                con.execute(
                    "INSERT OR REPLACE INTO customer_alias SELECT unnest(?), ?",
                    [merged, survivor],
                )
                keys = con.execute(
                    f"SELECT {CK} FROM (SELECT unnest(?) AS customer_id UNION ALL SELECT ?)",
                    [merged, survivor],
                ).fetchall()
                con.commit()
            except BaseException:
                con.rollback()
                raise
            for m, s in list(self.aliases.items()):
                if s in merged:
                    self.aliases[m] = survivor
            for m in merged:
                self.aliases[m] = survivor
            if self._layout_ready:
                cks = [int(r[0]) for r in keys]
                self.layout.rekey(cks[:-1], cks[-1])
            return int(n[0]) if n else 0

    def purge_before(self, cutoff: datetime, limit: int) -> int:
        """Retention: delete at most ``limit`` rows older than ``cutoff``."""
        naive = cutoff.astimezone(UTC).replace(tzinfo=None) if cutoff.tzinfo else cutoff
        with self._write:
            row = self._con.execute(
                "DELETE FROM events WHERE seq IN (SELECT seq FROM events WHERE ts < ? LIMIT ?)",
                [naive, limit],
            ).fetchone()
            n = int(row[0]) if row else 0
            if n and self._layout_ready:
                self.layout.drop_before(int(naive.replace(tzinfo=UTC).timestamp() * 1000))
            return n


def _utc_naive(ts: datetime) -> datetime:
    return ts.astimezone(UTC).replace(tzinfo=None) if ts.tzinfo else ts


def _encode(dictionary: Any, values: Any) -> np.ndarray[Any, np.dtype[np.int32]]:
    labels = [str(v) for v in values]
    uniques = {v: dictionary.code(v) for v in set(labels)}
    return np.fromiter((uniques[v] for v in labels), dtype=np.int32, count=len(labels))
