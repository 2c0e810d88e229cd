"""`bulk_insert(..., binary=True)` on PostgreSQL (ADR 0285): binary COPY
stores exactly what the text COPY stores (text with tabs, backslashes and
non-ASCII, bytea, aware timestamps in any zone, integers, floats, booleans,
NULLs, VARCHAR limits), falls back to text for a column type it does not
map, and is really binary (a value of the wrong Python type fails there)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone

import psycopg
import pytest
import sqlalchemy as sa

from cxloop_libs.db import Database
from cxloop_libs.db.engine import COPY_FROM_ROWS, binary_copy_types, bulk_insert

pytestmark = pytest.mark.integration

metadata = sa.MetaData()
rows_table = sa.Table(
    "test_bulk_row",
    metadata,
    sa.Column("k", sa.String(16), primary_key=True),
    sa.Column("body", sa.Text),
    sa.Column("data", sa.LargeBinary),
    sa.Column("at", sa.DateTime(timezone=True)),
    sa.Column("naive_at", sa.DateTime()),
    sa.Column("n", sa.Integer),
    sa.Column("big", sa.BigInteger),
    sa.Column("x", sa.Float),
    sa.Column("ok", sa.Boolean),
)
json_table = sa.Table(
    "test_bulk_json",
    metadata,
    sa.Column("k", sa.String(16), primary_key=True),
    sa.Column("doc", sa.JSON),
)

KST = timezone(timedelta(hours=9))


@pytest.fixture
def db(postgres_url: str) -> Iterator[Database]:
    database = Database(postgres_url)
    metadata.create_all(database.engine)
    yield database
    database.dispose()


def _rows(prefix: str) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    for i in range(COPY_FROM_ROWS + 5):  # above the threshold: COPY
        out.append(
            {
                "k": f"{prefix}{i:03d}",
                "body": None if i == 3 else f'{{"a": "tab\\t, back\\\\slash, 한글 {i}"}}\n',
                "data": None if i == 4 else bytes([0, 9, 10, 92, 255, i]),
                "at": datetime(2026, 3, 1, 9, 30, 15, 123456, tzinfo=KST) + timedelta(seconds=i),
                "naive_at": datetime(2026, 3, 1, 0, 0, i),
                "n": -i,
                "big": 2**40 + i,
                "x": i / 3,
                "ok": i % 2 == 0,
            }
        )
    return out


def _stored(db: Database, prefix: str) -> list[tuple[object, ...]]:
    cols = [c for c in rows_table.columns if c.name != "k"]
    with db.engine.connect() as c:
        return [
            tuple(r)
            for r in c.execute(
                sa.select(*cols).where(rows_table.c.k.like(f"{prefix}%")).order_by(rows_table.c.k)
            )
        ]


def test_binary_copy_stores_what_text_copy_stores(db: Database) -> None:
    with db.session() as s:
        bulk_insert(s, rows_table, _rows("t"))
        bulk_insert(s, rows_table, _rows("b"), binary=True)
    text, binary = _stored(db, "t"), _stored(db, "b")
    assert binary == text
    assert binary[0][2].astimezone(UTC) == datetime(2026, 3, 1, 0, 30, 15, 123456, tzinfo=UTC)
    assert binary[5][1] == bytes([0, 9, 10, 92, 255, 5])


def test_binary_copy_keeps_varchar_limits(db: Database) -> None:
    rows = _rows("v")
    rows[-1]["k"] = "v" * 17  # VARCHAR(16)
    # The raw driver's error: bulk_insert wraps only conflicts and lost connections.
    with pytest.raises(psycopg.errors.StringDataRightTruncation), db.session() as s:
        bulk_insert(s, rows_table, rows, binary=True)


def test_binary_copy_is_binary_and_an_unmapped_type_copies_as_text(db: Database) -> None:
    assert binary_copy_types(json_table, ["k", "doc"]) is None
    with db.session() as s:  # falls back to text COPY: stored
        bulk_insert(
            s,
            json_table,
            [{"k": f"j{i}", "doc": '{"a": 1}'} for i in range(COPY_FROM_ROWS + 1)],
            binary=True,
        )
    rows = _rows("w")
    rows[0]["n"] = "12"  # text COPY reads "12" as an integer; binary does not
    with db.session() as s:
        bulk_insert(s, rows_table, rows)
    rows = _rows("z")
    rows[0]["n"] = "12"
    with pytest.raises((psycopg.Error, TypeError, ValueError)), db.session() as s:
        bulk_insert(s, rows_table, rows, binary=True)
