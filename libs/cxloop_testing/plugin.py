"""pytest fixtures for real infrastructure (loaded with -p cxloop_testing.plugin)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cxloop_testing import infra


@pytest.fixture(scope="session")
def nats_url() -> str:
    return infra.nats_url()


@pytest.fixture
async def clean_nats(nats_url: str) -> str:
    """The NATS URL, with every cxloop stream deleted first."""
    await infra.reset_streams(nats_url)
    return nats_url


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database: every test that takes it runs on both."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'test.db'}"
        return
    admin = infra.postgres_admin_url()
    if admin is None:
        if infra.in_ci():
            pytest.fail("PostgreSQL is required in CI but none was found")
        pytest.skip("no PostgreSQL available on this machine")
    with infra.fresh_postgres_database(admin) as url:
        yield url


@pytest.fixture
def postgres_url(tmp_path: Path) -> Iterator[str]:
    """A fresh PostgreSQL database (tests that only make sense on PostgreSQL)."""
    admin = infra.postgres_admin_url()
    if admin is None:
        if infra.in_ci():
            pytest.fail("PostgreSQL is required in CI but none was found")
        pytest.skip("no PostgreSQL available on this machine")
    with infra.fresh_postgres_database(admin) as url:
        yield url
