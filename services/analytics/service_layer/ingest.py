"""From the identity stream into the event store.

``interaction resolved`` carries the interaction and the one customer it
belongs to. Behavioural calls (track, page, screen) become rows; identify,
alias, group and privacy signals are not behaviour and are skipped. A
customer who objected to (or did not consent to) the ``analytics`` purpose
has nothing stored: the local ConsentProjection answers per event.
``profile merged`` re-keys history so the journey follows the person.
Feedback and loyalty events about a customer (a survey answered, a support
case opened, points earned …) become journey events too (docs/adr/0280).
Personalization's ``segment entered`` / ``segment exited`` keep each
customer's segment membership, for funnels by segment and cohorts of a
segment (docs/adr/0275); the same consent check applies.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

from analytics.adapters.clickhouse_store import ClickHouseEventStore
from analytics.adapters.event_store import EventStore
from analytics.domain.batch import DecodedBatch, decode_interactions
from analytics.domain.touchpoints import decode_touchpoints
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

    def on_touchpoints(self, events: list[ReceivedEvent]) -> None:
        """Feedback and loyalty events about one customer -> journey rows
        (docs/adr/0280), with the same consent check and de-duplication as
        behaviour; a malformed one fails the batch (then one by one)."""
        decoded = decode_touchpoints([(e.type, e.id, e.data) for e in events])
        if decoded.errors:
            raise MalformedEvent(decoded.errors[0][1])
        if len(decoded.batch):
            self.store_decoded(decoded)

    def on_profiles(self, events: list[ReceivedEvent]) -> None:
        for e in events:
            if e.type == ev.PROFILE_MERGED.ce_type:
                msg = e.message()
                if not msg.surviving_customer_id:
                    raise MalformedEvent("profile merged without surviving_customer_id")
                self.store.rekey(msg.surviving_customer_id, list(msg.merged_customer_ids))

    def on_segments(self, events: list[ReceivedEvent]) -> None:
        """Segment entered / exited -> membership changes, one transaction.
        A change without a customer or segment id fails the batch (replayed
        one by one: the culprit goes to the dead letters)."""
        changes: list[tuple[str, str, bool, datetime]] = []
        for e in events:
            if e.type == ev.SEGMENT_ENTERED.ce_type:
                msg, member = e.message(), True
                stamp = msg.entered_at if msg.HasField("entered_at") else None
            elif e.type == ev.SEGMENT_EXITED.ce_type:
                msg, member = e.message(), False
                stamp = msg.exited_at if msg.HasField("exited_at") else None
            else:
                continue
            if not msg.customer_id:
                raise MalformedEvent(f"{e.type} without customer_id")
            if not msg.segment_id:
                raise MalformedEvent(f"{e.type} without segment_id")
            if not self.may_use(msg.customer_id):
                self.refused += 1
                continue
            changes.append((msg.customer_id, msg.segment_id, member, _when(stamp, e.time)))
        if changes:
            self.store.apply_segment_changes(changes)


def _when(stamp: object, ce_time: str) -> datetime:
    """The change's own time, else the event's ``ce-time``."""
    if stamp is not None:
        return stamp.ToDatetime(tzinfo=UTC)  # type: ignore[attr-defined, no-any-return]
    try:
        return datetime.fromisoformat(ce_time.replace("Z", "+00:00"))
    except ValueError:
        raise MalformedEvent(f"no time for the change (ce-time {ce_time[:40]!r})") from None
