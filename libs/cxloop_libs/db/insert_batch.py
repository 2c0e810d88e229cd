"""Rows a transaction inserts into several tables, written together at its
end: on PostgreSQL as one statement.

A transaction that inserts into seven tables (a `Resolve` sign-up: customer,
identifier, link, history, subject key, trait observation, outbox) spends
more CPU building, sending and reading back seven statements than
PostgreSQL spends running them; at one sign-up per transaction that was
most of the transaction's cost (ADR 0305). The rows are collected here and
sent as one statement, a data-modifying CTE per table, each expanding a
JSON array of its rows on the server (`json_populate_recordset`, the form
`AsyncStatements.insert_rows` uses), in the caller's transaction. Elsewhere
(SQLite, in-process) one executemany per table.

Only for rows nothing in the transaction reads or updates before the flush:
the caller decides which rows those are.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Table, exc
from sqlmodel import Session

from cxloop_libs.db.aio import insert_rows_sql, json_default


class InsertBatch:
    def __init__(self) -> None:
        self._rows: dict[tuple[str, tuple[str, ...]], tuple[Table, list[Mapping[str, Any]]]] = {}

    def add(self, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
        for row in rows:
            key = (table.name, tuple(row))
            entry = self._rows.get(key)
            if entry is None:
                entry = self._rows[key] = (table, [])
            entry[1].append(row)

    def __len__(self) -> int:
        return sum(len(rows) for _, rows in self._rows.values())

    def flush(self, session: Session) -> int:
        """Insert everything added (in the session's transaction); returns
        the rows inserted. A column a row leaves out gets the table's
        Python-side default, as a Core insert would give it (a primary key
        left out is the database's: an autoincrementing id)."""
        work = [(t, _with_defaults(t, rows)) for t, rows in self._rows.values()]
        self._rows = {}
        if not work:
            return 0
        if session.get_bind().dialect.name != "postgresql":
            for table, rows in work:
                session.execute(table.insert(), rows)
            return sum(len(rows) for _, rows in work)
        import psycopg

        sql = insert_rows_sql(tuple((t.name, tuple(rows[0])) for t, rows in work))
        docs = [json.dumps(rows, default=json_default, separators=(",", ":")) for _, rows in work]
        raw: Any = session.connection().connection.driver_connection
        try:
            with raw.cursor() as cur:
                cur.execute(sql, docs)
        except psycopg.errors.IntegrityError as err:
            # As `bulk_insert`: callers re-run a transaction a concurrent
            # writer beat by SQLAlchemy's error (is_conflict_error).
            raise exc.IntegrityError(sql, None, err) from err
        except psycopg.OperationalError as err:
            raise exc.OperationalError(sql, None, err) from err
        return sum(len(rows) for _, rows in work)


def _with_defaults(table: Table, rows: list[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    given = set(rows[0])
    missing = {
        c.name: c.default
        for c in table.columns
        if c.name not in given and c.default is not None and not c.primary_key
    }
    if not missing:
        return rows
    out: list[Mapping[str, Any]] = []
    for row in rows:
        full = dict(row)
        for name, default in missing.items():
            arg = default.arg  # type: ignore[attr-defined]
            full[name] = arg(None) if callable(arg) else arg
        out.append(full)
    return out
