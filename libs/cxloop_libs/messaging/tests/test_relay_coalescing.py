"""The outbox relay coalesces rounds (`min_round_interval_s`): events of many
commits arriving close together leave in a few rounds, not one round per
commit, and each reaches JetStream exactly once."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlmodel import SQLModel

from cxloop_libs.db import Database
from cxloop_libs.messaging import EventPublisher, NatsBus, OutboxRelay
from cxloop_libs.messaging.tables import OutboxEvent
from cxloop_testing.events import gateway_event_ids, stage_interactions
from cxloop_testing.infra import eventually

pytestmark = pytest.mark.integration

COMMITS = 20


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
            await db.run(stage_interactions, db, [event_id])
            relay.notify()
            await asyncio.sleep(0.005)
        await eventually(lambda: relay.published >= COMMITS, timeout=20, interval=0.01)
        rounds = relay.rounds - rounds_before

        # One round per commit would be about 20; coalesced, the burst
        # leaves in the round under way plus one or two more.
        assert rounds <= 4, f"{rounds} relay rounds for {COMMITS} commits"
        assert relay.published == COMMITS
        assert relay.pending() == 0
        stored = await gateway_event_ids(bus.js)
        assert sorted(stored) == sorted(ids)  # every event, none twice
        info = await bus.js.stream_info("GATEWAY")
        assert info.state.messages == COMMITS
    finally:
        relay.stop()
        await asyncio.wait_for(runner, timeout=10)
        db.dispose()


def test_an_idle_relay_polls_less_often_and_activity_brings_it_back() -> None:
    from cxloop_libs.messaging.outbox import next_poll_interval

    waits = [0.05]
    for _ in range(6):  # rounds that find nothing
        waits.append(next_poll_interval(waits[-1], 0, 0.05, 0.25))
    assert waits == [0.05, 0.1, 0.2, 0.25, 0.25, 0.25, 0.25]
    assert next_poll_interval(0.25, 3, 0.05, 0.25) == 0.05  # a round sent events
    assert next_poll_interval(0.05, 0, 0.05, 0.05) == 0.05  # no back-off configured


async def test_a_row_no_wake_up_announced_is_still_relayed_when_idle(
    database_url: str, bus: NatsBus
) -> None:
    """Another process's commit (no notify): the back-off never stops the poll."""
    db = Database(database_url)
    SQLModel.metadata.create_all(db.engine, tables=[OutboxEvent.__table__])  # type: ignore[attr-defined]
    relay = OutboxRelay(db, EventPublisher(bus, source="/cxloop/test"), poll_interval_s=0.05)
    runner = asyncio.create_task(relay.run())
    try:
        # Idle long enough for the interval to reach its ceiling.
        await eventually(lambda: relay._interval == relay.idle_poll_interval_s, timeout=10)
        event_id = f"quiet-{uuid.uuid4().hex[:8]}"
        await db.run(stage_interactions, db, [event_id])  # no relay.notify()
        await eventually(lambda: relay.published == 1, timeout=10)
        assert await gateway_event_ids(bus.js) == [event_id]
    finally:
        relay.stop()
        await asyncio.wait_for(runner, timeout=10)
        db.dispose()


async def test_the_relay_vacuums_its_outbox_after_many_deleted_rows(
    postgres_url: str, bus: NatsBus
) -> None:
    """A queue table's dead rows make every fetch walk them (ADR 0265): the
    relay vacuums the outbox after `vacuum_after_rows` deleted rows, and
    every event still leaves exactly once."""
    import psycopg

    from cxloop_libs.db.aio import libpq_conninfo

    db = Database(postgres_url)
    SQLModel.metadata.create_all(db.engine, tables=[OutboxEvent.__table__])  # type: ignore[attr-defined]
    relay = OutboxRelay(db, EventPublisher(bus, source="/cxloop/test"), vacuum_after_rows=10)
    runner = asyncio.create_task(relay.run())

    def vacuumed() -> int:
        with psycopg.connect(libpq_conninfo(db.url)) as conn:
            row = conn.execute(
                "SELECT vacuum_count FROM pg_stat_user_tables WHERE relname = 'outbox_event'"
            ).fetchone()
        return int(row[0]) if row else 0

    try:
        ids = [f"vac-{n:02d}-{uuid.uuid4().hex[:8]}" for n in range(25)]
        for first in range(0, len(ids), 5):
            await db.run(stage_interactions, db, ids[first : first + 5])
            relay.notify()
        await eventually(lambda: relay.published >= len(ids), timeout=20, interval=0.01)
        await eventually(lambda: relay.vacuums >= 1, timeout=20, interval=0.01)
        await eventually(lambda: vacuumed() >= 1, timeout=10)  # statistics lag up to 1 s
        assert relay.pending() == 0
        assert sorted(await gateway_event_ids(bus.js)) == sorted(ids)  # none twice
    finally:
        relay.stop()
        await asyncio.wait_for(runner, timeout=10)
        db.dispose()
