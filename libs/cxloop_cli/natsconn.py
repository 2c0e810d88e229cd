"""One way for `cxloop` commands to reach NATS: quietly, once, and with an
error a person can act on instead of a traceback."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import nats
from nats.aio.client import Client

from cxloop_libs.messaging.connection import nats_connect_options


class NatsUnreachable(Exception):
    def __init__(self, url: str, cause: BaseException) -> None:
        super().__init__(
            f"cannot reach NATS at {url} ({type(cause).__name__}); is the suite running "
            "(`cxloop up`), or set --nats-url / CXLOOP_NATS_URL"
        )


async def _quiet(_: Exception) -> None:
    return None


@asynccontextmanager
async def connected(url: str) -> AsyncIterator[Client]:
    try:
        nc = await nats.connect(
            # Credentials and TLS from CXLOOP_NATS_* like every other client.
            **nats_connect_options(url),
            connect_timeout=3,
            # One try. (nats-py 2.16 retries the first connect forever with
            # allow_reconnect=False and max_reconnect_attempts=0.)
            max_reconnect_attempts=1,
            reconnect_time_wait=0.5,
            error_cb=_quiet,
        )
    except Exception as exc:
        raise NatsUnreachable(url, exc) from None
    try:
        yield nc
    finally:
        await nc.close()
