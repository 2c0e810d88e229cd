"""The outbox relay as a child process (outbox_relay=process, ADR 0023):
events staged by the parent reach JetStream, a killed child is replaced and
nothing staged meanwhile is lost, and stopping leaves no child behind."""

from __future__ import annotations

import asyncio
import os
import signal
import uuid

import nats
import pytest
from sqlalchemy import func
from sqlmodel import SQLModel, select

from cxloop_libs.db import Database
from cxloop_libs.messaging import OutboxRelay, stream_for
from cxloop_libs.messaging.relay_process import RelayProcess, RelayProcessConfig
from cxloop_libs.messaging.tables import OutboxEvent
from cxloop_testing.events import gateway_event_ids, stage_interactions
from cxloop_testing.infra import eventually

pytestmark = pytest.mark.integration


async def stored_ids(url: str) -> set[str]:
    nc = await nats.connect(url)
    try:
        try:
            return set(await gateway_event_ids(nc.jetstream()))
        except nats.js.errors.NotFoundError:
            return set()  # the child has not provisioned the stream yet
    finally:
        await nc.close()


async def test_relay_child_publishes_survives_a_kill_and_stops(
    postgres_url: str, clean_nats: str
) -> None:
    db = Database(postgres_url)
    SQLModel.metadata.create_all(db.engine, tables=[OutboxEvent.__table__])  # type: ignore[attr-defined]
    child = RelayProcess(
        RelayProcessConfig(
            service="gateway",
            database_url=db.url,
            nats_url=clean_nats,
            source="/cxloop/test",
            poll_interval_s=0.2,
            min_round_interval_s=0.01,
            log_level="WARNING",
            streams=(stream_for("gateway"),),
        )
    )

    runner = asyncio.ensure_future(child.run())
    try:
        first = [f"a-{uuid.uuid4().hex[:8]}" for _ in range(20)]
        stage_interactions(db, first)
        child.notify()
        await eventually(lambda: _contains(clean_nats, first), timeout=30)

        # Kill the child: the supervisor starts another; rows staged while
        # no relay ran are published by the new one.
        old_pid = child.pid
        assert old_pid is not None
        os.kill(old_pid, signal.SIGKILL)
        second = [f"b-{uuid.uuid4().hex[:8]}" for _ in range(20)]
        stage_interactions(db, second)
        await eventually(lambda: _contains(clean_nats, first + second), timeout=30)
        assert child.restarts == 1 and child.pid != old_pid

        await eventually(lambda: _outbox_empty(db), timeout=10)  # published rows go
    finally:
        child.stop()
        await child.wait_stopped()
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
        db.dispose()
    pid = child.pid
    assert pid is not None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def _outbox_empty(db: Database) -> bool:
    with db.session() as s:
        return s.exec(select(func.count()).select_from(OutboxEvent)).one() == 0


async def _contains(url: str, ids: list[str]) -> bool:
    return set(ids) <= await stored_ids(url)


def test_notify_is_forwarded_to_the_relay_process() -> None:
    calls: list[int] = []
    db = Database("sqlite:///:memory:")

    class _Pub:
        bus = None

    relay = OutboxRelay(db, _Pub())  # type: ignore[arg-type]
    relay.forward_notifications(lambda: calls.append(1))
    relay.notify()
    relay.notify()
    assert calls == [1, 1]
