"""pull.fetch answers as nats-py's PullSubscription.fetch does (what is there
now, up to the batch; a lingering wait when nothing is; a timeout when
nothing comes) without a task per message, and pull.ack_many acknowledges a
batch in one write."""

from __future__ import annotations

import asyncio

import pytest
from nats.js.api import AckPolicy, ConsumerConfig

from cxloop_libs.messaging import NatsBus, pull
from cxloop_testing.infra import eventually

pytestmark = pytest.mark.integration

SUBJECT = "cx.gateway.pulltest"


async def subscribe(bus: NatsBus, durable: str) -> object:
    return await bus.js.pull_subscribe(
        SUBJECT,
        durable=durable,
        stream="GATEWAY",
        config=ConsumerConfig(
            durable_name=durable, ack_policy=AckPolicy.EXPLICIT, ack_wait=30, max_deliver=-1
        ),
    )


async def publish(bus: NatsBus, n: int, start: int = 0) -> None:
    for i in range(start, start + n):
        await bus.js.publish(SUBJECT, str(i).encode(), headers={"ce-id": f"p-{i}"})


async def test_the_internals_the_fast_path_reads_are_there(bus: NatsBus) -> None:
    # A nats-py upgrade that renames them would silently bring back the
    # task-per-message path (psub.fetch): it fails here instead.
    psub = await subscribe(bus, "pull-internals")
    assert pull.fast_path_available(psub)
    for name in (
        "_send_command",
        "_flush_pending",
        "_flush_queue",
        "_max_pending_size",
        "_pending_data_size",
    ):
        assert hasattr(bus.nc, name), name
    await psub.unsubscribe()  # type: ignore[attr-defined]


async def test_fetch_takes_what_is_there_in_order_up_to_the_batch(bus: NatsBus) -> None:
    await publish(bus, 25)
    psub = await subscribe(bus, "pull-batches")
    got: list[list[int]] = []
    for _ in range(3):
        msgs = await pull.fetch(psub, 10, 2.0)  # type: ignore[arg-type]
        got.append([int(m.data) for m in msgs])
        await pull.ack_many(msgs)
    assert got == [list(range(10)), list(range(10, 20)), list(range(20, 25))]
    assert all(m.headers and m.headers["ce-id"] == f"p-{int(m.data)}" for m in msgs)
    # Nothing left: a timeout, as nats-py's fetch raises.
    with pytest.raises(TimeoutError):
        await pull.fetch(psub, 10, 0.3)  # type: ignore[arg-type]
    await psub.unsubscribe()  # type: ignore[attr-defined]


async def test_fetch_waits_for_what_is_published_while_it_waits(bus: NatsBus) -> None:
    psub = await subscribe(bus, "pull-linger")
    waiting = asyncio.ensure_future(pull.fetch(psub, 10, 5.0))  # type: ignore[arg-type]
    await asyncio.sleep(0.2)
    assert not waiting.done()
    await publish(bus, 3, start=100)
    msgs = await waiting
    assert [int(m.data) for m in msgs][:1] == [100]
    rest = msgs[1:]
    while len(rest) < 2:
        rest += await pull.fetch(psub, 10, 2.0)  # type: ignore[arg-type]
    assert [int(m.data) for m in msgs[:1] + rest] == [100, 101, 102]
    await psub.unsubscribe()  # type: ignore[attr-defined]


async def test_ack_many_acknowledges_every_message_once(bus: NatsBus) -> None:
    await publish(bus, 50)
    psub = await subscribe(bus, "pull-acks")
    msgs = await pull.fetch(psub, 50, 2.0)  # type: ignore[arg-type]
    assert len(msgs) == 50

    async def ack_pending(n: int) -> object:
        # The server has the acks once flush() returns, but JetStream applies
        # them to the consumer asynchronously: wait for the count (a wrong
        # count never arrives and fails after the timeout).
        info = await bus.js.consumer_info("GATEWAY", "pull-acks")
        return info if info.num_ack_pending == n else None

    await pull.ack_many(msgs[:20])
    await bus.nc.flush()
    await eventually(lambda: ack_pending(30), timeout=10)
    assert all(m.is_acked for m in msgs[:20]) and not any(m.is_acked for m in msgs[20:])
    await pull.ack_many(msgs[20:])
    await bus.nc.flush()
    info = await eventually(lambda: ack_pending(0), timeout=10)
    assert info.num_redelivered == 0
    assert info.ack_floor.stream_seq == msgs[-1].metadata.sequence.stream
    await psub.unsubscribe()  # type: ignore[attr-defined]
