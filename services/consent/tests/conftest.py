from __future__ import annotations

import contextlib

import nats
import pytest
from nats.js.errors import NotFoundError

from cxloop_libs.consent.state_bucket import STATE_STREAM


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
