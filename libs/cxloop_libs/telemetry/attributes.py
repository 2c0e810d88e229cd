"""Span attribute hygiene: DESIGN.md allows no raw PII in span attributes, so
anything that looks like a personal identifier is dropped before it is set."""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from enum import Enum

from opentelemetry.util.types import AttributeValue

_PII_WORDS = ("email", "phone", "name", "address")
# "ip" is matched as a whole word: as a substring it would also drop
# "membership", "shipping", "recipient" and "description".
_IP_WORDS = frozenset({"ip", "ipv4", "ipv6"})
# Keyed hashes and ids are what DESIGN.md says to use instead of raw values.
_SAFE_SUFFIXES = ("_hash", "_id")
_CAMEL_BOUNDARY = re.compile(r"([a-z0-9])([A-Z])")
_WORD_SPLIT = re.compile(r"[^a-z0-9]+")
_PRIMITIVES = (str, bool, int, float)


def is_pii_key(key: str) -> bool:
    lowered = key.lower()
    if lowered.endswith(_SAFE_SUFFIXES):
        return False
    if any(word in lowered for word in _PII_WORDS):
        return True
    words = _WORD_SPLIT.split(_CAMEL_BOUNDARY.sub(r"\1_\2", key).lower())
    return not _IP_WORDS.isdisjoint(words)


def _attribute_value(value: object) -> AttributeValue | None:
    if isinstance(value, Enum):
        value = value.value
    if isinstance(value, _PRIMITIVES):
        return value
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, list | tuple) and value:
        kind = type(value[0])
        if kind in _PRIMITIVES and all(type(item) is kind for item in value):
            return list(value)
    # Anything else is dropped rather than str()-ed: the repr of a domain
    # object could carry exactly the raw values this function keeps out.
    return None


def safe_attributes(attrs: Mapping[str, object]) -> dict[str, AttributeValue]:
    """Span attributes without PII-looking keys and without values OTel can't carry."""
    clean: dict[str, AttributeValue] = {}
    for key, raw in attrs.items():
        if is_pii_key(key):
            continue
        value = _attribute_value(raw)
        if value is not None:
            clean[key] = value
    return clean
