"""Hot statements on the event loop, for PostgreSQL.

Most database work runs as SQLAlchemy sessions in worker threads (ADR 0003).
For the few statements a service runs hundreds of times a second - a batch of
`Resolve` lookups, the outbox relay's fetch and delete - that costs more than
the statement: a thread hop, a pool checkout with its ping, ORM result
handling and a commit, each taking the GIL from the event loop that serves
gRPC. `AsyncStatements` runs them on one autocommit psycopg connection in the
event loop instead (docs/adr/0022-hot-path-cpu.md): one round trip, prepared
once, no thread.

Mostly for single statements that need no transaction of their own (a read,
or a delete that is idempotent). The one exception is `insert_rows`: rows of
several tables inserted by one statement (one round trip, atomic), for a
write path that knows up front everything it will write and needs nothing
read inside the transaction (identity's new customers).
Anything else that must commit together stays in `Database.in_transaction`.
SQLite has no such path: `AsyncStatements.for_database` returns None and
callers keep the thread path.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import psycopg
import sqlalchemy as sa
from sqlalchemy.engine import make_url

log = logging.getLogger(__name__)


def libpq_conninfo(sqlalchemy_url: str) -> str:
    """`postgresql+psycopg://u:p@h:5432/db?x=y` → libpq conninfo for psycopg."""
    url = make_url(sqlalchemy_url)
    parts: dict[str, Any] = {
        "host": url.host,
        "port": url.port,
        "dbname": url.database,
        "user": url.username,
        "password": url.password,
        **{k: v for k, v in url.query.items() if isinstance(v, str)},
    }
    return psycopg.conninfo.make_conninfo(**{k: v for k, v in parts.items() if v is not None})


class AsyncStatements:
    """One lazily opened autocommit connection; reconnects after a failure.

    psycopg serialises statements on one connection, so callers batch (one
    statement per batch of requests), which is what makes this path cheap.
    Errors propagate as psycopg errors; `is_transient` tells a lost
    connection from a bad statement.
    """

    def __init__(self, conninfo: str, *, connect_timeout_s: float = 5.0) -> None:
        self._conninfo = conninfo
        self._timeout = connect_timeout_s
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self._connecting = asyncio.Lock()

    @classmethod
    def for_database(cls, db: Any) -> AsyncStatements | None:
        """For a `cxloop_libs.db.Database` on PostgreSQL, else None."""
        if getattr(db, "is_sqlite", True):
            return None
        return cls(libpq_conninfo(db.url))

    async def _connection(self) -> psycopg.AsyncConnection[Any]:
        conn = self._conn
        if conn is not None and not conn.closed:
            return conn
        async with self._connecting:
            if self._conn is None or self._conn.closed:
                conn = await psycopg.AsyncConnection.connect(
                    self._conninfo,
                    autocommit=True,
                    connect_timeout=max(1, int(self._timeout)),
                )
                # Prepared (no parse per call) but planned per call: a generic
                # plan is cached when the statement is first prepared, and for
                # a table still nearly empty then - a new service - it is a
                # sequential scan that stays until an ANALYZE invalidates it;
                # with autovacuum off, never (identity's lookups read the
                # whole identifier table, growing costlier with every
                # customer). Planning these one-table statements costs ~µs.
                await conn.execute("SET plan_cache_mode = force_custom_plan")
                self._conn = conn
            return self._conn

    async def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        conn = await self._connection()
        try:
            cur = await conn.execute(sql, params, prepare=True)
            return await cur.fetchall()
        except psycopg.OperationalError:
            await self._drop()
            raise

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        conn = await self._connection()
        try:
            cur = await conn.execute(sql, params, prepare=True)
            return cur.rowcount
        except psycopg.OperationalError:
            await self._drop()
            raise

    async def insert_rows(
        self, tables: Sequence[tuple[sa.Table, Sequence[Mapping[str, Any]]]]
    ) -> int:
        """Insert the rows of each table in one statement: one data-modifying
        CTE per table, each expanding a JSON array of its rows on the server
        (`json_populate_recordset` types every column from the table). One
        statement is one transaction even in autocommit: every row is stored
        or none is; a unique violation raises `psycopg.errors.IntegrityError`
        (the caller decides what a concurrent writer's win means). Every row
        of one table must have the same keys. Returns the rows inserted."""
        work = [(t.name, rows) for t, rows in tables if rows]
        if not work:
            return 0
        sql = insert_rows_sql(tuple((name, tuple(rows[0])) for name, rows in work))
        docs = [json.dumps(rows, default=json_default, separators=(",", ":")) for _, rows in work]
        await self.execute(sql, docs)
        return sum(len(rows) for _, rows in work)

    async def utility(self, sql: str) -> None:
        """A statement that cannot be prepared or run in a transaction
        (VACUUM), as is on the autocommit connection."""
        conn = await self._connection()
        try:
            await conn.execute(sql)
        except psycopg.OperationalError:
            await self._drop()
            raise

    async def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                await conn.close()
            except Exception:  # already broken; nothing more to release
                log.debug("closing a failed connection", exc_info=True)

    async def close(self) -> None:
        await self._drop()

    @staticmethod
    def is_transient(error: BaseException) -> bool:
        return isinstance(error, psycopg.OperationalError | OSError)


@functools.lru_cache(maxsize=256)
def insert_rows_sql(shape: tuple[tuple[str, tuple[str, ...]], ...]) -> str:
    """INSERTs of several tables as one statement; one JSON parameter each."""
    parts = []
    for table, keys in shape:
        cols = ", ".join(f'"{k}"' for k in keys)
        parts.append(
            f'INSERT INTO "{table}" ({cols}) SELECT {cols}'
            f' FROM json_populate_recordset(NULL::"{table}", %s::json)'
        )
    *first, last = parts
    ctes = ", ".join(f"w{n} AS ({p})" for n, p in enumerate(first))
    return f"WITH {ctes} {last}" if ctes else last


def json_default(value: object) -> str:
    """`json.dumps` default for rows PostgreSQL expands from JSON: datetimes
    as ISO 8601, bytes in bytea's hex input form."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        return "\\x" + bytes(value).hex()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
