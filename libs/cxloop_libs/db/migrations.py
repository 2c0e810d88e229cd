"""Alembic migrations, run by every service at start.

Each service keeps its own revisions in ``adapters/migrations`` with a
two-line ``env.py`` that calls :func:`run_env`, so the Alembic wiring exists
once, here.
"""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, MetaData, text


def alembic_config(script_location: Path, engine: Engine | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(script_location))
    cfg.set_main_option("version_path_separator", "os")
    if engine is not None:
        cfg.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False))
        cfg.attributes["engine"] = engine
    return cfg


# Alembic's ``context`` and ``op`` are module-global proxies: two services
# migrating in one process at once (in-process suites in tests) would swap
# each other's context mid-run. Other processes are unaffected.
_ALEMBIC_IN_PROCESS = threading.Lock()


def migration_lock_key(script_location: Path) -> int:
    """A stable 63-bit advisory-lock key per migration history (per service)."""
    digest = hashlib.sha256(f"cxloop-migrations:{script_location.parent.parent.name}".encode())
    return int.from_bytes(digest.digest()[:8], "big") & 0x7FFF_FFFF_FFFF_FFFF


def _lock_migrations(connection: Connection, script_location: Path) -> None:
    """On PostgreSQL, wait for the other replicas' migrations (docs/adr/0031):
    replicas of a release starting on an empty database would otherwise all
    create the same tables at once. A transaction-level lock: released at
    commit or rollback, also when the process dies."""
    if connection.dialect.name == "postgresql":
        connection.execute(
            text("SELECT pg_advisory_xact_lock(:key)"), {"key": migration_lock_key(script_location)}
        )


def run_migrations(engine: Engine, script_location: Path) -> None:
    """Bring the schema to head. Replicas may run it concurrently: on
    PostgreSQL one migrates under an advisory lock, the others then find the
    schema at head; SQLite serialises writers by itself."""
    cfg = alembic_config(script_location, engine)
    with _ALEMBIC_IN_PROCESS, engine.begin() as connection:
        _lock_migrations(connection, script_location)
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, "head")


def run_env(target_metadata: MetaData | None = None) -> None:
    """Body of every service's migrations/env.py."""
    from alembic import context

    connection = context.config.attributes.get("connection")
    if connection is None:  # `alembic` CLI use: build an engine from the URL
        from cxloop_libs.db.engine import make_engine

        url = context.config.get_main_option("sqlalchemy.url") or ""
        with make_engine(url).begin() as conn:
            _configure_and_run(context, conn, target_metadata)
        return
    _configure_and_run(context, connection, target_metadata)


def _configure_and_run(context: object, connection: object, metadata: MetaData | None) -> None:
    ctx = context  # alembic.context is a proxy module without useful static types
    ctx.configure(  # type: ignore[attr-defined]
        connection=connection,
        target_metadata=metadata,
        render_as_batch=True,  # SQLite needs batch mode for ALTER
    )
    with ctx.begin_transaction():  # type: ignore[attr-defined]
        ctx.run_migrations()  # type: ignore[attr-defined]
