"""Personalization's tables (SQLAlchemy Core); only this service touches them."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

TS = sa.DateTime(timezone=True)
meta = sa.MetaData()

items = sa.Table(
    "pers_item",
    meta,
    sa.Column("item_id", sa.String(128), primary_key=True),
    sa.Column("data", sa.LargeBinary, nullable=False),
    sa.Column("updated_at", TS, nullable=False),
)
interactions = sa.Table(
    "pers_interaction",
    meta,
    sa.Column("event_id", sa.String(160), primary_key=True),
    sa.Column("customer_id", sa.String(64), nullable=False),
    sa.Column("item_id", sa.String(128), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("weight", sa.Float, nullable=False),
    sa.Column("occurred_at", TS, nullable=False),
    sa.Column("channel", sa.String(32), nullable=False),
    sa.Column("store", sa.String(64), nullable=False),
    sa.Column("revenue", sa.Float, nullable=False),
    sa.Column("hour", sa.Integer, nullable=False),
)
experiments = sa.Table(
    "pers_experiment",
    meta,
    sa.Column("experiment_id", sa.String(64), primary_key=True),
    sa.Column("data", sa.LargeBinary, nullable=False),
    sa.Column("updated_at", TS, nullable=False),
)
exposures = sa.Table(
    "pers_exposure",
    meta,
    sa.Column("experiment_id", sa.String(64), primary_key=True),
    sa.Column("customer_id", sa.String(64), primary_key=True),
    sa.Column("variant_id", sa.String(64), nullable=False),
    sa.Column("recommendation_id", sa.String(64), nullable=False),
    sa.Column("first_served_at", TS, nullable=False),
)


def now() -> datetime:
    return datetime.now(UTC)


def _insert(session: Session, table: sa.Table) -> Any:
    dialect = session.get_bind().dialect.name
    return (postgresql if dialect == "postgresql" else sqlite).insert(table)


def insert_ignoring_duplicates(
    session: Session, table: sa.Table, rows: Sequence[dict[str, Any]]
) -> None:
    if rows:
        session.execute(_insert(session, table).on_conflict_do_nothing(), list(rows))


def upsert(session: Session, table: sa.Table, key: str, rows: Sequence[dict[str, Any]]) -> None:
    if not rows:
        return
    stmt = _insert(session, table)
    cols = {c.name: stmt.excluded[c.name] for c in table.columns if c.name != key}
    session.execute(stmt.on_conflict_do_update(index_elements=[key], set_=cols), list(rows))


def load_items(session: Session) -> Iterator[bytes]:
    for (data,) in session.execute(sa.select(items.c.data).order_by(items.c.updated_at)):
        yield bytes(data)


def load_interactions(session: Session) -> Iterator[sa.Row[Any]]:
    q = sa.select(interactions).order_by(interactions.c.occurred_at, interactions.c.event_id)
    yield from session.execute(q.execution_options(yield_per=5000))


def load_experiments(session: Session) -> list[bytes]:
    return [bytes(r[0]) for r in session.execute(sa.select(experiments.c.data))]


def get_experiment(session: Session, experiment_id: str) -> bytes | None:
    row = session.execute(
        sa.select(experiments.c.data).where(experiments.c.experiment_id == experiment_id)
    ).first()
    return None if row is None else bytes(row[0])


def load_exposures(session: Session) -> list[sa.Row[Any]]:
    return list(session.execute(sa.select(exposures)))


def erase_customer(session: Session, customer_id: str) -> dict[str, int]:
    counts = {}
    for name, table in (("interactions", interactions), ("exposures", exposures)):
        res: Any = session.execute(sa.delete(table).where(table.c.customer_id == customer_id))
        counts[name] = int(res.rowcount)
    return counts


def export_customer(session: Session, customer_id: str) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for name, table in (("interactions", interactions), ("exposures", exposures)):
        rows = session.execute(sa.select(table).where(table.c.customer_id == customer_id))
        out[name] = [
            {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in r._mapping.items()}
            for r in rows
        ]
    return out
