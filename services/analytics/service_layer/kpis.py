"""Behavioural KPIs: declared once (DefineKpi), computed per window and
breakdown value from the event store, watched for anomalies.

Kinds (``KpiDefinition.kind``):
- ``rate``: of the customers who did ``event`` in a window, the share who
  also did ``target_event`` in it (conversion rate); ``invert`` gives
  1 - rate (cart abandonment: event "Product Added", target "Order Completed").
- ``average``: mean of the numeric property ``property`` over ``event``
  (average order value).
- ``repeat_rate``: of the customers who did ``event`` in a window, the share
  who did it at least twice (repeat purchase rate).
- ``time_to_first``: median seconds from a customer's first event of any
  kind to their first ``event``, for customers whose first ``event`` falls
  in the window (time to first purchase).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import sqlalchemy as sa
from cxloop.analytics.v1 import events_pb2 as pb
from sqlmodel import Session

from analytics.adapters.clickhouse_store import ClickHouseEventStore
from analytics.adapters.event_store import EventStore
from analytics.adapters.tables import alert_table, kpi_table
from analytics.domain.anomaly import AnomalyParams, judge
from analytics.domain.queries import KpiDefinition, KpiKind, Period, TimeRange, kpi_kind
from analytics.service_layer import clickhouse_kpis
from analytics.service_layer.journeys import property_sql
from cxloop_libs.errors import InvalidArgument, NotFound
from cxloop_libs.messaging import OutboxWriter
from cxloop_libs.messaging import catalog as ev

_ALERT_NS = uuid.UUID("0b7f2a64-6c0e-4d55-9a43-5c1d8e2f6a01")
MAX_BREAKDOWN_VALUES = 50


@dataclass(frozen=True, slots=True)
class KpiPoint:
    window_start: datetime
    breakdown_value: str
    value: float
    sample: int


def definition_to_json(d: KpiDefinition) -> str:
    data = asdict(d)
    data["kind"] = d.kind.value
    data["window"] = d.window.value
    return json.dumps(data, sort_keys=True)


def definition_from_json(text: str) -> KpiDefinition:
    data = json.loads(text)
    data["kind"] = kpi_kind(data["kind"])
    data["window"] = Period(data["window"])
    return KpiDefinition(**data)


def save_definition(session: Session, d: KpiDefinition) -> bool:
    """Insert or replace; True when it replaced one."""
    d.validate()
    existing = session.execute(
        sa.select(kpi_table.c.name).where(kpi_table.c.name == d.name)
    ).first()
    values = {"definition": definition_to_json(d), "updated_at": datetime.now(UTC)}
    if existing:
        session.execute(kpi_table.update().where(kpi_table.c.name == d.name).values(**values))
    else:
        session.execute(kpi_table.insert().values(name=d.name, **values))
    return existing is not None


def load_definition(session: Session, name: str) -> KpiDefinition:
    row = session.execute(sa.select(kpi_table.c.definition).where(kpi_table.c.name == name)).first()
    if row is None:
        raise NotFound(f"no KPI named {name[:64]!r}")
    return definition_from_json(row[0])


def all_definitions(session: Session) -> list[KpiDefinition]:
    rows = session.execute(sa.select(kpi_table.c.definition).order_by(kpi_table.c.name))
    return [definition_from_json(r[0]) for r in rows]


def _naive(dt: datetime) -> datetime:
    return dt.astimezone(UTC).replace(tzinfo=None)


def kpi_series(
    store: EventStore | ClickHouseEventStore, d: KpiDefinition, r: TimeRange
) -> tuple[list[KpiPoint], bool]:
    """The KPI per window (and breakdown value) over the range; the second
    value is True when breakdown values beyond the cap were left out."""
    rows: list[tuple[Any, ...]]
    if isinstance(store, ClickHouseEventStore):
        rows = list(clickhouse_kpis.kpi_rows(store, d, r))
    else:
        rows = _duckdb_rows(store, d, r)
    points = [
        KpiPoint(
            w.replace(tzinfo=UTC),
            str(bv),
            (1.0 - float(v)) if (d.invert and v is not None) else float(v or 0.0),
            int(n),
        )
        for w, bv, v, n in rows
    ]
    values = {p.breakdown_value for p in points}
    if len(values) <= MAX_BREAKDOWN_VALUES:
        return points, False
    sizes: dict[str, int] = {}
    for p in points:
        sizes[p.breakdown_value] = sizes.get(p.breakdown_value, 0) + p.sample
    keep = set(sorted(sizes, key=lambda v: (-sizes[v], v))[:MAX_BREAKDOWN_VALUES])
    return [p for p in points if p.breakdown_value in keep], True


def _duckdb_rows(store: EventStore, d: KpiDefinition, r: TimeRange) -> list[tuple[Any, ...]]:
    """(window start, breakdown value, value, sample) in DuckDB's SQL."""
    unit = d.window.value
    b = f"coalesce({property_sql(d.breakdown)}, '(none)')" if d.breakdown else "''"
    start, end = _naive(r.start), _naive(r.end)
    params: list[Any]
    if d.kind is KpiKind.RATE:
        sql = f"""
            WITH base AS (
                SELECT customer_id, date_trunc('{unit}', ts) AS w, any_value({b}) AS b
                FROM events WHERE event = ? AND ts >= ? AND ts < ? GROUP BY 1, 2
            ),
            hit AS (
                SELECT DISTINCT customer_id, date_trunc('{unit}', ts) AS w
                FROM events WHERE event = ? AND ts >= ? AND ts < ?
            )
            SELECT base.w, base.b, count(hit.customer_id)::DOUBLE / count(*), count(*)
            FROM base LEFT JOIN hit USING (customer_id, w) GROUP BY 1, 2
        """
        params = [d.event, start, end, d.target_event, start, end]
    elif d.kind is KpiKind.AVERAGE:
        sql = f"""
            SELECT date_trunc('{unit}', ts) AS w, {b} AS b,
                   avg(TRY_CAST({property_sql(d.property)} AS DOUBLE)),
                   count(TRY_CAST({property_sql(d.property)} AS DOUBLE))
            FROM events WHERE event = ? AND ts >= ? AND ts < ? GROUP BY 1, 2
            HAVING count(TRY_CAST({property_sql(d.property)} AS DOUBLE)) > 0
        """
        params = [d.event, start, end]
    elif d.kind is KpiKind.REPEAT_RATE:
        sql = f"""
            WITH per AS (
                SELECT customer_id, date_trunc('{unit}', ts) AS w, any_value({b}) AS b,
                       count(*) AS n
                FROM events WHERE event = ? AND ts >= ? AND ts < ? GROUP BY 1, 2
            )
            SELECT w, b, avg((n >= 2)::INTEGER), count(*) FROM per GROUP BY 1, 2
        """
        params = [d.event, start, end]
    else:
        sql = f"""
            WITH firsts AS (
                SELECT customer_id, min(ts) FILTER (WHERE event = ?) AS f, min(ts) AS a,
                       arg_min({b}, ts) FILTER (WHERE event = ?) AS b
                FROM events WHERE ts < ? GROUP BY 1
            )
            SELECT date_trunc('{unit}', f) AS w, b, median(epoch(f) - epoch(a)), count(*)
            FROM firsts WHERE f >= ? AND f < ? GROUP BY 1, 2
        """
        params = [d.event, d.event, end, start, end]
    return store.sql(sql + " ORDER BY 1, 2", params)


def alert_id(kpi: str, breakdown_value: str, window_start: datetime) -> str:
    return str(uuid.uuid5(_ALERT_NS, f"{kpi}/{breakdown_value}/{window_start.isoformat()}"))


def _dense(points: list[KpiPoint], step: timedelta, end: datetime) -> dict[str, list[KpiPoint]]:
    """Series per breakdown value, one point per window (missing = 0)."""
    by: dict[str, dict[datetime, KpiPoint]] = {}
    for p in points:
        by.setdefault(p.breakdown_value, {})[p.window_start] = p
    out: dict[str, list[KpiPoint]] = {}
    for value, pts in by.items():
        t = min(pts)
        series = []
        while t < end:
            series.append(pts.get(t, KpiPoint(t, value, 0.0, 0)))
            t += step
        out[value] = series
    return out


@dataclass
class AlertWatch:
    """Judges alerting KPIs' recent complete windows and raises alerts (one
    per KPI, breakdown value and window, whichever replica finds it first)."""

    store: EventStore | ClickHouseEventStore
    params: AnomalyParams = field(default_factory=AnomalyParams)
    # Windows judged per run (the latest complete ones).
    recent: int = 3

    def check(self, session: Session, d: KpiDefinition, now: datetime) -> list[pb.AlertRaised]:
        step = timedelta(days=1 if d.window is Period.DAY else 7)
        history = self.params.history + self.params.period * (self.params.seasons + 1) + self.recent
        end = _floor(now, d.window)
        points, _ = kpi_series(self.store, d, TimeRange(end - step * history, end))
        raised: list[pb.AlertRaised] = []
        for value, series in _dense(points, step, end).items():
            ys = np.array([p.value for p in series])
            for j in judge(ys, self.params):
                if j.index < len(series) - self.recent or not j.is_anomaly:
                    continue
                point = series[j.index]
                msg = _alert(d, value, point, step, j, series[max(0, j.index - 14) : j.index])
                if _store_alert(session, msg, point.window_start):
                    raised.append(msg)
        return raised


def _alert(d, value, point, step, j, recent) -> pb.AlertRaised:  # type: ignore[no-untyped-def]
    msg = pb.AlertRaised(
        alert_id=alert_id(d.name, value, point.window_start),
        kpi=d.name,
        breakdown=d.breakdown,
        breakdown_value=value,
        observed_value=j.observed,
        expected_value=j.expected,
        lower_limit=j.lower,
        upper_limit=j.upper,
        direction=(pb.ALERT_DIRECTION_DROP if j.direction == "drop" else pb.ALERT_DIRECTION_SPIKE),
        score=j.score,
    )
    msg.window_start.FromDatetime(point.window_start)
    msg.window_end.FromDatetime(point.window_start + step)
    msg.raised_at.GetCurrentTime()
    for p in recent:
        kp = msg.recent.add(value=p.value)
        kp.window_start.FromDatetime(p.window_start)
    return msg


def _store_alert(session: Session, msg: pb.AlertRaised, window_start: datetime) -> bool:
    """Record and stage the alert unless it exists (another replica, an
    earlier run): the alert id is derived, so it is raised once."""
    exists = session.execute(
        sa.select(alert_table.c.alert_id).where(alert_table.c.alert_id == msg.alert_id)
    ).first()
    if exists:
        return False
    session.execute(
        alert_table.insert().values(
            alert_id=msg.alert_id,
            kpi=msg.kpi,
            window_start=window_start,
            raised_at=datetime.now(UTC),
            body=msg.SerializeToString(),
        )
    )
    outbox = OutboxWriter(session)
    outbox.stage(ev.ANALYTICS_ALERT_RAISED, msg, event_id=msg.alert_id)
    outbox.flush()
    return True


def list_alerts(session: Session, kpi: str, limit: int) -> list[pb.AlertRaised]:
    if not 1 <= limit <= 500:
        raise InvalidArgument("limit", "between 1 and 500")
    q = sa.select(alert_table.c.body).order_by(
        alert_table.c.raised_at.desc(), alert_table.c.window_start.desc()
    )
    if kpi:
        q = q.where(alert_table.c.kpi == kpi)
    out = []
    for (body,) in session.execute(q.limit(limit)):
        msg = pb.AlertRaised()
        msg.ParseFromString(body)
        out.append(msg)
    return out


def claim_notification(session: Session, alert_id_: str) -> bool:
    """True for exactly one caller (replica) per alert."""
    result = session.execute(
        alert_table.update()
        .where(alert_table.c.alert_id == alert_id_, alert_table.c.notified_at.is_(None))
        .values(notified_at=datetime.now(UTC))
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def _floor(now: datetime, window: Period) -> datetime:
    day = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if window is Period.WEEK:
        return day - timedelta(days=day.weekday())
    return day
