"""Journey answers from the ClickHouse store (docs/adr/0270): the public
methods of :class:`~analytics.service_layer.journeys.JourneyAnalytics`
(funnel, paths, retention, stages, recent) with the same answers.

Where the answer is an aggregate SQL can say exactly (retention and
stickiness, stages, a customer's recent journey) ClickHouse computes it.
Funnels and paths need the order of a customer's events: ClickHouse reads
exactly the rows a question needs (its range, its steps' events for a loose
funnel, its filters and breakdown evaluated in SQL), sorted by customer,
time and arrival, and the service's own engines (``domain/funnel.py``,
``domain/paths.py``) run on them, as the DuckDB store's SQL path does.
ClickHouse's ``windowFunnel`` is not used for answers: its ``strict_order``
means something else than the service's strict order, and it gives no
times to convert.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from analytics.adapters.clickhouse_store import (
    ClickHouseEventStore,
    from_micros,
    micros,
    property_expr,
)
from analytics.domain import funnel as engine
from analytics.domain import paths as path_engine
from analytics.domain.batch import customer_key
from analytics.domain.queries import (
    FunnelQuery,
    PathsQuery,
    Period,
    PropertyFilter,
    RetentionQuery,
    StagesQuery,
    TimeRange,
)
from analytics.service_layer.journeys import (
    DAY_MS,
    MAX_JOURNEY_EVENTS,
    NONE_LABEL,
    CohortRow,
    FunnelAnswer,
    JourneyEvent,
    RecentJourney,
    RetentionAnswer,
    WouldBlock,
    _period_start,
    _periods_between,
)
from cxloop_libs.errors import InvalidArgument

# The segment a customer is in comes from personalization's events into a
# table the DuckDB store keeps; the ClickHouse store has no such table yet.
SEGMENT = "$segment"


def period_sql(period: Period, ts: str = "ts") -> str:
    """A timestamp's period as an integer, the index ``journeys`` uses:
    days since the epoch, Monday-based weeks, months since 1970-01."""
    day = f"intDiv(toUnixTimestamp64Milli({ts}), {DAY_MS})"
    if period is Period.DAY:
        return day
    if period is Period.WEEK:
        return f"intDiv({day} - 4, 7)"
    return f"((toYear({ts}) - 1970) * 12 + toMonth({ts}) - 1)"


def _range(r: TimeRange, params: dict[str, Any], end: datetime | None = None) -> str:
    params["r_start"] = micros(r.start)
    params["r_end"] = micros(end or r.end)
    return (
        "ts >= fromUnixTimestamp64Micro({r_start:Int64}, 'UTC') "
        "AND ts < fromUnixTimestamp64Micro({r_end:Int64}, 'UTC')"
    )


def _filter_sql(f: PropertyFilter, params: dict[str, Any], slot: str) -> str:
    expr = property_expr(f.property, params, f"{slot}_p")
    params[f"{slot}_v"] = list(f.values)
    if f.negate:
        return f"coalesce({expr} NOT IN {{{slot}_v:Array(String)}}, true)"
    return f"coalesce({expr} IN {{{slot}_v:Array(String)}}, false)"


class KnownEvents(Collection[str]):
    """The event names the store holds, read from ClickHouse when a name is
    not among those read before (a scan of the event column per question
    would cost more than many answers). Like the DuckDB layout's dictionary,
    a name stays known after its events were deleted."""

    def __init__(self, store: ClickHouseEventStore) -> None:
        self.store = store
        self.names: set[str] = set()

    def __contains__(self, name: object) -> bool:
        if name in self.names:
            return True
        self.names = self.names | self.store.known_events()
        return name in self.names

    def __iter__(self) -> Iterator[str]:
        return iter(self.names)

    def __len__(self) -> int:
        return len(self.names)


def _columns(cols: list[Any], n: int) -> list[Any]:
    """``n`` columns, empty ones when the answer had no rows."""
    return cols if len(cols) == n else [[] for _ in range(n)]


class ClickHouseJourneys:
    """``JourneyAnalytics``' answers on :class:`ClickHouseEventStore`."""

    def __init__(self, store: ClickHouseEventStore) -> None:
        self.store = store
        self.db = store.db
        self.known = KnownEvents(store)

    def close(self) -> None:
        """Nothing held (the store's client is closed with the store)."""

    def _known(self) -> KnownEvents:
        return self.known

    # -- recent journey -------------------------------------------------------
    def recent(
        self, customer_id: str, limit: int = 20, *, wait: bool = True
    ) -> RecentJourney | None:
        if not wait:  # always a round trip to ClickHouse
            raise WouldBlock
        limit = max(1, min(limit, MAX_JOURNEY_EVENTS))
        params = {"ck": customer_key(customer_id), "c": customer_id, "limit": limit}
        who = "ck = {ck:Int64} AND customer_id = {c:String}"
        channels = self.store.sql.rows(
            "SELECT channel, count() AS n, toUnixTimestamp64Micro(min(ts)), "
            f"toUnixTimestamp64Micro(max(ts)) FROM {self.db}.events FINAL WHERE {who} "
            "GROUP BY channel ORDER BY n DESC, channel",
            params,
        )
        if not channels:
            return None
        rows = self.store.sql.rows(
            "SELECT toUnixTimestamp64Micro(ts), event, kind, channel, source "
            f"FROM {self.db}.events FINAL WHERE {who} ORDER BY ts DESC, seq DESC "
            "LIMIT {limit:UInt32}",
            params,
        )
        return RecentJourney(
            events=[
                JourneyEvent(from_micros(us), str(e), str(k), str(c), str(src))
                for us, e, k, c, src in rows
            ],
            total=sum(int(n) for _, n, _, _ in channels),
            first_seen=from_micros(min(int(f) for _, _, f, _ in channels)),
            last_seen=from_micros(max(int(la) for _, _, _, la in channels)),
            channels=[(str(c), int(n)) for c, n, _, _ in channels],
        )

    # -- funnels ----------------------------------------------------------------
    def funnel(self, q: FunnelQuery) -> FunnelAnswer:
        if q.breakdown == SEGMENT:
            raise InvalidArgument(
                "breakdown", f"{SEGMENT!r} is not available on the ClickHouse store"
            )
        q.validate(self._known())
        customer, ts, masks, codes, labels = self._funnel_rows(q)
        positions = [engine.positions_of(m) for m in masks]
        levels = engine.customer_levels(
            customer,
            ts,
            positions,
            range_start_ms=q.range.start_ms,
            range_end_ms=q.range.end_ms,
            window_ms=q.window_s * 1000,
            strict=q.strict,
            in_range=False,
        )
        result = engine.funnel(
            [s.event for s in q.steps],
            levels,
            breakdown_codes=codes,
            breakdown_labels=labels,
            breakdown_limit=q.breakdown_limit,
        )
        note = ""
        if result.breakdown_capped:
            note = (
                f"breakdown capped: {q.breakdown!r} has {result.breakdown_values_total} values; "
                f"the {q.breakdown_limit} with most customers are shown"
            )
        return FunnelAnswer(result, note)

    def _funnel_rows(self, q: FunnelQuery) -> tuple[Any, Any, list[Any], Any, Any]:
        """The rows a funnel needs, sorted by customer, time and arrival:
        each step's condition (event and filters) and the breakdown value
        evaluated in ClickHouse."""
        params: dict[str, Any] = {}
        step_cols = []
        for i, s in enumerate(q.steps):
            params[f"e{i}"] = s.event
            conds = [f"event = {{e{i}:String}}"]
            conds += [_filter_sql(f, params, f"f{i}_{j}") for j, f in enumerate(s.filters)]
            step_cols.append(f"({' AND '.join(conds)}) AS s{i}")
        breakdown = ""
        if q.breakdown:
            expr = property_expr(q.breakdown, params, "b_p")
            params["none"] = NONE_LABEL
            breakdown = f", coalesce({expr}, {{none:String}}) AS b"
        where = _range(q.range, params, q.range.end + timedelta(seconds=q.window_s))
        if not q.strict:
            # Loose order needs only the steps' events; strict needs every
            # event (another event between two steps breaks the chain).
            params["names"] = sorted({s.event for s in q.steps})
            where += " AND event IN {names:Array(String)}"
        k = len(q.steps)
        cols = _columns(
            self.store.sql.columns(
                f"SELECT ck, toUnixTimestamp64Milli(ts) AS t, {', '.join(step_cols)}{breakdown} "
                f"FROM {self.db}.events FINAL WHERE {where} ORDER BY ck, ts, seq",
                params,
            ),
            2 + k + (1 if q.breakdown else 0),
        )
        customer = np.asarray(cols[0], dtype=np.int64)
        ts = np.asarray(cols[1], dtype=np.int64)
        masks = [np.asarray(cols[2 + i], dtype=np.bool_) for i in range(k)]
        if not q.breakdown:
            return customer, ts, masks, None, None
        values = np.asarray(cols[2 + k], dtype=object)
        if not len(values):
            return customer, ts, masks, np.zeros(0, dtype=np.int64), []
        labels, codes = np.unique(values.astype(str), return_inverse=True)
        return customer, ts, masks, codes.astype(np.int64), [str(x) for x in labels]

    # -- paths ------------------------------------------------------------------
    def paths(self, q: PathsQuery) -> path_engine.PathsResult:
        q.validate(self._known())
        params: dict[str, Any] = {}
        where = _range(q.range, params)
        if q.exclude:
            params["noise"] = list(q.exclude)
            where += " AND event NOT IN {noise:Array(String)}"
        cols = _columns(
            self.store.sql.columns(
                f"SELECT ck, event FROM {self.db}.events FINAL WHERE {where} ORDER BY ck, ts, seq",
                params,
            ),
            2,
        )
        customer = np.asarray(cols[0], dtype=np.int64)
        names = np.asarray(cols[1], dtype=object).astype(str)
        if not len(names):
            return path_engine.PathsResult([], [], 0)
        labels, codes = np.unique(names, return_inverse=True)
        label_list = [str(x) for x in labels]
        anchor = label_list.index(q.anchor) if q.anchor in label_list else -1
        return path_engine.paths(
            customer,
            codes.astype(np.int64),
            label_list,
            anchor,
            depth=q.depth,
            top_n=q.top_n,
            before=q.before,
        )

    # -- retention ----------------------------------------------------------------
    def retention(self, q: RetentionQuery) -> RetentionAnswer:
        """Cohorts by the period of each customer's first cohort event (in
        the range), retained k periods later by a return event in the range;
        all in ClickHouse SQL."""
        if getattr(q, "cohort_segment", ""):
            raise InvalidArgument("cohort_segment", "not available on the ClickHouse store")
        q.validate(self._known())
        params: dict[str, Any] = {"periods": q.periods}
        params["start"], params["end"] = micros(q.range.start), micros(q.range.end)
        start = "fromUnixTimestamp64Micro({start:Int64}, 'UTC')"
        end = "fromUnixTimestamp64Micro({end:Int64}, 'UTC')"
        cohort_cond = "TRUE"
        if q.cohort_event:
            params["ce"] = q.cohort_event
            cohort_cond = "event = {ce:String}"
        return_cond = "TRUE"
        if q.return_event:
            params["re"] = q.return_event
            return_cond = "event = {re:String}"
        p = period_sql(q.period)
        # One pass grouped by customer (no join): the first cohort event
        # and the distinct periods with a return event in the range; each
        # customer adds one row at k = -1 (the cohort's size) and one per
        # period k after the cohort's.
        rows = self.store.sql.rows(
            f"""
            SELECT c, k, count() FROM (
                SELECT {period_sql(q.period, "first")} AS c,
                       arrayJoin(arrayConcat([toInt64(-1)], arrayFilter(
                           x -> x >= 0 AND x < {{periods:Int64}},
                           arrayMap(x -> toInt64(x) - toInt64(c), ps)))) AS k
                FROM (
                    SELECT customer_id, minIf(ts, {cohort_cond}) AS first,
                           countIf({cohort_cond}) AS n,
                           groupUniqArrayIf({p}, {return_cond} AND ts >= {start}) AS ps
                    FROM {self.db}.events FINAL WHERE ts < {end}
                    GROUP BY customer_id HAVING n > 0 AND first >= {start}
                )
            ) GROUP BY c, k
            """,
            params,
        )
        sizes: dict[int, int] = {}
        kept: dict[int, dict[int, int]] = {}
        for c, k, n in rows:
            if int(k) < 0:
                sizes[int(c)] = int(n)
            else:
                kept.setdefault(int(c), {})[int(k)] = int(n)
        end_naive = q.range.end.astimezone(UTC).replace(tzinfo=None)
        cohorts = []
        for c in sorted(sizes):
            begun = _period_start(c, q.period)
            width = min(
                q.periods, _periods_between(begun.replace(tzinfo=None), end_naive, q.period)
            )
            row = kept.get(c, {})
            cohorts.append(CohortRow(begun, sizes[c], [row.get(k, 0) for k in range(width)]))
        dau, mau = self._stickiness(q.range)
        return RetentionAnswer(cohorts, dau / mau if mau else 0.0, dau, mau)

    def _stickiness(self, r: TimeRange) -> tuple[float, int]:
        """Mean daily active customers over the range's last 30 days, and
        the customers active in those 30 days."""
        end = r.end_ms
        start = max(r.start_ms, end - 30 * DAY_MS)
        days = max(1, -(-(end - start) // DAY_MS))
        row = self.store.sql.rows(
            "SELECT uniqExact(customer_id, intDiv(toUnixTimestamp64Milli(ts), {day:Int64})), "
            f"uniqExact(customer_id) FROM {self.db}.events FINAL "
            "WHERE toUnixTimestamp64Milli(ts) >= {s:Int64} AND toUnixTimestamp64Milli(ts) < {e:Int64}",
            {"day": DAY_MS, "s": start, "e": end},
        )[0]
        return int(row[0]) / days, int(row[1])

    # -- stages -------------------------------------------------------------------
    def stages(self, q: StagesQuery) -> list[tuple[datetime, list[tuple[str, int, float]]]]:
        """Per period (oldest first): (stage, customers at or beyond it,
        conversion from the previous stage). A customer's stage in a period
        is the deepest any of their events reached (ClickHouse SQL)."""
        q.validate(self._known())
        names: list[str] = []
        index: list[int] = []
        for i, (_, events) in enumerate(q.stages):
            for e in events:
                names.append(e)
                index.append(i)
        params: dict[str, Any] = {"names": names, "idx": index}
        where = _range(q.range, params)
        rows = self.store.sql.rows(
            f"""
            SELECT p, s, count() FROM (
                SELECT customer_id, {period_sql(q.period)} AS p,
                       max(transform(event, {{names:Array(String)}}, {{idx:Array(Int64)}},
                                     toInt64(-1))) AS s
                FROM {self.db}.events FINAL
                WHERE {where} AND event IN {{names:Array(String)}}
                GROUP BY customer_id, p
            ) GROUP BY p, s ORDER BY p, s
            """,
            params,
        )
        k = len(q.stages)
        at: dict[int, list[int]] = {}
        for p, s, n in rows:
            at.setdefault(int(p), [0] * k)[int(s)] += int(n)
        out = []
        for p in sorted(at):
            beyond = [int(x) for x in np.cumsum(at[p][::-1])[::-1]]
            out.append(
                (
                    _period_start(p, q.period),
                    [
                        (
                            name,
                            beyond[i],
                            1.0
                            if i == 0
                            else (beyond[i] / beyond[i - 1] if beyond[i - 1] else 0.0),
                        )
                        for i, (name, _) in enumerate(q.stages)
                    ],
                )
            )
        return out
