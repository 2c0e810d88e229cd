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
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from opentelemetry import trace

from cxloop_libs.batching import RequestBatcher
from cxloop_libs.db import Database, is_transient_db_error
from identity.domain.model import LinkOutcome
from identity.service_layer.handlers import IdentityHandlers, ResolveCommand

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
    ) -> None:
        self.db = db
        self.handlers = handlers
        self.after_commit = after_commit
        self.links: RequestBatcher[ResolveCommand, LinkOutcome] = RequestBatcher(
            self._link_batch, max_batch=max_batch, max_wait_s=max_wait_s
        )

    async def resolve(self, command: ResolveCommand) -> LinkOutcome:
        return await self.links.submit(command)

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


def _wrote(o: LinkOutcome) -> bool:
    return bool(o.created or o.added or o.merged_customer_ids or o.blocked or o.newly_shared)
