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
from datetime import UTC, datetime
from typing import Any

from cxloop.gateway.v1 import events_pb2 as gw

from analytics.adapters.event_store import EventBatch, EventRow, EventStore
from analytics.adapters.event_store import properties_json as _json
from cxloop_libs.messaging import MalformedEvent, ReceivedEvent
from cxloop_libs.messaging import catalog as ev
from cxloop_libs.structs import value_of

log = logging.getLogger(__name__)

_DEFAULT_NAMES = {"page": "page viewed", "screen": "screen viewed"}
_KIND_NAMES = {
    gw.INTERACTION_KIND_TRACK: "track",
    gw.INTERACTION_KIND_PAGE: "page",
    gw.INTERACTION_KIND_SCREEN: "screen",
}


def row_of(event_id: str, msg: Any) -> EventRow | None:
    """The stored row of an InteractionResolved; None when not behaviour."""
    it = msg.interaction
    kind = _KIND_NAMES.get(it.kind)
    if kind is None:
        return None
    if not msg.customer_id:
        raise MalformedEvent("interaction resolved without customer_id")
    stamp = it.occurred_at if it.HasField("occurred_at") else it.received_at
    ts = datetime.fromtimestamp(stamp.seconds + stamp.nanos / 1e9, UTC)
    name = it.name or (
        "page viewed" if kind == "page" else "screen viewed" if kind == "screen" else ""
    )
    if not name:
        raise MalformedEvent("track call without an event name")
    return EventRow(
        event_id=it.message_id or event_id,
        customer_id=msg.customer_id,
        ts=ts,
        event=name,
        kind=kind,
        channel=it.channel or "unknown",
        source=it.source,
        properties={k: value_of(v) for k, v in it.properties.fields.items()},
    )


class Ingest:
    def __init__(
        self, store: EventStore, may_use: Callable[[str], bool], *, purpose: str = "analytics"
    ) -> None:
        self.store = store
        self.may_use = may_use
        self.purpose = purpose
        self.stored = 0
        self.refused = 0
        self.listeners: list[Callable[[int], None]] = []

    def on_interactions(self, events: list[ReceivedEvent]) -> None:
        """One fetch -> columns -> one store transaction. Per event only the
        protobuf decode and the field reads; consent is asked once per
        customer of the batch."""
        b = EventBatch()
        allowed: dict[str, bool] = {}
        wanted = ev.INTERACTION_RESOLVED.ce_type
        kinds = _KIND_NAMES
        for e in events:
            if e.type != wanted:
                continue
            msg = e.message()
            it = msg.interaction
            kind = kinds.get(it.kind)
            if kind is None:
                continue
            cid = msg.customer_id
            if not cid:
                raise MalformedEvent("interaction resolved without customer_id")
            name = it.name or _DEFAULT_NAMES.get(kind, "")
            if not name:
                raise MalformedEvent("track call without an event name")
            ok = allowed.get(cid)
            if ok is None:
                ok = allowed[cid] = self.may_use(cid)
            if not ok:
                self.refused += 1
                continue
            stamp = it.occurred_at if it.HasField("occurred_at") else it.received_at
            b.event_id.append(it.message_id or e.id)
            b.customer_id.append(cid)
            b.ts_us.append(stamp.seconds * 1_000_000 + stamp.nanos // 1000)
            b.event.append(name)
            b.kind.append(kind)
            b.channel.append(it.channel or "unknown")
            b.source.append(it.source)
            fields = it.properties.fields
            b.properties.append(_json({k: value_of(fields[k]) for k in fields}) if fields else "{}")
        n = self.store.ingest_batch(b)
        self.stored += n
        for listener in self.listeners:
            listener(n)

    def on_profiles(self, events: list[ReceivedEvent]) -> None:
        for e in events:
            if e.type == ev.PROFILE_MERGED.ce_type:
                msg = e.message()
                if not msg.surviving_customer_id:
                    raise MalformedEvent("profile merged without surviving_customer_id")
                self.store.rekey(msg.surviving_customer_id, list(msg.merged_customer_ids))
