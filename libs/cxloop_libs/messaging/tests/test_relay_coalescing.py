"""The outbox relay coalesces rounds (`min_round_interval_s`): events of many
commits arriving close together leave in a few rounds, not one round per
commit, and each reaches JetStream exactly once."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import nats
import pytest
from cxloop.gateway.v1 import events_pb2 as gw
from sqlmodel import SQLModel

from cxloop_libs.db import Database
from cxloop_libs.messaging import EventPublisher, NatsBus, OutboxRelay, stream_for
from cxloop_libs.messaging import catalog as ev
from cxloop_libs.messaging.outbox import OutboxWriter
from cxloop_libs.messaging.tables import OutboxEvent
from cxloop_testing.infra import eventually

pytestmark = pytest.mark.integration

COMMITS = 20


@pytest.fixture
async def bus(clean_nats: str) -> AsyncIterator[NatsBus]:
    b = NatsBus(clean_nats, name="relay-coalescing-test", streams=[stream_for("gateway")])
    await b.connect(timeout=10)
    yield b
    await b.close()


def stage_one(db: Database, event_id: str) -> None:
    """One commit staging one event, as a handler's unit of work does."""
    with db.session() as s:
        out = OutboxWriter(s)
        out.stage(
            ev.INTERACTION_RECORDED, gw.InteractionRecorded(message_id=event_id), event_id=event_id
        )
        out.flush()


async def stream_event_ids(bus: NatsBus) -> list[str]:
    """Every event id in the GATEWAY stream, one per stored message."""
    sub = await bus.js.pull_subscribe(ev.INTERACTION_RECORDED.subject, stream="GATEWAY")
    ids: list[str] = []
    try:
        while True:
            for m in await sub.fetch(100, timeout=0.5):
                ids.append(m.headers.get("ce-id", "") if m.headers else "")
                await m.ack()
    except (nats.errors.TimeoutError, TimeoutError):
        pass
    finally:
        await sub.unsubscribe()
    return ids


async def test_commits_close_together_leave_in_few_rounds_each_exactly_once(
    database_url: str, bus: NatsBus
) -> None:
    db = Database(database_url)
    SQLModel.metadata.create_all(db.engine, tables=[OutboxEvent.__table__])  # type: ignore[attr-defined]
    relay = OutboxRelay(
        db,
        EventPublisher(bus, source="/cxloop/test"),
        poll_interval_s=0.05,
        min_round_interval_s=0.2,
    )
    runner = asyncio.create_task(relay.run())
    try:
        await eventually(lambda: relay.rounds >= 1, timeout=10)  # the relay is up
        rounds_before = relay.rounds

        ids = [f"co-{n:02d}-{uuid.uuid4().hex[:8]}" for n in range(COMMITS)]
        for event_id in ids:  # 20 commits over about 0.1 s
            await db.run(stage_one, db, event_id)
            relay.notify()
            await asyncio.sleep(0.005)
        await eventually(lambda: relay.published >= COMMITS, timeout=20, interval=0.01)
        rounds = relay.rounds - rounds_before

        # One round per commit would be about 20; coalesced, the burst
        # leaves in the round under way plus one or two more.
        assert rounds <= 4, f"{rounds} relay rounds for {COMMITS} commits"
        assert relay.published == COMMITS
        assert relay.pending() == 0
        stored = await stream_event_ids(bus)
        assert sorted(stored) == sorted(ids)  # every event, none twice
        info = await bus.js.stream_info("GATEWAY")
        assert info.state.messages == COMMITS
    finally:
        relay.stop()
        await asyncio.wait_for(runner, timeout=10)
        db.dispose()
