"""Answers to journey questions: funnels, paths, stages, retention,
stickiness.

Funnels run on the store's sorted in-memory layout when the question only
involves event names and the channel (the common case, and the fast one); a
question that filters or breaks down on any other property reads exactly the
rows it needs from DuckDB, sorted there, and goes through the same funnel
engine. Paths, stages, retention and stickiness run on the layout too
(numpy); retention also exists as DuckDB SQL, tested equal. A funnel broken
down by ``$segment`` and a retention of one segment's members use the
store's segment membership (docs/adr/0275).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import numpy as np

from analytics.adapters.event_store import EventStore
from analytics.adapters.layout import ORIGIN_SEP, Columns, SortedLayout
from analytics.domain import funnel as engine
from analytics.domain import paths as path_engine
from analytics.domain.batch import customer_key
from analytics.domain.queries import (
    COLUMNS,
    SEGMENT_BREAKDOWN,
    FunnelQuery,
    PathsQuery,
    Period,
    PropertyFilter,
    RetentionQuery,
    StagesQuery,
    TimeRange,
)
from analytics.domain.stages import stage_counts

NONE_LABEL = "(none)"
# Below this many events a query runs in one piece (threads cost more than
# they save).
PARALLEL_MIN_EVENTS = 200_000
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class FunnelAnswer:
    result: engine.FunnelResult
    note: str = ""


@dataclass(frozen=True, slots=True)
class JourneyEvent:
    occurred_at: datetime
    event: str
    kind: str
    channel: str
    source: str


@dataclass(frozen=True, slots=True)
class RecentJourney:
    """One customer's newest events and a summary of all of them."""

    events: list[JourneyEvent]
    total: int
    first_seen: datetime
    last_seen: datetime
    channels: list[tuple[str, int]]  # most events first


MAX_JOURNEY_EVENTS = 200


@dataclass(frozen=True, slots=True)
class CohortRow:
    start: datetime
    customers: int
    retained: list[int]

    @property
    def rates(self) -> list[float]:
        return [r / self.customers if self.customers else 0.0 for r in self.retained]


@dataclass(frozen=True, slots=True)
class RetentionAnswer:
    cohorts: list[CohortRow]
    stickiness: float
    average_dau: float
    mau: int
    extra: dict[str, Any] = field(default_factory=dict)


def property_sql(name: str) -> str:
    """SQL for a property: a column, or a key of the JSON properties (the
    name was validated: no quotes can reach here)."""
    if name in COLUMNS:
        return name
    return f"json_extract_string(properties, '$.\"{name}\"')"


def _filter_sql(f: PropertyFilter, params: list[Any]) -> str:
    expr = property_sql(f.property)
    marks = ", ".join("?" for _ in f.values)
    params.extend(f.values)
    if f.negate:
        return f"coalesce({expr} NOT IN ({marks}), true)"
    return f"coalesce({expr} IN ({marks}), false)"


def _ts(dt: datetime) -> datetime:
    return dt.astimezone(UTC).replace(tzinfo=None)


def _utc(stored: datetime) -> datetime:
    """A timestamp as the store keeps it (naive UTC), made aware."""
    return stored.replace(tzinfo=UTC)


class WouldBlock(Exception):
    """The answer needs a wait (the layout's lock, a database): ask again in
    a thread."""


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _journey_of(rows: Columns, layout: SortedLayout, limit: int) -> RecentJourney | None:
    """A customer's recent journey from their rows of the layout, ordered as
    the store's SQL orders them (stored time, then arrival)."""
    if len(rows) == 0:
        return None
    us = rows.ts_ms * 1000 + rows.sub_ms
    newest = np.lexsort((rows.seq, us))[::-1][:limit]
    events = []
    for i in newest.tolist():
        kind, source = layout.origins.labels[rows.origins[i]].split(ORIGIN_SEP, 1)
        events.append(
            JourneyEvent(
                _EPOCH + timedelta(microseconds=int(us[i])),
                layout.events.labels[rows.event[i]],
                kind,
                layout.channels.labels[rows.channel[i]],
                source,
            )
        )
    codes, counts = np.unique(rows.channel, return_counts=True)
    channels = sorted(
        (
            (layout.channels.labels[c], n)
            for c, n in zip(codes.tolist(), counts.tolist(), strict=True)
        ),
        key=lambda cn: (-cn[1], cn[0]),
    )
    return RecentJourney(
        events=events,
        total=len(rows),
        first_seen=_EPOCH + timedelta(microseconds=int(us.min())),
        last_seen=_EPOCH + timedelta(microseconds=int(us.max())),
        channels=channels,
    )


class JourneyAnalytics:
    """``threads``: how many cores one query may use (0: all of them). The
    per-customer passes of funnels and retention split the events into
    customer ranges and run them side by side: numpy releases the GIL in
    them (docs/adr/0215)."""

    def __init__(self, store: EventStore, *, threads: int = 0) -> None:
        self.store = store
        self.threads = max(1, threads or os.cpu_count() or 1)
        self._pool = (
            ThreadPoolExecutor(self.threads, thread_name_prefix="analytics-query")
            if self.threads > 1
            else None
        )

    def _map(self, fn: Callable[[int, int], T], bounds: Iterable[tuple[int, int]]) -> list[T]:
        if self._pool is None:
            return [fn(lo, hi) for lo, hi in bounds]
        return list(self._pool.map(lambda b: fn(*b), bounds))

    def _bounds(self, customer: Any) -> list[tuple[int, int]]:
        parts = self.threads if len(customer) >= PARALLEL_MIN_EVENTS else 1
        return engine.customer_bounds(customer, parts)

    def _ranges(self, n: int) -> list[tuple[int, int]]:
        """Equal index ranges for element-wise work (no customer alignment)."""
        k = self.threads if n >= PARALLEL_MIN_EVENTS else 1
        return [(n * i // k, n * (i + 1) // k) for i in range(k)]

    def _scan_positions(self, event: Any, codes: list[int]) -> list[Any]:
        """Sorted positions of each code's events, ranges side by side."""

        def scan(lo: int, hi: int) -> list[Any]:
            part = event[lo:hi]
            return [lo + np.flatnonzero(part == c) for c in codes]

        found = self._map(scan, self._ranges(len(event)))
        return [np.concatenate([f[i] for f in found]) for i in range(len(codes))]

    def _elementwise(self, n: int, fn: Callable[[int, int], Any]) -> Any:
        """An int32 array of n values, ``fn(lo, hi)`` computing each range."""
        out = np.empty(n, dtype=np.int32)

        def fill(lo: int, hi: int) -> None:
            out[lo:hi] = fn(lo, hi)

        self._map(fill, self._ranges(n))
        return out

    def _dense_parallel(self, customer: Any) -> Any:
        """Each event's customer as 0, 1, 2 … (as :func:`_dense`), in ranges:
        local running counts first, then each range shifted by the counts
        before it."""
        n = len(customer)
        if n == 0:
            return np.zeros(0, dtype=np.int32)
        out = np.empty(n, dtype=np.int32)

        def local(lo: int, hi: int) -> int:
            part = out[lo:hi]
            part[0] = 1 if lo and customer[lo] != customer[lo - 1] else 0
            np.not_equal(customer[lo + 1 : hi], customer[lo : hi - 1], out=part[1:])
            np.cumsum(part, out=part)
            return int(part[-1])

        ranges = self._ranges(n)
        lasts = self._map(local, ranges)
        shifts = np.cumsum([0, *lasts[:-1]])

        def shift(lo: int, hi: int) -> None:
            i = ranges.index((lo, hi))
            if shifts[i]:
                out[lo:hi] += np.int32(shifts[i])

        self._map(shift, ranges)
        return out

    def _day(self, ts_ms: Any) -> Any:
        return self._elementwise(len(ts_ms), lambda lo, hi: ts_ms[lo:hi] // DAY_MS)

    def _period(self, ts_ms: Any, day: Any, period: Period) -> Any:
        if period is Period.DAY:
            return day
        if period is Period.WEEK:
            return self._elementwise(
                len(day), lambda lo, hi: (day[lo:hi] - _MONDAY_OFFSET_DAYS) // 7
            )
        return self._elementwise(len(ts_ms), lambda lo, hi: _period_index(ts_ms[lo:hi], period))

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)

    # -- funnels -------------------------------------------------------------
    def recent(
        self, customer_id: str, limit: int = 20, *, wait: bool = True
    ) -> RecentJourney | None:
        """The customer's ``limit`` newest events (properties left out: they
        may carry personal data), or None when the store has none.

        From the sorted layout once it is built: a binary search for the
        customer's rows, so the cost does not grow with the store (two
        DuckDB scans cost 2 ms of CPU at 6,000 events, 12 ms at a million;
        docs/adr/0310). ``wait=False`` raises :class:`WouldBlock` instead
        of waiting for the layout's lock or reading DuckDB, so a caller on
        an event loop can answer at once and hand only that case to a
        thread."""
        limit = max(1, min(limit, MAX_JOURNEY_EVENTS))
        store = self.store
        if store.layout_ready:
            layout = store.layout
            rows = layout.customer_rows(customer_key(customer_id), blocking=wait)
            if rows is None:
                raise WouldBlock
            return _journey_of(rows, layout, limit)
        if not wait:
            raise WouldBlock
        return self._recent_from_sql(customer_id, limit)

    def _recent_from_sql(self, customer_id: str, limit: int) -> RecentJourney | None:
        channels = self.store.sql(
            "SELECT channel, count(*) AS n, min(ts), max(ts) FROM events "
            "WHERE customer_id = ? GROUP BY channel ORDER BY n DESC, channel",
            [customer_id],
        )
        if not channels:
            return None
        rows = self.store.sql(
            "SELECT ts, event, kind, channel, source FROM events WHERE customer_id = ? "
            "ORDER BY ts DESC, seq DESC LIMIT ?",
            [customer_id, limit],
        )
        return RecentJourney(
            events=[JourneyEvent(_utc(ts), e, k, c, src) for ts, e, k, c, src in rows],
            total=sum(int(n) for _, n, _, _ in channels),
            first_seen=_utc(min(first for _, _, first, _ in channels)),
            last_seen=_utc(max(last for _, _, _, last in channels)),
            channels=[(c, int(n)) for c, n, _, _ in channels],
        )

    def funnel(self, q: FunnelQuery) -> FunnelAnswer:
        q.validate(self.store.known_events())
        by_segment = q.breakdown == SEGMENT_BREAKDOWN
        if by_segment:
            # Memberships are per customer, not per event: the funnel runs
            # without a breakdown and its customers are grouped afterwards.
            q = replace(q, breakdown="")
        in_layout = all(
            f.property == "channel" for s in q.steps for f in s.filters
        ) and q.breakdown in ("", "channel")
        loader = self._funnel_from_layout if in_layout else self._funnel_from_sql
        customer, ts, masks, codes, labels, (lo, hi) = loader(q)
        positions = [engine.positions_of(m) for m in masks]

        def levels_of(start: int, end: int) -> engine.CustomerLevels:
            return engine.customer_levels(
                customer,
                ts,
                [engine.within(p, start, end) for p in positions],
                range_start_ms=q.range.start_ms,
                range_end_ms=q.range.end_ms,
                window_ms=q.window_s * 1000,
                strict=q.strict,
                # Every event held lies in the range: no per-start time test.
                in_range=q.range.start_ms <= lo and hi < q.range.end_ms,
            )

        # Customer ranges side by side; their levels concatenate in order.
        levels = engine.concat_levels(self._map(levels_of, self._bounds(customer)), len(q.steps))
        names = [s.event for s in q.steps]
        if by_segment:
            result = engine.funnel_by_groups(
                names,
                levels,
                self.store.segment_memberships(),
                rest_label=NONE_LABEL,
                breakdown_limit=q.breakdown_limit,
            )
        else:
            result = engine.funnel(
                names,
                levels,
                breakdown_codes=codes,
                breakdown_labels=labels,
                breakdown_limit=q.breakdown_limit,
            )
        note = ""
        if result.breakdown_capped:
            what = SEGMENT_BREAKDOWN if by_segment else q.breakdown
            note = (
                f"breakdown capped: {what!r} has {result.breakdown_values_total} values; "
                f"the {q.breakdown_limit} with most customers are shown"
            )
        return FunnelAnswer(result, note)

    def _funnel_from_layout(
        self, q: FunnelQuery
    ) -> tuple[Any, Any, list[Any], Any, Any, tuple[int, int]]:
        layout = self.store.ensure_layout()
        with layout.lock:
            events = dict(layout.events.codes)
            channels = dict(layout.channels.codes)
            channel_labels = list(layout.channels.labels)
            # Each step starts from its event's cached positions; a channel
            # filter narrows them (no scan of every event per step).
            cols, positions = layout.snapshot(
                [events[s.event] for s in q.steps], self._scan_positions
            )
            span = layout.span()
        steps = []
        for s, p in zip(q.steps, positions, strict=True):
            for f in s.filters:
                wanted = np.asarray([channels.get(v, -1) for v in f.values], dtype=np.int32)
                hit = np.isin(cols.channel[p], wanted)
                p = p[~hit if f.negate else hit]
            steps.append(p)
        if q.breakdown == "channel":
            return cols.customer, cols.ts_ms, steps, cols.channel, channel_labels, span
        return cols.customer, cols.ts_ms, steps, None, None, span

    def _funnel_from_sql(
        self, q: FunnelQuery
    ) -> tuple[Any, Any, list[Any], Any, Any, tuple[int, int]]:
        params: list[Any] = []
        step_cols = []
        for i, s in enumerate(q.steps):
            conds = ["event = ?"]
            params.append(s.event)
            conds.extend(_filter_sql(f, params) for f in s.filters)
            step_cols.append(f"({' AND '.join(conds)}) AS s{i}")
        breakdown = (
            f", coalesce({property_sql(q.breakdown)}, '{NONE_LABEL}') AS b" if q.breakdown else ""
        )
        where = "ts >= ? AND ts < ?"
        params += [_ts(q.range.start), _ts(q.range.end + timedelta(seconds=q.window_s))]
        if not q.strict:
            # Loose order needs only the steps' events; strict needs every
            # event (another event between two steps breaks the chain).
            names = sorted({s.event for s in q.steps})
            where += f" AND event IN ({', '.join('?' for _ in names)})"
            params += names
        sql = (
            f"SELECT ck, epoch_ms(ts) AS t, {', '.join(step_cols)}{breakdown} "
            f"FROM events WHERE {where} ORDER BY ck, ts, seq"
        )
        cur = self.store.cursor()
        try:
            data = cur.execute(sql, params).fetchnumpy()
        finally:
            cur.close()
        customer = np.asarray(data["ck"], dtype=np.int64)
        ts = np.asarray(data["t"], dtype=np.int64)
        masks = [np.asarray(data[f"s{i}"], dtype=np.bool_) for i in range(len(q.steps))]
        if not q.breakdown:
            return customer, ts, masks, None, None, (0, -1)
        labels, codes = np.unique(
            np.asarray(data["b"], dtype=object).astype(str), return_inverse=True
        )
        return customer, ts, masks, codes.astype(np.int64), [str(x) for x in labels], (0, -1)

    # -- paths ---------------------------------------------------------------
    def paths(self, q: PathsQuery) -> path_engine.PathsResult:
        q.validate(self.store.known_events())
        layout = self.store.ensure_layout()
        with layout.lock:
            cols = layout.cols
            codes = dict(layout.events.codes)
            labels = list(layout.events.labels)
        keep = (cols.ts_ms >= q.range.start_ms) & (cols.ts_ms < q.range.end_ms)
        noise = [codes[e] for e in q.exclude if e in codes]
        if noise:
            keep &= ~np.isin(cols.event, np.asarray(noise, dtype=np.int32))
        return path_engine.paths(
            cols.customer[keep],
            cols.event[keep].astype(np.int64),
            labels,
            codes[q.anchor],
            depth=q.depth,
            top_n=q.top_n,
            before=q.before,
        )

    # -- retention -----------------------------------------------------------
    def retention(self, q: RetentionQuery) -> RetentionAnswer:
        """Cohorts and retention from the sorted layout (one pass of numpy
        over the columns); :meth:`retention_sql` is the same answer in DuckDB
        SQL (tested equal)."""
        q.validate(self.store.known_events())
        layout = self.store.ensure_layout()
        with layout.lock:
            codes = dict(layout.events.codes)
            # Per version of the columns: each event's dense customer number,
            # day and period (built once, not per query).
            cols, dense = layout.derived("dense", lambda c: self._dense_parallel(c.customer))
            _, day = layout.derived("day", lambda c: self._day(c.ts_ms))
            _, pidx = layout.derived(
                f"period:{q.period.value}", lambda c: self._period(c.ts_ms, day, q.period)
            )
            wanted = [
                c for c in {codes.get(q.cohort_event), codes.get(q.return_event)} if c is not None
            ]
            positions = dict(
                zip(wanted, layout.snapshot(wanted, self._scan_positions)[1], strict=True)
            )
        end = _ts(q.range.end)
        triangle = retention_triangle(
            cols.customer,
            cols.ts_ms,
            cols.event,
            cohort_code=codes[q.cohort_event] if q.cohort_event else None,
            return_code=codes[q.return_event] if q.return_event else None,
            start_ms=q.range.start_ms,
            end_ms=q.range.end_ms,
            period=q.period,
            periods=q.periods,
            dense=dense,
            period_index=pidx,
            positions=positions,
            bounds=self._bounds(cols.customer),
            run=self._map,
            members=self.store.segment_members(q.cohort_segment) if q.cohort_segment else None,
        )
        cohorts = []
        for c, n, retained in triangle:
            width = min(q.periods, _periods_between(c.replace(tzinfo=None), end, q.period))
            cohorts.append(CohortRow(c, n, (retained + [0] * width)[:width]))
        dau, mau = _stickiness_layout(cols.customer, cols.ts_ms, q.range, dense=dense, day=day)
        return RetentionAnswer(cohorts, dau / mau if mau else 0.0, dau, mau)

    def stages(self, q: StagesQuery) -> list[tuple[datetime, list[tuple[str, int, float]]]]:
        """Per period (oldest first): (stage, customers at or beyond it,
        conversion from the previous stage)."""
        q.validate(self.store.known_events())
        layout = self.store.ensure_layout()
        with layout.lock:
            cols = layout.cols
            codes = dict(layout.events.codes)
        stage_of = np.full(len(codes) + 1, -1, dtype=np.int64)
        for i, (_, events) in enumerate(q.stages):
            for e in events:
                if e in codes:
                    stage_of[codes[e]] = i
        sel = (cols.ts_ms >= q.range.start_ms) & (cols.ts_ms < q.range.end_ms)
        counts = stage_counts(
            cols.customer[sel],
            _period_index(cols.ts_ms[sel], q.period),
            stage_of[cols.event[sel]],
            len(q.stages),
        )
        out = []
        for p in sorted(counts):
            row = counts[p]
            out.append(
                (
                    _period_start(p, q.period),
                    [
                        (
                            name,
                            row[i],
                            1.0 if i == 0 else (row[i] / row[i - 1] if row[i - 1] else 0.0),
                        )
                        for i, (name, _) in enumerate(q.stages)
                    ],
                )
            )
        return out

    def retention_sql(self, q: RetentionQuery) -> RetentionAnswer:
        q.validate(self.store.known_events())
        unit = q.period.value
        start, end = _ts(q.range.start), _ts(q.range.end)
        cohort_cond = "event = ?" if q.cohort_event else "TRUE"
        return_cond = "event = ?" if q.return_event else "TRUE"
        params: list[Any] = []
        if q.cohort_event:
            params.append(q.cohort_event)
        if q.cohort_segment:
            cohort_cond += (
                " AND customer_id IN (SELECT customer_id FROM customer_segment"
                " WHERE segment_id = ? AND member)"
            )
            params.append(q.cohort_segment)
        params += [end, start]
        if q.return_event:
            params.append(q.return_event)
        params += [start, end, q.periods]
        sql = f"""
            WITH cohort AS (
                SELECT customer_id, date_trunc('{unit}', min(ts)) AS c
                FROM events WHERE {cohort_cond} AND ts < ?
                GROUP BY customer_id HAVING min(ts) >= ?
            ),
            active AS (
                SELECT DISTINCT customer_id, date_trunc('{unit}', ts) AS p
                FROM events WHERE {return_cond} AND ts >= ? AND ts < ?
            ),
            sizes AS (SELECT c, count(*) AS n FROM cohort GROUP BY c),
            kept AS (
                SELECT cohort.c, datediff('{unit}', cohort.c, active.p) AS k,
                       count(*) AS r
                FROM cohort JOIN active USING (customer_id)
                WHERE active.p >= cohort.c
                GROUP BY 1, 2
            )
            SELECT sizes.c, sizes.n, kept.k, kept.r FROM sizes
            LEFT JOIN kept ON kept.c = sizes.c AND kept.k < ?
            ORDER BY 1, 3
        """
        rows = self.store.sql(sql, params)
        by_cohort: dict[datetime, CohortRow] = {}
        for c, n, k, r in rows:
            row = by_cohort.get(c)
            if row is None:
                row = by_cohort[c] = CohortRow(c.replace(tzinfo=UTC), int(n), [])
            if k is not None:
                while len(row.retained) <= k:
                    row.retained.append(0)
                row.retained[k] = int(r)
        cohorts = []
        for c, row in sorted(by_cohort.items()):
            # The triangle: only periods that have begun before the range end.
            width = min(q.periods, _periods_between(c, end, q.period))
            retained = (row.retained + [0] * width)[:width]
            cohorts.append(CohortRow(row.start, row.customers, retained))
        dau, mau = self._stickiness(q.range)
        return RetentionAnswer(cohorts, dau / mau if mau else 0.0, dau, mau)

    def _stickiness(self, r: TimeRange) -> tuple[float, int]:
        """Mean daily active customers over the range's last 30 days, and the
        customers active in those 30 days."""
        end = _ts(r.end)
        start = max(_ts(r.start), end - timedelta(days=30))
        days = max(1, int(np.ceil((end - start).total_seconds() / 86_400)))
        row = self.store.sql(
            """
            SELECT (SELECT count(*) FROM (SELECT DISTINCT customer_id, date_trunc('day', ts)
                    FROM events WHERE ts >= ? AND ts < ?)) AS customer_days,
                   (SELECT count(DISTINCT customer_id) FROM events WHERE ts >= ? AND ts < ?)
            """,
            [start, end, start, end],
        )[0]
        return float(row[0]) / days, int(row[1])


DAY_MS = 86_400_000
# 1970-01-01 was a Thursday: Monday-based weeks start 4 days later.
_MONDAY_OFFSET_DAYS = 4


def _period_index(ts_ms: Any, period: Period) -> Any:
    days = ts_ms // DAY_MS
    if period is Period.DAY:
        return days
    if period is Period.WEEK:
        return (days - _MONDAY_OFFSET_DAYS) // 7
    return ts_ms.astype("datetime64[ms]").astype("datetime64[M]").astype(np.int64)


def _period_start(index: int, period: Period) -> datetime:
    if period is Period.DAY:
        return datetime.fromtimestamp(index * 86_400, UTC)
    if period is Period.WEEK:
        return datetime.fromtimestamp((index * 7 + _MONDAY_OFFSET_DAYS) * 86_400, UTC)
    year, month = divmod(index, 12)
    return datetime(1970 + year, month + 1, 1, tzinfo=UTC)


def _dense(customer: Any) -> Any:
    """Each event's customer as 0, 1, 2 … (columns sorted by customer)."""
    if len(customer) == 0:
        return np.zeros(0, dtype=np.int32)
    change = np.empty(len(customer), dtype=np.int32)
    change[0] = 0
    np.not_equal(customer[1:], customer[:-1], out=change[1:])
    return np.cumsum(change, dtype=np.int32)


def retention_triangle(
    customer: Any,
    ts_ms: Any,
    event: Any,
    *,
    cohort_code: int | None,
    return_code: int | None,
    start_ms: int,
    end_ms: int,
    period: Period,
    periods: int,
    dense: Any = None,
    period_index: Any = None,
    positions: dict[int, Any] | None = None,
    bounds: list[tuple[int, int]] | None = None,
    run: Callable[[Callable[[int, int], Any], list[tuple[int, int]]], list[Any]] | None = None,
    members: Any = None,
) -> list[tuple[datetime, int, list[int]]]:
    """(cohort start, customers, retained per period) from columns sorted by
    customer and time: a customer's cohort is the period of their first
    cohort event (before the range end, at or after its start); retained in
    period k: returned (return event inside the range) k periods later.

    ``dense``, ``period_index`` (per event) and ``positions`` (sorted
    positions per event code) may come precomputed from the layout; no
    sort is needed anywhere: within a customer, time only grows.
    ``bounds``: customer ranges of the events (never cutting a customer),
    each counted on its own by ``run`` (e.g. side by side in threads) and
    the counts added up. ``members``: when given, only these customers
    (sorted customer keys) form cohorts."""
    n = len(ts_ms)
    if n == 0:
        return []
    if dense is None:
        dense = _dense(customer)
    if period_index is None:
        period_index = _period_index(ts_ms, period).astype(np.int32)
    positions = positions or {}
    bounds = bounds or [(0, n)]

    def map_ranges(fn: Callable[[int, int], T]) -> list[T]:
        if run is None:
            return [fn(lo, hi) for lo, hi in bounds]
        return run(fn, bounds)

    def where(code: int, lo: int, hi: int) -> Any:
        p = positions.get(code)
        if p is None:
            return lo + np.flatnonzero(event[lo:hi] == code)
        return p[np.searchsorted(p, lo) : np.searchsorted(p, hi)]

    def cohorts_in(lo: int, hi: int) -> tuple[Any, Any]:
        # Each customer's first cohort event: where the customer changes
        # among the cohort events (all events, or the cohort event's
        # positions); kept when it lies in the range.
        if cohort_code is None:
            d = dense[lo:hi]
            idx = lo + np.flatnonzero(np.r_[True, d[1:] != d[:-1]])
        else:
            idx = where(cohort_code, lo, hi)
            if len(idx):
                dc = dense[idx]
                idx = idx[np.r_[True, dc[1:] != dc[:-1]]]
        first_ts = ts_ms[idx]
        idx = idx[(first_ts >= start_ms) & (first_ts < end_ms)]
        if members is not None:
            idx = idx[np.isin(customer[idx], members)]
        return idx, period_index[idx]

    found = map_ranges(cohorts_in)
    if not any(len(idx) for idx, _ in found):
        return []
    cohort_p = np.concatenate([p for _, p in found])
    pmin = int(cohort_p.min())
    width = int(cohort_p.max()) - pmin + 1
    cohort_of = np.full(int(dense[-1]) + 1, -1, dtype=np.int32)
    for idx, p in found:
        cohort_of[dense[idx]] = p - pmin

    def returns_in(lo: int, hi: int) -> Any:
        # k = period of the event - cohort period, per event of a cohort
        # member inside the range.
        if return_code is None:
            r_dense, r_ts, r_p = dense[lo:hi], ts_ms[lo:hi], period_index[lo:hi]
        else:
            r_idx = where(return_code, lo, hi)
            r_dense, r_ts, r_p = dense[r_idx], ts_ms[r_idx], period_index[r_idx]
        c = cohort_of[r_dense]
        k = r_p - pmin - c
        ok = (c >= 0) & (k >= 0) & (k < periods) & (r_ts >= start_ms) & (r_ts < end_ms)
        sel = np.flatnonzero(ok)
        if len(sel) == 0:
            return np.zeros(width * periods, dtype=np.int64)
        rd, rk = r_dense[sel], k[sel]
        # Periods grow with time within a customer: distinct pairs are changes.
        distinct = np.r_[True, (rd[1:] != rd[:-1]) | (rk[1:] != rk[:-1])]
        pair_c = c[sel][distinct].astype(np.int64)
        return np.bincount(pair_c * periods + rk[distinct], minlength=width * periods)

    kept = np.sum(map_ranges(returns_in), axis=0).reshape(width, periods)
    sizes = np.bincount(cohort_p - pmin, minlength=width)
    out = []
    for ci in np.flatnonzero(sizes):
        row = kept[ci]
        last = int(np.flatnonzero(row).max()) + 1 if row.any() else 0
        out.append(
            (_period_start(pmin + int(ci), period), int(sizes[ci]), [int(x) for x in row[:last]])
        )
    return out


def _stickiness_layout(
    customer: Any, ts_ms: Any, r: TimeRange, *, dense: Any = None, day: Any = None
) -> tuple[float, int]:
    end = r.end_ms
    start = max(r.start_ms, end - 30 * DAY_MS)
    days = max(1, -(-(end - start) // DAY_MS))
    sel = np.flatnonzero((ts_ms >= start) & (ts_ms < end))
    if not len(sel):
        return 0.0, 0
    if dense is None:
        dense = _dense(customer)
    if day is None:
        day = ts_ms // DAY_MS
    c = dense[sel]
    d = day[sel]
    new_customer = np.r_[True, c[1:] != c[:-1]]
    customer_days = int((new_customer | np.r_[True, d[1:] != d[:-1]]).sum())
    return customer_days / days, int(new_customer.sum())


def _periods_between(c: datetime, end: datetime, period: Period) -> int:
    """Periods from cohort start ``c`` that have begun before ``end``."""
    if period is Period.MONTH:
        months = (end.year - c.year) * 12 + end.month - c.month
        return months + 1
    step = timedelta(days=1 if period is Period.DAY else 7)
    return int((end - c - timedelta(microseconds=1)) // step) + 1
