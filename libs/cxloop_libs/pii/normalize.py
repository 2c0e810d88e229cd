"""Canonical forms of the identifiers that can point at a customer.

Two spellings of the same identifier must hash to the same value, otherwise the
identity graph sees two people where there is one. So every identifier goes
through one normaliser before it is hashed (DESIGN.md, "Privacy rules"):

* All text is Unicode NFKC first, so full-width digits and letters typed on a
  Korean or Japanese keyboard and compatibility ligatures compare equal to their
  plain forms.
* Emails are lower-cased and a ``+tag`` suffix of the local part is dropped for
  every domain; for Gmail the dots of the local part are dropped too and
  ``googlemail.com`` becomes ``gmail.com``. Sub-addressing and Gmail's dot
  blindness are delivery details of one mailbox, not a different person, and
  customers use them precisely to tell merchants apart. The price is that the
  canonical form is not always a deliverable address, which is fine: it is only
  ever hashed for matching, never used to send mail. Lower-casing the local part
  is technically wrong by RFC 5321 but no mainstream provider treats case as
  significant, and splitting one person on it is the worse error.
* Phones become E.164 with KR as the default region, because most of our
  customers type national numbers like ``010-1234-5678``.
* Opaque ids (user, anonymous, loyalty card, external) keep their case: the
  systems that issue them treat case as significant.
"""

from __future__ import annotations

import re
import unicodedata
from enum import StrEnum

import phonenumbers
from cxloop.common.v1 import identifier_pb2

from cxloop_libs.errors import InvalidArgument

MAX_ID_LENGTH = 256
_NAMESPACE_RE = re.compile(r"[a-z0-9_-]{1,32}")
_GMAIL_DOMAINS = frozenset({"gmail.com", "googlemail.com"})
_PROTO_PREFIX = "IDENTIFIER_TYPE_"


class IdType(StrEnum):
    USER_ID = "user_id"
    ANONYMOUS_ID = "anonymous_id"
    EMAIL = "email"
    PHONE = "phone"
    LOYALTY_CARD = "loyalty_card"
    EXTERNAL = "external"

    @classmethod
    def from_proto(cls, value: int) -> IdType:
        try:
            return _FROM_PROTO[value]
        except KeyError:
            # InvalidIdentifier is a ValueError, so callers that only expect
            # ValueError still work and gRPC handlers can map it uniformly.
            raise InvalidIdentifier("type", f"unsupported identifier type {value}") from None

    def to_proto(self) -> int:
        return _TO_PROTO[self]


_TO_PROTO: dict[IdType, int] = {
    t: identifier_pb2.IdentifierType.Value(_PROTO_PREFIX + t.name) for t in IdType
}
_FROM_PROTO: dict[int, IdType] = {v: t for t, v in _TO_PROTO.items()}


class InvalidIdentifier(InvalidArgument):
    """An identifier that cannot be normalised; ``field`` names the input.
    An InvalidArgument, so the gRPC and HTTP edges answer it as a 4xx."""


def normalize_text(value: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", value).split())


def normalize_email(value: str, *, field: str = "email") -> str:
    email = unicodedata.normalize("NFKC", value).strip().lower()
    if not email:
        raise InvalidIdentifier(field, "must not be empty")
    if any(c.isspace() for c in email):
        raise InvalidIdentifier(field, "an email address must not contain spaces")
    if email.count("@") != 1:
        raise InvalidIdentifier(field, "an email address must contain exactly one '@'")
    local, domain = email.split("@")
    if not local:
        raise InvalidIdentifier(field, "the part before '@' must not be empty")
    if "." not in domain or not all(domain.split(".")):
        raise InvalidIdentifier(field, f"{domain!r} is not a valid email domain")

    # "+tag@x" has no base mailbox to fall back to, so the tag is the address.
    base = local.split("+", 1)[0]
    if base:
        local = base
    if domain in _GMAIL_DOMAINS:
        domain = "gmail.com"
        local = local.replace(".", "")
        if not local:
            raise InvalidIdentifier(field, "the part before '@' must not be empty")
    return f"{local}@{domain}"


def normalize_phone(value: str, default_region: str = "KR", *, field: str = "phone") -> str:
    text = unicodedata.normalize("NFKC", value).strip()
    if not text:
        raise InvalidIdentifier(field, "must not be empty")
    try:
        number = phonenumbers.parse(text, default_region)
    except phonenumbers.NumberParseException:
        raise InvalidIdentifier(field, "not a phone number") from None
    if not phonenumbers.is_possible_number(number) or not (
        phonenumbers.is_valid_number(number) or _assigned_mobile_range(number)
    ):
        raise InvalidIdentifier(field, f"not a valid phone number for region {default_region}")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


# Mobile ranges carriers have assigned ahead of phonenumbers' metadata, by
# country code: the national number as it must look. Korea gives every mobile
# 010 + eight digits; the metadata still calls parts of that (010-59xx-xxxx)
# unassigned, and rejecting a customer's real number splits them from their
# other records. Only the exact mobile shape is let through.
_LAGGING_MOBILE_RANGES: dict[int, re.Pattern[str]] = {82: re.compile(r"10[2-9]\d{7}")}


def _assigned_mobile_range(number: phonenumbers.PhoneNumber) -> bool:
    shape = _LAGGING_MOBILE_RANGES.get(number.country_code or 0)
    national = phonenumbers.national_significant_number(number)
    return shape is not None and shape.fullmatch(national) is not None


class PhoneKind(StrEnum):
    """Whose a number is. A mobile (or a personal number) belongs to one
    person; a fixed line, an internet phone (070), a toll-free or shared-cost
    number belongs to a household or an office and must not link people."""

    MOBILE = "mobile"
    SHARED = "shared"


_PERSONAL_TYPES = frozenset(
    {
        phonenumbers.PhoneNumberType.MOBILE,
        phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
        phonenumbers.PhoneNumberType.PERSONAL_NUMBER,
        phonenumbers.PhoneNumberType.PAGER,
    }
)


def phone_kind(number_text: str, default_region: str | None = None) -> PhoneKind:
    """`MOBILE` for a personal number, `SHARED` for everything else (fixed
    lines, VoIP, service numbers, and numbers that do not parse). E.164, or
    national with ``default_region``."""
    try:
        number = phonenumbers.parse(unicodedata.normalize("NFKC", number_text), default_region)
    except phonenumbers.NumberParseException:
        return PhoneKind.SHARED
    if phonenumbers.number_type(number) in _PERSONAL_TYPES or (
        phonenumbers.is_possible_number(number) and _assigned_mobile_range(number)
    ):
        return PhoneKind.MOBILE
    return PhoneKind.SHARED


def _normalize_id(value: str, field: str) -> str:
    text = normalize_text(value)
    if not text:
        raise InvalidIdentifier(field, "must not be empty")
    if len(text) > MAX_ID_LENGTH:
        raise InvalidIdentifier(field, f"must be at most {MAX_ID_LENGTH} characters")
    return text


def normalize_identifier(
    id_type: IdType,
    value: str,
    namespace: str = "",
    *,
    field: str | None = None,
    default_region: str = "KR",
) -> tuple[str, str]:
    """Return ``(normalised_value, normalised_namespace)``.

    Only EXTERNAL ids carry a namespace; for every other type it is dropped, so a
    caller that passes one by mistake cannot make the same email or phone hash
    differently and split a person in two.
    """
    name = field or id_type.value
    if id_type is IdType.EMAIL:
        return normalize_email(value, field=name), ""
    if id_type is IdType.PHONE:
        return normalize_phone(value, default_region, field=name), ""
    if id_type is IdType.EXTERNAL:
        ns = normalize_text(namespace).lower()
        if not ns:
            raise InvalidIdentifier(f"{name}.namespace", "must not be empty for external ids")
        if not _NAMESPACE_RE.fullmatch(ns):
            raise InvalidIdentifier(
                f"{name}.namespace", "must be 1-32 characters of a-z, 0-9, _ or -"
            )
        return _normalize_id(value, name), ns
    return _normalize_id(value, name), ""
