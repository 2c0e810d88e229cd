"""The in-memory layout funnels, paths and a customer's recent journey run
on: every event as columns sorted by customer, time and arrival
(docs/adr/0060, 0310).

It is built once from the store, then kept current without re-sorting:
new events are merged in at their place (binary search per customer block,
one ``np.insert`` per column), a merged customer's rows move under the
survivor's key, erased customers' rows and expired rows are masked out.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

I64 = npt.NDArray[np.int64]
# Rows held back from the sorted columns before a write merges them itself.
PENDING_MAX_ROWS = 200_000
I32 = npt.NDArray[np.int32]
I16 = npt.NDArray[np.int16]
# Separates kind and source in the label of an ``origin`` code.
ORIGIN_SEP = "\x00"


def origin_label(kind: str, source: str) -> str:
    return f"{kind}{ORIGIN_SEP}{source}"


@dataclass
class Dictionary:
    """String <-> dense code, append only."""

    labels: list[str] = field(default_factory=list)
    codes: dict[str, int] = field(default_factory=dict)

    def code(self, label: str) -> int:
        c = self.codes.get(label)
        if c is None:
            c = self.codes[label] = len(self.labels)
            self.labels.append(label)
        return c

    def encode(self, labels: list[str]) -> I32:
        return np.fromiter((self.code(x) for x in labels), dtype=np.int32, count=len(labels))


@dataclass
class Columns:
    customer: I64
    ts_ms: I64
    seq: I64
    event: I32
    channel: I32
    # For the recent journey (docs/adr/0310): the microseconds below ts_ms
    # (the store keeps microseconds; ``ts_ms * 1000 + us`` is the stored
    # time) and the code of the event's (kind, source) pair. None: zeros.
    us: I16 | None = None
    origin: I32 | None = None

    def __post_init__(self) -> None:
        n = len(self.ts_ms)
        if self.us is None:
            self.us = np.zeros(n, dtype=np.int16)
        if self.origin is None:
            self.origin = np.zeros(n, dtype=np.int32)

    @property
    def sub_ms(self) -> I16:
        assert self.us is not None  # set in __post_init__
        return self.us

    @property
    def origins(self) -> I32:
        assert self.origin is not None  # set in __post_init__
        return self.origin

    @classmethod
    def empty(cls) -> Columns:
        z64 = np.zeros(0, dtype=np.int64)
        z32 = np.zeros(0, dtype=np.int32)
        return cls(z64, z64.copy(), z64.copy(), z32, z32.copy())

    def __len__(self) -> int:
        return len(self.ts_ms)

    def take(self, mask: npt.NDArray[np.bool_] | I64) -> Columns:
        return Columns(
            self.customer[mask],
            self.ts_ms[mask],
            self.seq[mask],
            self.event[mask],
            self.channel[mask],
            self.sub_ms[mask],
            self.origins[mask],
        )

    @classmethod
    def concat(cls, parts: list[Columns]) -> Columns:
        if len(parts) == 1:
            return parts[0]
        return cls(
            np.concatenate([p.customer for p in parts]),
            np.concatenate([p.ts_ms for p in parts]),
            np.concatenate([p.seq for p in parts]),
            np.concatenate([p.event for p in parts]),
            np.concatenate([p.channel for p in parts]),
            np.concatenate([p.sub_ms for p in parts]),
            np.concatenate([p.origins for p in parts]),
        )

    def sorted(self) -> Columns:
        order = np.lexsort((self.seq, self.ts_ms, self.customer))
        return self.take(order)


class SortedLayout:
    def __init__(self) -> None:
        self.events = Dictionary()
        self.channels = Dictionary()
        # (kind, source) pairs, joined by ORIGIN_SEP: few distinct values.
        self.origins = Dictionary()
        self._cols = Columns.empty()
        # Rows written but not yet merged: a write appends here (cheap); the
        # next read of ``cols`` merges them all at once, so a stream of small
        # batches costs one re-layout per query, not one per batch.
        self._pending: list[Columns] = []
        self._pending_rows = 0
        self.watermark = 0  # highest store sequence held
        self.lock = threading.RLock()
        # Derived from one version of the columns (every change replaces
        # them, so the object itself is the version): each event code's
        # sorted positions and the time span, built on first use.
        self._derived_of: Columns | None = None
        self._positions: dict[int, I64] = {}
        self._span: tuple[int, int] | None = None
        self._memo: dict[str, npt.NDArray[np.int32]] = {}

    def __len__(self) -> int:
        return len(self.cols)

    @property
    def cols(self) -> Columns:
        with self.lock:
            if self._pending:
                self._flush()
            return self._cols

    @cols.setter
    def cols(self, value: Columns) -> None:
        with self.lock:
            self._cols = value

    def _derived(self) -> None:
        if self._derived_of is not self.cols:
            self._derived_of = self.cols
            self._positions = {}
            self._span = None
            self._memo = {}

    def derived(
        self, name: str, compute: Callable[[Columns], npt.NDArray[np.int32]]
    ) -> tuple[Columns, npt.NDArray[np.int32]]:
        """The columns and a per-event array computed from them (the dense
        customer number, a period index), kept until the columns change."""
        with self.lock:
            self._derived()
            a = self._memo.get(name)
            if a is None:
                a = self._memo[name] = compute(self.cols)
            return self.cols, a

    def snapshot(
        self, codes: list[int], scan: Callable[[I32, list[int]], list[I64]] | None = None
    ) -> tuple[Columns, list[I64]]:
        """The columns and, for each event code, the sorted positions of
        its events in them (one scan per version of the columns, not one per
        query). ``scan(event column, codes)`` finds the positions of codes
        not known yet (e.g. in ranges side by side); default one
        ``flatnonzero`` per code."""
        with self.lock:
            self._derived()
            missing = sorted({c for c in codes if c not in self._positions})
            if missing:
                event = self.cols.event
                found = (
                    scan(event, missing)
                    if scan is not None
                    else [np.flatnonzero(event == c) for c in missing]
                )
                self._positions.update(zip(missing, found, strict=True))
            return self.cols, [self._positions[c] for c in codes]

    def span(self) -> tuple[int, int]:
        """(earliest, latest) event time held, ms; (0, -1) when empty."""
        with self.lock:
            self._derived()
            if self._span is None:
                ts = self.cols.ts_ms
                self._span = (int(ts.min()), int(ts.max())) if len(ts) else (0, -1)
            return self._span

    def load(self, cols: Columns, watermark: int) -> None:
        with self.lock:
            self._pending, self._pending_rows = [], 0
            self._cols = cols.sorted()
            self.watermark = watermark

    def merge(self, new: Columns) -> None:
        """Insert rows (any order) at their sorted place (at the next read)."""
        if len(new) == 0:
            return
        with self.lock:
            self._pending.append(new)
            self._pending_rows += len(new)
            self.watermark = max(self.watermark, int(new.seq.max()))
            if self._pending_rows > PENDING_MAX_ROWS:
                self._flush()

    def _flush(self) -> None:
        pending, self._pending, self._pending_rows = self._pending, [], 0
        new = Columns.concat(pending).sorted()
        cur = self._cols
        if len(cur) == 0:
            self._cols = new
            return
        at = _insert_positions(cur, new)
        self._cols = Columns(
            np.insert(cur.customer, at, new.customer),
            np.insert(cur.ts_ms, at, new.ts_ms),
            np.insert(cur.seq, at, new.seq),
            np.insert(cur.event, at, new.event),
            np.insert(cur.channel, at, new.channel),
            np.insert(cur.sub_ms, at, new.sub_ms),
            np.insert(cur.origins, at, new.origins),
        )

    def customer_rows(self, key: int, *, blocking: bool = True) -> Columns | None:
        """Every row of one customer (by customer key), in no particular
        order: a binary search in the sorted columns plus a scan of the rows
        not merged yet (which are left pending: a read of one customer must
        not pay for re-laying out everything). None when ``blocking`` is
        False and the layout is busy (a merge, a funnel's scan)."""
        if not self.lock.acquire(blocking=blocking):
            return None
        try:
            cur = self._cols
            lo = int(np.searchsorted(cur.customer, key, side="left"))
            hi = int(np.searchsorted(cur.customer, key, side="right"))
            parts = [cur.take(np.arange(lo, hi))] if hi > lo else []
            for p in self._pending:
                found = np.flatnonzero(p.customer == key)
                if len(found):
                    parts.append(p.take(found))
        finally:
            self.lock.release()
        return Columns.concat(parts) if parts else Columns.empty()

    def drop_customers(self, keys: list[int]) -> int:
        with self.lock:
            mask = np.isin(self.cols.customer, np.asarray(keys, dtype=np.int64))
            n = int(mask.sum())
            if n:
                self.cols = self.cols.take(~mask)
            return n

    def rekey(self, old: list[int], new: int) -> int:
        with self.lock:
            mask = np.isin(self.cols.customer, np.asarray(old, dtype=np.int64))
            n = int(mask.sum())
            if n:
                moved = self.cols.take(mask)
                moved.customer = np.full(n, new, dtype=np.int64)
                self.cols = self.cols.take(~mask)
                wm = self.watermark
                self.merge(moved)
                self.watermark = wm
            return n

    def drop_before(self, cutoff_ms: int) -> int:
        with self.lock:
            mask = self.cols.ts_ms < cutoff_ms
            n = int(mask.sum())
            if n:
                self.cols = self.cols.take(~mask)
            return n


def _insert_positions(cur: Columns, new: Columns) -> I64:
    """Where each new row goes so (customer, ts, seq) order holds."""
    lo = np.searchsorted(cur.customer, new.customer, side="left")
    hi = np.searchsorted(cur.customer, new.customer, side="right")
    at = hi.copy()
    # Live events mostly come after everything held of their customer: they
    # go to the end of the customer's block. Only late ones are searched.
    has = hi > lo
    last = np.maximum(hi - 1, 0)
    late = has & (cur.ts_ms[last] > new.ts_ms)
    late |= has & (cur.ts_ms[last] == new.ts_ms) & (cur.seq[last] > new.seq)
    for i in np.flatnonzero(late):
        a, b = int(lo[i]), int(hi[i])
        ts = cur.ts_ms[a:b]
        j = int(np.searchsorted(ts, new.ts_ms[i], side="right"))
        # Same instant: arrival order decides.
        k = j
        while k > 0 and ts[k - 1] == new.ts_ms[i] and cur.seq[a + k - 1] > new.seq[i]:
            k -= 1
        at[i] = a + k
    return at
