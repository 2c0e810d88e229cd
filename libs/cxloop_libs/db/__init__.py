"""One database per service: SQLModel engine, sessions, Alembic migrations at start."""

from cxloop_libs.db.engine import (
    Database,
    is_conflict_error,
    is_transient_db_error,
    make_engine,
    normalize_url,
)
from cxloop_libs.db.migrations import run_migrations

__all__ = [
    "Database",
    "is_conflict_error",
    "is_transient_db_error",
    "make_engine",
    "normalize_url",
    "run_migrations",
]
