"""Identity's consent hook: with ``CXLOOP_IDENTITY_LINK_REQUIRES_MARKETING_CONSENT``
on, a new email (phone) is not linked to a customer who refused or withdrew
``marketing_email`` (``marketing_sms``): the channel that identifier would be
used for. The link is refused like any merge-protection block (link row
``blocked:consent``, history ``block``, counted in the stats) and counted in
``cxloop_identity_links_refused_for_consent``. Decision: docs/adr/0021.

Only *explicit* refusals count: a customer who never decided has not opted
out (marketing needs consent before it is *used*, not before an address is
known), and a new customer has no consent yet. Identifiers already linked stay.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

from opentelemetry import metrics

from cxloop_libs.consent import ConsentProjection, Reason
from cxloop_libs.runtime import ServiceRuntime
from identity.domain.model import HashedId
from identity.domain.policy import MergePolicy

REASON = "consent"
# Identifier type -> the marketing purpose it would be used for.
MARKETING_CHANNEL: Mapping[str, str] = {"email": "marketing_email", "phone": "marketing_sms"}
_OBJECTIONS = (Reason.DENIED, Reason.WITHDRAWN)


class MarketingConsentGate:
    """A ``LinkGate`` answered from the local consent projection (no I/O)."""

    def __init__(self, projection: ConsentProjection) -> None:
        self.projection = projection
        self._refused = metrics.get_meter("cxloop.identity").create_counter(
            "cxloop_identity_links_refused_for_consent",
            unit="{identifier}",
            description="New marketing identifiers not linked because the customer "
            "refused that channel's marketing, by identifier type.",
        )

    def __call__(self, customer_id: str, new: Sequence[HashedId]) -> Mapping[str, str]:
        refused: dict[str, str] = {}
        for i in new:
            purpose = MARKETING_CHANNEL.get(i.id_type)
            if purpose is None:
                continue
            if self.projection.verdict(customer_id, purpose) in _OBJECTIONS:
                refused[i.hash] = REASON
                self._refused.add(1, {"id_type": i.id_type})
        return refused


def wire(runtime: ServiceRuntime, enabled: bool, policy: MergePolicy) -> MergePolicy:
    """The policy to link with: ``policy`` plus the gate when ``enabled``, and
    the projection started and stopped with the service."""
    if not enabled:
        return policy
    projection = ConsentProjection(runtime.bus)
    runtime.extra_tasks.append(projection.run)
    runtime.on_stop.append(projection.stop)
    gate = MarketingConsentGate(projection)
    runtime.consent_gate = gate  # type: ignore[attr-defined]
    return dataclasses.replace(policy, link_gate=gate)
