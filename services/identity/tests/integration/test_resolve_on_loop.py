"""`Resolve`'s event-loop paths on a real PostgreSQL (ADR 0024): new
customers inserted in one statement, the identifier-owner cache, and what
makes either step aside - another writer's identifier, a merge inside a
batch, and every change that moves or deletes identifiers (merge, split,
erasure here; merges, splits and erasure requests elsewhere, by event)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import sqlalchemy as sa
from cxloop.consent.v1 import events_pb2 as consent_events
from cxloop.identity.v1 import events_pb2 as identity_events

from cxloop_libs.db import Database, run_migrations
from cxloop_libs.db.aio import AsyncStatements
from cxloop_libs.messaging import EventPublisher, NatsBus, PendingEvent, stream_for
from cxloop_libs.messaging import catalog as ev
from cxloop_libs.pii import IdentifierHasher, IdType
from cxloop_libs.privacy import RequestKind
from cxloop_libs.runtime import ServiceRuntime
from cxloop_testing.infra import eventually
from identity.adapters import privacy
from identity.adapters.owner_cache import OwnerCache, follow_commits, join_invalidation
from identity.bootstrap import MIGRATIONS
from identity.domain.model import HashedId, LinkOutcome
from identity.service_layer.handlers import IdentityHandlers, ResolveCommand
from identity.service_layer.operations import GraphOperations
from identity.service_layer.resolver import BatchedResolver, IdentifierOwners

pytestmark = pytest.mark.integration

HASHER = IdentifierHasher(b"cxloop-development-only-hash-key")


def ident(id_type: IdType, value: str) -> HashedId:
    return HashedId(id_type.value, HASHER.hash(id_type, value))


def call(*ids: HashedId) -> ResolveCommand:
    return ResolveCommand(tuple(ids), "test")


@dataclass
class Setup:
    db: Database
    cache: OwnerCache
    resolver: BatchedResolver
    owners: IdentifierOwners
    statements: list[AsyncStatements] = field(default_factory=list)

    def count(self, sql: str) -> int:
        with self.db.session() as s:
            return int(s.execute(sa.text(sql)).scalar_one())


@pytest.fixture
async def setup(postgres_url: str) -> AsyncIterator[Setup]:
    db = Database(postgres_url)
    run_migrations(db.engine, MIGRATIONS)
    reads, writes = AsyncStatements.for_database(db), AsyncStatements.for_database(db)
    assert reads is not None and writes is not None
    cache = OwnerCache()
    follow_commits(cache, db.engine)
    owners = IdentifierOwners(reads, cache)
    resolver = BatchedResolver(db, IdentityHandlers(), owners=owners, writer=writes)
    yield Setup(db, cache, resolver, owners, [reads, writes])
    for st in (reads, writes):
        await st.close()
    db.dispose()


async def test_new_customers_are_inserted_on_the_event_loop(setup: Setup) -> None:
    kim, lee = ident(IdType.EMAIL, "kim@example.com"), ident(IdType.EMAIL, "lee@example.com")
    phone = ident(IdType.PHONE, "010-1234-5678")

    first, same, other = await asyncio.gather(
        setup.resolver.resolve(call(kim, phone)),
        setup.resolver.resolve(call(kim)),
        setup.resolver.resolve(call(lee)),
    )

    # Same batch, same new identifier: the first creates, the second finds it.
    assert first.created and not same.created and same.customer_id == first.customer_id
    assert other.created and other.customer_id != first.customer_id
    assert setup.resolver.links.batches == 0  # no thread, no session
    assert setup.resolver.created_on_loop == 2
    assert setup.count("SELECT count(*) FROM customer") == 2
    assert setup.count("SELECT count(*) FROM identifier") == 3
    assert setup.count("SELECT count(*) FROM identity_link WHERE rule = 'resolve-request'") == 3
    assert setup.count("SELECT count(*) FROM identity_history WHERE action = 'create'") == 2
    created = ev.PROFILE_CREATED.ce_type
    assert setup.count(f"SELECT count(*) FROM outbox_event WHERE ce_type = '{created}'") == 2
    # And they are returning customers now, answered from memory.
    queries = setup.owners.queries
    again = await setup.resolver.resolve(call(phone))
    assert again.customer_id == first.customer_id and not again.created
    assert setup.owners.queries == queries


async def test_an_identifier_another_writer_stored_first_goes_the_full_way(setup: Setup) -> None:
    email = ident(IdType.EMAIL, "race@example.com")
    # Another replica (the full path) stores it after our read said "new".
    other = BatchedResolver(setup.db, IdentityHandlers())
    theirs = await other.resolve(call(email))
    assert theirs.created

    (ours,) = await setup.resolver._create_batch([call(email)])

    assert isinstance(ours, LinkOutcome)
    assert ours.customer_id == theirs.customer_id and not ours.created
    assert setup.resolver.creates_gone_full_way == 1
    assert setup.count("SELECT count(*) FROM customer") == 1
    assert setup.count("SELECT count(*) FROM outbox_event") == 1  # theirs only


async def test_new_customers_merging_within_a_batch_go_the_full_way(setup: Setup) -> None:
    x, y = ident(IdType.EMAIL, "x@example.com"), ident(IdType.PHONE, "010-5555-0001")

    a, b, both = await setup.resolver._create_batch([call(x), call(y), call(x, y)])

    assert isinstance(a, LinkOutcome) and isinstance(b, LinkOutcome)
    assert isinstance(both, LinkOutcome)
    assert setup.resolver.creates_gone_full_way == 3
    assert setup.resolver.created_on_loop == 0
    assert both.customer_id == a.customer_id and both.merged_customer_ids == [b.customer_id]
    assert setup.count("SELECT count(*) FROM customer WHERE merged_into IS NULL") == 1


async def test_a_merge_is_not_answered_from_memory(setup: Setup) -> None:
    kim, lee = ident(IdType.EMAIL, "kim@example.com"), ident(IdType.EMAIL, "lee@example.com")
    first_kim = await setup.resolver.resolve(call(kim))
    first_lee = await setup.resolver.resolve(call(lee))
    assert (await setup.resolver.resolve(call(lee))).customer_id == first_lee.customer_id

    merged = await setup.resolver.resolve(call(kim, lee))  # the full path merges

    assert merged.merged_customer_ids == [first_lee.customer_id]
    after = await setup.resolver.resolve(call(lee))
    assert after.customer_id == first_kim.customer_id


async def test_a_split_is_not_answered_from_memory(setup: Setup) -> None:
    email, phone = ident(IdType.EMAIL, "pair@example.com"), ident(IdType.PHONE, "010-7777-0000")
    together = await setup.resolver.resolve(call(email, phone))
    assert (await setup.resolver.resolve(call(phone))).customer_id == together.customer_id

    result = await setup.db.in_transaction(
        lambda s: GraphOperations().split(
            s, together.customer_id, [("identifiers[0]", phone.hash)], reason="test", actor="t"
        )
    )

    moved = await setup.resolver.resolve(call(phone))
    assert moved.customer_id == result.new_customer_id != together.customer_id
    assert (await setup.resolver.resolve(call(email))).customer_id == together.customer_id


async def test_an_erased_customer_is_not_answered_from_memory(setup: Setup) -> None:
    email = ident(IdType.EMAIL, "gone@example.com")
    before = await setup.resolver.resolve(call(email))
    assert (await setup.resolver.resolve(call(email))).customer_id == before.customer_id

    await setup.db.in_transaction(
        lambda s: privacy.answer(s, before.customer_id, RequestKind.ERASURE)
    )

    after = await setup.resolver.resolve(call(email))
    assert after.created and after.customer_id != before.customer_id


@dataclass
class _Runtime:
    bus: NatsBus
    extra_tasks: list[Any] = field(default_factory=list)
    on_stop: list[Any] = field(default_factory=list)
    follow_live = ServiceRuntime.follow_live


async def test_other_replicas_changes_arrive_by_event(clean_nats: str) -> None:
    bus = NatsBus(clean_nats, name="owner-cache-test", streams=[stream_for("identity")])
    await bus.connect(10)
    consent_bus = NatsBus(clean_nats, name="consent-test", streams=[stream_for("consent")])
    await consent_bus.connect(10)
    cache = OwnerCache()
    runtime = _Runtime(bus)
    join_invalidation(runtime, cache)  # type: ignore[arg-type]
    (make,) = runtime.extra_tasks
    task = asyncio.ensure_future(make())
    try:
        cache.put({"h-loser": "loser", "h-kept": "kept", "h-moved": "orig", "h-gone": "gone"}, 0)
        await asyncio.sleep(0.2)  # subscribed
        publish = EventPublisher(bus, source="/test").publish_many
        await publish(
            [
                PendingEvent.of(
                    ev.PROFILE_MERGED,
                    identity_events.ProfileMerged(
                        surviving_customer_id="survivor", merged_customer_ids=["loser"]
                    ),
                ),
                PendingEvent.of(
                    ev.PROFILE_SPLIT,
                    identity_events.ProfileSplit(
                        original_customer_id="orig", resulting_customer_ids=["new"]
                    ),
                ),
            ]
        )
        await EventPublisher(consent_bus, source="/test").publish_many(
            [
                PendingEvent.of(
                    ev.ERASURE_REQUESTED,
                    consent_events.ErasureRequested(request_id="r1", customer_id="gone"),
                )
            ]
        )

        def left() -> set[str]:
            found, _ = cache.owners(["h-loser", "h-kept", "h-moved", "h-gone"])
            return set(found)

        await eventually(lambda: left() == {"h-kept"}, timeout=10)
    finally:
        for stop in runtime.on_stop:
            await stop()
        await asyncio.wait_for(task, 5)  # the stop hook ends it
        await bus.close()
        await consent_bus.close()
