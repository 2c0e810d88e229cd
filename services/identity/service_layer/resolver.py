"""`Resolve` at request rates: the calls that arrive together share one
transaction.

A transaction per call costs a thread hop, a connection checkout, a commit
and a few round trips; at 1,000 calls a second those alone saturate the
process. So calls queue in a `RequestBatcher` and each batch is one
`IdentityHandlers.resolve_many`: one indexed SELECT for every identifier of
the batch answers the returning customers (all identifiers known, one owner)
without writing anything; the rest are linked in arrival order and written
in bulk with one commit. A concurrent writer taking a key first (another
replica, the consumer) re-runs the batch (`Database.in_transaction`), which
then reads what the other wrote.

On PostgreSQL, returning customers do not even wait for that: a call without
traits first goes through a read batcher that asks one prepared
`hash = ANY(...)` statement on the event loop (`IdentifierOwners`), so a
returning customer costs no thread hop and no transaction, and never queues
behind a batch that writes (docs/adr/0022-hot-path-cpu.md). A call none of
whose identifiers that read found - a new customer, a quarter of the calls of
a busy shop - is not sent to the thread either: with a `writer`, the calls
that arrive together are linked on an empty graph view (same domain code) and
their rows inserted in one pipelined transaction on the event loop, one round
trip (docs/adr/0024-resolve-at-1000-per-second.md). Should another
writer have stored one of those identifiers meanwhile, the identifier's key
refuses the transaction and the calls go the full way. Only the calls neither
path can answer go on to the write batcher.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import psycopg
from opentelemetry import trace

from cxloop_libs.batching import RequestBatcher
from cxloop_libs.db import Database, is_transient_db_error
from cxloop_libs.db.aio import AsyncStatements
from identity.adapters.owner_cache import OwnerCache
from identity.domain.model import LinkOutcome
from identity.service_layer.handlers import (
    IdentityHandlers,
    ResolveCommand,
    answered_without_writing,
)

log = logging.getLogger(__name__)
tracer = trace.get_tracer("cxloop.identity")


@dataclass(frozen=True, slots=True)
class Known:
    """What the read found of one call's identifiers."""

    customer_id: str | None = None  # all known, one customer: the answer
    none_known: bool = False  # not one of them known: a new customer


_UNSURE = Known()


class BatchedResolver:
    def __init__(
        self,
        db: Database,
        handlers: IdentityHandlers,
        *,
        after_commit: Callable[[], None] = lambda: None,
        max_batch: int = 200,
        max_wait_s: float = 0.001,
        owners: IdentifierOwners | None = None,
        writer: AsyncStatements | None = None,
    ) -> None:
        self.db = db
        self.handlers = handlers
        self.after_commit = after_commit
        self.links: RequestBatcher[ResolveCommand, LinkOutcome] = RequestBatcher(
            self._link_batch, max_batch=max_batch, max_wait_s=max_wait_s
        )
        self.owners = owners
        # No wait: calls that arrive while a read is in flight form the next batch.
        self.reads: RequestBatcher[ResolveCommand, Known] = RequestBatcher(
            self._read_batch, max_batch=max_batch * 2, max_wait_s=0.0
        )
        self.writer = writer if owners is not None else None
        # Likewise no wait: new customers arriving during a write form the next.
        self.creates: RequestBatcher[ResolveCommand, LinkOutcome] = RequestBatcher(
            self._create_batch, max_batch=max_batch, max_wait_s=0.0
        )
        self.answered_by_read = 0  # of which from the owner cache alone:
        self.answered_from_cache = 0
        self.created_on_loop = 0
        self.creates_gone_full_way = 0

    async def resolve(self, command: ResolveCommand) -> LinkOutcome:
        if self.owners is not None and not command.traits:
            # Every identifier cached, one owner: the answer the read batch
            # would give, without a future and a batch (ADR 0195).
            cached = self.owners.answer(command)
            if cached is not None:
                self.answered_by_read += 1
                self.answered_from_cache += 1
                return LinkOutcome(customer_id=cached)
            known = await self.reads.submit(command)
            if known.customer_id is not None:
                self.answered_by_read += 1
                return LinkOutcome(customer_id=known.customer_id)
            if known.none_known and self.writer is not None:
                return await self.creates.submit(command)
        return await self.links.submit(command)

    async def _read_batch(self, commands: Sequence[ResolveCommand]) -> Sequence[Known]:
        assert self.owners is not None
        try:
            owners = await self.owners.owners_of(
                list({i.hash for c in commands for i in c.identifiers})
            )
        except Exception as exc:
            # The write path has its own retries and error mapping: let it answer.
            log.warning("identifier lookup failed, using the write path: %r", exc)
            return [_UNSURE] * len(commands)
        return [
            Known(
                customer_id=answered_without_writing(c, owners),
                none_known=not any(i.hash in owners for i in c.identifiers),
            )
            for c in commands
        ]

    async def _create_batch(
        self, commands: Sequence[ResolveCommand]
    ) -> Sequence[LinkOutcome | BaseException]:
        assert self.writer is not None
        with tracer.start_as_current_span(
            "identity.create_batch", attributes={"cxloop.batch_size": len(commands)}
        ) as span:
            staged = self.handlers.new_customers(commands)
            if staged is not None:
                results, write = staged
                assert self.owners is not None  # a writer comes with the read path
                generation = self.owners.generation
                try:
                    written = await self.writer.insert_rows(write.drain())
                except (psycopg.IntegrityError, psycopg.OperationalError) as exc:
                    # Another writer stored one of these identifiers first (or
                    # the connection went): the full path reads and decides.
                    log.debug("new customers go the full way: %r", exc)
                    span.set_attribute("cxloop.full_way", True)
                else:
                    if written:
                        self.owners.remember(results, generation)
                        self.created_on_loop += sum(
                            isinstance(r, LinkOutcome) and r.created for r in results
                        )
                        self.after_commit()
                    return results
            self.creates_gone_full_way += len(commands)
        return await asyncio.gather(
            *(self.links.submit(c) for c in commands), return_exceptions=True
        )

    async def _link_batch(
        self, commands: Sequence[ResolveCommand]
    ) -> Sequence[LinkOutcome | BaseException]:
        with tracer.start_as_current_span(
            "identity.resolve_batch", attributes={"cxloop.batch_size": len(commands)}
        ):
            try:
                results = await self.db.in_transaction(
                    lambda s: self.handlers.resolve_many(s, commands)
                )
            except Exception as exc:
                if len(commands) == 1 or is_transient_db_error(exc):
                    raise
                # One call that cannot be applied must not fail the calls
                # that happened to arrive with it.
                log.warning("resolve batch failed, applying its calls one by one: %r", exc)
                results = [await self._link_alone(c) for c in commands]
        # Traits are always written (observations, profile.updated).
        if any(c.traits for c in commands) or any(
            isinstance(r, LinkOutcome) and _wrote(r) for r in results
        ):
            self.after_commit()  # events staged: wake the relay
        return results

    async def _link_alone(self, command: ResolveCommand) -> LinkOutcome | BaseException:
        try:
            (result,) = await self.db.in_transaction(
                lambda s: self.handlers.resolve_many(s, [command])
            )
        except Exception as exc:
            return exc
        return result


class IdentifierOwners:
    """The customer of each identifier hash: from the `OwnerCache` when it
    knows, else one prepared statement on the event loop (PostgreSQL only;
    see `cxloop_libs.db.aio`) for the rest."""

    SQL = "SELECT hash, customer_id FROM identifier WHERE hash = ANY(%s)"

    def __init__(self, statements: AsyncStatements, cache: OwnerCache | None = None) -> None:
        self.statements = statements
        self.cache = cache
        self.queries = 0

    def answer(self, command: ResolveCommand) -> str | None:
        """The call's customer from the cache alone (all its identifiers
        cached, one owner), else None."""
        if self.cache is None:
            return None
        return self.cache.answer(i.hash for i in command.identifiers)

    @property
    def generation(self) -> int:
        """Taken before a read or write whose answer goes to `remember`."""
        return self.cache.generation if self.cache is not None else 0

    async def owners_of(self, hashes: list[str]) -> dict[str, str]:
        if self.cache is None:
            return await self._read(hashes)
        found, missing = self.cache.owners(hashes)
        if missing:
            generation = self.cache.generation
            read = await self._read(missing)
            self.cache.put(read, generation)
            found.update(read)
        return found

    async def _read(self, hashes: list[str]) -> dict[str, str]:
        self.queries += 1
        rows = await self.statements.fetch(self.SQL, (hashes,))
        return {h: cid for h, cid in rows}

    def remember(self, outcomes: Sequence[LinkOutcome | BaseException], generation: int) -> None:
        """New customers' identifiers, as just committed."""
        if self.cache is not None:
            self.cache.put(
                {
                    i.hash: o.customer_id
                    for o in outcomes
                    if isinstance(o, LinkOutcome)
                    for i in o.added
                },
                generation,
            )


def _wrote(o: LinkOutcome) -> bool:
    return bool(o.created or o.added or o.merged_customer_ids or o.blocked or o.newly_shared)
