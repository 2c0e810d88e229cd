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
* Every other string in ``properties`` (keys and values, at any depth), the
  event or page name and the channel is scanned for emails, phone numbers
  (Korean and international) and Korean resident registration numbers,
  which are replaced by ``[redacted email]`` ... (``cxloop_libs.pii.text``;
  ADR 0038). Property keys on the allow-list (``CXLOOP_GATEWAY_PII_SCAN_ALLOW``,
  compared case-insensitively at any depth) are not scanned: values known
  to be safe that look like phone numbers (order or card numbers).
"""

from __future__ import annotations

from typing import Any

from cxloop_libs.pii.text import Redactions, redact_text
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
    properties: dict[str, Any] | None,
    *,
    field: str = "properties",
    redactions: Redactions | None = None,
    allow: frozenset[str] = frozenset(),
) -> tuple[dict[str, Any], int]:
    """Return ``properties`` without PII keys (at any depth), with PII in
    free text redacted (counted in ``redactions`` when given; keys in
    ``allow``, casefolded, are not scanned) and how many keys were dropped."""
    if not properties:
        return {}, 0
    dropped = 0
    found = redactions if redactions is not None else Redactions()

    def text(value: str) -> str:
        return redact_text(value, found=found)

    def scrub(value: Any, path: str, depth: int, scan: bool) -> Any:
        nonlocal dropped
        if depth > MAX_PROPERTY_DEPTH:
            raise InvalidRequest.one(path, f"nested deeper than {MAX_PROPERTY_DEPTH} levels")
        if isinstance(value, dict):
            clean: dict[str, Any] = {}
            for k, v in value.items():
                if is_pii_property(k):
                    dropped += 1
                    continue
                keep_raw = not scan or k.casefold() in allow
                key = k if keep_raw else text(k)
                clean[key] = scrub(v, join_path(path, k), depth + 1, not keep_raw)
            return clean
        if isinstance(value, list):
            return [scrub(v, f"{path}[{i}]", depth + 1, scan) for i, v in enumerate(value)]
        if isinstance(value, str) and scan:
            return text(value)
        return value

    return scrub(properties, field, 1, True), dropped
