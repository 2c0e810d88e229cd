"""publish_many never lets a cancelled publish future escape (issue 10 item 2:
a NATS stall answered 500 because ``future.exception()`` raised on one)."""

from __future__ import annotations

import asyncio

from nats.js.api import PubAck

from cxloop_libs.messaging.publisher import _outcome


async def test_outcome_of_every_future_state() -> None:
    loop = asyncio.get_running_loop()
    pending: asyncio.Future[PubAck] = loop.create_future()
    cancelled: asyncio.Future[PubAck] = loop.create_future()
    cancelled.cancel()
    failed: asyncio.Future[PubAck] = loop.create_future()
    failed.set_exception(ConnectionError("gone"))
    stored: asyncio.Future[PubAck] = loop.create_future()
    ack = PubAck(stream="S", seq=1)
    stored.set_result(ack)
    assert isinstance(_outcome(pending), TimeoutError)
    assert isinstance(_outcome(cancelled), asyncio.CancelledError)
    assert isinstance(_outcome(failed), ConnectionError)
    assert _outcome(stored) is ack
    pending.cancel()
