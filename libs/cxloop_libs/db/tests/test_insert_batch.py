"""`InsertBatch` (ADR 0305): rows of several tables added during a
transaction and written at its end - on PostgreSQL as one statement - are
stored with their exact values (bytea, timestamptz, NULLs), columns a row
leaves out get the table's Python-side defaults, a key conflict raises
SQLAlchemy's IntegrityError (what `Database.in_transaction` retries on) and
rolls the whole batch back, and SQLite stores the same rows."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from sqlalchemy import exc

from cxloop_libs.db import Database, InsertBatch

pytestmark = pytest.mark.integration

metadata = sa.MetaData()
customers = sa.Table(
    "test_batch_customer",
    metadata,
    sa.Column("customer_id", sa.String(64), primary_key=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("status", sa.String(16), nullable=False, default="open"),
    sa.Column("note", sa.String(32), nullable=False, default=lambda: "made"),
)
observations = sa.Table(
    "test_batch_observation",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("customer_id", sa.String(64), nullable=False),
    sa.Column("sealed", sa.LargeBinary, nullable=False),
    sa.Column("observed_at", sa.DateTime(timezone=True), nullable=True),
)

KST = timezone(timedelta(hours=9))
T0 = datetime(2026, 3, 1, 9, 30, 15, 123456, tzinfo=KST)


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    metadata.create_all(database.engine)
    yield database
    database.dispose()


def _batch() -> InsertBatch:
    batch = InsertBatch()
    batch.add(customers, [{"customer_id": "c1", "created_at": T0}])
    batch.add(
        observations,
        [
            {"customer_id": "c1", "sealed": bytes([0, 9, 92, 255]), "observed_at": T0},
            {"customer_id": "c1", "sealed": b"\x00", "observed_at": None},
        ],
    )
    # A row with other keys of a table already in the batch.
    batch.add(customers, [{"customer_id": "c2", "created_at": T0, "status": "done"}])
    return batch


def test_rows_of_several_tables_are_stored_with_their_values_and_defaults(db: Database) -> None:
    batch = _batch()
    assert len(batch) == 4
    with db.session() as s:
        assert batch.flush(s) == 4
        s.commit()
    assert len(batch) == 0
    with db.session() as s:
        rows = s.execute(sa.select(customers).order_by(customers.c.customer_id)).all()
        seen = s.execute(sa.select(observations).order_by(observations.c.id)).all()
    assert [(r.customer_id, r.status, r.note) for r in rows] == [
        ("c1", "open", "made"),
        ("c2", "done", "made"),
    ]
    created = rows[0].created_at
    assert (created if created.tzinfo else created.replace(tzinfo=KST)) == T0
    assert [bytes(r.sealed) for r in seen] == [bytes([0, 9, 92, 255]), b"\x00"]
    assert seen[1].observed_at is None
    assert seen[0].id < seen[1].id


def test_a_key_conflict_is_sqlalchemys_integrity_error_and_stores_nothing(db: Database) -> None:
    with db.session() as s:
        s.execute(customers.insert(), [{"customer_id": "c2", "created_at": T0}])
        s.commit()
    with pytest.raises(exc.IntegrityError), db.session() as s:
        _batch().flush(s)
    with db.session() as s:
        assert s.execute(sa.select(sa.func.count()).select_from(customers)).scalar_one() == 1
        assert s.execute(sa.select(sa.func.count()).select_from(observations)).scalar_one() == 0


def test_an_empty_batch_sends_nothing(db: Database) -> None:
    statements: list[str] = []
    sa.event.listen(db.engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    with db.session() as s:
        assert InsertBatch().flush(s) == 0
    assert statements == []
