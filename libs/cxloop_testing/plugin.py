"""pytest fixtures for real infrastructure (loaded with -p cxloop_testing.plugin)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
import pytest

from cxloop_testing import infra


def _own_subchannels(make: Any, options_at: int) -> Any:
    """``make`` (a grpc channel factory) with a subchannel pool per channel.

    gRPC shares subchannels between the channels of one process that name
    the same address. Tests start servers on port 0, and the kernel may hand
    a new server the port of one an earlier test stopped: a new channel then
    inherits the old subchannel's "connection refused" and its back-off, and
    the first call fails UNAVAILABLE although the server is listening (seen
    once in `make test`). A channel's own pool starts fresh."""

    def channel(*args: Any, **kwargs: Any) -> Any:
        head, tail = args[:options_at], args[options_at + 1 :]
        given = args[options_at] if len(args) > options_at else kwargs.pop("options", None)
        options = list(given or [])
        if not any(name == "grpc.use_local_subchannel_pool" for name, _ in options):
            options.append(("grpc.use_local_subchannel_pool", 1))
        return make(*head, options, *tail, **kwargs)

    return channel


grpc.aio.insecure_channel = _own_subchannels(grpc.aio.insecure_channel, 1)
grpc.aio.secure_channel = _own_subchannels(grpc.aio.secure_channel, 2)
grpc.insecure_channel = _own_subchannels(grpc.insecure_channel, 1)
grpc.secure_channel = _own_subchannels(grpc.secure_channel, 2)


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
