"""Daily KPI tallies per slice (docs/adr/0052-kpi-aggregates.md): written
as increments (insert ... on conflict add) in the transaction that stores
the responses, read by summing at most one row per day and slice, so
GetKpis costs the same over a million responses as over a thousand."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from feedback.adapters.tables import KPI_DIMENSIONS, aspect_day, kpi_day
from feedback.domain.surveys import QuestionType, ScoreTally

ALL = "*"
NONE = "-"
_EPOCH = date(1970, 1, 1)
_TALLY_COLS = ("n", "promoters", "passives", "detractors", "satisfied", "total", "total_sq")


def local_day(ts: datetime, tz: ZoneInfo) -> int:
    return (ts.astimezone(tz).date() - _EPOCH).days


def day_start(day: int, tz: ZoneInfo) -> datetime:
    d = _EPOCH + timedelta(days=day)
    return datetime(d.year, d.month, d.day, tzinfo=tz).astimezone(UTC)


@dataclass(frozen=True, slots=True)
class ScoredResponse:
    metric: QuestionType
    score: int
    day: int
    dims: Mapping[str, str]  # KPI_DIMENSIONS -> value
    aspects: tuple[str, ...] = ()
    negative_aspects: tuple[str, ...] = ()


_PAIRS = list(itertools.combinations(range(len(KPI_DIMENSIONS)), 2))


def slices(dims: Mapping[str, str]) -> list[tuple[str, ...]]:
    """The all-slice, one slice per single dimension, one per pair of
    dimensions, and the full slice: a query with up to two filters reads
    one row per day; three or more sum the full slices."""
    full = tuple(dims.get(d) or NONE for d in KPI_DIMENSIONS)
    n = len(KPI_DIMENSIONS)
    out = [tuple(ALL for _ in KPI_DIMENSIONS)]
    for i in range(n):
        out.append(tuple(full[i] if j == i else ALL for j in range(n)))
    for a, b in _PAIRS:
        out.append(tuple(full[j] if j in (a, b) else ALL for j in range(n)))
    out.append(full)
    return out


def _upsert(
    session: Session, table: sa.Table, keys: Sequence[str], rows: list[dict[str, Any]]
) -> None:
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    ins: Any = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)
    adds = [c.name for c in table.columns if c.name not in keys]
    stmt = ins.on_conflict_do_update(
        index_elements=list(keys), set_={c: table.c[c] + ins.excluded[c] for c in adds}
    )
    # Sorted so two writers take row locks in the same order (no deadlock).
    rows.sort(key=lambda r: tuple(str(r[k]) for k in keys))
    for i in range(0, len(rows), 500):
        session.execute(stmt, rows[i : i + 500])


def add_responses(session: Session, scored: Iterable[ScoredResponse]) -> None:
    tallies: dict[tuple[Any, ...], ScoreTally] = {}
    aspects: dict[tuple[str, int, str], tuple[ScoreTally, list[int]]] = {}
    for r in scored:
        for s in slices(r.dims):
            tallies.setdefault((r.metric.value, r.day, *s), ScoreTally()).add_score(
                r.metric, r.score
            )
        for a in r.aspects:
            t, neg = aspects.setdefault((r.metric.value, r.day, a), (ScoreTally(), [0]))
            t.add_score(r.metric, r.score)
            if a in r.negative_aspects:
                neg[0] += 1
    keys = ["metric", "day", *KPI_DIMENSIONS]
    _upsert(
        session,
        kpi_day,
        keys,
        [
            {**dict(zip(keys, k, strict=True)), **{c: getattr(t, c) for c in _TALLY_COLS}}
            for k, t in tallies.items()
        ],
    )
    _upsert(
        session,
        aspect_day,
        ["metric", "day", "aspect"],
        [
            {
                "metric": m,
                "day": d,
                "aspect": a,
                **{c: getattr(t, c) for c in _TALLY_COLS},
                "negative": neg[0],
            }
            for (m, d, a), (t, neg) in aspects.items()
        ],
    )


def _tally(row: Any) -> ScoreTally:
    return ScoreTally(
        int(row.n),
        int(row.promoters),
        int(row.passives),
        int(row.detractors),
        int(row.satisfied),
        float(row.total),
        float(row.total_sq),
    )


def daily(
    session: Session,
    metric: QuestionType,
    first_day: int,
    last_day: int,
    filters: Mapping[str, str],
) -> dict[int, ScoreTally]:
    """Tallies per day in [first_day, last_day] for the slice ``filters``
    names (empty values: all)."""
    f = {d: v for d, v in filters.items() if v}
    sums = [sa.func.sum(kpi_day.c[c]).label(c) for c in _TALLY_COLS]
    q = sa.select(kpi_day.c.day, *sums).where(
        kpi_day.c.metric == metric.value, kpi_day.c.day >= first_day, kpi_day.c.day <= last_day
    )
    if len(f) <= 2:
        for d in KPI_DIMENSIONS:
            q = q.where(kpi_day.c[d] == f.get(d, ALL))
    else:  # several filters: sum the full slices that match them
        for d in KPI_DIMENSIONS:
            q = q.where(kpi_day.c[d] == f[d]) if d in f else q.where(kpi_day.c[d] != ALL)
    q = q.group_by(kpi_day.c.day)
    return {int(r.day): _tally(r) for r in session.execute(q)}


def dimension_values(
    session: Session, metric: QuestionType, first_day: int
) -> list[tuple[str, str]]:
    """(dimension, value) of every single-dimension slice seen since first_day."""
    out: list[tuple[str, str]] = []
    for i, d in enumerate(KPI_DIMENSIONS):
        q = (
            sa.select(kpi_day.c[d])
            .distinct()
            .where(
                kpi_day.c.metric == metric.value, kpi_day.c.day >= first_day, kpi_day.c[d] != ALL
            )
        )
        for j, other in enumerate(KPI_DIMENSIONS):
            if j != i:
                q = q.where(kpi_day.c[other] == ALL)
        out += [(d, str(r[0])) for r in session.execute(q)]
    return out


def aspect_tallies(
    session: Session, metric: QuestionType, first_day: int, last_day: int
) -> dict[str, tuple[ScoreTally, int]]:
    sums = [sa.func.sum(aspect_day.c[c]).label(c) for c in (*_TALLY_COLS, "negative")]
    q = (
        sa.select(aspect_day.c.aspect, *sums)
        .where(
            aspect_day.c.metric == metric.value,
            aspect_day.c.day >= first_day,
            aspect_day.c.day <= last_day,
        )
        .group_by(aspect_day.c.aspect)
    )
    return {str(r.aspect): (_tally(r), int(r.negative)) for r in session.execute(q)}
