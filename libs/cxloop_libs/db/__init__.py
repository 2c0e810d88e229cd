"""One database per service: SQLModel engine, sessions, Alembic migrations at start."""

from cxloop_libs.db.engine import (
    Database,
    bulk_insert,
    is_conflict_error,
    is_transient_db_error,
    make_engine,
    normalize_url,
    one_of,
    one_of_bound,
)
from cxloop_libs.db.insert_batch import InsertBatch
from cxloop_libs.db.migrations import run_migrations

__all__ = [
    "Database",
    "InsertBatch",
    "bulk_insert",
    "is_conflict_error",
    "is_transient_db_error",
    "make_engine",
    "normalize_url",
    "one_of",
    "one_of_bound",
    "run_migrations",
]
