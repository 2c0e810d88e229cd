"""The consent ledger: decisions are appended, never changed, and a customer's
current consent is the projection of their records, newest per purpose.

``decide`` turns a request into a record or refuses it naming the field; it
runs before anything is written, so a refused request leaves nothing behind.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from consent.domain.purposes import Catalogue, Purpose
from cxloop_libs.consent.proof import is_proof_hash
from cxloop_libs.consent.rules import (
    CurrentDecision,
    Decision,
    LegalBasis,
    Reason,
    evaluate,
    parse_notice_version,
)
from cxloop_libs.consent.state_bucket import KEY_TOKEN
from cxloop_libs.errors import InvalidArgument

# A client clock a little ahead is normal; a decision from the future is not.
MAX_CLOCK_SKEW = timedelta(minutes=5)
MAX_ACTOR = 100
MAX_IDEMPOTENCY_KEY = 128


class Channel(StrEnum):
    WEB_FORM = "web_form"
    APP = "app"
    CALL_CENTRE = "call_centre"
    GPC_SIGNAL = "gpc_signal"
    IMPORT = "import"


@dataclass(frozen=True, slots=True)
class Proof:
    """Keyed hashes only (see cxloop_libs.consent.proof), and who captured it."""

    ip_hash: str = ""
    user_agent_hash: str = ""
    actor: str = ""


@dataclass(frozen=True, slots=True)
class ConsentRecord:
    record_id: str
    customer_id: str
    purpose: str
    notice_version: int
    decision: Decision
    channel: Channel
    decided_at: datetime
    recorded_at: datetime
    expires_at: datetime | None
    proof: Proof
    idempotency_key: str = ""
    # A grant given while a GPC signal is on record (it stands, flagged).
    gpc_conflict: bool = False
    # "merge:<customer>" / "split:<customer>" when consent wrote it following
    # identity; empty for the customer's own decisions.
    derived_from: str = ""


@dataclass(frozen=True, slots=True)
class PurposeState:
    purpose: str
    decision: Decision
    notice_version: int
    channel: Channel
    decided_at: datetime
    expires_at: datetime | None
    record_id: str
    gpc_conflict: bool = False

    @classmethod
    def of(cls, r: ConsentRecord) -> PurposeState:
        return cls(
            r.purpose,
            r.decision,
            r.notice_version,
            r.channel,
            r.decided_at,
            r.expires_at,
            r.record_id,
            r.gpc_conflict,
        )

    @property
    def refuses(self) -> bool:
        return self.decision is not Decision.GRANTED

    def current(self) -> CurrentDecision:
        return CurrentDecision(
            self.decision,
            self.notice_version,
            self.expires_at.timestamp() if self.expires_at else 0.0,
        )


@dataclass(slots=True)
class SubjectConsent:
    """A customer's current consent: the latest decision per purpose and a
    version that grows with every change (consumers drop older versions)."""

    customer_id: str
    version: int = 0
    states: dict[str, PurposeState] = field(default_factory=dict)

    def record(self, r: ConsentRecord) -> SubjectConsent:
        if r.customer_id != self.customer_id:
            raise ValueError("record of another customer")
        return SubjectConsent(
            self.customer_id, self.version + 1, {**self.states, r.purpose: PurposeState.of(r)}
        )

    def verdict(self, catalogue: Catalogue, purpose: str, now: datetime) -> Reason:
        p = catalogue.get(purpose)
        state = self.states.get(purpose)
        return evaluate(p.rule if p else None, state.current() if state else None, now.timestamp())

    def needs_reconsent(self, catalogue: Catalogue, purpose: str) -> bool:
        p = catalogue.get(purpose)
        state = self.states.get(purpose)
        return (
            p is not None
            and state is not None
            and p.legal_basis is LegalBasis.CONSENT
            and state.decision is Decision.GRANTED
            and state.notice_version < p.reconsent_from
        )


@dataclass(frozen=True, slots=True)
class RecordRequest:
    """A decision as a caller submits it, not yet checked."""

    customer_id: str
    purpose: str
    decision: Decision | None
    notice_version: str
    channel: Channel | None
    proof: Proof = Proof()
    decided_at: datetime | None = None
    expires_at: datetime | None = None
    idempotency_key: str = ""


def require_customer_id(customer_id: str, *, field: str = "customer_id") -> str:
    if not customer_id:
        raise InvalidArgument(field, "must not be empty")
    if not KEY_TOKEN.match(customer_id):
        raise InvalidArgument(field, "must be 1-64 characters of A-Z a-z 0-9 _ = -")
    return customer_id


def new_record_id() -> str:
    return str(uuid.uuid4())


def _notice_version(req: RecordRequest, purpose: Purpose) -> int:
    if not req.notice_version:
        if req.decision is Decision.GRANTED:
            raise InvalidArgument("notice_version", "a grant must name the notice the customer saw")
        # Refusing or withdrawing never depends on which text was shown.
        return purpose.current.version
    try:
        version = parse_notice_version(req.notice_version)
    except ValueError as exc:
        raise InvalidArgument("notice_version", str(exc)) from None
    if purpose.notice(version) is None:
        raise InvalidArgument("notice_version", f"{purpose.key} has no notice version {version}")
    if req.decision is Decision.GRANTED and version < purpose.reconsent_from:
        raise InvalidArgument(
            "notice_version",
            f"stale: version {version} of {purpose.key} was superseded by version "
            f"{purpose.reconsent_from}; show the current notice and ask again",
        )
    return version


def decide(
    catalogue: Catalogue,
    req: RecordRequest,
    *,
    now: datetime,
    record_id: str | None = None,
) -> ConsentRecord:
    """Check a request against the catalogue and the ledger's rules."""
    customer_id = require_customer_id(req.customer_id)
    purpose = catalogue.require(req.purpose)
    if req.decision is None:
        raise InvalidArgument("decision", "must be granted, denied or withdrawn")
    if req.channel is None:
        raise InvalidArgument("channel", "must say where the decision was captured")
    if purpose.legal_basis is LegalBasis.CONTRACT and req.decision is not Decision.GRANTED:
        raise InvalidArgument(
            "decision",
            f"{purpose.key} rests on the contract and cannot be refused on its own; "
            "closing the account or an erasure request ends it",
        )
    if req.channel is Channel.GPC_SIGNAL and req.decision is Decision.GRANTED:
        raise InvalidArgument("channel", "a GPC signal is an opt-out; it cannot grant")
    version = _notice_version(req, purpose)
    decided_at = (req.decided_at or now).astimezone(UTC)
    if decided_at > now + MAX_CLOCK_SKEW:
        raise InvalidArgument("decided_at", "must not be in the future")
    expires_at = None
    if req.decision is Decision.GRANTED:
        if req.expires_at is not None:
            expires_at = req.expires_at.astimezone(UTC)
            if expires_at <= decided_at:
                raise InvalidArgument("expires_at", "must be after decided_at")
        elif purpose.validity_days:
            expires_at = decided_at + timedelta(days=purpose.validity_days)
    elif req.expires_at is not None:
        raise InvalidArgument("expires_at", "only a grant can expire")
    for name in ("ip_hash", "user_agent_hash"):
        value = getattr(req.proof, name)
        if value and not is_proof_hash(value):
            raise InvalidArgument(f"proof.{name}", "must be 64 lower-case hex (a keyed hash)")
    if len(req.proof.actor) > MAX_ACTOR:
        raise InvalidArgument("proof.actor", f"at most {MAX_ACTOR} characters")
    if req.channel is Channel.CALL_CENTRE and not req.proof.actor:
        raise InvalidArgument("proof.actor", "a call-centre record must name the agent")
    if len(req.idempotency_key) > MAX_IDEMPOTENCY_KEY:
        raise InvalidArgument("idempotency_key", f"at most {MAX_IDEMPOTENCY_KEY} characters")
    return ConsentRecord(
        record_id=record_id or new_record_id(),
        customer_id=customer_id,
        purpose=purpose.key,
        notice_version=version,
        decision=req.decision,
        channel=req.channel,
        decided_at=decided_at,
        recorded_at=now,
        expires_at=expires_at,
        proof=replace(req.proof, actor=req.proof.actor or "customer"),
        idempotency_key=req.idempotency_key,
    )
