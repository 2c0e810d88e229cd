"""Planner costs for identity's PostgreSQL sessions (docs/adr/0265).

Every statement on identity's hot paths is a keyed lookup of a batch: the
consumer's graph view (`identifier.hash = ANY(...)` joined to `customer`),
merge-protection counts (`identifier.customer_id = ANY(...)`) and the
activity update (`customer` joined to an `unnest` of the batch), 500-1,000
keys each. With PostgreSQL's default `random_page_cost` (4, a spinning disk)
the planner prices 700 index probes above reading the whole table once the
table holds a few tens of thousands of rows, and picks a sequential scan
(with or without statistics): a cost that grows with the customer base,
paid three times per consumer batch. Identity's tables are hot in memory;
at 1.1 (the usual value for SSDs and cached data) the same statements probe
the primary keys, whatever the table's size - provided the planner knows
that size: `StatisticsUpkeep` ANALYZEs the graph tables where autovacuum
does not run.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from cxloop_libs.db.aio import AsyncStatements
from cxloop_libs.runtime import ServiceRuntime

log = logging.getLogger(__name__)

RANDOM_PAGE_COST = "1.1"


def use_index_costs(engine: sa.Engine) -> None:
    """Every new connection of ``engine`` (PostgreSQL) prices random reads as
    cached ones; other databases are left alone."""
    if engine.dialect.name != "postgresql":
        return

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        autocommit = dbapi_connection.autocommit
        dbapi_connection.autocommit = True  # a SET outside any transaction
        try:
            dbapi_connection.execute(f"SET random_page_cost = {RANDOM_PAGE_COST}")
        finally:
            dbapi_connection.autocommit = autocommit


# Tables whose statistics the hot statements are planned on.
ANALYZED_TABLES = ("customer", "identifier")
# Autovacuum's analyze rule (50 rows + 10 %), a little later.
_STALE_SQL = (
    "SELECT relname FROM pg_stat_user_tables WHERE relname = ANY(%s)"
    " AND n_mod_since_analyze > 500 + 0.1 * n_live_tup ORDER BY relname"
)


class StatisticsUpkeep:
    """ANALYZEs identity's graph tables once they have changed by a tenth
    since their last ANALYZE: the cost setting above chooses key probes only
    when the planner knows the tables' sizes, and a database run without
    autovacuum (this project's CI machines: `autovacuum = off`) never
    collects them; the consumer then read both tables whole for every batch.
    Where autovacuum runs it has usually done it first and this finds
    nothing to do (one catalogue read every `interval_s`)."""

    def __init__(
        self, statements: AsyncStatements, *, tables: Sequence[str] = ANALYZED_TABLES
    ) -> None:
        self.statements = statements
        self.tables = list(tables)
        self.analyzed = 0

    async def check_once(self) -> list[str]:
        """ANALYZE the tables that need it; returns their names."""
        stale = [r[0] for r in await self.statements.fetch(_STALE_SQL, (self.tables,))]
        if stale:
            await self.statements.utility("ANALYZE " + ", ".join(f'"{t}"' for t in stale))
            self.analyzed += len(stale)
        return stale

    async def run(self, stopping: asyncio.Event, interval_s: float = 5.0) -> None:
        while True:
            try:
                await asyncio.wait_for(stopping.wait(), interval_s)
                return
            except TimeoutError:
                pass
            try:
                await self.check_once()
            except Exception as exc:  # housekeeping: retried next interval
                log.warning("statistics upkeep failed: %r", exc)


def join_statistics_upkeep(runtime: ServiceRuntime, interval_s: float = 5.0) -> None:
    """Run `StatisticsUpkeep` from when the database is migrated until stop
    (PostgreSQL only)."""
    statements = AsyncStatements.for_database(runtime.db)
    if statements is None:
        return
    stopping = asyncio.Event()
    upkeep = StatisticsUpkeep(statements)

    async def run() -> None:
        ready = asyncio.ensure_future(runtime.db_ready.wait())
        stop = asyncio.ensure_future(stopping.wait())
        await asyncio.wait([ready, stop], return_when=asyncio.FIRST_COMPLETED)
        for f in (ready, stop):
            f.cancel()
        try:
            if not stopping.is_set():
                await upkeep.run(stopping, interval_s)
        finally:
            await statements.close()

    async def on_stop() -> None:
        stopping.set()

    runtime.extra_tasks.append(run)
    runtime.on_stop.append(on_stop)
