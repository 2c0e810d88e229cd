"""When a customer may be asked: triggers, sampling, the contact-frequency
gate, and the signed single-use response token an invitation carries."""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta

from feedback.domain.surveys import InvalidInput


@dataclass(frozen=True, slots=True)
class TriggerRule:
    """Invite to ``survey_id`` when an interaction of ``event`` (e.g.
    ``Order Completed``, ``Delivery Completed``, ``Support Case Closed``,
    ``Signed Up``) is resolved to a customer, after ``delay``, for a
    ``sample_rate`` share of the customers, only in ``segments`` when set
    (a segment hook: the interaction's ``properties.segment`` or the
    ``context.traits.segment``)."""

    survey_id: str
    event: str
    delay: timedelta = timedelta(0)
    sample_rate: float = 1.0
    segments: tuple[str, ...] = ()
    channel: str = "email"
    touchpoint: str = ""
    journey_stage: str = "post_purchase"
    expires_after: timedelta = timedelta(days=14)


def sampled(customer_id: str, cause_event_id: str, rate: float) -> bool:
    """Deterministic sampling: the same event gives the same answer on every
    replica and on redelivery."""
    if rate >= 1.0:
        return True
    if rate <= 0.0:
        return False
    h = hashlib.sha256(f"{customer_id}|{cause_event_id}".encode()).digest()
    return int.from_bytes(h[:8], "big") / 2**64 < rate


@dataclass(frozen=True, slots=True)
class ContactPolicy:
    """No survey of any kind within ``global_wait`` of the last invitation;
    the same survey not within ``cooldown_after_invite`` of its last
    invitation nor ``cooldown_after_response`` of the last response."""

    global_wait: timedelta = timedelta(days=7)
    cooldown_after_invite: timedelta = timedelta(days=30)
    cooldown_after_response: timedelta = timedelta(days=90)


@dataclass(frozen=True, slots=True)
class ContactHistory:
    last_invited_any: datetime | None
    last_invited_this: datetime | None
    last_response_this: datetime | None


def contact_refusal(policy: ContactPolicy, h: ContactHistory, now: datetime) -> str | None:
    """Why the customer may not be asked now, or None."""
    if h.last_invited_any is not None and now - h.last_invited_any < policy.global_wait:
        return "global_wait"
    if h.last_invited_this is not None and now - h.last_invited_this < policy.cooldown_after_invite:
        return "cooldown_after_invite"
    if (
        h.last_response_this is not None
        and now - h.last_response_this < policy.cooldown_after_response
    ):
        return "cooldown_after_response"
    return None


class ResponseTokens:
    """``<invitation id>.<HMAC-SHA256 tag>``: the page that answers carries
    only this (no write key); the server checks the tag, then that the
    invitation exists, has not expired and was not answered (single use)."""

    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("the token key must be at least 16 bytes")
        self._key = key

    def _tag(self, invitation_id: str) -> str:
        mac = hmac.new(self._key, b"feedback-token|" + invitation_id.encode(), hashlib.sha256)
        return base64.urlsafe_b64encode(mac.digest()[:24]).decode().rstrip("=")

    def issue(self, invitation_id: str) -> str:
        return f"{invitation_id}.{self._tag(invitation_id)}"

    def verify(self, token: str) -> str:
        """The invitation id, or InvalidInput("token", ...) when forged."""
        if not isinstance(token, str) or len(token) > 200 or token.count(".") != 1:
            raise InvalidInput("token", "malformed")
        invitation_id, tag = token.split(".")
        if not invitation_id or not hmac.compare_digest(tag, self._tag(invitation_id)):
            raise InvalidInput("token", "not a valid response token")
        return invitation_id
