"""What the ledger is asked to do, whoever asks (an event, a partner call)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from loyalty.domain.rules import Line


@dataclass(frozen=True, slots=True)
class PurchaseIn:
    customer_id: str
    order_id: str
    currency: str
    lines: tuple[Line, ...]
    channel: str
    occurred_at: datetime
    cause_event_id: str = ""


@dataclass(frozen=True, slots=True)
class ReturnIn:
    customer_id: str
    order_id: str
    # Refunded amount in the order's currency, minor units; None: everything.
    refunded: int | None
    occurred_at: datetime
    # Names this return (event id or partner key): its posting's key.
    cause: str
    policy: str = ""


@dataclass(frozen=True, slots=True)
class ActivityIn:
    customer_id: str
    activity: str
    occurred_at: datetime
    cause: str
    text_length: int = 0
    reference_id: str = ""


@dataclass(frozen=True, slots=True)
class RedeemIn:
    """Reserve a member's points (checkout, a catalogue reward)."""

    customer_id: str
    points: int
    reward_id: str
    idempotency_key: str
    hold_seconds: int = 0
