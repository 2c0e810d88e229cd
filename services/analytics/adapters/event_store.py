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
- ``customer_segment``: segment membership as personalization last said
  (entered / exited, the later change wins whatever the arrival order), for
  funnels broken down by segment and cohorts of a segment (docs/adr/0275).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import numpy as np

from analytics.adapters.layout import Columns, SortedLayout, origin_label
from analytics.domain.batch import (  # noqa: F401  (the store's vocabulary, re-exported)
    EventBatch,
    EventRow,
    customer_key,
    customer_keys,
    event_key,
    event_keys,
    properties_json,
)

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
CREATE TABLE IF NOT EXISTS ingested (event_key UBIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS erased_customer (customer_id VARCHAR NOT NULL);
CREATE TABLE IF NOT EXISTS customer_alias (
    merged_id VARCHAR PRIMARY KEY,
    survivor_id VARCHAR NOT NULL
);
CREATE TABLE IF NOT EXISTS customer_segment (
    customer_id VARCHAR NOT NULL,
    segment_id VARCHAR NOT NULL,
    ck BIGINT NOT NULL,
    member BOOLEAN NOT NULL,
    changed_at TIMESTAMP NOT NULL,
    PRIMARY KEY (customer_id, segment_id)
);
"""
# The same key in SQL (bench data generation) and Python (customer_key).
CK = "(md5_number_lower(customer_id) >> 1)::BIGINT"


_RECENT_MAX = 200_000


class SeenKeys:
    """Keys of every event taken in: a sorted array plus a small recent
    part, merged when it grows (membership is a binary search)."""

    def __init__(self, keys: np.ndarray[Any, np.dtype[np.uint64]]) -> None:
        self.main = np.unique(keys.astype(np.uint64))
        self.recent = np.zeros(0, dtype=np.uint64)

    def __len__(self) -> int:
        return len(self.main) + len(self.recent)

    def contains(
        self, keys: np.ndarray[Any, np.dtype[np.uint64]]
    ) -> np.ndarray[Any, np.dtype[np.bool_]]:
        out = np.zeros(len(keys), dtype=np.bool_)
        for part in (self.main, self.recent):
            if len(part):
                i = np.minimum(np.searchsorted(part, keys), len(part) - 1)
                out |= part[i] == keys
        return out

    def add(self, keys: np.ndarray[Any, np.dtype[np.uint64]]) -> None:
        # Merges of sorted arrays, linear in their length: np.union1d
        # re-sorted the whole recent part for every fetch, which grew to
        # the largest cost of ingest (docs/adr/0205).
        self.recent = _merge_sorted(self.recent, np.unique(keys.astype(np.uint64)))
        if len(self.recent) > _RECENT_MAX:
            self.main = _merge_sorted(self.main, self.recent)
            self.recent = np.zeros(0, dtype=np.uint64)


def _merge_sorted(
    a: np.ndarray[Any, np.dtype[np.uint64]], b: np.ndarray[Any, np.dtype[np.uint64]]
) -> np.ndarray[Any, np.dtype[np.uint64]]:
    """The sorted union of two sorted arrays without duplicates (as
    np.union1d), by a stable sort of their concatenation: numpy's stable sort
    of 64-bit keys is a timsort, which merges two sorted runs in one pass."""
    if not len(a):
        return b
    if not len(b):
        return a
    merged = np.concatenate((a, b))
    merged.sort(kind="stable")
    new = np.empty(len(merged), dtype=np.bool_)
    new[0] = True
    np.not_equal(merged[1:], merged[:-1], out=new[1:])
    return merged if new.all() else merged[new]


class EventStore:
    def __init__(self, path: str | Path, *, read_only: bool = False) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._con = duckdb.connect(self.path, read_only=read_only)
        # Never draw progress bars into a service's log.
        self._con.execute("SET enable_progress_bar = false")
        if not read_only:
            self._con.execute(SCHEMA)
        self._write = threading.Lock()
        # A DuckDB connection is not thread-safe: writes go through a cursor
        # of their own (under _write); readers get a cursor each, made under
        # this lock, so the root connection is never used by two threads.
        self._cursor_lock = threading.Lock()
        self._w = self._con.cursor()
        self.layout = SortedLayout()
        self._layout_ready = False
        self._next_seq = 1 + int(
            self._con.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()[0]
        )  # type: ignore[index]
        keys = self._con.execute("SELECT event_key FROM ingested").fetchnumpy()["event_key"]
        self.seen = SeenKeys(np.asarray(keys, dtype=np.uint64))
        self.erased: set[str] = {
            r[0] for r in self._con.execute("SELECT customer_id FROM erased_customer").fetchall()
        }
        self.aliases: dict[str, str] = dict(
            self._con.execute("SELECT merged_id, survivor_id FROM customer_alias").fetchall()
        )

    # -- reading -----------------------------------------------------------
    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A connection of its own for one thread's query."""
        with self._cursor_lock:
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
        self._w.close()
        self._con.close()

    # -- the layout ---------------------------------------------------------
    @property
    def layout_ready(self) -> bool:
        """True once the layout holds every event (it is then kept current)."""
        return self._layout_ready

    def ensure_layout(self) -> SortedLayout:
        """The sorted in-memory layout, built on first use; after that every
        write of this store (the file's only writer) keeps it current."""
        if self._layout_ready:
            return self.layout
        with self._write:
            if not self._layout_ready:
                cols, wm = self._columns("TRUE", [])
                self.layout.load(cols, wm)
                self._layout_ready = True
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
            pairs = cur.execute("SELECT DISTINCT kind, source FROM events").fetchall()
            cur.register(
                "dict_origin",
                {
                    "kind": np.array([k for k, _ in pairs], dtype=object),
                    "source": np.array([src for _, src in pairs], dtype=object),
                    "code": np.fromiter(
                        (self.layout.origins.code(origin_label(k, src)) for k, src in pairs),
                        dtype=np.int32,
                        count=len(pairs),
                    ),
                },
            )
            rel = cur.execute(
                "SELECT e.ck, epoch_ms(e.ts) AS t, e.seq, de.code AS ev, dc.code AS ch, "
                "(epoch_us(e.ts) - epoch_ms(e.ts) * 1000)::SMALLINT AS us, dg.code AS og "
                "FROM events e JOIN dict_event de ON e.event = de.label "
                "JOIN dict_channel dc ON e.channel = dc.label "
                "JOIN dict_origin dg ON e.kind = dg.kind AND e.source = dg.source "
                f"WHERE {where}",
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
            np.asarray(rel["us"], dtype=np.int16),
            np.asarray(rel["og"], dtype=np.int32),
        )
        return cols, int(seq.max())

    # -- writing -----------------------------------------------------------
    def ingest(self, rows: list[EventRow]) -> int:
        """Store new events (duplicates by event id dropped, events of erased
        customers dropped); returns how many were new. One transaction."""
        return self.ingest_batch(EventBatch.of(rows)) if rows else 0

    def ingest_batch(self, b: EventBatch) -> int:
        """:meth:`ingest` on columns: keys hashed in one pass, duplicates
        (inside the batch and against every event taken in) dropped with
        vectorised set operations, one INSERT per table, the layout merged
        once. Nothing per row but the hashes."""
        n_in = len(b)
        if not n_in:
            return 0
        with self._write:
            keys = b.event_keys if b.event_keys is not None else event_keys(b.event_id)
            # First occurrence of each key in the batch, in arrival order.
            _, first = np.unique(keys, return_index=True)
            keep = np.zeros(n_in, dtype=np.bool_)
            keep[first] = True
            keep &= ~self.seen.contains(keys)
            customers = b.customer_id
            if self.aliases:
                customers = [self.aliases.get(c, c) for c in customers]
            if self.erased:
                keep &= np.fromiter(
                    (c not in self.erased for c in customers), dtype=np.bool_, count=n_in
                )
            idx = np.flatnonzero(keep)
            n = len(idx)
            if not n:
                return 0
            whole = n == n_in

            def col(values: list[str]) -> np.ndarray[Any, Any]:
                a = np.array(values, dtype=object)
                return a if whole else a[idx]

            cust = col(customers)
            if b.customer_keys is not None and customers is b.customer_id:
                ck = b.customer_keys if whole else b.customer_keys[idx]
            else:
                ck_of = {c: customer_key(c) for c in set(cust.tolist())}
                ck = np.fromiter((ck_of[c] for c in cust), dtype=np.int64, count=n)
            ts_us = np.asarray(b.ts_us, dtype=np.int64)
            if not whole:
                ts_us = ts_us[idx]
            new_keys = keys[idx]
            seq = np.arange(self._next_seq, self._next_seq + n, dtype=np.int64)
            events = col(b.event)
            channels = col(b.channel)
            kinds, sources = col(b.kind), col(b.source)
            batch = {
                "seq": seq,
                "event_id": col(b.event_id),
                "customer_id": cust,
                "ck": ck,
                "ts": ts_us.astype("datetime64[us]"),
                "event": events,
                "kind": kinds,
                "channel": channels,
                "source": sources,
                "properties": col(b.properties),
            }
            # Names go into the layout's dictionaries before the commit:
            # whoever sees the rows (count, SQL) then also finds their
            # event names in known_events(), which a funnel validates
            # against; a name of a rolled-back batch stays, harmless (its
            # funnel counts zero rather than answering "unknown event").
            codes = (
                (
                    _encode(self.layout.events, events),
                    _encode(self.layout.channels, channels),
                    _encode(
                        self.layout.origins,
                        [origin_label(k, src) for k, src in zip(kinds, sources, strict=True)],
                    ),
                )
                if self._layout_ready
                else None
            )
            con = self._w
            con.begin()
            try:
                con.register("batch", batch)
                con.register("batch_keys", {"k": new_keys})
                con.execute("INSERT INTO events SELECT * FROM batch")
                con.execute("INSERT INTO ingested SELECT k FROM batch_keys")
                con.unregister("batch")
                con.unregister("batch_keys")
                con.commit()
            except BaseException:
                con.rollback()
                raise
            self._next_seq += n
            self.seen.add(new_keys)
            if codes is not None:
                ts_ms = ts_us // 1000
                event_codes, channel_codes, origin_codes = codes
                self.layout.merge(
                    Columns(
                        ck,
                        ts_ms,
                        seq,
                        event_codes,
                        channel_codes,
                        (ts_us - ts_ms * 1000).astype(np.int16),
                        origin_codes,
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
        """Erasure: delete every row of the customer (and of ids merged into
        it), and remember the ids so a replay of the stream (a new replica,
        a redelivery) cannot bring their events back."""
        return self.erase_many([customer_id], tombstone=True)

    def erase_many(self, customer_ids: list[str], *, tombstone: bool = False) -> int:
        """Delete the customers' rows (an objection: later events are kept
        out by the consent check, and come in again if it is withdrawn)."""
        wanted = set(customer_ids)
        ids = [*wanted, *(m for m, s in self.aliases.items() if s in wanted)]
        with self._write:
            con = self._w
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
                con.execute(
                    "DELETE FROM customer_segment WHERE customer_id IN (SELECT unnest(?))", [ids]
                )
                if tombstone:
                    con.execute(
                        "INSERT INTO erased_customer SELECT unnest(?)",
                        [[i for i in ids if i not in self.erased]],
                    )
                con.commit()
            except BaseException:
                con.rollback()
                raise
            cks = [customer_key(i) for i in ids]
            for m in ids:
                self.aliases.pop(m, None)
            if tombstone:
                self.erased.update(ids)
            if self._layout_ready:
                self.layout.drop_customers(cks)
            return int(n[0]) if n else 0

    def rekey(self, survivor: str, merged: list[str]) -> int:
        """A merge: the merged customers' history becomes the survivor's."""
        merged = [m for m in merged if m and m != survivor]
        if not merged:
            return 0
        with self._write:
            con = self._w
            con.begin()
            try:
                n = con.execute(
                    "UPDATE events SET customer_id = ?, ck = ? "
                    "WHERE customer_id IN (SELECT unnest(?))",
                    [survivor, customer_key(survivor), merged],
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
                # Memberships follow the person: per segment, the latest
                # change among the survivor and the merged ids.
                con.execute(
                    "INSERT OR REPLACE INTO customer_segment "
                    "SELECT ?, segment_id, ?, arg_max(member, changed_at), max(changed_at) "
                    "FROM customer_segment WHERE customer_id IN (SELECT unnest(?)) "
                    "GROUP BY segment_id",
                    [survivor, customer_key(survivor), [survivor, *merged]],
                )
                con.execute(
                    "DELETE FROM customer_segment WHERE customer_id IN (SELECT unnest(?))",
                    [merged],
                )
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
                self.layout.rekey([customer_key(m) for m in merged], customer_key(survivor))
            return int(n[0]) if n else 0

    # -- segment membership (docs/adr/0275) --------------------------------------
    def apply_segment_changes(self, changes: Sequence[tuple[str, str, bool, datetime]]) -> int:
        """(customer id, segment id, member?, when) of each change: the
        latest change per customer and segment wins, so a redelivered or
        late event cannot undo a newer one; merged ids count as their
        survivor, erased customers are not stored. One transaction; returns
        the changes applied."""
        latest: dict[tuple[str, str], tuple[bool, datetime]] = {}
        for customer_id, segment_id, member, at in changes:
            cid = self.aliases.get(customer_id, customer_id)
            if cid in self.erased:
                continue
            at = _utc_naive(at)
            key = (cid, segment_id)
            if key not in latest or latest[key][1] <= at:
                latest[key] = (member, at)
        if not latest:
            return 0
        cids = [c for c, _ in latest]
        batch = {
            "customer_id": np.array(cids, dtype=object),
            "segment_id": np.array([sg for _, sg in latest], dtype=object),
            "ck": customer_keys(cids),
            "member": np.array([m for m, _ in latest.values()], dtype=np.bool_),
            "changed_at": np.array([a for _, a in latest.values()], dtype="datetime64[us]"),
        }
        with self._write:
            con = self._w
            con.begin()
            try:
                con.register("seg_batch", batch)
                con.execute(
                    "INSERT INTO customer_segment SELECT * FROM seg_batch "
                    "ON CONFLICT (customer_id, segment_id) DO UPDATE SET "
                    "member = excluded.member, changed_at = excluded.changed_at "
                    "WHERE excluded.changed_at >= customer_segment.changed_at"
                )
                con.unregister("seg_batch")
                con.commit()
            except BaseException:
                con.rollback()
                raise
        return len(latest)

    def export_segments(self, customer_id: str) -> list[dict[str, Any]]:
        """The customer's segment memberships as analytics holds them (access requests)."""
        rows = self.sql(
            "SELECT segment_id, member, changed_at FROM customer_segment "
            "WHERE customer_id = ? ORDER BY segment_id",
            [customer_id],
        )
        return [
            {"segment_id": sg, "member": bool(m), "changed_at": at.replace(tzinfo=UTC).isoformat()}
            for sg, m, at in rows
        ]

    def segment_members(self, segment_id: str) -> np.ndarray[Any, np.dtype[np.int64]]:
        """Customer keys of the segment's current members, sorted."""
        cur = self.cursor()
        try:
            got = cur.execute(
                "SELECT ck FROM customer_segment WHERE segment_id = ? AND member ORDER BY ck",
                [segment_id],
            ).fetchnumpy()
        finally:
            cur.close()
        return np.asarray(got["ck"], dtype=np.int64)

    def segment_memberships(self) -> list[tuple[str, np.ndarray[Any, np.dtype[np.int64]]]]:
        """Every segment with current members: (segment id, sorted customer keys)."""
        cur = self.cursor()
        try:
            got = cur.execute(
                "SELECT segment_id, ck FROM customer_segment WHERE member ORDER BY segment_id, ck"
            ).fetchnumpy()
        finally:
            cur.close()
        segments = np.asarray(got["segment_id"], dtype=object)
        cks = np.asarray(got["ck"], dtype=np.int64)
        if not len(segments):
            return []
        starts = np.flatnonzero(np.r_[True, segments[1:] != segments[:-1]])
        ends = np.r_[starts[1:], len(segments)]
        return [(str(segments[a]), cks[a:b]) for a, b in zip(starts, ends, strict=True)]

    def purge_before(self, cutoff: datetime, limit: int) -> int:
        """Retention: delete at most ``limit`` rows older than ``cutoff``."""
        naive = cutoff.astimezone(UTC).replace(tzinfo=None) if cutoff.tzinfo else cutoff
        with self._write:
            row = self._w.execute(
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
