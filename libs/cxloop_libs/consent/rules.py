"""The one rule that says whether a customer's data may be used for a purpose.

The consent service answers ``Check`` with it and every other service's
:class:`~cxloop_libs.consent.projection.ConsentProjection` answers ``may_use``
with the same logic, so the two can never disagree about what a record means.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum, StrEnum

from cxloop.consent.v1 import consent_service_pb2 as service_pb
from cxloop.consent.v1 import events_pb2 as events_pb


class LegalBasis(StrEnum):
    CONSENT = "consent"
    CONTRACT = "contract"
    LEGITIMATE_INTEREST = "legitimate_interest"

    def to_proto(self) -> events_pb.LegalBasis.ValueType:
        return _BASIS_TO_PROTO[self]

    @classmethod
    def from_proto(cls, value: int) -> LegalBasis | None:
        return _BASIS_FROM_PROTO.get(value)


class Decision(StrEnum):
    GRANTED = "granted"
    DENIED = "denied"
    WITHDRAWN = "withdrawn"

    def to_proto(self) -> events_pb.ConsentDecision.ValueType:
        return _DECISION_TO_PROTO[self]

    @classmethod
    def from_proto(cls, value: int) -> Decision | None:
        return _DECISION_FROM_PROTO.get(value)


class Reason(IntEnum):
    """Why a check answered as it did; values are the proto's CheckReason."""

    GRANTED = service_pb.CHECK_REASON_GRANTED
    DENIED = service_pb.CHECK_REASON_DENIED
    WITHDRAWN = service_pb.CHECK_REASON_WITHDRAWN
    NO_DECISION = service_pb.CHECK_REASON_NO_DECISION
    NOTICE_OUTDATED = service_pb.CHECK_REASON_NOTICE_OUTDATED
    UNKNOWN_PURPOSE = service_pb.CHECK_REASON_UNKNOWN_PURPOSE
    EXPIRED = service_pb.CHECK_REASON_EXPIRED
    LEGAL_BASIS = service_pb.CHECK_REASON_LEGAL_BASIS

    @property
    def allows(self) -> bool:
        return self in (Reason.GRANTED, Reason.LEGAL_BASIS)


_BASIS_TO_PROTO = {
    LegalBasis.CONSENT: events_pb.LEGAL_BASIS_CONSENT,
    LegalBasis.CONTRACT: events_pb.LEGAL_BASIS_CONTRACT,
    LegalBasis.LEGITIMATE_INTEREST: events_pb.LEGAL_BASIS_LEGITIMATE_INTEREST,
}
_BASIS_FROM_PROTO = {int(v): k for k, v in _BASIS_TO_PROTO.items()}
_DECISION_TO_PROTO = {
    Decision.GRANTED: events_pb.CONSENT_DECISION_GRANTED,
    Decision.DENIED: events_pb.CONSENT_DECISION_DENIED,
    Decision.WITHDRAWN: events_pb.CONSENT_DECISION_WITHDRAWN,
}
_DECISION_FROM_PROTO = {int(v): k for k, v in _DECISION_TO_PROTO.items()}


@dataclass(frozen=True, slots=True)
class PurposeRule:
    """What a checker must know about a purpose, beyond the customer's record."""

    basis: LegalBasis
    # Grants under a notice version below this need re-consent.
    reconsent_from: int = 1


@dataclass(frozen=True, slots=True)
class CurrentDecision:
    """A customer's latest decision for one purpose (the ledger's projection)."""

    decision: Decision
    notice_version: int
    # Epoch seconds; 0 = never expires. A float keeps the hot check free of
    # datetime arithmetic.
    expires_at: float = 0.0


def evaluate(rule: PurposeRule | None, current: CurrentDecision | None, now: float) -> Reason:
    """May data be used for the purpose? ``now`` is epoch seconds."""
    if rule is None:
        return Reason.UNKNOWN_PURPOSE
    if rule.basis is LegalBasis.CONTRACT:
        # Needed to run the service: refusing it means closing the account.
        return Reason.LEGAL_BASIS
    if current is None:
        return Reason.NO_DECISION if rule.basis is LegalBasis.CONSENT else Reason.LEGAL_BASIS
    if current.decision is Decision.DENIED:
        return Reason.DENIED
    if current.decision is Decision.WITHDRAWN:
        return Reason.WITHDRAWN
    if rule.basis is LegalBasis.LEGITIMATE_INTEREST:
        return Reason.LEGAL_BASIS  # no objection; a grant changes nothing
    if current.notice_version < rule.reconsent_from:
        return Reason.NOTICE_OUTDATED
    if current.expires_at and current.expires_at <= now:
        return Reason.EXPIRED
    return Reason.GRANTED


def parse_notice_version(value: str) -> int:
    """Notice versions are decimal and increase per purpose, so any checker can
    compare them; raises ValueError for anything else."""
    if not (value.isascii() and value.isdigit()) or len(value) > 9:
        raise ValueError("notice version must be a positive decimal number")
    n = int(value)
    if n < 1:
        raise ValueError("notice version must be a positive decimal number")
    return n
