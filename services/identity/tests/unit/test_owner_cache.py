"""The identifier-owner cache of `Resolve` (ADR 0024): hits and misses, TTL,
the size bound, the generation guard against a stale read putting an old
answer back, forgetting by customer or identifier, and forgetting what a
committed session noted - never what a rolled-back one did."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from identity.adapters.owner_cache import OwnerCache, follow_commits, note_moved


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def cache_with(owners: dict[str, str], **kwargs: object) -> OwnerCache:
    cache = OwnerCache(**kwargs)  # type: ignore[arg-type]
    cache.put(owners, cache.generation)
    return cache


def test_owners_splits_cached_hashes_from_those_to_read() -> None:
    cache = cache_with({"h1": "c1", "h2": "c2"})
    found, missing = cache.owners(["h1", "h3", "h2", "h4"])
    assert found == {"h1": "c1", "h2": "c2"}
    assert missing == ["h3", "h4"]  # in the order asked
    assert (cache.hits, cache.misses) == (2, 2)


def test_answer_is_the_one_owner_of_identifiers_all_cached() -> None:
    clock = FakeClock()
    cache = cache_with({"h1": "c1", "h2": "c1", "h3": "c2"}, ttl_s=30.0, clock=clock)
    assert cache.answer(["h1", "h2"]) == "c1"
    assert cache.hits == 2
    # One identifier not cached, or two owners (a merge to make): no answer,
    # so the call goes to the read batch, which reads and decides.
    assert cache.answer(["h1", "h4"]) is None
    assert cache.answer(["h1", "h3"]) is None
    assert cache.answer([]) is None
    assert cache.hits == 2
    clock.now += 30.1  # expired entries answer nothing either
    assert cache.answer(["h1"]) is None


def test_an_entry_expires_after_the_ttl() -> None:
    clock = FakeClock()
    cache = cache_with({"h1": "c1"}, ttl_s=30.0, clock=clock)
    clock.now += 29.9
    assert cache.owners(["h1"]) == ({"h1": "c1"}, [])
    clock.now += 0.2
    assert cache.owners(["h1"]) == ({}, ["h1"])
    # Read again from the database and put back: served for another TTL.
    cache.put({"h1": "c1"}, cache.generation)
    clock.now += 29.9
    assert cache.owners(["h1"]) == ({"h1": "c1"}, [])


def test_past_max_entries_the_oldest_entries_go() -> None:
    cache = OwnerCache(max_entries=20)
    for n in range(20):
        cache.put({f"h{n}": f"c{n}"}, cache.generation)
    assert len(cache) == 20
    cache.put({"h20": "c20"}, cache.generation)
    # The oldest tenth (two entries) made room for the new one.
    assert len(cache) == 19
    found, missing = cache.owners([f"h{n}" for n in range(21)])
    assert missing == ["h0", "h1"]
    assert found == {f"h{n}": f"c{n}" for n in range(2, 21)}


def test_eviction_makes_room_for_a_whole_batch() -> None:
    cache = OwnerCache(max_entries=10)
    cache.put({f"old{n}": "c-old" for n in range(10)}, cache.generation)
    cache.put({f"new{n}": "c-new" for n in range(5)}, cache.generation)
    assert len(cache) <= 10
    found, missing = cache.owners([f"new{n}" for n in range(5)])
    assert found == {f"new{n}": "c-new" for n in range(5)} and missing == []
    assert cache.owners(["old0", "old4"]) == ({}, ["old0", "old4"])
    assert cache.owners(["old5", "old9"])[0] == {"old5": "c-old", "old9": "c-old"}


def test_max_entries_zero_stores_nothing() -> None:
    cache = cache_with({"h1": "c1", "h2": "c2"}, max_entries=0)
    assert len(cache) == 0
    assert cache.owners(["h1", "h2"]) == ({}, ["h1", "h2"])


def test_a_read_in_flight_during_a_forget_does_not_put_its_answer_back() -> None:
    cache = cache_with({"h1": "c1"})
    # A read misses h2 and starts asking the database...
    _, missing = cache.owners(["h2"])
    assert missing == ["h2"]
    began = cache.generation
    # ...meanwhile a merge moves c1's identifiers and commits...
    cache.forget(customers=["c1"])
    # ...and the read, which may predate the merge, comes back.
    cache.put({"h2": "c1"}, began)
    assert cache.owners(["h1", "h2"]) == ({}, ["h1", "h2"])
    # A read begun after the forget is remembered.
    cache.put({"h2": "c9"}, cache.generation)
    assert cache.owners(["h2"]) == ({"h2": "c9"}, [])


def test_clear_also_refuses_reads_begun_before_it() -> None:
    cache = cache_with({"h1": "c1"})
    began = cache.generation
    cache.clear()
    cache.put({"h1": "c1"}, began)
    assert len(cache) == 0


def test_forgetting_a_customer_drops_all_its_identifiers_and_nothing_else() -> None:
    cache = cache_with({"h1": "c1", "h2": "c1", "h3": "c2", "h4": "c3"})
    cache.forget(customers=["c1"])
    found, missing = cache.owners(["h1", "h2", "h3", "h4"])
    assert found == {"h3": "c2", "h4": "c3"}
    assert missing == ["h1", "h2"]
    # Forgetting a customer the cache does not know is harmless.
    cache.forget(customers=["nobody"])
    assert len(cache) == 2


def test_forgetting_a_hash_drops_only_that_identifier() -> None:
    cache = cache_with({"h1": "c1", "h2": "c1", "h3": "c2"})
    cache.forget(hashes=["h1", "unknown"])
    found, missing = cache.owners(["h1", "h2", "h3"])
    assert found == {"h2": "c1", "h3": "c2"}
    assert missing == ["h1"]
    # Its customer still holds the rest: forgetting it drops h2.
    cache.forget(customers=["c1"])
    assert cache.owners(["h2", "h3"]) == ({"h3": "c2"}, ["h2"])


def test_an_identifier_put_under_a_new_customer_survives_forgetting_the_old() -> None:
    cache = cache_with({"h1": "c1", "h2": "c1"})
    # Read again later (after the TTL, say): h1 now belongs to c2.
    cache.put({"h1": "c2"}, cache.generation)
    cache.forget(customers=["c1"])
    assert cache.owners(["h1", "h2"]) == ({"h1": "c2"}, ["h2"])
    # And it is c2's now: forgetting c2 drops it.
    cache.forget(customers=["c2"])
    assert cache.owners(["h1"]) == ({}, ["h1"])


def follows(engine: sa.Engine) -> OwnerCache:
    cache = cache_with({"h1": "c1", "h2": "c1", "h3": "c2", "h4": "c3"})
    follow_commits(cache, engine)
    return cache


def test_what_a_committed_session_noted_is_forgotten() -> None:
    engine = sa.create_engine("sqlite://")
    cache = follows(engine)
    with Session(engine) as s:
        s.execute(sa.text("SELECT 1"))  # the moving statements
        note_moved(s, customers=["c1"], hashes=["h4"])
        assert len(cache) == 4  # not before the commit
        s.commit()
    assert cache.owners(["h1", "h2", "h3", "h4"]) == ({"h3": "c2"}, ["h1", "h2", "h4"])
    engine.dispose()


def test_a_rolled_back_session_forgets_nothing_now_or_at_its_next_commit() -> None:
    engine = sa.create_engine("sqlite://")
    cache = follows(engine)
    generation = cache.generation
    with Session(engine) as s:
        s.execute(sa.text("SELECT 1"))
        note_moved(s, customers=["c1"], hashes=["h3"])
        s.rollback()
        assert len(cache) == 4
        # The session's next transaction notes nothing of its own.
        s.execute(sa.text("SELECT 1"))
        s.commit()
    assert len(cache) == 4
    assert cache.generation == generation  # not even a read was refused
    engine.dispose()


def test_a_transaction_failing_inside_begin_forgets_nothing() -> None:
    engine = sa.create_engine("sqlite://")
    cache = follows(engine)
    with Session(engine) as s:
        try:
            with s.begin():
                s.execute(sa.text("SELECT 1"))
                note_moved(s, customers=["c1"])
                raise RuntimeError("the merge failed")
        except RuntimeError:
            pass
        with s.begin():
            s.execute(sa.text("SELECT 1"))
    assert cache.owners(["h1", "h2"]) == ({"h1": "c1", "h2": "c1"}, [])
    engine.dispose()


def test_a_cache_following_another_engine_is_untouched() -> None:
    engine, other_engine = sa.create_engine("sqlite://"), sa.create_engine("sqlite://")
    cache, other = follows(engine), follows(other_engine)
    with Session(engine) as s:
        s.execute(sa.text("SELECT 1"))
        note_moved(s, customers=["c1"], hashes=["h3"])
        s.commit()
    assert cache.owners(["h1", "h2", "h3", "h4"]) == ({"h4": "c3"}, ["h1", "h2", "h3"])
    assert other.owners(["h1", "h2", "h3", "h4"]) == (
        {"h1": "c1", "h2": "c1", "h3": "c2", "h4": "c3"},
        [],
    )
    engine.dispose()
    other_engine.dispose()


def test_a_savepoint_rolled_back_keeps_the_outer_transactions_notes() -> None:
    engine = sa.create_engine("sqlite://")
    cache = follows(engine)
    with Session(engine) as s:
        s.execute(sa.text("SELECT 1"))
        note_moved(s, customers=["c1"])
        with s.begin_nested() as savepoint:
            s.execute(sa.text("SELECT 1"))
            savepoint.rollback()
        s.commit()
    found, missing = cache.owners(["h1", "h2"])
    assert found == {} and missing == ["h1", "h2"]  # c1's identifiers forgotten
    engine.dispose()


def test_a_batch_larger_than_the_cache_is_not_stored() -> None:
    cache = OwnerCache(max_entries=2)
    cache.put({"h1": "c1", "h2": "c2", "h3": "c3"}, cache.generation)
    assert len(cache) == 0
