"""`AsyncStatements.insert_rows` on PostgreSQL: the rows of several tables in
one statement, stored with their exact values (bytea, timestamptz) and all or
none; and the event-loop connection plans each call (force_custom_plan)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta, timezone

import psycopg
import pytest
import sqlalchemy as sa

from cxloop_libs.db import Database
from cxloop_libs.db.aio import AsyncStatements, libpq_conninfo

pytestmark = pytest.mark.integration

metadata = sa.MetaData()
customers = sa.Table(
    "test_customer",
    metadata,
    sa.Column("customer_id", sa.Text, primary_key=True),
    sa.Column("sealed_name", sa.LargeBinary),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("visits", sa.Integer),
)
identifiers = sa.Table(
    "test_identifier",
    metadata,
    sa.Column("hash", sa.Text, primary_key=True),
    sa.Column("customer_id", sa.Text, nullable=False),
    sa.Column("id_type", sa.Text, nullable=False),
)

KST = timezone(timedelta(hours=9))
T0 = datetime(2026, 3, 1, 9, 30, 15, 123456, tzinfo=KST)


@pytest.fixture
def db(postgres_url: str) -> Iterator[Database]:
    database = Database(postgres_url)
    metadata.create_all(database.engine)
    yield database
    database.dispose()


@pytest.fixture
async def st(db: Database) -> AsyncIterator[AsyncStatements]:
    statements = AsyncStatements.for_database(db)
    assert statements is not None
    yield statements
    await statements.close()


def stored(db: Database, table: sa.Table) -> list[tuple[object, ...]]:
    with db.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.select(table).order_by(table.c[0]))]


async def test_rows_of_several_tables_are_stored_with_their_exact_values(
    db: Database, st: AsyncStatements
) -> None:
    sealed = b"\x00\xffkim\x00\x01\x80\xfe\\x00"
    new_customers = [
        {"customer_id": "c1", "sealed_name": sealed, "created_at": T0, "visits": 3},
        {
            "customer_id": 'c2 "김지수"',
            "sealed_name": b"",
            "created_at": T0.astimezone(UTC) + timedelta(days=1),
            "visits": None,
        },
    ]
    new_identifiers = [
        {"hash": "h1", "customer_id": "c1", "id_type": "email"},
        {"hash": "h2", "customer_id": "c1", "id_type": "phone"},
        {"hash": "h3", "customer_id": 'c2 "김지수"', "id_type": "user_id"},
    ]

    n = await st.insert_rows([(customers, new_customers), (identifiers, new_identifiers)])

    assert n == 5
    assert stored(db, customers) == [
        ("c1", sealed, T0, 3),
        ('c2 "김지수"', b"", T0 + timedelta(days=1), None),
    ]
    assert stored(db, identifiers) == [
        ("h1", "c1", "email"),
        ("h2", "c1", "phone"),
        ("h3", 'c2 "김지수"', "user_id"),
    ]
    (created_at,) = [r[2] for r in stored(db, customers) if r[0] == "c1"]
    assert isinstance(created_at, datetime) and created_at.tzinfo is not None


async def test_tables_without_rows_are_skipped(db: Database, st: AsyncStatements) -> None:
    assert await st.insert_rows([]) == 0
    assert await st.insert_rows([(customers, []), (identifiers, [])]) == 0
    row = {"hash": "h1", "customer_id": "c1", "id_type": "email"}
    assert await st.insert_rows([(customers, []), (identifiers, [row])]) == 1
    assert stored(db, customers) == []
    assert stored(db, identifiers) == [("h1", "c1", "email")]


async def test_a_unique_violation_in_the_second_table_stores_nothing(
    db: Database, st: AsyncStatements
) -> None:
    taken = {"hash": "h1", "customer_id": "c-first", "id_type": "email"}
    assert await st.insert_rows([(identifiers, [taken])]) == 1

    # Another writer took h1 first: the new customer must not be stored
    # without its identifiers.
    batch = [
        (customers, [{"customer_id": "c-late", "created_at": T0, "visits": 1}]),
        (
            identifiers,
            [
                {"hash": "h2", "customer_id": "c-late", "id_type": "phone"},
                {"hash": "h1", "customer_id": "c-late", "id_type": "email"},
            ],
        ),
    ]
    with pytest.raises(psycopg.errors.IntegrityError):
        await st.insert_rows(batch)

    assert stored(db, customers) == []
    assert stored(db, identifiers) == [("h1", "c-first", "email")]

    # The connection is still usable: without the taken identifier it goes in.
    batch[1][1].pop()
    assert await st.insert_rows(batch) == 2
    assert [r[0] for r in stored(db, customers)] == ["c-late"]
    assert stored(db, identifiers) == [("h1", "c-first", "email"), ("h2", "c-late", "phone")]


async def test_the_statements_connection_plans_every_call(
    db: Database, st: AsyncStatements
) -> None:
    assert await st.fetch("SHOW plan_cache_mode") == [("force_custom_plan",)]
    # Not the server's default: the setting is the connection's own.
    async with await psycopg.AsyncConnection.connect(libpq_conninfo(db.url)) as plain:
        cur = await plain.execute("SHOW plan_cache_mode")
        assert await cur.fetchall() != [("force_custom_plan",)]
