from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import nats
import pytest
from nats.js.errors import NotFoundError

from consent.bootstrap import bootstrap
from consent.config import ConsentSettings
from cxloop_libs.consent.state_bucket import STATE_STREAM
from cxloop_libs.messaging import EventPublisher, NatsBus, stream_for
from cxloop_libs.runtime import ServiceRuntime
from cxloop_testing import infra
from cxloop_testing.infra import eventually


@pytest.fixture
async def clean_consent_nats(clean_nats: str) -> str:
    """clean_nats, plus the consent state bucket (not among the shared streams)."""
    nc = await nats.connect(clean_nats)
    try:
        with contextlib.suppress(NotFoundError):
            await nc.jetstream().delete_stream(STATE_STREAM)
    finally:
        await nc.close()
    return clean_nats


@pytest.fixture
async def identity_events(clean_consent_nats: str) -> AsyncIterator[EventPublisher]:
    """Publishes on the IDENTITY stream as the identity service would."""
    bus = NatsBus(clean_consent_nats, name="test-identity", streams=[stream_for("identity")])
    await bus.connect(timeout=10)
    yield EventPublisher(bus, source="/cxloop/identity")
    await bus.close()


async def start_consent(nats_url: str, database_url: str, **overrides: Any) -> ServiceRuntime:
    settings = ConsentSettings(
        env="test",
        nats_url=nats_url,
        database_url=database_url,
        grpc_port=0,
        metrics_port=0,
        **overrides,
    )
    runtime = await bootstrap(settings)
    await runtime.start()
    await runtime.db_ready.wait()
    await eventually(lambda: runtime.handlers.is_ready)  # type: ignore[attr-defined]
    return runtime


@pytest.fixture
def identity_database_url(database_url: str, tmp_path: Path) -> Iterator[str]:
    """A second database of the same kind, for the identity service."""
    if database_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'identity.db'}"
        return
    admin = infra.postgres_admin_url()
    assert admin is not None
    with infra.fresh_postgres_database(admin) as url:
        yield url
