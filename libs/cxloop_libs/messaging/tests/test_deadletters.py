"""A poison event is dead-lettered after max_deliver tries, later events keep
flowing, and once the cause is fixed a replay puts it back exactly once."""

from __future__ import annotations

import asyncio

import pytest
from cxloop.gateway.v1 import events_pb2 as gw
from sqlmodel import Session, SQLModel

from cxloop_libs.db import Database
from cxloop_libs.messaging import (
    BatchConsumer,
    ConsumerSpec,
    EventPublisher,
    NatsBus,
    PendingEvent,
    ReceivedEvent,
)
from cxloop_libs.messaging import catalog as ev
from cxloop_libs.messaging.deadletters import list_dead_letters, replay_dead_letter
from cxloop_libs.messaging.tables import InboxEvent, OutboxEvent
from cxloop_testing.infra import eventually

pytestmark = pytest.mark.integration


class FlakyHandler:
    """Rejects one message id until 'fixed', like a bug awaiting a deploy."""

    def __init__(self, poison_id: str) -> None:
        self.poison_id = poison_id
        self.fixed = False
        self.applied: list[str] = []

    def __call__(self, session: Session, events: list[ReceivedEvent]) -> None:
        # Validate the whole batch before any effect, as a real handler's
        # transaction would roll back: only committed batches leave a trace.
        if not self.fixed and any(e.id == self.poison_id for e in events):
            raise ValueError("cannot handle this event yet")
        self.applied.extend(e.id for e in events)


def event(message_id: str) -> PendingEvent:
    return PendingEvent.of(
        ev.INTERACTION_RECORDED, gw.InteractionRecorded(message_id=message_id), event_id=message_id
    )


async def test_dead_letter_then_replay_after_fix(bus: NatsBus, database_url: str) -> None:
    db = Database(database_url)
    SQLModel.metadata.create_all(db.engine, tables=[InboxEvent.__table__, OutboxEvent.__table__])  # type: ignore[attr-defined]
    handler = FlakyHandler("poison")
    consumer = BatchConsumer(
        bus,
        db,
        ConsumerSpec(
            stream="GATEWAY",
            durable="test-dlq",
            filter_subject=ev.INTERACTION_RECORDED.subject,
            max_deliver=2,
        ),
        handler,
    )
    task = asyncio.create_task(consumer.run())
    try:
        pub = EventPublisher(bus, source="/test")
        for mid in ("ok-1", "poison", "ok-2"):
            await pub.publish(event(mid))
        await eventually(lambda: consumer.dead_lettered == 1)
        await eventually(lambda: {"ok-1", "ok-2"} <= set(handler.applied))

        letters = await list_dead_letters(bus.js, consumer="test-dlq")
        assert [(d.event_id, d.subject, d.deliveries) for d in letters] == [
            ("poison", ev.INTERACTION_RECORDED.subject, 2)
        ]
        assert "cannot handle this event yet" in letters[0].reason

        handler.fixed = True
        await replay_dead_letter(bus.js, letters[0].seq, attempt="1")
        await eventually(lambda: "poison" in handler.applied)
        assert await list_dead_letters(bus.js) == []
        # The replayed event is applied once; the others were not touched again.
        assert sorted(handler.applied) == ["ok-1", "ok-2", "poison"]
    finally:
        consumer.stop()
        await task
        db.dispose()
