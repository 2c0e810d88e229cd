"""Engine and session handling shared by every service.

Services are asyncio processes, but the database layer is synchronous
SQLAlchemy run in worker threads (docs/adr/0003-sync-db-in-threads.md): one
mechanism for SQLite and PostgreSQL, Alembic stays simple, and a consumer hops
to a thread once per micro-batch, not once per row.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine, Table, bindparam, event, exc
from sqlalchemy import any_ as sa_any
from sqlmodel import Session, create_engine

log = logging.getLogger(__name__)

T = TypeVar("T")


def normalize_url(url: str) -> str:
    """Map the URLs operators write to the driver we ship (psycopg 3)."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    # WAL lets the relay read while a consumer writes; busy_timeout makes the
    # few writers of one file wait for each other instead of failing.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def make_engine(url: str, *, echo: bool = False) -> Engine:
    url = normalize_url(url)
    if url.startswith("sqlite"):
        path = url.split("///", 1)[1] if "///" in url else ""
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url, echo=echo, connect_args={"check_same_thread": False, "timeout": 30}
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    engine = create_engine(
        url,
        echo=echo,
        pool_size=5,
        max_overflow=10,
        connect_args={
            # A database that is down must fail fast so callers can degrade.
            "connect_timeout": 5,
            # psycopg prepares a statement after 5 runs, and PostgreSQL then
            # may switch to a generic plan: for our batch `IN (500 ids)`
            # lookups that is a sequential scan, 25x slower once a table grows.
            "prepare_threshold": None,
        },
    )
    _ping_when_idle(engine)
    return engine


# Below this many rows `bulk_insert` sends one INSERT rather than a COPY.
COPY_FROM_ROWS = 8

# A pooled connection unused for longer than this is checked (one round trip)
# before it is handed out.
PING_AFTER_IDLE_S = 1.0


def _ping_when_idle(engine: Engine) -> None:
    """Check a pooled connection only when it sat unused for a while.

    ``pool_pre_ping`` pings at every checkout: at hundreds of transactions a
    second that is one extra round trip in each (6.5 % of identity's
    `GetProfile` profile). A connection handed back a moment ago is alive as
    far as a ping could tell; one that sat idle (a restart, a failover, a
    firewall may have cut it) is pinged, and a dead one is replaced before
    anyone uses it, as pre-ping did.
    """

    @event.listens_for(engine, "checkin")
    def _checked_in(_dbapi: Any, record: Any) -> None:
        record.info["cxloop_idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checking_out(dbapi: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("cxloop_idle_since")
        if since is None or time.monotonic() - since < PING_AFTER_IDLE_S:
            return  # just connected, or in use a moment ago
        try:
            alive = engine.dialect.do_ping(dbapi)
        except Exception as err:
            raise exc.DisconnectionError(f"pooled connection is dead: {err}") from err
        if not alive:
            raise exc.DisconnectionError("pooled connection is dead")


def is_transient_db_error(error: BaseException) -> bool:
    """True for failures that a retry can fix (database down, lock, failover)."""
    if isinstance(error, exc.OperationalError | exc.InterfaceError | exc.TimeoutError):
        return True
    if isinstance(error, exc.DBAPIError) and error.connection_invalidated:
        return True
    return False


def is_conflict_error(error: BaseException) -> bool:
    """True when a concurrent writer got there first (unique key taken). The
    transaction is sound to re-run: it will now read what the other wrote."""
    return isinstance(error, exc.IntegrityError)


class Database:
    """A service's datastore: engine plus sessions, usable from asyncio code."""

    def __init__(self, url: str) -> None:
        self.url = normalize_url(url)
        self.engine = make_engine(self.url)
        # Called with each session right after it committed, in the thread
        # that committed it: a service keeping state in memory applies what
        # the transaction left in ``session.info`` (consent's preferences,
        # docs/adr/0310). A hook that raises is logged; the commit stands.
        self.after_commit: list[Callable[[Session], None]] = []

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A unit of work: commits on success, rolls back on any error."""
        with Session(self.engine, expire_on_commit=False) as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise
            for hook in self.after_commit:
                try:
                    hook(session)
                except Exception:
                    log.exception("after-commit hook failed")

    async def run(self, fn: Callable[..., T], /, *args: Any) -> T:
        """Run blocking database work off the event loop (contextvars, and so
        the current trace span, are carried into the thread)."""
        return await asyncio.to_thread(fn, *args)

    async def in_transaction(self, fn: Callable[[Session], T], *, conflict_retries: int = 3) -> T:
        """Run ``fn`` in one transaction in a worker thread, re-running it when
        a concurrent writer (another replica, a consumer) took a key first."""

        def work() -> T:
            for attempt in range(conflict_retries + 1):
                try:
                    with self.session() as s:
                        return fn(s)
                except exc.IntegrityError:
                    if attempt == conflict_retries:
                        raise
            raise AssertionError("unreachable")

        return await asyncio.to_thread(work)

    def dispose(self) -> None:
        self.engine.dispose()


def one_of(column: Any, values: list[Any], dialect_name: str) -> Any:
    """``column IN values`` that stays cheap for hundreds of values.

    On PostgreSQL it binds one array (``= ANY(:values)``) so SQLAlchemy compiles
    and caches one statement; an ``IN`` list of 500 bind parameters is
    re-compiled for every batch. Elsewhere (SQLite) a plain IN is fine.
    """
    if dialect_name == "postgresql":
        from sqlalchemy.dialects.postgresql import ARRAY

        return column == sa_any(bindparam(None, value=values, type_=ARRAY(column.type)))
    return column.in_(values)


def one_of_bound(column: Any, dialect_name: str, name: str = "values") -> Any:
    """`one_of` with the list bound at execution as parameter ``name``, so
    a statement using it is built once and run many times (an ``= ANY``
    array on PostgreSQL, an expanding IN elsewhere): building a statement
    and its cache key per call cost as much as running it (ADR 0290)."""
    if dialect_name == "postgresql":
        from sqlalchemy.dialects.postgresql import ARRAY

        return column == sa_any(bindparam(name, type_=ARRAY(column.type)))
    return column.in_(bindparam(name, expanding=True))


def _binary_type(t: Any) -> str | None:
    """The PostgreSQL type a binary COPY sends a column's values as, or None
    when this column type is not one of the few mapped here."""
    from sqlalchemy import types as sat

    if isinstance(t, sat.String):  # Text, VARCHAR(n), SQLModel's AutoString
        return "text"  # varchar's binary input is text's (its length still checked)
    if isinstance(t, sat.LargeBinary):
        return "bytea"
    if isinstance(t, sat.DateTime):
        return "timestamptz" if t.timezone else "timestamp"
    if isinstance(t, sat.BigInteger):
        return "int8"
    if isinstance(t, sat.SmallInteger):
        return "int2"
    if isinstance(t, sat.Integer):
        return "int4"
    if isinstance(t, sat.Float):
        return "float8"
    if isinstance(t, sat.Boolean):
        return "bool"
    return None


def binary_copy_types(table: Table, keys: Sequence[str]) -> list[str] | None:
    """The types of ``keys`` for a binary COPY into ``table``, or None if a
    column's type is not mapped (the caller then copies as text)."""
    out = []
    for k in keys:
        name = _binary_type(table.c[k].type)
        if name is None:
            return None
        out.append(name)
    return out


def bulk_insert(
    session: Session,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    *,
    binary: bool = False,
) -> None:
    """Insert many rows in one statement.

    On PostgreSQL more than `COPY_FROM_ROWS` rows go in with COPY (executemany sends a Bind/Execute
    per row). Elsewhere (SQLite, in-process), executemany.
    Every row must have the same keys.

    ``binary``: COPY in PostgreSQL's binary format when every column's type
    is mapped (text, bytea, timestamps, integers, floats, booleans): no text
    quoting, hex-encoded bytes or timestamp formatting per value (an outbox
    row 1.2 µs of client CPU instead of 2.9, ADR 0285). Stricter than text:
    each value must be of its column's Python type (``str`` for text, an
    aware ``datetime`` for ``timestamptz``), so callers opt in.
    """
    if not rows:
        return
    if session.get_bind().dialect.name != "postgresql" or len(rows) <= COPY_FROM_ROWS:
        # A few rows (an audited read's entry and its outbox event): one
        # INSERT is one round trip, where COPY takes two.
        session.execute(table.insert(), list(rows))
        return
    # COPY through the session's own connection (same transaction): psycopg
    # writes the rows in C, where unnest()ed array parameters cost ~25 % of a
    # consumer batch in text quoting.
    import psycopg

    keys = list(rows[0].keys())
    cols = ", ".join(f'"{k}"' for k in keys)
    raw: Any = session.connection().connection.driver_connection
    types = binary_copy_types(table, keys) if binary else None
    statement = f'COPY "{table.name}" ({cols}) FROM STDIN' + (
        " (FORMAT BINARY)" if types is not None else ""
    )
    try:
        with raw.cursor() as cur, cur.copy(statement) as copy:
            if types is not None:
                copy.set_types(types)
            for r in rows:
                copy.write_row([r[k] for k in keys])
    except psycopg.errors.IntegrityError as err:
        # The raw driver bypasses SQLAlchemy's wrapping; callers rely on it to
        # re-run a transaction a concurrent writer beat (is_conflict_error).
        raise exc.IntegrityError(statement, None, err) from err
    except psycopg.OperationalError as err:
        raise exc.OperationalError(statement, None, err) from err
