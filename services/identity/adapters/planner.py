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
the primary keys, whatever the table's size.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

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
