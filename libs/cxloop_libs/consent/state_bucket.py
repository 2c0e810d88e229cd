"""Where the latest consent state lives on NATS: a JetStream key-value bucket.

The ``CONSENT`` stream keeps events 30 days (docs/adr/0006-stream-retention.md),
too short to rebuild a projection of consents given years ago. The bucket
keeps exactly the last ``ConsentChanged`` per customer and the last
``NoticePublished`` per purpose, for as long as they are current, so a
projection rebuilds from it in one pass (docs/adr/0011-consent-model.md).

Keys: ``customer.<customer id>`` and ``purpose.<purpose key>``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from cxloop_libs.messaging.streams import KeyValueBucketSpec

STATE_BUCKET = "CONSENT_STATE"
STATE_STREAM = f"KV_{STATE_BUCKET}"
CUSTOMER_PREFIX = "customer."
PURPOSE_PREFIX = "purpose."

# What a KV key token may hold; customer ids and purpose keys must fit.
KEY_TOKEN = re.compile(r"^[A-Za-z0-9_=-]{1,64}$")


def customer_key(customer_id: str) -> str:
    return CUSTOMER_PREFIX + customer_id


def purpose_key(purpose: str) -> str:
    return PURPOSE_PREFIX + purpose


def state_subject(key: str) -> str:
    """The NATS subject a key's value is published on (what a KV put does)."""
    return f"$KV.{STATE_BUCKET}.{key}"


@dataclass(frozen=True, slots=True)
class StateBucketSpec(KeyValueBucketSpec):
    """The bucket's stream, in the shape ``js.key_value()`` accepts: one value
    per key, no age limit (a value is replaced, never expired)."""

    name: str = STATE_STREAM
    bucket: str = STATE_BUCKET
