"""Ingest of Segment calls: validate, translate, de-duplicate, publish.

An event is acknowledged to the sender only after JetStream has stored it (the
PubAck came back); if NATS cannot take it the caller gets Unavailable (HTTP
503) and retries. Retries are safe when the sender sets ``messageId``: the
event id is derived from source + messageId and JetStream drops the copy
inside its duplicate window.

A batch is accepted event by event (docs/adr/0035): every valid event is
published, each invalid one is reported (index, messageId, field, reason)
and counted, so one bad event never costs the good ones (SDKs drop a batch
answered 400). Publishing is per event too: after a 503 some events may be
stored (named in the answer); resending the batch with the same messageIds
stores only the missing ones.

Consent (docs/adr/0021): with an ``enforcement`` given, a track/page/screen
call of a customer who objected to analytics is withheld: answered like any
other (Segment SDKs retry anything else) and counted, but not published. If
it carried ``Sec-GPC: 1``, a privacy-signal event (identifiers and the signal
only) is published in its place so the opt-out is still recorded.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC
from typing import Any, ClassVar, Protocol

from cxloop.gateway.v1 import events_pb2
from nats.js.api import PubAck

from cxloop_libs.errors import Unavailable
from cxloop_libs.messaging import PendingEvent
from cxloop_libs.messaging import catalog as ev
from gateway.domain.enforcement import ANALYTICS, ANALYTICS_CALLS, signal_only
from gateway.domain.errors import InvalidRequest, TooLarge
from gateway.domain.segment import (
    CallType,
    batch_item_type,
    parse_batch,
    parse_message,
    with_batch_defaults,
)
from gateway.domain.translation import InteractionTranslator, Reception, RecordedInteraction
from gateway.service_layer.metrics import GatewayMetrics, gateway_metrics

log = logging.getLogger(__name__)

MAX_EVENT_BYTES = 32 * 1024
# Enough to fix a batch in one round trip without echoing a huge error body.
MAX_REPORTED_PROBLEMS = 100
PUBLISH_TIMEOUT_S = 5.0


class EventSink(Protocol):
    """What ingest needs of ``cxloop_libs.messaging.EventPublisher``."""

    async def publish(self, event: PendingEvent, *, timeout: float = ...) -> PubAck: ...

    async def publish_many(
        self, events: Sequence[PendingEvent], *, timeout: float = ...
    ) -> list[PubAck | BaseException]: ...


class Withholding(Protocol):
    """What ingest needs of ``service_layer.enforcement.AnalyticsEnforcement``."""

    def withholding(self, event: events_pb2.InteractionRecorded) -> str | None: ...


INVALID = "invalid"
TOO_LARGE = "too_large"
NOT_ATTRIBUTABLE = "not_attributable"


@dataclass(frozen=True, slots=True)
class Rejection:
    """One problem of one event of a batch that was not stored."""

    index: int
    message_id: str | None
    field: str
    reason: str
    code: str = INVALID

    def as_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "messageId": self.message_id,
            "field": self.field,
            "reason": self.reason,
            "code": self.code,
        }


class _EventTooLarge(InvalidRequest):
    code: ClassVar[str] = TOO_LARGE


class _NotAttributable(InvalidRequest):
    code: ClassVar[str] = NOT_ATTRIBUTABLE


class NotStored(Unavailable):
    """JetStream did not store every event; ``stored`` are the messageIds of
    those it did (a retry with the same messageIds adds only the rest)."""

    def __init__(self, message: str, stored: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.stored = list(stored)


@dataclass(frozen=True, slots=True)
class IngestResult:
    accepted: int
    duplicates: int = 0
    junk_identifiers_dropped: int = 0
    # Of `accepted`: not published for consent (the customer objected).
    withheld: int = 0
    # Batch events not stored, one entry per problem (capped), and how many
    # events that is; `not_attributable` of them had only placeholder ids.
    rejections: tuple[Rejection, ...] = ()
    rejected_events: int = 0
    not_attributable: int = 0


class SegmentIngest:
    def __init__(
        self,
        translator: InteractionTranslator,
        sink: EventSink,
        *,
        max_batch_events: int = 500,
        max_event_bytes: int = MAX_EVENT_BYTES,
        is_connected: Callable[[], bool] = lambda: True,
        publish_timeout_s: float = PUBLISH_TIMEOUT_S,
        metrics: GatewayMetrics | None = None,
        enforcement: Withholding | None = None,
    ) -> None:
        self.translator = translator
        self.enforcement = enforcement
        self.sink = sink
        self.max_batch_events = max_batch_events
        self.max_event_bytes = max_event_bytes
        self._is_connected = is_connected
        self._timeout = publish_timeout_s
        self._metrics = metrics or gateway_metrics()

    async def single(self, call_type: CallType, body: object, reception: Reception) -> IngestResult:
        try:
            message = parse_message(call_type, body)
            recorded = self.translator.translate(message, reception)
        except InvalidRequest as exc:
            self._metrics.events_rejected.add(1, {"reason": exc.code})
            raise
        if recorded.not_attributable:
            # A valid call no customer can ever be found for: reported in
            # the answer (200, like a batch's), not stored.
            rejections = _rejections(
                0, body, _NotAttributable(recorded.not_attributable_problems())
            )
            self._count_rejected(rejections)
            return IngestResult(
                0,
                junk_identifiers_dropped=recorded.junk_count,
                rejections=tuple(rejections),
                rejected_events=1,
                not_attributable=1,
            )
        self._count_dropped([recorded])
        pending, withheld = self._to_publish(call_type, recorded)
        if pending is None:
            self._count_accepted({call_type: 1}, {})
            return IngestResult(1, 0, recorded.junk_count, withheld=1)
        self._require_bus()
        try:
            ack = await self.sink.publish(pending, timeout=self._timeout)
        except (Exception, asyncio.CancelledError) as exc:
            _reraise_if_cancelled(exc)
            raise self._unavailable([exc]) from exc
        duplicates = int(bool(ack.duplicate))
        self._count_accepted({call_type: 1}, {call_type: duplicates})
        return IngestResult(1, duplicates, recorded.junk_count, withheld=withheld)

    async def batch(self, body: object, reception: Reception) -> IngestResult:
        """Every valid event of the batch is published; each invalid one is
        reported (index, messageId, field, reason) and counted, not stored.
        Only a body that is not a batch at all is refused whole (400), and
        only a batch over the event count is refused for size (413)."""
        envelope = parse_batch(body)
        items = envelope.batch
        if len(items) > self.max_batch_events:
            raise TooLarge(f"a batch holds at most {self.max_batch_events} events")

        rejections: list[Rejection] = []
        recorded: list[tuple[CallType, RecordedInteraction]] = []
        for i, item in enumerate(items):
            prefix = f"batch[{i}]"
            try:
                if not isinstance(item, dict):
                    raise InvalidRequest.one(prefix, "must be a JSON object")
                if _json_size(item) > self.max_event_bytes:
                    raise _EventTooLarge.one(
                        prefix, f"an event must be at most {self.max_event_bytes} bytes"
                    )
                call_type = batch_item_type(item, prefix)
                message = parse_message(call_type, with_batch_defaults(item, envelope), prefix)
                r = self.translator.translate(message, reception, prefix=prefix)
                if r.not_attributable:
                    raise _NotAttributable(r.not_attributable_problems())
                recorded.append((call_type, r))
            except InvalidRequest as exc:
                rejections += _rejections(i, item, exc)
        self._count_rejected(rejections)
        self._count_dropped([r for _, r in recorded])

        # The same messageId twice in one batch is one event; JetStream would
        # drop the second copy anyway, this just saves the round trip.
        unique: dict[str, tuple[CallType, PendingEvent, str]] = {}
        accepted: dict[CallType, int] = {}
        duplicates: dict[CallType, int] = {}
        withheld = 0
        for call_type, r in recorded:
            accepted[call_type] = accepted.get(call_type, 0) + 1
            pending, held = self._to_publish(call_type, r)
            withheld += held
            if pending is None:
                continue
            if r.event_id in unique:
                duplicates[call_type] = duplicates.get(call_type, 0) + 1
            else:
                unique[r.event_id] = (call_type, pending, r.event.message_id)

        if unique:
            self._require_bus()
            pending_events = [p for _, p, _ in unique.values()]
            try:
                results = await self.sink.publish_many(pending_events, timeout=self._timeout)
            except (Exception, asyncio.CancelledError) as exc:
                _reraise_if_cancelled(exc)
                raise self._unavailable([exc]) from exc
            failed = [r for r in results if isinstance(r, BaseException)]
            if failed:
                stored = [
                    mid
                    for (_, _, mid), res in zip(unique.values(), results, strict=True)
                    if not isinstance(res, BaseException)
                ]
                raise self._unavailable(failed, stored=stored)
            for (call_type, _, _), ack in zip(unique.values(), results, strict=True):
                if isinstance(ack, PubAck) and ack.duplicate:
                    duplicates[call_type] = duplicates.get(call_type, 0) + 1
        self._count_accepted(accepted, duplicates)
        return IngestResult(
            accepted=len(recorded),
            duplicates=sum(duplicates.values()),
            junk_identifiers_dropped=sum(r.junk_count for _, r in recorded),
            withheld=withheld,
            rejections=tuple(rejections[:MAX_REPORTED_PROBLEMS]),
            rejected_events=len({r.index for r in rejections}),
            not_attributable=len({r.index for r in rejections if r.code == NOT_ATTRIBUTABLE}),
        )

    def _to_publish(
        self, call_type: CallType, r: RecordedInteraction
    ) -> tuple[PendingEvent | None, int]:
        """The event to publish for a call (None: nothing) and 1 if withheld."""
        if self.enforcement is None or call_type not in ANALYTICS_CALLS:
            return _pending(r), 0
        if self.enforcement.withholding(r.event) is None:
            return _pending(r), 0
        self._metrics.events_withheld.add(1, {"purpose": ANALYTICS})
        if not r.event.global_privacy_control:
            return None, 1
        signal = signal_only(r.event)
        received = signal.received_at.ToDatetime(tzinfo=UTC)
        return PendingEvent.of(
            ev.INTERACTION_RECORDED, signal, event_id=r.event_id, time=received
        ), 1

    def _require_bus(self) -> None:
        if not self._is_connected():
            self._metrics.requests_rejected.add(1, {"reason": "unavailable"})
            raise Unavailable("the event bus is not reachable; retry shortly")

    def _unavailable(
        self, errors: Sequence[BaseException], *, stored: Sequence[str] = ()
    ) -> NotStored:
        self._metrics.requests_rejected.add(1, {"reason": "unavailable"})
        kinds = sorted({type(e).__name__ for e in errors})
        log.warning(
            "events not stored: %d publish(es) failed (%s), %d stored",
            len(errors),
            ", ".join(kinds),
            len(stored),
        )
        return NotStored("the event bus did not store the events; retry shortly", stored)

    def _count_rejected(self, rejections: Sequence[Rejection]) -> None:
        codes: dict[int, str] = {}
        for r in rejections:
            codes.setdefault(r.index, r.code)
        for code in codes.values():
            self._metrics.events_rejected.add(1, {"reason": code})

    def _count_dropped(self, recorded: Sequence[RecordedInteraction]) -> None:
        for r in recorded:
            if r.timestamp_corrected:
                self._metrics.timestamps_corrected.add(1)
            for kind, n in r.pii_redacted.items():
                self._metrics.pii_redacted.add(n, {"kind": kind})
            for id_type, n in r.junk_dropped.items():
                self._metrics.junk_identifiers_dropped.add(n, {"id_type": id_type.value})
            if r.pii_properties_dropped:
                self._metrics.pii_properties_dropped.add(r.pii_properties_dropped)

    def _count_accepted(
        self, accepted: dict[CallType, int], duplicates: dict[CallType, int]
    ) -> None:
        for call_type, n in accepted.items():
            self._metrics.events_accepted.add(n, {"call": call_type.value})
        for call_type, n in duplicates.items():
            if n:
                self._metrics.events_duplicate.add(n, {"call": call_type.value})


def _pending(r: RecordedInteraction) -> PendingEvent:
    return PendingEvent.of(
        ev.INTERACTION_RECORDED, r.event, event_id=r.event_id, time=r.occurred_at
    )


def _json_size(item: object) -> int:
    # surrogatepass: a lone surrogate is reported by validation, not a crash here.
    return len(
        json.dumps(item, separators=(",", ":"), ensure_ascii=False).encode("utf-8", "surrogatepass")
    )


def _rejections(index: int, item: object, exc: InvalidRequest) -> list[Rejection]:
    code = exc.code
    message_id = item.get("messageId") if isinstance(item, dict) else None
    mid = message_id if isinstance(message_id, str) and _printable(message_id) else None
    return [Rejection(index, mid, p.field, p.reason, code) for p in exc.problems]


def _printable(text: str) -> bool:
    """Safe to echo: encodable (no lone surrogates) and bounded."""
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return len(text) <= 256 and "\x00" not in text


def _reraise_if_cancelled(exc: BaseException) -> None:
    """A publish future cancelled under us (the NATS client gave up on it) is
    a failed publish; the request's own task being cancelled is not ours."""
    if isinstance(exc, asyncio.CancelledError):
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise exc
