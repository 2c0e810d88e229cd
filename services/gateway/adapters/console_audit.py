"""The gateway's audit entries: it has no database, so an entry is published
on its own stream (``cx.gateway.audit.recorded``) and the read is answered
only once JetStream has stored it; `cxloop audit export` reads it with every
other service's entries (docs/adr/0020-audit-log.md)."""

from __future__ import annotations

from cxloop.audit.v1 import events_pb2 as aepb

from cxloop_libs.audit import Action, Actor, AuditEntry, AuditLog, Outcome
from cxloop_libs.messaging import EventPublisher, PendingEvent
from cxloop_libs.messaging import catalog as ev


class StreamAudit:
    def __init__(self, publisher: EventPublisher, *, timeout_s: float = 2.0) -> None:
        self.publisher = publisher
        self.timeout_s = timeout_s
        self._log = AuditLog("gateway")

    def entry(
        self, actor: Actor, action: Action, resource: str, subject: str, found: bool
    ) -> AuditEntry:
        return self._log.entry(
            actor,
            action,
            resource,
            subject=subject,
            outcome=Outcome.OK if found else Outcome.NOT_FOUND,
        )

    async def publish(self, entry: AuditEntry) -> None:
        await self.publisher.publish(
            PendingEvent.of(
                ev.AUDIT_RECORDED["gateway"],
                aepb.AuditRecorded(entry=entry.to_proto()),
                subject=entry.subject,
                event_id=entry.audit_id,
            ),
            timeout=self.timeout_s,
        )
