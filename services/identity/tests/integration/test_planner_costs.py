"""The consumer's batch statements probe the primary keys on a large graph
(ADR 0265): with PostgreSQL's default `random_page_cost` the planner read
the whole `identifier` and `customer` tables for a batch of 500-900 keys,
a cost growing with the customer base."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from cxloop_libs.db import Database, run_migrations
from cxloop_libs.db.aio import AsyncStatements
from cxloop_testing.infra import eventually
from identity.adapters.planner import StatisticsUpkeep, use_index_costs
from identity.adapters.repository import GraphRepository
from identity.bootstrap import MIGRATIONS

pytestmark = pytest.mark.integration

CUSTOMERS = 40_000


def _batch_plans(db: Database) -> list[str]:
    """EXPLAIN of the statements one consumer batch reads and updates with."""
    captured: list[tuple[str, Any]] = []

    def capture(_c: Any, _cur: Any, statement: str, params: Any, _ctx: Any, _many: bool) -> None:
        captured.append((statement, params))

    now = datetime.now(UTC)
    with Session(db.engine) as s:
        sa.event.listen(db.engine, "before_cursor_execute", capture)
        try:
            repo = GraphRepository(s)
            view = repo.load_view([f"h{n}" for n in range(1, 1800, 2)])  # 900 keys
            repo.load_counts(view, [f"c{n}" for n in range(1, 700)])
            repo.touch({f"c{n}": (1, now) for n in range(1, 500)}, now)
        finally:
            sa.event.remove(db.engine, "before_cursor_execute", capture)
        plans = [
            "\n".join(r[0] for r in s.connection().exec_driver_sql("EXPLAIN " + sql, p))
            for sql, p in captured
        ]
        s.rollback()
    return plans


def _fill(db: Database) -> None:
    run_migrations(db.engine, MIGRATIONS)
    with db.engine.begin() as c:
        c.exec_driver_sql(
            "INSERT INTO customer (customer_id, created_at, updated_at, interaction_count)"
            f" SELECT 'c' || g, now(), now(), 0 FROM generate_series(1, {CUSTOMERS}) g"
        )
        c.exec_driver_sql(
            "INSERT INTO identifier (hash, id_type, namespace, customer_id, first_seen_at)"
            " SELECT 'h' || g, 'email', '', 'c' || (g %% %(n)s + 1), now()"
            " FROM generate_series(1, %(n)s * 3 / 2) g",
            {"n": CUSTOMERS},
        )


def test_batch_statements_probe_keys_on_a_large_graph(postgres_url: str) -> None:
    db = Database(postgres_url)
    use_index_costs(db.engine)
    try:
        _fill(db)
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
            c.exec_driver_sql("ANALYZE customer, identifier")  # as autovacuum would
        with db.engine.connect() as c:
            assert c.exec_driver_sql("SHOW random_page_cost").scalar_one() == "1.1"
        plans = _batch_plans(db)
        assert len(plans) == 3
        for plan in plans:
            assert "Seq Scan on identifier" not in plan, plan
            assert "Seq Scan on customer" not in plan, plan
    finally:
        db.dispose()


async def test_without_autovacuum_the_upkeep_analyzes_a_grown_graph(postgres_url: str) -> None:
    """This project's CI PostgreSQL runs with autovacuum off: no statistics,
    and the planner, misjudging the tables' sizes, scans them whole. The
    upkeep ANALYZEs tables changed by a tenth; then the same plans probe."""
    db = Database(postgres_url)
    use_index_costs(db.engine)
    statements = AsyncStatements.for_database(db)
    assert statements is not None
    upkeep = StatisticsUpkeep(statements)
    try:
        _fill(db)
        # Counters reach pg_stat_user_tables within about a second.
        assert await eventually(upkeep.check_once, timeout=10) == ["customer", "identifier"]
        assert await upkeep.check_once() == []  # nothing changed since
        for plan in _batch_plans(db):
            assert "Seq Scan on identifier" not in plan, plan
            assert "Seq Scan on customer" not in plan, plan
    finally:
        await statements.close()
        db.dispose()


def test_other_databases_are_left_alone(tmp_path: Any) -> None:
    db = Database(f"sqlite:///{tmp_path / 'identity.db'}")
    use_index_costs(db.engine)  # no listener, nothing to set on SQLite
    with db.engine.connect() as c:
        assert c.exec_driver_sql("SELECT 1").scalar_one() == 1
    db.dispose()
