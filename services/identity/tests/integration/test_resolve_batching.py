"""Batched `Resolve` against a real database (SQLite and PostgreSQL): calls
that arrive together share one transaction, yet each caller gets its own
answer, and replicas racing on the same new identifier agree."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from cxloop_libs.db import Database, run_migrations
from cxloop_libs.pii import IdentifierHasher, IdType
from identity.bootstrap import MIGRATIONS
from identity.domain.model import HashedId
from identity.domain.policy import MergePolicy
from identity.service_layer.handlers import IdentityHandlers, ResolveCommand
from identity.service_layer.resolver import BatchedResolver

pytestmark = pytest.mark.integration

HASHER = IdentifierHasher(b"cxloop-development-only-hash-key")
JUNK = HASHER.hash(IdType.PHONE, "02-555-0100")


def ident(id_type: IdType, value: str) -> HashedId:
    return HashedId(id_type.value, HASHER.hash(id_type, value))


def call(*ids: HashedId) -> ResolveCommand:
    return ResolveCommand(tuple(ids), "test")


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    run_migrations(database.engine, MIGRATIONS)
    yield database
    database.dispose()


def count(db: Database, table: str) -> int:
    with db.session() as s:
        return int(s.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one())


async def test_calls_batched_together_each_get_their_own_answer(db: Database) -> None:
    handlers = IdentityHandlers(policy=MergePolicy(ignored_hashes=frozenset({JUNK})))
    resolver = BatchedResolver(db, handlers, max_wait_s=0.05)
    kim, lee, park = (ident(IdType.EMAIL, f"{n}@example.com") for n in ("kim", "lee", "park"))
    phone = ident(IdType.PHONE, "010-1234-5678")
    known = await resolver.resolve(call(kim))
    assert known.created
    before = resolver.links.batches

    results = await asyncio.gather(
        resolver.resolve(call(kim)),
        resolver.resolve(call(lee)),
        resolver.resolve(call(park)),
        resolver.resolve(call(lee)),
        resolver.resolve(call(kim, phone)),
        resolver.resolve(call(HashedId("phone", JUNK))),
        return_exceptions=True,
    )

    assert resolver.links.batches == before + 1  # one transaction for all six
    again_kim, new_lee, new_park, lee_again, kim_phone, junk = results
    assert isinstance(junk, ValueError)  # only its own call fails
    for r in (again_kim, new_lee, new_park, lee_again, kim_phone):
        assert not isinstance(r, BaseException)
    assert again_kim.customer_id == known.customer_id and not again_kim.created
    assert new_lee.created and not lee_again.created
    assert lee_again.customer_id == new_lee.customer_id
    assert new_park.created and new_park.customer_id not in {known.customer_id, new_lee.customer_id}
    assert kim_phone.customer_id == known.customer_id and [i.hash for i in kim_phone.added] == [
        phone.hash
    ]


async def test_a_returning_customer_is_answered_without_writing(db: Database) -> None:
    resolver = BatchedResolver(db, IdentityHandlers())
    email, phone = ident(IdType.EMAIL, "back@example.com"), ident(IdType.PHONE, "010-2222-3333")
    first = await resolver.resolve(call(email, phone))
    written = {t: count(db, t) for t in ("identity_history", "identity_link", "outbox_event")}

    again = await asyncio.gather(*(resolver.resolve(call(phone, email)) for _ in range(20)))

    assert {r.customer_id for r in again} == {first.customer_id}
    assert not any(r.created or r.added for r in again)
    assert {t: count(db, t) for t in written} == written


async def test_replicas_resolving_the_same_new_identifier_agree(db: Database) -> None:
    # Two service replicas (two batchers, one database) race to insert the
    # same identifier: the loser's batch is re-run and finds the winner's.
    replicas = [BatchedResolver(db, IdentityHandlers()) for _ in range(2)]
    email = ident(IdType.EMAIL, "race@example.com")
    results = await asyncio.gather(*(replicas[n % 2].resolve(call(email)) for n in range(8)))
    assert len({r.customer_id for r in results}) == 1
    assert sum(r.created for r in results) == 1
    assert count(db, "customer") == 1


async def test_returning_customers_are_answered_by_the_event_loop_read(postgres_url: str) -> None:
    """PostgreSQL: a returning customer's call never reaches the write batcher;
    a call with a new identifier, or identifiers of two customers, still does."""
    from cxloop_libs.db.aio import AsyncStatements
    from identity.service_layer.resolver import IdentifierOwners

    database = Database(postgres_url)
    run_migrations(database.engine, MIGRATIONS)
    statements = AsyncStatements.for_database(database)
    assert statements is not None
    try:
        handlers = IdentityHandlers(policy=MergePolicy(ignored_hashes=frozenset()))
        resolver = BatchedResolver(database, handlers, owners=IdentifierOwners(statements))
        kim, lee, phone = (
            ident(IdType.EMAIL, "kim@example.com"),
            ident(IdType.EMAIL, "lee@example.com"),
            ident(IdType.PHONE, "010-2222-3333"),
        )
        first_kim = await resolver.resolve(call(kim))
        first_lee = await resolver.resolve(call(lee))
        assert first_kim.created and first_lee.created
        writes = resolver.links.batches

        again = await asyncio.gather(*(resolver.resolve(call(kim)) for _ in range(5)))
        assert {r.customer_id for r in again} == {first_kim.customer_id}
        assert resolver.links.batches == writes  # no transaction for returning calls
        assert resolver.answered_by_read == 5

        # A new identifier beside a known one must be linked: the write path.
        kim_phone = await resolver.resolve(call(kim, phone))
        assert kim_phone.customer_id == first_kim.customer_id
        assert [i.hash for i in kim_phone.added] == [phone.hash]
        assert resolver.links.batches == writes + 1
        # Two known customers named together merge: the write path as well.
        merged = await resolver.resolve(call(kim, lee))
        assert merged.merged_customer_ids
        assert resolver.links.batches == writes + 2
        # And the read path then sees the merge.
        (after,) = await asyncio.gather(resolver.resolve(call(lee)))
        assert after.customer_id == merged.customer_id
        assert resolver.answered_by_read == 6
    finally:
        await statements.close()
        database.dispose()


async def test_a_sign_up_is_normalised_once_for_scoring_the_guard_and_the_index(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A call with traits: its record is normalised once and that one form is
    scored, checked by the chaining guard and indexed (ADR 0196)."""
    from identity.service_layer import handlers as handlers_module
    from identity.service_layer import realtime as realtime_module
    from identity.service_layer.realtime import CandidateIndex
    from identity.tests.unit.test_matching_korean_names import typical_model

    normalised: list[str] = []
    real = realtime_module.normalise_record

    def counting(record):  # type: ignore[no-untyped-def]
        normalised.append(record.record_id)
        return real(record)

    monkeypatch.setattr(handlers_module, "normalise_record", counting)
    monkeypatch.setattr(realtime_module, "normalise_record", counting)
    index = CandidateIndex()
    index.loaded.set()
    handlers = IdentityHandlers(index=index, model=typical_model())
    resolver = BatchedResolver(db, handlers)
    traits = (
        ("date_of_birth", "1990-03-07"),
        ("family_name", "김"),
        ("given_name", "민준"),
        ("postcode", "04524"),
        ("street", "중앙로 1"),
    )

    def sign_up(email: str, phone: str = "") -> ResolveCommand:
        ids = (ident(IdType.EMAIL, email),)
        if not phone:
            return ResolveCommand(ids, "web", traits=traits)
        ids += (ident(IdType.PHONE, phone),)
        return ResolveCommand(ids, "web", traits=(*traits, ("phone", phone)))

    first = await resolver.resolve(sign_up("minjun@example.com", "+821012345678"))
    # Same mobile: linked exactly; its record is still scored and known to
    # the chaining guard (a sure match of the same customer).
    second = await resolver.resolve(sign_up("mj.kim@example.com", "+821012345678"))
    # Only an email nobody had: a new customer the matcher merges into the
    # first after the chaining guard compared their records.
    third = await resolver.resolve(sign_up("kim.minjun@example.com"))

    assert second.customer_id == first.customer_id and not second.created
    assert third.customer_id == first.customer_id
    assert len(normalised) == 3  # one per call (it was 8: scored, guarded, indexed)
    assert len(index) == 3


async def test_a_returning_customer_all_cached_is_answered_without_a_read(
    postgres_url: str,
) -> None:
    """PostgreSQL with the owner cache: once every identifier of a call is
    cached for one customer, the call is answered without a read batch; a
    merge committed meanwhile is not answered from the cache (ADR 0195)."""
    from cxloop_libs.db.aio import AsyncStatements
    from identity.adapters.owner_cache import OwnerCache, follow_commits
    from identity.service_layer.resolver import IdentifierOwners

    database = Database(postgres_url)
    run_migrations(database.engine, MIGRATIONS)
    statements = AsyncStatements.for_database(database)
    assert statements is not None
    cache = OwnerCache()
    follow_commits(cache, database.engine)
    try:
        handlers = IdentityHandlers(policy=MergePolicy(ignored_hashes=frozenset()))
        resolver = BatchedResolver(database, handlers, owners=IdentifierOwners(statements, cache))
        kim, lee = ident(IdType.EMAIL, "kim@example.com"), ident(IdType.EMAIL, "lee@example.com")
        first_kim = await resolver.resolve(call(kim))
        first_lee = await resolver.resolve(call(lee))
        await resolver.resolve(call(lee))  # read from the database, then cached
        reads = resolver.reads.batches

        again = await asyncio.gather(*(resolver.resolve(call(lee)) for _ in range(5)))
        assert {r.customer_id for r in again} == {first_lee.customer_id}
        assert resolver.reads.batches == reads  # not one read batch
        assert resolver.answered_from_cache == 5

        merged = await resolver.resolve(call(kim, lee))  # lee merges into kim
        assert merged.customer_id == first_kim.customer_id
        after = await resolver.resolve(call(lee))
        assert after.customer_id == first_kim.customer_id  # forgotten at commit
        assert resolver.answered_from_cache == 5
    finally:
        await statements.close()
        database.dispose()
