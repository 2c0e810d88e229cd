"""Pooled PostgreSQL connections are pinged only after sitting idle
(`PING_AFTER_IDLE_S`): a connection the server dropped while it was idle is
replaced before anyone uses it, and one handed back a moment ago costs no
extra round trip."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
import sqlalchemy as sa

from cxloop_libs.db import Database
from cxloop_libs.db import engine as engine_module
from cxloop_libs.db.aio import libpq_conninfo

pytestmark = pytest.mark.integration


@pytest.fixture
def db(postgres_url: str) -> Iterator[Database]:
    database = Database(postgres_url)
    yield database
    database.dispose()


def backend_pid(db: Database) -> int:
    with db.session() as s:
        return int(s.execute(sa.text("SELECT pg_backend_pid()")).scalar_one())


def kill(db: Database, pid: int) -> None:
    with psycopg.connect(libpq_conninfo(db.url), autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(%s)", (pid,))


def test_a_connection_dropped_while_idle_is_replaced_before_use(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = backend_pid(db)
    kill(db, first)
    monkeypatch.setattr(engine_module, "PING_AFTER_IDLE_S", 0.0)  # "idle long enough"
    assert backend_pid(db) != first  # pinged, found dead, replaced: no error


def test_a_connection_used_a_moment_ago_is_not_pinged(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine_module, "PING_AFTER_IDLE_S", 3600.0)
    pings: list[object] = []
    original = db.engine.dialect.do_ping
    monkeypatch.setattr(db.engine.dialect, "do_ping", lambda c: pings.append(c) or original(c))
    first = backend_pid(db)
    for _ in range(5):
        assert backend_pid(db) == first
    assert pings == []
    # Without the ping a connection killed meanwhile fails its first use, and
    # the pool then reconnects: the ping above is what spares that error.
    kill(db, first)
    with pytest.raises(sa.exc.OperationalError):
        backend_pid(db)
    assert backend_pid(db) != first
