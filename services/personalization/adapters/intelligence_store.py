"""Customer intelligence tables (issue #15), SQLAlchemy Core; only this
service touches them. Migrations: 0095_intelligence, 0285 (fillfactor)."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlmodel import Session

from personalization.adapters.repository import _insert, meta

TS = sa.DateTime(timezone=True)

# fillfactor 80 on PostgreSQL (migration 0285, ADR 0285): room on every page
# for one more version of a row, so the consumer's updates are HOT updates.
states = sa.Table(
    "pers_intel_state",
    meta,
    sa.Column("customer_id", sa.String(64), primary_key=True),
    sa.Column("state", sa.Text, nullable=False),  # CustomerState JSON
    sa.Column("traits", sa.Text, nullable=False),  # last computed traits JSON
    sa.Column("lifecycle", sa.String(16), nullable=False),
    sa.Column("updated_at", TS, nullable=False),
)
segments = sa.Table(
    "pers_segment",
    meta,
    sa.Column("segment_id", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("rule", sa.Text, nullable=False),
    sa.Column("updated_at", TS, nullable=False),
)
members = sa.Table(
    "pers_segment_member",
    meta,
    sa.Column("segment_id", sa.String(64), primary_key=True),
    sa.Column("customer_id", sa.String(64), primary_key=True),
    sa.Column("entered_at", TS, nullable=False),
    sa.Column("cause_event_id", sa.String(160), nullable=False),
)
triggers = sa.Table(
    "pers_trigger",
    meta,
    sa.Column("trigger_id", sa.String(64), primary_key=True),
    sa.Column("data", sa.Text, nullable=False),
    sa.Column("updated_at", TS, nullable=False),
)
pending = sa.Table(
    "pers_action_pending",
    meta,
    sa.Column("trigger_id", sa.String(64), primary_key=True),
    sa.Column("customer_id", sa.String(64), primary_key=True),
    sa.Column("cause_event_id", sa.String(160), nullable=False),
    sa.Column("due_at", TS, nullable=False),
    sa.Column("data", sa.Text, nullable=False),
)
actions = sa.Table(
    "pers_action",
    meta,
    sa.Column("action_id", sa.String(64), primary_key=True),
    sa.Column("trigger_id", sa.String(64), nullable=False),
    sa.Column("customer_id", sa.String(64), nullable=False),
    sa.Column("cause_event_id", sa.String(160), nullable=False),
    # fired, capped, no_consent
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("at", TS, nullable=False),
)
predictions = sa.Table(
    "pers_prediction",
    meta,
    sa.Column("customer_id", sa.String(64), primary_key=True),
    sa.Column("data", sa.Text, nullable=False),
    sa.Column("computed_at", TS, nullable=False),
)
model_versions = sa.Table(
    "pers_model_version",
    meta,
    sa.Column("version", sa.String(64), primary_key=True),
    sa.Column("model", sa.String(16), nullable=False),
    sa.Column("metrics", sa.Text, nullable=False),
    sa.Column("trained_at", TS, nullable=False),
)


def dt(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def epoch(d: datetime) -> float:
    return (d.replace(tzinfo=UTC) if d.tzinfo is None else d).timestamp()


def upsert(
    session: Session, table: sa.Table, keys: Sequence[str], rows: Sequence[dict[str, Any]]
) -> None:
    if not rows:
        return
    stmt = _insert(session, table)
    cols = {c.name: stmt.excluded[c.name] for c in table.columns if c.name not in keys}
    session.execute(stmt.on_conflict_do_update(index_elements=list(keys), set_=cols), list(rows))


def bulk_write(
    session: Session,
    table: sa.Table,
    keys: Sequence[str],
    rows: Sequence[dict[str, Any]],
    *,
    update: bool,
) -> None:
    """Many rows in two statements: on PostgreSQL COPY into a temporary
    staging table, then ``INSERT ... SELECT ... ON CONFLICT`` (executemany
    sends and binds one parameter set per row, and unnest()ed text arrays
    pay for quoting every JSON document: together the consumer's largest
    cost); elsewhere the executemany statements. ``update``: a key that
    exists is overwritten (rows must then have distinct keys); otherwise
    the row is skipped."""
    if not rows:
        return
    if session.get_bind().dialect.name != "postgresql":
        if update:
            upsert(session, table, keys, rows)
        else:
            insert_ignoring(session, table, rows)
        return
    from cxloop_libs.db.engine import bulk_insert

    cols = [c.name for c in table.columns if c.name in rows[0]]
    stage = _stage(table, tuple(cols))
    # Per connection, emptied at every commit (or gone with a rollback).
    session.execute(
        sa.text(
            f"CREATE TEMP TABLE IF NOT EXISTS {stage.name} "
            f"(LIKE {table.name} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
        )
    )
    session.execute(sa.text(f"TRUNCATE {stage.name}"))
    # Binary COPY: the rows hold str and aware datetimes (ADR 0285).
    bulk_insert(session, stage, rows, binary=True)
    names = ", ".join(cols)
    action = (
        "UPDATE SET " + ", ".join(f"{c} = EXCLUDED.{c}" for c in cols if c not in keys)
        if update
        else "NOTHING"
    )
    session.execute(
        sa.text(
            f"INSERT INTO {table.name} ({names}) SELECT {names} FROM {stage.name} "
            f"ON CONFLICT ({', '.join(keys)}) DO {action}"
        )
    )


def insert_checked(session: Session, table: sa.Table, rows: Sequence[dict[str, Any]]) -> None:
    """Rows whose keys the caller read as absent while holding the
    customers' locks (``lock_customers``), so none can exist: on PostgreSQL
    they go straight into the table (binary COPY above a few rows), with no staging
    table and no ``ON CONFLICT`` (a speculative insertion per row). Should
    a key exist after all, the IntegrityError rolls the transaction back and
    the caller's conflict retry (BatchConsumer, ``Database.in_transaction``)
    re-reads it. Elsewhere (no locks) existing keys are skipped."""
    if not rows:
        return
    if session.get_bind().dialect.name != "postgresql":
        insert_ignoring(session, table, rows)
        return
    from cxloop_libs.db.engine import bulk_insert

    bulk_insert(session, table, rows, binary=True)


@functools.cache
def _stage(table: sa.Table, cols: tuple[str, ...]) -> sa.Table:
    """The staging table's Core description (the table's column types, for
    a binary COPY), built once per column set (building a Table costs more
    than the rows it stages in a small batch)."""
    return sa.Table(
        f"_stage_{table.name}", sa.MetaData(), *(sa.Column(c, table.c[c].type) for c in cols)
    )


def insert_new(session: Session, table: sa.Table, rows: Sequence[dict[str, Any]]) -> int:
    """Inserts rows whose key is new; returns how many were inserted."""
    n = 0
    for r in rows:
        res: Any = session.execute(_insert(session, table).on_conflict_do_nothing(), [r])
        n += int(res.rowcount or 0)
    return n


def insert_ignoring(session: Session, table: sa.Table, rows: Sequence[dict[str, Any]]) -> None:
    """One statement; rows whose key exists (or repeats) are skipped."""
    if rows:
        session.execute(_insert(session, table).on_conflict_do_nothing(), list(rows))


def _chunks(session: Session, col: sa.Column[Any], ids: list[str]) -> Iterator[Any]:
    """``col IN ids`` conditions: on PostgreSQL one ``= ANY(array)`` with
    the ids as a single parameter (SQLAlchemy renders an IN list element by
    element, per statement: a twentieth of the consumer's CPU); elsewhere IN
    lists of 500."""
    if session.get_bind().dialect.name == "postgresql":
        if ids:
            yield col == sa.any_(sa.bindparam("ids", ids, type_=postgresql.ARRAY(sa.String)))
        return
    for i in range(0, len(ids), 500):
        yield col.in_(ids[i : i + 500])


def lock_customers(session: Session, ids: Iterable[str]) -> None:
    """Transaction-scoped advisory locks on these customers, taken in one
    order (so two holders cannot deadlock): a replica or a sweep updating a
    customer's state, traits and memberships waits for another's commit and
    then reads what it wrote, instead of overwriting it with a state that
    misses its events. Locks also customers with no row yet. PostgreSQL
    only (elsewhere one writer at a time is assumed)."""
    ids = sorted(set(ids))
    if not ids or session.get_bind().dialect.name != "postgresql":
        return
    session.execute(
        sa.text(
            "SELECT count(pg_advisory_xact_lock(k)) FROM "
            "(SELECT hashtextextended('pers_intel:' || c, 0) AS k "
            "FROM unnest(CAST(:ids AS text[])) AS c ORDER BY 1) AS o"
        ),
        {"ids": ids},
    )


def load_states(session: Session, ids: Iterable[str]) -> dict[str, tuple[str, str]]:
    out: dict[str, tuple[str, str]] = {}
    for cond in _chunks(session, states.c.customer_id, list(ids)):
        q = sa.select(states.c.customer_id, states.c.state, states.c.traits).where(cond)
        for cid, st, tr in session.execute(q):
            out[cid] = (st, tr)
    return out


def iter_states(session: Session, after: str = "", limit: int = 2000) -> list[sa.Row[Any]]:
    q = (
        sa.select(states.c.customer_id, states.c.state, states.c.traits)
        .where(states.c.customer_id > after)
        .order_by(states.c.customer_id)
        .limit(limit)
    )
    return list(session.execute(q))


def all_segments(session: Session) -> list[sa.Row[Any]]:
    return list(session.execute(sa.select(segments).order_by(segments.c.segment_id)))


def all_triggers(session: Session) -> list[str]:
    return [
        r[0] for r in session.execute(sa.select(triggers.c.data).order_by(triggers.c.trigger_id))
    ]


def memberships(session: Session, ids: Iterable[str]) -> dict[str, set[str]]:
    ids = list(ids)
    out: dict[str, set[str]] = {c: set() for c in ids}
    for cond in _chunks(session, members.c.customer_id, ids):
        q = sa.select(members.c.customer_id, members.c.segment_id).where(cond)
        for cid, sid in session.execute(q):
            out.setdefault(cid, set()).add(sid)
    return out


def remove_memberships(session: Session, pairs: Sequence[tuple[str, str]]) -> int:
    """Deletes (segment_id, customer_id) memberships, 500 per statement."""
    n = 0
    for i in range(0, len(pairs), 500):
        res: Any = session.execute(
            sa.delete(members).where(
                sa.tuple_(members.c.segment_id, members.c.customer_id).in_(list(pairs[i : i + 500]))
            )
        )
        n += int(res.rowcount or 0)
    return n


def segment_size(session: Session, segment_id: str) -> int:
    q = sa.select(sa.func.count()).select_from(members).where(members.c.segment_id == segment_id)
    return int(session.execute(q).scalar_one())


def segment_sizes(session: Session) -> dict[str, int]:
    """Members per segment id (segments without members are absent)."""
    q = sa.select(members.c.segment_id, sa.func.count()).group_by(members.c.segment_id)
    return {str(sid): int(n) for sid, n in session.execute(q)}


def page_members(session: Session, segment_id: str, after: str, limit: int) -> list[sa.Row[Any]]:
    q = (
        sa.select(members)
        .where(members.c.segment_id == segment_id, members.c.customer_id > after)
        .order_by(members.c.customer_id)
        .limit(limit)
    )
    return list(session.execute(q))


def customer_segments(session: Session, customer_id: str) -> list[sa.Row[Any]]:
    q = (
        sa.select(members)
        .where(members.c.customer_id == customer_id)
        .order_by(members.c.segment_id)
    )
    return list(session.execute(q))


def actions_since(session: Session, customer_id: str, since: float) -> list[sa.Row[Any]]:
    q = sa.select(actions.c.trigger_id, actions.c.at).where(
        actions.c.customer_id == customer_id, actions.c.status == "fired", actions.c.at > dt(since)
    )
    return list(session.execute(q))


def due_pending(session: Session, now: float, limit: int = 500) -> list[sa.Row[Any]]:
    q = (
        sa.select(pending)
        .where(pending.c.due_at <= dt(now))
        .order_by(pending.c.due_at)
        .limit(limit)
    )
    return list(session.execute(q))


def delete_pending(
    session: Session, trigger_id: str, customer_id: str, cause: str | None = None
) -> int:
    cond = [pending.c.trigger_id == trigger_id, pending.c.customer_id == customer_id]
    if cause is not None:
        cond.append(pending.c.cause_event_id == cause)
    res: Any = session.execute(sa.delete(pending).where(*cond))
    return int(res.rowcount or 0)


def get_prediction(session: Session, customer_id: str) -> dict[str, Any] | None:
    row = session.execute(
        sa.select(predictions.c.data).where(predictions.c.customer_id == customer_id)
    ).first()
    return None if row is None else dict(json.loads(row[0]))


def load_predictions(session: Session, ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    out = {}
    for cond in _chunks(session, predictions.c.customer_id, list(ids)):
        q = sa.select(predictions.c.customer_id, predictions.c.data).where(cond)
        for cid, data in session.execute(q):
            out[cid] = json.loads(data)
    return out


def erase(session: Session, customer_id: str, *, keep_actions: bool = False) -> dict[str, int]:
    """Deletes the customer's traits, memberships, waiting actions and
    predictions (and the action log unless kept for caps)."""
    counts = {}
    tables = [
        ("traits", states),
        ("segment_memberships", members),
        ("pending_actions", pending),
        ("predictions", predictions),
    ]
    if not keep_actions:
        tables.append(("actions", actions))
    for name, table in tables:
        res: Any = session.execute(sa.delete(table).where(table.c.customer_id == customer_id))
        counts[name] = int(res.rowcount or 0)
    return counts


def export(session: Session, customer_id: str) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for name, table in (
        ("traits", states),
        ("segment_memberships", members),
        ("predictions", predictions),
        ("actions", actions),
    ):
        rows = session.execute(sa.select(table).where(table.c.customer_id == customer_id))
        out[name] = [
            {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in r._mapping.items()}
            for r in rows
        ]
    return out


def iter_member_ids(session: Session, segment_id: str) -> Iterator[str]:
    after = ""
    while True:
        rows = page_members(session, segment_id, after, 1000)
        if not rows:
            return
        for r in rows:
            yield r.customer_id
        after = rows[-1].customer_id
