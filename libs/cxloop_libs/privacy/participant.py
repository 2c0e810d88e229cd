"""How a service takes part in privacy (data-subject) requests.

The consent service runs each request as a saga: it publishes
``erasure requested`` / ``access requested`` / ``rectification requested`` /
``restriction requested`` on the ``CONSENT`` stream, and the request completes
only when every registered participant has answered. A service joins with
one call in its ``bootstrap.py``::

    from cxloop_libs.privacy import PrivacyAnswer, RequestKind, join_privacy_requests

    def answer(session, customer_id, kind):   # session is None without a database
        if kind is RequestKind.ERASURE:
            n = delete_rows_of(session, customer_id)
            return PrivacyAnswer(["loyalty_ledger"], {"loyalty_ledger": n})
        ...

    join_privacy_requests(runtime, "loyalty", answer)

and adds its name to ``CXLOOP_CONSENT_PRIVACY_PARTICIPANTS``. A service with
a database answers inside the consumer's transaction: its deletions, the inbox
row and the answer event (outbox) commit together, so an erasure is reported
exactly when it happened. A service without one (the gateway) publishes the
answer directly, with an id derived from the request, so a redelivered request
yields the same event (JetStream drops the duplicate).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

from cxloop.consent.v1 import events_pb2 as pb
from nats.aio.msg import Msg
from nats.js.errors import NotFoundError
from sqlmodel import Session

from cxloop_libs.audit import PRIVACY_REQUEST, Action, Actor, AuditLog
from cxloop_libs.messaging import (
    BatchConsumer,
    ConsumerSpec,
    EventKind,
    MalformedEvent,
    OutboxWriter,
    PendingEvent,
    ReceivedEvent,
)
from cxloop_libs.messaging import catalog as ev
from cxloop_libs.messaging.cloudevents import parse_headers
from cxloop_libs.messaging.consumer import retry_delay
from cxloop_libs.pii.envelope import SubjectKeyring
from cxloop_libs.runtime import ServiceRuntime

log = logging.getLogger(__name__)

_ANSWER_NS = uuid.UUID("5d1b8a3e-37a4-4c8e-9f0e-7f4a2b6c9d10")
REQUESTS_STREAM = "CONSENT"


class RequestKind(StrEnum):
    ACCESS = "access"
    ERASURE = "erasure"
    RECTIFICATION = "rectification"
    RESTRICTION = "restriction"

    def to_proto(self) -> pb.PrivacyRequestKind.ValueType:
        return _KIND_TO_PROTO[self]

    @classmethod
    def from_proto(cls, value: int) -> RequestKind | None:
        return _KIND_FROM_PROTO.get(value)


_KIND_TO_PROTO = {
    RequestKind.ACCESS: pb.PRIVACY_REQUEST_KIND_ACCESS,
    RequestKind.ERASURE: pb.PRIVACY_REQUEST_KIND_ERASURE,
    RequestKind.RECTIFICATION: pb.PRIVACY_REQUEST_KIND_RECTIFICATION,
    RequestKind.RESTRICTION: pb.PRIVACY_REQUEST_KIND_RESTRICTION,
}
_KIND_FROM_PROTO = {int(v): k for k, v in _KIND_TO_PROTO.items()}
_KIND_OF_TYPE = {
    ev.ERASURE_REQUESTED.ce_type: RequestKind.ERASURE,
    ev.ACCESS_REQUESTED.ce_type: RequestKind.ACCESS,
    ev.RECTIFICATION_REQUESTED.ce_type: RequestKind.RECTIFICATION,
    ev.RESTRICTION_REQUESTED.ce_type: RequestKind.RESTRICTION,
}


@dataclass(frozen=True, slots=True)
class PrivacyAnswer:
    """What a service did: categories concerned, rows per category, and for
    access the export (one JSON document; identifiers as hashes, no raw PII)."""

    categories: list[str] = field(default_factory=lambda: ["none"])
    row_counts: dict[str, int] = field(default_factory=dict)
    export_json: str = ""
    detail: str = ""

    @property
    def records_affected(self) -> int:
        return sum(self.row_counts.values())


# (session or None, customer id, kind) -> answer. Raise to have the request
# redelivered (bounded; the saga escalates a participant that stays silent).
PrivacyHandler = Callable[[Session | None, str, RequestKind], PrivacyAnswer]


def answer_kind(participant: str) -> EventKind:
    try:
        return ev.PRIVACY_REQUEST_ANSWERED[participant]
    except KeyError:
        known = ", ".join(ev.PRIVACY_REQUEST_ANSWERED)
        raise ValueError(f"unknown privacy participant {participant!r}; known: {known}") from None


def answer_event_id(request_id: str, participant: str) -> str:
    return str(uuid.uuid5(_ANSWER_NS, f"{request_id}/{participant}"))


def answer_message(
    participant: str, request_id: str, customer_id: str, kind: RequestKind, answer: PrivacyAnswer
) -> pb.PrivacyRequestAnswered:
    msg = pb.PrivacyRequestAnswered(
        request_id=request_id,
        customer_id=customer_id,
        participant=participant,
        kind=kind.to_proto(),
        outcome=(
            pb.PRIVACY_ANSWER_OUTCOME_DONE
            if answer.records_affected
            else pb.PRIVACY_ANSWER_OUTCOME_NOT_APPLICABLE
        ),
        categories=list(answer.categories),
        row_counts={k: int(v) for k, v in answer.row_counts.items()},
        export_json=answer.export_json,
        detail=answer.detail,
    )
    msg.answered_at.GetCurrentTime()
    return msg


def work_of(event: ReceivedEvent) -> tuple[str, str, RequestKind] | None:
    """(request id, customer id, kind) of a request event; None for others."""
    kind = _KIND_OF_TYPE.get(event.type)
    if kind is None:
        return None
    msg = event.message()
    if not msg.request_id or not msg.customer_id:
        raise MalformedEvent("privacy request without request_id or customer_id")
    return msg.request_id, msg.customer_id, kind


class PrivacyParticipant:
    """A service's registration for privacy requests."""

    def __init__(
        self,
        name: str,
        handler: PrivacyHandler,
        *,
        keyring: SubjectKeyring | None = None,
        audit: AuditLog | None = None,
    ) -> None:
        self.name = name
        # With the service's audit log: the erasure or export is itself
        # recorded, and an access export carries what the log holds about the
        # customer ("who looked at my data"), docs/adr/0020-audit-log.md.
        self.audit = audit
        self.handler = handler
        # Erasure also shreds the subject's key here, in the same transaction:
        # whatever was sealed under it, anywhere, becomes unreadable.
        self.keyring = keyring
        self.kind = answer_kind(name)
        self.answered = 0

    @property
    def durable(self) -> str:
        return f"{self.name}-privacy"

    def spec(self, *, batch_size: int = 50, max_deliver: int = 5) -> ConsumerSpec:
        return ConsumerSpec(
            stream=REQUESTS_STREAM,
            durable=self.durable,
            filter_subject=ev.PRIVACY_WORK_SUBJECTS,
            batch_size=batch_size,
            max_deliver=max_deliver,
        )

    def on_requests(self, session: Session, events: list[ReceivedEvent]) -> None:
        """BatchConsumer handler: act and stage the answer, in one transaction."""
        outbox = OutboxWriter(session)
        for e in events:
            work = work_of(e)
            if work is None:
                continue
            request_id, customer_id, kind = work
            answer = self.handler(session, customer_id, kind)
            if self.audit is not None:
                answer = self._audited(session, request_id, customer_id, kind, answer)
            if self.keyring is not None and kind is RequestKind.ERASURE:
                shredded = self.keyring.shred(session, customer_id)
                answer = PrivacyAnswer(
                    sorted({*answer.categories, "subject_key"} - {"none"}),
                    {**answer.row_counts, "subject_key": shredded},
                    answer.export_json,
                    answer.detail,
                )
            outbox.stage(
                self.kind,
                answer_message(self.name, request_id, customer_id, kind, answer),
                subject=customer_id,
                event_id=answer_event_id(request_id, self.name),
            )
            self.answered += 1
        outbox.flush()

    def _audited(
        self,
        session: Session,
        request_id: str,
        customer_id: str,
        kind: RequestKind,
        answer: PrivacyAnswer,
    ) -> PrivacyAnswer:
        assert self.audit is not None
        if kind is RequestKind.ACCESS:
            entries = [e.to_json() for e in self.audit.about(session, customer_id)]
            try:
                export = json.loads(answer.export_json) if answer.export_json else {}
            except ValueError:
                export = {"data": answer.export_json}
            if not isinstance(export, dict):
                export = {"data": export}
            export["audit_log"] = entries
            answer = PrivacyAnswer(
                sorted({*answer.categories, "audit_log"} - {"none"}),
                {**answer.row_counts, "audit_log": len(entries)},
                json.dumps(export, sort_keys=True),
                answer.detail,
            )
        action = {RequestKind.ACCESS: Action.EXPORT, RequestKind.ERASURE: Action.ERASE}.get(
            kind, Action.CHANGE
        )
        self.audit.record(
            session,
            Actor(PRIVACY_REQUEST, reason=f"{kind.value} request {request_id}"),
            action,
            f"{self.name}.subject_data",
            subject=customer_id,
            fields=sorted(answer.row_counts),
            operation=f"privacy_request.{kind.value}",
        )
        return answer


class StatelessParticipant:
    """The consumer loop of a participant without a database: act, publish
    the answer (derived id), then ack; nak with back-off on failure."""

    def __init__(
        self, runtime: ServiceRuntime, participant: PrivacyParticipant, spec: ConsumerSpec
    ) -> None:
        self.runtime = runtime
        self.participant = participant
        self.spec = spec
        self._stopped = asyncio.Event()

    async def stop(self) -> None:
        self._stopped.set()

    async def _wait(self, seconds: float) -> bool:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopped.wait(), seconds)
        return self._stopped.is_set()

    async def run(self) -> None:
        bus = self.runtime.bus
        await bus.ready()
        delay = 0.1
        while True:
            try:
                psub = await bus.js.pull_subscribe(
                    self.spec.filter_subject, durable=self.spec.durable, stream=self.spec.stream
                )
                break
            except NotFoundError:  # the consent service creates the stream
                if await self._wait(delay):
                    return
                delay = min(delay * 2, 2.0)
            except Exception as exc:
                # A stalled or reconnecting NATS (timeout, connection closed)
                # must not end the task, and with it the whole service.
                log.warning("privacy subscribe failed, retrying: %r", exc)
                if await self._wait(delay):
                    return
                delay = min(delay * 2, 2.0)
        try:
            while not self._stopped.is_set():
                fetch = asyncio.ensure_future(
                    psub.fetch(self.spec.batch_size, timeout=self.spec.fetch_timeout_s)
                )
                stopped = asyncio.ensure_future(self._stopped.wait())
                done, _ = await asyncio.wait({fetch, stopped}, return_when=asyncio.FIRST_COMPLETED)
                stopped.cancel()
                if fetch not in done:
                    fetch.cancel()
                    with contextlib.suppress(BaseException):
                        await fetch
                    return
                try:
                    msgs = fetch.result()
                except TimeoutError:  # nats' and asyncio's: nothing arrived
                    continue
                except Exception as exc:
                    log.warning("privacy fetch failed: %s", exc)
                    if await self._wait(0.5):
                        return
                    continue
                for msg in msgs:
                    await self._one(msg)
        finally:
            with contextlib.suppress(Exception):
                await psub.unsubscribe()

    async def _one(self, msg: Msg) -> None:
        p = self.participant
        try:
            event = parse_headers(msg.subject, msg.headers, msg.data)
            work = work_of(event)
            if work is not None:
                request_id, customer_id, kind = work
                answer = await asyncio.to_thread(p.handler, None, customer_id, kind)
                await self.runtime.publisher.publish(
                    PendingEvent.of(
                        p.kind,
                        answer_message(p.name, request_id, customer_id, kind, answer),
                        subject=customer_id,
                        event_id=answer_event_id(request_id, p.name),
                    )
                )
                p.answered += 1
        except Exception as exc:
            deliveries = msg.metadata.num_delivered
            if isinstance(exc, MalformedEvent) or deliveries >= self.spec.max_deliver:
                log.error("privacy request dropped: %s", exc, extra={"participant": p.name})
                await msg.term()
            else:
                log.warning("privacy request failed, retrying: %s", exc)
                await msg.nak(delay=retry_delay(deliveries))
            return
        await msg.ack()


def join_privacy_requests(
    runtime: ServiceRuntime,
    name: str,
    handler: PrivacyHandler,
    *,
    keyring: SubjectKeyring | None = None,
    audit: AuditLog | None = None,
) -> PrivacyParticipant:
    """Register the service as privacy participant ``name`` (its domain);
    with a ``keyring`` (services with a database) erasure also shreds the
    subject's key (cxloop_libs.pii.envelope); with an ``audit`` log the
    erasure/export is recorded and access bundles include the customer's
    audit entries (cxloop_libs.audit)."""
    if (keyring is not None or audit is not None) and runtime.db is None:
        raise ValueError(
            "a keyring or audit log lives in the service's database; this one has none"
        )
    participant = PrivacyParticipant(name, handler, keyring=keyring, audit=audit)
    settings = runtime.settings
    spec = participant.spec(max_deliver=settings.consumer_max_deliver)
    if runtime.db is not None:
        relay = runtime.relay
        runtime.consumers.append(
            BatchConsumer(
                runtime.bus,
                runtime.db,
                spec,
                participant.on_requests,
                on_commit=relay.notify if relay is not None else None,
            )
        )
    else:
        loop = StatelessParticipant(runtime, participant, spec)
        runtime.extra_tasks.append(loop.run)
        runtime.on_stop.append(loop.stop)
    return participant
