"""Which customer an identifier belongs to, remembered in process memory for
`Resolve` (docs/adr/0024-resolve-at-1000-per-second.md).

Three out of four `Resolve` calls of a busy shop name a returning customer;
each asked PostgreSQL again although the answer rarely changes. The answer
changes only when identifiers move or go: a merge (the loser's identifiers
move to the survivor), a split (identifiers move to the new customers), an
erasure or a retention purge (they are deleted). Adding an identifier to a
customer changes no answer already given.

So an entry is dropped:
- in this process, right after the transaction that moved or deleted them
  commits (the repository notes the customers and identifiers in the
  session, `note_moved`; an `after_commit` hook forgets them);
- from other replicas' changes, when their `profile merged` / `profile
  split` event arrives, and for an erasure as soon as it is requested
  (`join_invalidation`);
- in any case after `ttl_s` (a change whose event this process missed, such
  as a retention purge by another replica, is served for at most that long).

A read that was in flight while an entry was forgotten does not put the old
answer back: `put` is refused when the generation moved since the read began.
Bounded: past `max_entries` the oldest tenth goes.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import sqlalchemy as sa
from cxloop.consent.v1 import events_pb2 as consent_events
from cxloop.identity.v1 import events_pb2 as identity_events
from sqlalchemy.orm import Session

from cxloop_libs.runtime import ServiceRuntime

log = logging.getLogger(__name__)

MOVED_CUSTOMERS = "identity.moved_customers"
MOVED_HASHES = "identity.moved_hashes"


def note_moved(
    session: Session, *, customers: Iterable[str] = (), hashes: Iterable[str] = ()
) -> None:
    """Record in the session that these customers' identifiers (or these
    identifiers) move or go when it commits."""
    session.info.setdefault(MOVED_CUSTOMERS, set()).update(customers)
    session.info.setdefault(MOVED_HASHES, set()).update(hashes)


class OwnerCache:
    def __init__(
        self,
        max_entries: int = 200_000,
        ttl_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_entries = max_entries
        self.ttl_s = ttl_s
        self.clock = clock
        self._owner: dict[str, tuple[str, float]] = {}  # hash -> (customer, expires)
        self._held: dict[str, set[str]] = {}  # customer -> hashes cached for it
        self._lock = threading.Lock()  # commits run in worker threads
        self.generation = 0
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._owner)

    def owners(self, hashes: Iterable[str]) -> tuple[dict[str, str], list[str]]:
        """The customers of the cached `hashes`, and the hashes to read from
        the database (not cached, or expired)."""
        now = self.clock()
        found: dict[str, str] = {}
        missing: list[str] = []
        for h in hashes:
            entry = self._owner.get(h)
            if entry is None or entry[1] < now:
                missing.append(h)
            else:
                found[h] = entry[0]
        self.hits += len(found)
        self.misses += len(missing)
        return found, missing

    def answer(self, hashes: Iterable[str]) -> str | None:
        """The one customer every one of ``hashes`` belongs to when all are
        cached and unexpired, else None (then nothing is counted): a
        returning customer answered without a read batch."""
        now = self.clock()
        owner: str | None = None
        n = 0
        for h in hashes:
            entry = self._owner.get(h)
            if entry is None or entry[1] < now or (owner is not None and entry[0] != owner):
                return None
            owner = entry[0]
            n += 1
        self.hits += n
        return owner

    def put(self, owners: Mapping[str, str], generation: int) -> None:
        """Remember what a read that began at `generation` found; refused if
        something was forgotten since (that read may predate the change)."""
        if not owners or not 0 < len(owners) <= self.max_entries:
            return
        expires = self.clock() + self.ttl_s
        with self._lock:
            if generation != self.generation:
                return
            if len(self._owner) + len(owners) > self.max_entries:
                self._evict(max(len(owners), self.max_entries // 10))
            for h, customer in owners.items():
                old = self._owner.get(h)
                if old is not None and old[0] != customer:
                    self._unhold(old[0], h)
                self._owner[h] = (customer, expires)
                self._held.setdefault(customer, set()).add(h)

    def forget(self, *, customers: Iterable[str] = (), hashes: Iterable[str] = ()) -> None:
        with self._lock:
            self.generation += 1
            for c in customers:
                for h in self._held.pop(c, ()):
                    self._owner.pop(h, None)
            for h in hashes:
                entry = self._owner.pop(h, None)
                if entry is not None:
                    self._unhold(entry[0], h)

    def clear(self) -> None:
        with self._lock:
            self.generation += 1
            self._owner.clear()
            self._held.clear()

    def _unhold(self, customer: str, h: str) -> None:
        held = self._held.get(customer)
        if held is not None:
            held.discard(h)
            if not held:
                del self._held[customer]

    def _evict(self, n: int) -> None:
        # dicts keep insertion order: the first keys are the oldest entries.
        for h in list(self._owner)[:n]:
            customer, _ = self._owner.pop(h)
            self._unhold(customer, h)


# Caches by the engine whose sessions' commits they follow.
_FOLLOWING: weakref.WeakKeyDictionary[Any, list[OwnerCache]] = weakref.WeakKeyDictionary()


def follow_commits(cache: OwnerCache, engine: sa.Engine) -> None:
    """Forget what a committed session of `engine` noted with `note_moved`."""
    _FOLLOWING.setdefault(engine, []).append(cache)


@sa.event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    customers = session.info.pop(MOVED_CUSTOMERS, None)
    hashes = session.info.pop(MOVED_HASHES, None)
    if not customers and not hashes:
        return
    bind = session.get_bind()
    engine = getattr(bind, "engine", bind)
    for cache in _FOLLOWING.get(engine, ()):
        cache.forget(customers=customers or (), hashes=hashes or ())


@sa.event.listens_for(Session, "after_soft_rollback")
def _after_rollback(session: Session, previous_transaction: Any) -> None:
    # A savepoint rolled back inside a transaction keeps the outer notes.
    if previous_transaction.nested:
        return
    session.info.pop(MOVED_CUSTOMERS, None)
    session.info.pop(MOVED_HASHES, None)


def join_invalidation(runtime: ServiceRuntime, cache: OwnerCache) -> None:
    """Forget what other replicas change: their merges and splits, and any
    erasure as soon as consent asks for it. A plain NATS subscription (no
    consumer state): an event missed while disconnected is covered by the
    TTL, and the cache is cleared on reconnect."""
    from cxloop_libs.messaging import catalog as ev
    from cxloop_libs.messaging.cloudevents import parse_headers

    kinds = (ev.PROFILE_MERGED, ev.PROFILE_SPLIT, ev.ERASURE_REQUESTED)

    async def on_message(msg: Any) -> None:
        try:
            m = parse_headers(msg.subject, msg.headers, msg.data).message()
        except Exception:  # not ours to judge: the consumers dead-letter it
            log.debug("owner cache: unreadable event on %s", msg.subject, exc_info=True)
            return
        if isinstance(m, identity_events.ProfileMerged):
            cache.forget(customers=[m.surviving_customer_id, *m.merged_customer_ids])
        elif isinstance(m, identity_events.ProfileSplit):
            cache.forget(
                customers=[m.original_customer_id, *m.resulting_customer_ids],
                hashes=[i.hash for i in m.moved_identifiers],
            )
        elif isinstance(m, consent_events.ErasureRequested):
            cache.forget(customers=[m.customer_id])

    runtime.follow_live([k.subject for k in kinds], on_message)
