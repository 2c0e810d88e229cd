"""What other services' events add to a customer's journey.

A journey is not only what the customer clicked: the survey they answered,
the support case opened after a bad delivery, the points they earned and
redeemed are steps of it too, and the questions a CX team asks cross them
("which paths lead to a support case", "do detractors buy again"). Feedback
and loyalty events that are about one customer become journey events under
a fixed name (docs/adr/0280); only ids, scores and amounts are copied into
the properties, never free text (a review's or a case's text stays in
feedback, encrypted).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from google.protobuf.message import DecodeError
from google.protobuf.message import Message as ProtoMessage

from analytics.domain.batch import DecodedBatch, customer_keys, event_keys, properties_json
from cxloop_libs.messaging import EventKind
from cxloop_libs.messaging import catalog as ev


@dataclass(frozen=True, slots=True)
class Touchpoint:
    kind: EventKind
    name: str  # the journey event's name
    time_field: str  # the protobuf field holding when it happened
    properties: tuple[str, ...] = ()  # protobuf fields copied (ids, scores, amounts)


TOUCHPOINTS: dict[str, Touchpoint] = {
    t.kind.ce_type: t
    for t in (
        Touchpoint(ev.RESPONSE_RECEIVED, "Survey Answered", "submitted_at", ("survey_id",)),
        Touchpoint(
            ev.REVIEW_SUBMITTED, "Review Submitted", "submitted_at", ("product_id", "rating")
        ),
        Touchpoint(
            ev.DETRACTOR_DETECTED, "Detractor Detected", "detected_at", ("survey_id", "score")
        ),
        Touchpoint(ev.CASE_OPENED, "Support Case Opened", "opened_at", ("source_kind", "priority")),
        Touchpoint(ev.CASE_RESOLVED, "Support Case Resolved", "resolved_at"),
        Touchpoint(ev.POINTS_EARNED, "Points Earned", "earned_at", ("points",)),
        Touchpoint(ev.POINTS_REDEEMED, "Points Redeemed", "redeemed_at", ("points", "reward_id")),
        Touchpoint(ev.COUPON_ISSUED, "Coupon Issued", "issued_at", ("reward_id", "campaign_id")),
        Touchpoint(ev.COUPON_REDEEMED, "Coupon Redeemed", "redeemed_at", ("discount_minor_units",)),
        Touchpoint(ev.TIER_CHANGED, "Tier Changed", "changed_at", ("previous_tier", "new_tier")),
    )
}


def decode_touchpoints(items: Sequence[tuple[str, str, bytes]]) -> DecodedBatch:
    """(ce-type, ce-id, body) of each event of a fetch -> journey rows, as
    :func:`analytics.domain.batch.decode_interactions` does for behaviour.
    Events of other types (privacy answers, audit, KPI alerts …) are
    skipped; a touchpoint without a customer or a time is an error."""
    out = DecodedBatch()
    b = out.batch
    for i, (ce_type, ce_id, data) in enumerate(items):
        t = TOUCHPOINTS.get(ce_type)
        if t is None:
            continue
        try:
            msg: ProtoMessage = t.kind.message_type.FromString(data)
        except DecodeError:
            out.errors.append((i, f"body is not a valid {t.kind.message_type.__name__}"))
            continue
        customer_id = getattr(msg, "customer_id", "")
        if not customer_id:
            out.errors.append((i, f"{ce_type} without customer_id"))
            continue
        if not msg.HasField(t.time_field):
            out.errors.append((i, f"{ce_type} without {t.time_field}"))
            continue
        stamp = getattr(msg, t.time_field)
        props = {p: getattr(msg, p) for p in t.properties if getattr(msg, p)}
        b.event_id.append(ce_id)
        b.customer_id.append(customer_id)
        b.ts_us.append(stamp.seconds * 1_000_000 + stamp.nanos // 1000)
        b.event.append(t.name)
        b.kind.append("track")
        b.channel.append(t.kind.domain)
        b.source.append(f"cxloop/{t.kind.domain}")
        b.properties.append(properties_json(props) if props else "{}")
    b.event_keys = event_keys(b.event_id)
    b.customer_keys = customer_keys(b.customer_id)
    return out
