"""Shared by the messaging tests: a bus on the GATEWAY stream."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from cxloop_libs.messaging import NatsBus, stream_for


@pytest.fixture
async def bus(clean_nats: str) -> AsyncIterator[NatsBus]:
    b = NatsBus(clean_nats, name="messaging-test", streams=[stream_for("gateway")])
    await b.connect(timeout=10)
    yield b
    await b.close()
