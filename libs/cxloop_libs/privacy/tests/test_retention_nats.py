"""The retention component against real NATS and real databases: the policy
comes from the key-value bucket, the stream's max age follows it, the inbox
is purged in bounded transactions, and a late starter reads the policy."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from cxloop.consent.v1 import events_pb2 as pb
from sqlmodel import SQLModel

from cxloop_libs.db import Database
from cxloop_libs.messaging import EventPublisher, NatsBus, stream_for
from cxloop_libs.messaging.streams import DAY_S, ensure_stream
from cxloop_libs.messaging.tables import InboxEvent, OutboxEvent
from cxloop_libs.privacy.retention import (
    DEFAULT_CATEGORY_DAYS,
    INTERACTIONS,
    PolicyBucketSpec,
    RetentionPolicy,
    RetentionSchedule,
    policy_subject,
    purge_inbox,
)

pytestmark = pytest.mark.integration


@pytest.fixture
async def bus(clean_nats: str) -> AsyncIterator[NatsBus]:
    b = NatsBus(clean_nats, name="retention-test", streams=[stream_for("loyalty")])
    await b.connect(timeout=10)
    await ensure_stream(b.js, PolicyBucketSpec())
    yield b
    await b.close()


async def put_policy(bus: NatsBus, version: int, interactions: int) -> None:
    policy = RetentionPolicy(version, {**DEFAULT_CATEGORY_DAYS, INTERACTIONS: interactions})
    changed = pb.RetentionPolicyChanged(policy=policy.to_proto())
    await bus.js.publish(policy_subject(), changed.SerializeToString())


async def max_age_days(bus: NatsBus, stream: str) -> float:
    info = await bus.js.stream_info(stream)
    assert info.config.max_age is not None
    return info.config.max_age / DAY_S


async def test_the_stream_age_follows_policy_changes_and_late_starters_read_the_policy(
    bus: NatsBus,
) -> None:
    assert await max_age_days(bus, "LOYALTY") == pytest.approx(30)
    s = RetentionSchedule(
        "loyalty", bus=bus, publisher=EventPublisher(bus, source="/t"), stream="LOYALTY"
    )
    task = asyncio.ensure_future(s.run())
    await put_policy(bus, 1, interactions=7)
    first = await s.wait_rounds(1, timeout=20)
    assert first.policy_version == 1 and first.stream_max_age_s == 7 * DAY_S
    assert await max_age_days(bus, "LOYALTY") == pytest.approx(7)

    await put_policy(bus, 2, interactions=3)
    second = await s.wait_rounds(2, timeout=20)
    assert second.policy_version == 2
    assert await max_age_days(bus, "LOYALTY") == pytest.approx(3)

    # A service starting now finds version 2 in the bucket, no event needed.
    late = RetentionSchedule("feedback", bus=bus)
    late_task = asyncio.ensure_future(late.run())
    assert (await late.wait_policy(timeout=20)).version == 2
    for sched, t in ((s, task), (late, late_task)):
        await sched.stop()
        await t

    # The round's report went out on the service's own stream.
    sub = await bus.js.subscribe("cx.loyalty.retention_purge.completed", ordered_consumer=True)
    msg = await sub.next_msg(timeout=10)
    report = pb.RetentionPurgeCompleted.FromString(msg.data)
    assert report.service == "loyalty" and report.stream_max_age_seconds == 7 * 86_400
    await sub.unsubscribe()


async def test_a_policy_managed_stream_keeps_its_age_across_restarts(bus: NatsBus) -> None:
    from dataclasses import replace

    from cxloop_libs.messaging.streams import set_stream_max_age

    assert await set_stream_max_age(bus.js, "LOYALTY", 90 * DAY_S)
    assert not await set_stream_max_age(bus.js, "LOYALTY", 90 * DAY_S)
    await ensure_stream(bus.js, replace(stream_for("loyalty"), keep_existing_max_age=True))
    assert await max_age_days(bus, "LOYALTY") == pytest.approx(90)
    await ensure_stream(bus.js, stream_for("loyalty"))  # without the flag: the default again
    assert await max_age_days(bus, "LOYALTY") == pytest.approx(30)


@pytest.fixture
def db(database_url: str) -> Database:
    d = Database(database_url)
    SQLModel.metadata.create_all(
        d.engine,
        tables=[InboxEvent.__table__, OutboxEvent.__table__],  # type: ignore[attr-defined]
    )
    return d


async def test_the_inbox_is_purged_in_bounded_transactions_and_the_report_is_staged(
    db: Database,
) -> None:
    now = datetime.now(UTC)
    old, new = now - timedelta(days=40), now - timedelta(days=2)
    rows = [
        {"consumer": f"c{i % 2}", "event_id": f"old-{i}", "processed_at": old} for i in range(250)
    ] + [{"consumer": "c0", "event_id": f"new-{i}", "processed_at": new} for i in range(5)]
    with db.session() as s:
        s.execute(sa.insert(InboxEvent.__table__), rows)  # type: ignore[attr-defined]

    batches: list[int] = []

    def counted(session: object, cutoff: datetime, limit: int) -> int:
        n = purge_inbox(session, cutoff, limit)  # type: ignore[arg-type]
        batches.append(n)
        return n

    s = RetentionSchedule("loyalty", bus=None, db=db, batch_size=100)
    s.register(INTERACTIONS, counted)
    s.apply_policy(RetentionPolicy(1, {INTERACTIONS: 30}))
    report = await s.purge_now()
    assert batches == [100, 100, 50, 0]
    assert report.rows == {INTERACTIONS: 250} and report.batches == {INTERACTIONS: 3}
    with db.session() as session:
        left = session.execute(sa.select(InboxEvent.event_id)).scalars().all()  # type: ignore[call-overload]
        outbox = session.execute(sa.select(OutboxEvent.ce_type)).scalars().all()  # type: ignore[call-overload]
    assert sorted(left) == [f"new-{i}" for i in range(5)]
    assert outbox == ["cxloop.loyalty.retention_purge.completed.v1"]
    db.dispose()
