"""Personal data inside free text: emails, phone numbers (Korean and
international) and Korean resident registration numbers, found and replaced
by a marker before the text travels (docs/adr/0038-pii-in-free-text.md).

Phone numbers are found with ``phonenumbers.PhoneNumberMatcher`` (Google's
libphonenumber metadata, leniency VALID: a number that is valid for its
region, so order numbers and prices are left alone); emails and RRNs with
regular expressions (an RRN must have a plausible birth date and a valid
gender/century digit).

Redaction, not hashing: a hashed email in a property would let anyone with
the key link the text to a person, and nothing downstream needs that link
(identifiers travel in their own hashed fields).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import phonenumbers

EMAIL = "email"
PHONE = "phone"
RRN = "rrn"

# Also the URL-encoded form (?email=kim%40example.com).
_EMAIL = re.compile(
    r"[A-Za-z0-9._%+\-]{1,64}(?:@|%40)[A-Za-z0-9\-]{1,63}(?:\.[A-Za-z0-9\-]{1,63})*\.[A-Za-z]{2,24}",
)
# YYMMDD-GNNNNNN (hyphen, space or nothing), G = 1..8 (century and sex,
# 5..8 for registered foreigners).
_RRN = re.compile(r"(?<!\d)(\d{2})(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])[-\s]?([1-8])\d{6}(?!\d)")
# The matcher costs ~0.1 ms: run it only where a phone number could be (7+
# digits in one run of digits and separators), and never on a bare date.
_PHONE_HINT = re.compile(r"\+?\d[\d\s().\-]{5,}\d")
_ISO_DATE = re.compile(
    r"\d{4}-\d{2}-\d{2}(?:[Tt ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:[Zz]|[+-]\d{2}:?\d{2})?)?"
)


def marker(kind: str) -> str:
    return f"[redacted {kind}]"


@dataclass(slots=True)
class Redactions:
    """What a scan replaced, by kind."""

    counts: Counter[str] = field(default_factory=Counter)

    def __bool__(self) -> bool:
        return bool(self.counts)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def redact_text(text: str, *, default_region: str = "KR", found: Redactions | None = None) -> str:
    """``text`` with every email, phone number and RRN replaced by a marker."""
    if not text or len(text) < 6:
        return text
    found = found if found is not None else Redactions()

    def sub(kind: str) -> Callable[[re.Match[str]], str]:
        def replace(_: re.Match[str]) -> str:
            found.counts[kind] += 1
            return marker(kind)

        return replace

    out = _RRN.sub(sub(RRN), text)
    if "@" in out or "%40" in out:
        out = _EMAIL.sub(sub(EMAIL), out)
    if _phone_possible(out):
        out = _redact_phones(out, default_region, found)
    return out


def _phone_possible(text: str) -> bool:
    for hint in _PHONE_HINT.finditer(text):
        if sum(c.isdigit() for c in hint.group()) >= 7 and not _ISO_DATE.fullmatch(
            hint.group().strip()
        ):
            return True
    return False


def _redact_phones(text: str, region: str, found: Redactions) -> str:
    matches = list(
        phonenumbers.PhoneNumberMatcher(text, region, leniency=phonenumbers.Leniency.VALID)
    )
    if not matches:
        return text
    parts: list[str] = []
    last = 0
    for m in matches:
        parts.append(text[last : m.start])
        parts.append(marker(PHONE))
        found.counts[PHONE] += 1
        last = m.end
    parts.append(text[last:])
    return "".join(parts)
