"""From the identity stream into the event store.

``interaction resolved`` carries the interaction and the one customer it
belongs to. Behavioural calls (track, page, screen) become rows; identify,
alias, group and privacy signals are not behaviour and are skipped. A
customer who objected to (or did not consent to) the ``analytics`` purpose
has nothing stored: the local ConsentProjection answers per event.
``profile merged`` re-keys history so the journey follows the person.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from analytics.adapters.clickhouse_store import ClickHouseEventStore
from analytics.adapters.event_store import EventStore
from analytics.domain.batch import DecodedBatch, decode_interactions
from cxloop_libs.messaging import MalformedEvent, ReceivedEvent
from cxloop_libs.messaging import catalog as ev

log = logging.getLogger(__name__)


class Ingest:
    def __init__(
        self,
        store: EventStore | ClickHouseEventStore,
        may_use: Callable[[str], bool],
        *,
        purpose: str = "analytics",
    ) -> None:
        self.store = store
        self.may_use = may_use
        self.purpose = purpose
        self.stored = 0
        self.refused = 0
        self.listeners: list[Callable[[int], None]] = []

    def on_interactions(self, events: list[ReceivedEvent]) -> None:
        """One fetch -> columns -> one store transaction, decoded here. A
        malformed event fails the batch (the consumer then replays it one
        by one, and the culprit goes to the dead letters)."""
        decoded = decode_interactions(
            [(e.type, e.id, e.data) for e in events], ev.INTERACTION_RESOLVED.ce_type
        )
        if decoded.errors:
            raise MalformedEvent(decoded.errors[0][1])
        self.store_decoded(decoded)

    def store_decoded(self, decoded: DecodedBatch) -> int:
        """The consented rows of a decoded fetch into the store, one
        transaction; consent is asked once per customer of the batch."""
        b = decoded.batch
        allowed = {c: self.may_use(c) for c in set(b.customer_id)}
        keep = [i for i, c in enumerate(b.customer_id) if allowed[c]]
        if len(keep) < len(b):
            self.refused += len(b) - len(keep)
            b = b.take(keep)
        n = self.store.ingest_batch(b)
        self.stored += n
        for listener in self.listeners:
            listener(n)
        return n

    def on_profiles(self, events: list[ReceivedEvent]) -> None:
        for e in events:
            if e.type == ev.PROFILE_MERGED.ce_type:
                msg = e.message()
                if not msg.surviving_customer_id:
                    raise MalformedEvent("profile merged without surviving_customer_id")
                self.store.rekey(msg.surviving_customer_id, list(msg.merged_customer_ids))
