"""What of a Segment call may travel on the event bus.

The PII rule (also in services/gateway/README.md):

* Identifiers are the only personal data that leave the gateway, and only as
  keyed hashes: ``userId``, ``anonymousId``, ``previousId`` (alias),
  ``email``/``phone``/``loyaltyCard`` from ``traits`` (identify only) and
  ``context.traits``, and ``context.externalIds``.
* Everything else in ``traits`` and ``context.traits`` is dropped, and so are
  the rest of ``context`` (ip, user agent, locale, page URL ...) apart from the
  channel, and ``integrations``.
* From ``properties`` every key named ``email``, ``phone``, ``name``,
  ``firstName``, ``lastName``, ``address`` or ``ip`` (compared
  case-insensitively) is dropped at any depth, including inside lists such as
  ``products[]``. Nested values are where checkout forms put the customer, so
  the rule has to look there too; the price is that ``products[].name`` goes
  as well, which is fine because the catalogue knows products by id.
"""

from __future__ import annotations

from typing import Any

from gateway.domain.errors import InvalidRequest, join_path

PII_PROPERTY_KEYS: frozenset[str] = frozenset(
    k.casefold() for k in ("email", "phone", "name", "firstName", "lastName", "address", "ip")
)
# Protobuf refuses to parse messages nested deeper than 100 levels; well below
# that, so a consumer never meets an event it cannot decode.
MAX_PROPERTY_DEPTH = 32


def is_pii_property(key: str) -> bool:
    return key.casefold() in PII_PROPERTY_KEYS


def scrub_properties(
    properties: dict[str, Any] | None, *, field: str = "properties"
) -> tuple[dict[str, Any], int]:
    """Return ``properties`` without PII keys (at any depth) and how many were dropped."""
    if not properties:
        return {}, 0
    dropped = 0

    def scrub(value: Any, path: str, depth: int) -> Any:
        nonlocal dropped
        if depth > MAX_PROPERTY_DEPTH:
            raise InvalidRequest.one(path, f"nested deeper than {MAX_PROPERTY_DEPTH} levels")
        if isinstance(value, dict):
            clean: dict[str, Any] = {}
            for k, v in value.items():
                if is_pii_property(k):
                    dropped += 1
                    continue
                clean[k] = scrub(v, join_path(path, k), depth + 1)
            return clean
        if isinstance(value, list):
            return [scrub(v, f"{path}[{i}]", depth + 1) for i, v in enumerate(value)]
        return value

    return scrub(properties, field, 1), dropped
