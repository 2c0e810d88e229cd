"""The whole suite's audit log, read from every service's stream.

Each service publishes its entries on ``cx.<service>.audit.recorded`` (its own
stream). This reads them with one ephemeral ordered consumer per stream, from
``since`` up to the last entry present when it started, optionally only those
about one customer (the ``ce-subject`` header). Streams keep messages for their
max age (the retention policy's ``interactions`` period, 30 days by default):
older entries are in each service's ``audit_event`` table only.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from cxloop.audit.v1 import events_pb2 as aepb
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

from cxloop_libs.audit.log import AuditEntry
from cxloop_libs.messaging import catalog as ev

SERVICES: tuple[str, ...] = tuple(ev.AUDIT_RECORDED)


async def read_audit_entries(
    js: JetStreamContext,
    *,
    services: Sequence[str] = SERVICES,
    since: datetime | None = None,
    subject: str = "",
    timeout_s: float = 5.0,
) -> list[AuditEntry]:
    """Entries of every service in ``services``, oldest first."""
    out: list[AuditEntry] = []
    for service in services:
        kind = ev.AUDIT_RECORDED[service]
        stream = service.upper()
        try:
            last = await js.get_last_msg(stream, kind.subject)
        except NotFoundError:  # no stream, or no entry on it
            continue
        if since is not None and last.time is not None and last.time < since:
            continue
        config = (
            ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_TIME, opt_start_time=since)
            if since is not None
            else ConsumerConfig(deliver_policy=DeliverPolicy.ALL)
        )
        sub = await js.subscribe(kind.subject, stream=stream, ordered_consumer=True, config=config)
        try:
            while True:
                msg = await sub.next_msg(timeout=timeout_s)
                headers = msg.headers or {}
                if not subject or headers.get("ce-subject") == subject:
                    body = aepb.AuditRecorded()
                    body.ParseFromString(msg.data)
                    out.append(AuditEntry.from_proto(body.entry))
                if msg.metadata.sequence.stream >= (last.seq or 0):
                    break
        finally:
            await sub.unsubscribe()
    out.sort(key=lambda e: (e.occurred_at, e.service, e.audit_id))
    return out
