"""The real-time candidate index of every replica follows identity's own
events (issue 14, ADR 0056).

Each identity process holds earlier records' match features in memory
(`service_layer/realtime.CandidateIndex`). A record written through one
replica (an import, a `Resolve` with traits) is announced by a notice its
transaction stages on `cx.identity.index.records` (a `profile updated`
naming the customer, the cause and the `observed_traits`, never values;
ADR 0197); every other replica then opens that
customer's sealed observations from the database into its own index (the
writer indexed them already, and knows the event by its cause). `profile merged`
makes the losers' records the survivor's (and re-reads the survivor's);
`profile split` re-reads both sides; identity's answer to an erasure
(`privacy_request answered`, sent by the replica that erased, after the
delete) drops the customer's records from every other replica's memory.

A plain NATS subscription (no consumer state), like the owner cache's: an
event missed while disconnected is caught up at the next start, when the
index is loaded from the database again.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from cxloop.consent.v1 import events_pb2 as consent_events
from cxloop.identity.v1 import events_pb2 as identity_events

from cxloop_libs.db import Database
from cxloop_libs.messaging import catalog as ev
from cxloop_libs.messaging.cloudevents import parse_headers
from cxloop_libs.pii import IdentifierHasher
from cxloop_libs.runtime import ServiceRuntime
from identity.adapters.trait_store import TraitStore
from identity.service_layer.realtime import (
    INDEX_RECORDS_SUBJECT,
    CandidateIndex,
    index_stored_records,
)

log = logging.getLogger(__name__)
# Identity's own answer to an erasure: sent by the replica that erased, after
# its transaction deleted the rows (and emptied its own index, counted in the
# answer); the other replicas then drop the customer from memory.
ERASURE_ANSWERED = ev.PRIVACY_REQUEST_ANSWERED["identity"]
# Records written with traits are announced on identity's own subject
# (ADR 0197), not read from every `profile created/updated`: those come
# for every new customer and identifier, from the consumer too.
SUBJECTS = (
    INDEX_RECORDS_SUBJECT,
    ev.PROFILE_MERGED.subject,
    ev.PROFILE_SPLIT.subject,
    ERASURE_ANSWERED.subject,
)


def join_index_sync(
    runtime: ServiceRuntime,
    db: Database,
    traits: TraitStore,
    index: CandidateIndex,
    hasher: IdentifierHasher,
) -> None:
    async def reload(customers: list[str]) -> None:
        if not customers:
            return
        # Records stored before the index was loaded are in it already.
        await index_loaded.wait()
        try:
            n = await db.in_transaction(
                lambda s: index_stored_records(s, traits, index, hasher, customers=customers)
            )
            log.debug("index sync: %d records of %d customers", n, len(customers))
        except Exception:  # the next start reloads everything
            log.warning("index sync: reading records failed", exc_info=True)

    async def on_message(msg: Any) -> None:
        try:
            m = parse_headers(msg.subject, msg.headers, msg.data).message()
        except Exception:  # not ours to judge: the consumers dead-letter it
            log.debug("index sync: unreadable event on %s", msg.subject, exc_info=True)
            return
        if isinstance(m, consent_events.PrivacyRequestAnswered):
            if m.kind == consent_events.PRIVACY_REQUEST_KIND_ERASURE:
                index.remove_customers([m.customer_id])
        elif isinstance(m, identity_events.ProfileMerged):
            index.merged(m.surviving_customer_id, m.merged_customer_ids)
            # A record that arrived with the merge (another replica's new
            # customer folded at once) is stored under the survivor; the
            # replica that merged has it already.
            if not index.indexed_here(m.cause_event_id):
                await reload([m.surviving_customer_id])
        elif isinstance(m, identity_events.ProfileSplit):
            await reload([m.original_customer_id, *m.resulting_customer_ids])
        elif isinstance(m, identity_events.ProfileCreated | identity_events.ProfileUpdated):
            # The replica that wrote the records indexed them itself
            # (ADR 0085): only the others read them.
            if m.observed_traits and not index.indexed_here(m.cause_event_id):
                await reload([m.customer_id])

    index_loaded = asyncio.Event()

    async def watch_loaded() -> None:
        # `index.loaded` is a threading.Event (set from the loading task).
        await runtime.db_ready.wait()
        await asyncio.to_thread(index.loaded.wait)
        index_loaded.set()

    runtime.follow_live(list(SUBJECTS), on_message)
    runtime.extra_tasks.append(watch_loaded)
