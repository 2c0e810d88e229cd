"""Trigger rules (issue #15): what starts an action, what cancels it, when it
fires, through which channel, and the caps that hold it back. Plain data.

A trigger starts on an event (``event:product_added``), on a segment entry
(``segment:<segment_id>``) or on another trigger's action
(``action:<trigger_id>``); ``unless`` names an event that cancels a waiting
action (``order_completed`` for cart abandonment); ``delay_s`` waits before
firing. One action per cause: the action id is derived from the trigger and
the cause, so a redelivered event or a second replica cannot fire it twice.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from typing import Any

from cxloop_libs.errors import InvalidArgument
from personalization.domain.traits import KNOWN_EVENTS

ACTION_KINDS = (
    "send_message",
    "show_offer",
    "award_points",
    "issue_coupon",
    "send_survey",
    "open_follow_up",
)
_NS = uuid.UUID("6f1d2c3b-4a59-4e7d-8c0b-95a1e2d3c4b5")


@dataclass(frozen=True, slots=True)
class Trigger:
    trigger_id: str
    on: str  # event:<name> | segment:<id> | action:<trigger_id>
    action: str
    unless: str = ""  # an event name that cancels a waiting action
    delay_s: float = 0.0
    #: "channel:purpose" in order of preference; the first the customer
    #: consented to is used; empty: email under marketing_email.
    channels: tuple[str, ...] = ()
    parameters: Mapping[str, Any] = field(default_factory=dict)
    max_per_customer: int = 1
    cap_window_s: float = 86_400.0
    enabled: bool = True

    @property
    def source(self) -> tuple[str, str]:
        kind, _, value = self.on.partition(":")
        return kind, value

    def to_json(self) -> dict[str, Any]:
        return {
            "trigger_id": self.trigger_id,
            "on": self.on,
            "action": self.action,
            "unless": self.unless,
            "delay_s": self.delay_s,
            "channels": list(self.channels),
            "parameters": dict(self.parameters),
            "max_per_customer": self.max_per_customer,
            "cap_window_s": self.cap_window_s,
            "enabled": self.enabled,
        }

    @classmethod
    def of_json(cls, d: Mapping[str, Any]) -> Trigger:
        return cls(
            trigger_id=d["trigger_id"],
            on=d["on"],
            action=d["action"],
            unless=d.get("unless", ""),
            delay_s=float(d.get("delay_s", 0.0)),
            channels=tuple(d.get("channels", ())),
            parameters=dict(d.get("parameters", {})),
            max_per_customer=int(d.get("max_per_customer", 1)),
            cap_window_s=float(d.get("cap_window_s", 86_400.0)),
            enabled=bool(d.get("enabled", True)),
        )


def validate(t: Trigger, segments: set[str], others: Sequence[Trigger]) -> None:
    """Raises InvalidArgument naming the field."""
    if not t.trigger_id.strip() or len(t.trigger_id) > 64:
        raise InvalidArgument("trigger.trigger_id", "required, at most 64 characters")
    kind, value = t.source
    if kind == "event":
        if value not in KNOWN_EVENTS:
            raise InvalidArgument("trigger.on", f"unknown event {value!r}")
    elif kind == "segment":
        if value not in segments:
            raise InvalidArgument("trigger.on", f"unknown segment {value!r}")
    elif kind == "action":
        if value == t.trigger_id:
            raise InvalidArgument("trigger.on", "a trigger cannot fire on its own action (loop)")
        chain = {o.trigger_id: o for o in others if o.trigger_id != t.trigger_id}
        seen = {t.trigger_id}
        cur = value
        while cur in chain:
            if cur in seen:
                break
            seen.add(cur)
            k, v = chain[cur].source
            if k != "action":
                break
            if v == t.trigger_id:
                raise InvalidArgument(
                    "trigger.on", f"fires on {value!r}, which fires back on this trigger (loop)"
                )
            cur = v
        if value not in chain:
            raise InvalidArgument("trigger.on", f"unknown trigger {value!r}")
    else:
        raise InvalidArgument(
            "trigger.on", "must be event:<name>, segment:<id> or action:<trigger>"
        )
    if t.action not in ACTION_KINDS:
        raise InvalidArgument("trigger.action", f"must be one of {', '.join(ACTION_KINDS)}")
    if t.unless and t.unless not in KNOWN_EVENTS:
        raise InvalidArgument("trigger.unless", f"unknown event {t.unless!r}")
    if t.unless and kind == "event" and t.unless == value:
        raise InvalidArgument("trigger.unless", "the same event starts and cancels: never fires")
    if not 0 <= t.delay_s <= 90 * 86_400:
        raise InvalidArgument("trigger.delay_seconds", "between 0 and 90 days")
    if t.max_per_customer < 1:
        raise InvalidArgument("trigger.max_per_customer", "must be at least 1 (0 never fires)")
    if t.cap_window_s <= 0:
        raise InvalidArgument("trigger.cap_window_seconds", "must be greater than zero")
    for c in t.channels:
        ch, _, purpose = c.partition(":")
        if not ch or not purpose:
            raise InvalidArgument(
                "trigger.channels", "each is channel:purpose, e.g. email:marketing_email"
            )


def action_id(trigger_id: str, customer_id: str, cause: str) -> str:
    return str(uuid.uuid5(_NS, f"{trigger_id}|{customer_id}|{cause}"))


def choose_channel(t: Trigger, may_use: Any) -> tuple[str, str] | None:
    """(channel, purpose) the customer consented to, or None."""
    options = [c.partition(":")[::2] for c in t.channels] or [("email", "marketing_email")]
    for ch, purpose in options:
        if may_use(purpose):
            return ch, purpose
    return None


@dataclass(frozen=True, slots=True)
class QuietHours:
    """Local hours [start, end) when nothing is sent (start == end: none)."""

    start: int = 0
    end: int = 0

    @classmethod
    def parse(cls, raw: str) -> QuietHours:
        if not raw.strip():
            return cls()
        a, _, b = raw.partition("-")
        s, e = int(a), int(b)
        if not (0 <= s < 24 and 0 <= e < 24):
            raise ValueError("quiet hours are HH-HH with hours 0-23")
        return cls(s, e)

    def defer(self, at: float, tz: tzinfo) -> float:
        """The first moment at or after ``at`` outside quiet hours."""
        if self.start == self.end:
            return at
        d = datetime.fromtimestamp(at, tz)
        h = d.hour
        inside = (
            (self.start <= h < self.end)
            if self.start < self.end
            else (h >= self.start or h < self.end)
        )
        if not inside:
            return at
        end = d.replace(hour=self.end, minute=0, second=0, microsecond=0)
        if end <= d:
            end += timedelta(days=1)
        return end.timestamp()
