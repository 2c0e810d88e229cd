"""publish_many passes nats-py a stall timeout only when its limit of pending
acknowledgements is reached: with a timeout on every message nats-py made a
task and yielded to the event loop per event, and JetStream received a
trickle instead of a batch (downstream consumers then pulled ~5 messages
per fetch instead of ~100; ingest lost half its throughput)."""

from __future__ import annotations

import asyncio

import nats

from cxloop_libs.messaging.publisher import stall_timeout


async def test_no_timeout_while_the_pending_limit_has_room_and_one_when_full() -> None:
    js = nats.NATS().jetstream(publish_async_max_pending=2)
    assert stall_timeout(js, 5.0) is None
    # The attribute publisher.stall_timeout reads: a nats-py upgrade that
    # renames it would silently bring back the slow path, so it fails here.
    sem = js._publish_async_pending_semaphore
    assert isinstance(sem, asyncio.Semaphore)
    await sem.acquire()
    assert stall_timeout(js, 5.0) is None
    await sem.acquire()
    assert stall_timeout(js, 5.0) == 5.0
    sem.release()
    assert stall_timeout(js, 5.0) is None


def test_unknown_clients_always_get_the_timeout() -> None:
    assert stall_timeout(object(), 2.0) == 2.0
