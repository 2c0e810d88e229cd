"""Replicas starting together on an empty PostgreSQL database do not race
their migrations: run_migrations holds a PostgreSQL advisory lock per
migration history, so one process migrates and the others find the schema at
head (docs/adr/0031)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[4]
MIGRATIONS = REPO / "services" / "consent" / "adapters" / "migrations"
REPLICAS = 4

SCRIPT = """
import sys, time
from pathlib import Path
from cxloop_libs.db.engine import make_engine
from cxloop_libs.db.migrations import run_migrations
url, path, start_at = sys.argv[1], Path(sys.argv[2]), float(sys.argv[3])
engine = make_engine(url)
with engine.connect() as c:  # connected before the start line: no head start
    pass
time.sleep(max(0.0, start_at - time.time()))
run_migrations(engine, path)
print("migrated")
"""


def test_replicas_on_an_empty_database_migrate_once_without_racing(postgres_url: str) -> None:
    start_at = time.time() + 3.0
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", SCRIPT, postgres_url, str(MIGRATIONS), str(start_at)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(REPLICAS)
    ]
    results = [(p.wait(120), *p.communicate()) for p in procs]
    for code, out, err in results:
        assert code == 0, err[-2000:]
        assert "migrated" in out
    engine = sa.create_engine(postgres_url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.connect() as c:
        versions = c.execute(sa.text("select version_num from alembic_version")).all()
    engine.dispose()
    assert len(versions) == 1
