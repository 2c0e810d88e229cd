"""Unit fixtures: the gateway app with a fake publisher, no network."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from cxloop_libs.pii import IdentifierHasher
from gateway.adapters.http import create_app
from gateway.domain.translation import InteractionTranslator
from gateway.domain.write_keys import WriteKeys
from gateway.service_layer.ingest import SegmentIngest
from gateway.tests.unit.fakes import (
    HASH_KEY,
    SOURCE,
    WRITE_KEY,
    Bus,
    FakeReadiness,
    FakeSink,
)


@pytest.fixture
def hasher() -> IdentifierHasher:
    return IdentifierHasher(HASH_KEY)


@pytest.fixture
def translator(hasher: IdentifierHasher) -> InteractionTranslator:
    return InteractionTranslator(hasher)


@pytest.fixture
def sink() -> FakeSink:
    return FakeSink()


@pytest.fixture
def bus() -> Bus:
    return Bus()


@pytest.fixture
def readiness() -> FakeReadiness:
    return FakeReadiness()


@pytest.fixture
def limits() -> dict[str, int]:
    return {"max_batch_events": 5, "max_batch_bytes": 64 * 1024}


@pytest.fixture
async def client(
    translator: InteractionTranslator,
    sink: FakeSink,
    bus: Bus,
    readiness: FakeReadiness,
    limits: dict[str, int],
) -> AsyncIterator[httpx.AsyncClient]:
    ingest = SegmentIngest(
        translator,
        sink,
        max_batch_events=limits["max_batch_events"],
        is_connected=lambda: bus.is_connected,
    )
    app = create_app(
        ingest=ingest,
        write_keys=WriteKeys({WRITE_KEY: SOURCE}),
        readiness=readiness,
        max_batch_bytes=limits["max_batch_bytes"],
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as c:
        yield c
