"""One fetch of interactions as columns, and how events are keyed.

What the event store takes in (:class:`EventBatch`) and what turns an
``interaction resolved`` body into its row (:func:`decode_interactions`).
Plain code with light imports (protobuf, numpy, orjson): the ingest
decoder process imports only this (docs/adr/0245).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import orjson
from cxloop.gateway.v1 import events_pb2 as gw
from cxloop.identity.v1 import events_pb2 as identity_pb
from google.protobuf.message import DecodeError

from cxloop_libs.structs import value_of

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
_md5 = hashlib.md5
_DEFAULT_NAMES = {"page": "page viewed", "screen": "screen viewed"}
KIND_NAMES = {
    gw.INTERACTION_KIND_TRACK: "track",
    gw.INTERACTION_KIND_PAGE: "page",
    gw.INTERACTION_KIND_SCREEN: "screen",
}


def customer_key(customer_id: str) -> int:
    """63-bit key of a customer id: the low half of its MD5, as DuckDB's
    md5_number_lower, shifted to fit a signed BIGINT. Stable across versions
    (DuckDB's hash() is not promised to be)."""
    return int.from_bytes(hashlib.md5(customer_id.encode()).digest()[8:], "little") >> 1


_md5 = hashlib.md5
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)


def event_key(event_id: str) -> int:
    """64-bit key of an event id for de-duplication (collision odds for 10 M
    events ~3e-6; docs/adr/0060)."""
    return int.from_bytes(hashlib.md5(event_id.encode()).digest()[:8], "little")


def event_keys(event_ids: Sequence[str]) -> np.ndarray[Any, np.dtype[np.uint64]]:
    """:func:`event_key` of each id."""
    return np.fromiter(
        (int.from_bytes(_md5(i.encode()).digest()[:8], "little") for i in event_ids),
        dtype=np.uint64,
        count=len(event_ids),
    )


def customer_keys(customer_ids: Sequence[str]) -> np.ndarray[Any, np.dtype[np.int64]]:
    """:func:`customer_key` of each id (each distinct id hashed once)."""
    of = {c: customer_key(c) for c in set(customer_ids)}
    return np.fromiter((of[c] for c in customer_ids), dtype=np.int64, count=len(customer_ids))


def properties_json(properties: dict[str, Any]) -> str:
    """An event's properties as the stored JSON object: orjson, a third of
    the stdlib encoder's CPU per event on the ingest path (docs/adr/0245).
    Non-finite numbers become null (the stdlib wrote NaN, which is not
    JSON); anything else unknown is written as its str()."""
    return _dumps(properties, default=str).decode()


_dumps = orjson.dumps
_json = properties_json


@dataclass(frozen=True, slots=True)
class EventRow:
    event_id: str
    customer_id: str
    ts: datetime
    event: str
    kind: str
    channel: str
    source: str
    properties: dict[str, Any]


@dataclass(slots=True)
class EventBatch:
    """Events as columns (what a fetch from the stream is decoded into: no
    object per event). ``ts_us``: microseconds since the epoch, UTC."""

    event_id: list[str] = field(default_factory=list)
    customer_id: list[str] = field(default_factory=list)
    ts_us: list[int] = field(default_factory=list)
    event: list[str] = field(default_factory=list)
    kind: list[str] = field(default_factory=list)
    channel: list[str] = field(default_factory=list)
    source: list[str] = field(default_factory=list)
    properties: list[str] = field(default_factory=list)  # JSON objects
    # event_key / customer_key of each row when the decoder computed them
    # (in its process: docs/adr/0245); None: the store hashes.
    event_keys: np.ndarray[Any, np.dtype[np.uint64]] | None = None
    customer_keys: np.ndarray[Any, np.dtype[np.int64]] | None = None

    def __len__(self) -> int:
        return len(self.event_id)

    def take(self, rows: Sequence[int]) -> EventBatch:
        """The batch of these rows only, in this order."""
        picked = EventBatch(
            event_id=[self.event_id[i] for i in rows],
            customer_id=[self.customer_id[i] for i in rows],
            ts_us=[self.ts_us[i] for i in rows],
            event=[self.event[i] for i in rows],
            kind=[self.kind[i] for i in rows],
            channel=[self.channel[i] for i in rows],
            source=[self.source[i] for i in rows],
            properties=[self.properties[i] for i in rows],
        )
        at = np.asarray(rows, dtype=np.intp)
        if self.event_keys is not None:
            picked.event_keys = self.event_keys[at]
        if self.customer_keys is not None:
            picked.customer_keys = self.customer_keys[at]
        return picked

    @classmethod
    def of(cls, rows: Sequence[EventRow]) -> EventBatch:
        b = cls()
        for r in rows:
            b.event_id.append(r.event_id)
            b.customer_id.append(r.customer_id)
            t = r.ts if r.ts.tzinfo else r.ts.replace(tzinfo=UTC)
            b.ts_us.append((t - _EPOCH) // _US)
            b.event.append(r.event)
            b.kind.append(r.kind)
            b.channel.append(r.channel)
            b.source.append(r.source)
            b.properties.append(_json(r.properties) if r.properties else "{}")
        return b


@dataclass(slots=True)
class DecodedBatch:
    """The behavioural rows of one fetch, decoded (picklable: the decoder
    process makes it). ``errors``: (index in the fetch, reason) of events
    that are not valid interactions."""

    batch: EventBatch = field(default_factory=EventBatch)
    errors: list[tuple[int, str]] = field(default_factory=list)


def decode_interactions(items: Sequence[tuple[str, str, bytes]], wanted_type: str) -> DecodedBatch:
    """(ce-type, ce-id, body) of each event of a fetch -> its columns. No
    consent, no store: the protobuf decode, the field reads, the properties'
    JSON and the keys' hashes, the per-event CPU of ingest that a decoder
    process takes off the service's event loop (docs/adr/0245). Events of
    another type than ``wanted_type`` and non-behavioural calls (identify,
    alias, group, privacy) are skipped."""
    out = DecodedBatch()
    b = out.batch
    parse = identity_pb.InteractionResolved.FromString
    kinds = KIND_NAMES
    for i, (ce_type, ce_id, data) in enumerate(items):
        if ce_type != wanted_type:
            continue
        try:
            msg = parse(data)
        except DecodeError:
            out.errors.append((i, "body is not a valid InteractionResolved"))
            continue
        it = msg.interaction
        kind = kinds.get(it.kind)
        if kind is None:
            continue
        cid = msg.customer_id
        if not cid:
            out.errors.append((i, "interaction resolved without customer_id"))
            continue
        name = it.name or _DEFAULT_NAMES.get(kind, "")
        if not name:
            out.errors.append((i, "track call without an event name"))
            continue
        stamp = it.occurred_at if it.HasField("occurred_at") else it.received_at
        b.event_id.append(it.message_id or ce_id)
        b.customer_id.append(cid)
        b.ts_us.append(stamp.seconds * 1_000_000 + stamp.nanos // 1000)
        b.event.append(name)
        b.kind.append(kind)
        b.channel.append(it.channel or "unknown")
        b.source.append(it.source)
        fields = it.properties.fields
        b.properties.append(_json({k: value_of(fields[k]) for k in fields}) if fields else "{}")
    b.event_keys = event_keys(b.event_id)
    b.customer_keys = customer_keys(b.customer_id)
    return out
