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
behind a batch that writes (docs/adr/0022-hot-path-cpu.md). Only the calls it
cannot answer go on to the write batcher.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from opentelemetry import trace

from cxloop_libs.batching import RequestBatcher
from cxloop_libs.db import Database, is_transient_db_error
from cxloop_libs.db.aio import AsyncStatements
from identity.domain.model import LinkOutcome
from identity.service_layer.handlers import (
    IdentityHandlers,
    ResolveCommand,
    answered_without_writing,
)

log = logging.getLogger(__name__)
tracer = trace.get_tracer("cxloop.identity")


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
    ) -> None:
        self.db = db
        self.handlers = handlers
        self.after_commit = after_commit
        self.links: RequestBatcher[ResolveCommand, LinkOutcome] = RequestBatcher(
            self._link_batch, max_batch=max_batch, max_wait_s=max_wait_s
        )
        self.owners = owners
        # No wait: calls that arrive while a read is in flight form the next batch.
        self.reads: RequestBatcher[ResolveCommand, str | None] = RequestBatcher(
            self._read_batch, max_batch=max_batch * 2, max_wait_s=0.0
        )
        self.answered_by_read = 0

    async def resolve(self, command: ResolveCommand) -> LinkOutcome:
        if self.owners is not None and not command.traits:
            customer_id = await self.reads.submit(command)
            if customer_id is not None:
                self.answered_by_read += 1
                return LinkOutcome(customer_id=customer_id)
        return await self.links.submit(command)

    async def _read_batch(self, commands: Sequence[ResolveCommand]) -> Sequence[str | None]:
        assert self.owners is not None
        try:
            owners = await self.owners.owners_of(
                list({i.hash for c in commands for i in c.identifiers})
            )
        except Exception as exc:
            # The write path has its own retries and error mapping: let it answer.
            log.warning("identifier lookup failed, using the write path: %r", exc)
            return [None] * len(commands)
        return [answered_without_writing(c, owners) for c in commands]

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
    """The customer of each identifier hash, in one prepared statement on the
    event loop (PostgreSQL only; see `cxloop_libs.db.aio`)."""

    SQL = "SELECT hash, customer_id FROM identifier WHERE hash = ANY(%s)"

    def __init__(self, statements: AsyncStatements) -> None:
        self.statements = statements

    async def owners_of(self, hashes: list[str]) -> dict[str, str]:
        rows = await self.statements.fetch(self.SQL, (hashes,))
        return {h: cid for h, cid in rows}


def _wrote(o: LinkOutcome) -> bool:
    return bool(o.created or o.added or o.merged_customer_ids or o.blocked or o.newly_shared)
