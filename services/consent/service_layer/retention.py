"""Changing and announcing the retention policy (docs/adr/0019-retention-policy.md).

A change is validated (known categories and purposes, 1..36500 days), written,
and published in the same transaction: ``retention policy changed`` on the
``CONSENT`` stream and the same body as the ``RETENTION_POLICY`` bucket's
value, which every service's retention schedule follows.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

from cxloop.consent.v1 import events_pb2 as pb
from sqlmodel import Session

from consent.adapters import retention as store
from cxloop_libs.messaging import OutboxWriter
from cxloop_libs.messaging import catalog as ev
from cxloop_libs.privacy.retention import RetentionPolicy, policy_subject, validate_periods

_NS = uuid.UUID("7c1e3a52-9b0d-4f3e-8a61-2d5c9e4b7f08")
MAX_ACTOR = 100


def _utcnow() -> datetime:
    return datetime.now(UTC)


def stage_policy(outbox: OutboxWriter, policy: RetentionPolicy, *, event: bool) -> None:
    """Stage the policy into the bucket and, for a change, as an event."""
    body = pb.RetentionPolicyChanged(policy=policy.to_proto())
    if event:
        outbox.stage(
            ev.RETENTION_POLICY_CHANGED,
            body,
            event_id=str(uuid.uuid5(_NS, f"{policy.version}/event")),
        )
    outbox.stage(
        ev.RETENTION_POLICY_CHANGED,
        body,
        event_id=str(uuid.uuid5(_NS, f"{policy.version}/bucket")),
        nats_subject=policy_subject(),
    )


class RetentionPolicies:
    def __init__(self, clock: Callable[[], datetime] = _utcnow) -> None:
        self.clock = clock

    def current(self, session: Session) -> RetentionPolicy:
        return store.load_policy(session)

    def change(
        self,
        session: Session,
        category_days: Mapping[str, int],
        purpose_days: Mapping[str, int],
        *,
        known_purposes: frozenset[str],
        actor: str,
    ) -> RetentionPolicy:
        validate_periods(category_days, purpose_days, known_purposes)
        store.save_periods(
            session,
            dict(category_days),
            dict(purpose_days),
            changed_at=self.clock(),
            changed_by=actor[:MAX_ACTOR],
        )
        policy = store.load_policy(session)
        outbox = OutboxWriter(session)
        stage_policy(outbox, policy, event=True)
        outbox.flush()
        return policy

    def announce(self, session: Session) -> RetentionPolicy:
        """Put the current policy into the bucket (at start: the seeded one
        must reach the bucket before any service can follow it)."""
        policy = store.load_policy(session)
        outbox = OutboxWriter(session)
        stage_policy(outbox, policy, event=False)
        outbox.flush()
        return policy
