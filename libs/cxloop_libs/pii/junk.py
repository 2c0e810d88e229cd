"""Placeholder values that many people share and that must never link them.

Forms, POS terminals and test scripts fill required fields with values such as
"test@test.com" or 010-0000-0000. Treating those as real identifiers would merge
thousands of unrelated customers into one profile, so merge logic asks
``is_junk`` before linking on an identifier.
"""

from __future__ import annotations

import phonenumbers

from cxloop_libs.pii.normalize import IdType

JUNK_VALUES: frozenset[str] = frozenset(
    {
        "null",
        "none",
        "undefined",
        "anonymous",
        "unknown",
        "test",
        "n/a",
        "na",
        "0",
        "-",
        "test@test.com",
        "test@example.com",
        "noemail@noemail.com",
        "none@none.com",
        "a@a.com",
        "+821000000000",
        "+821011111111",
    }
)

_JUNK_EMAIL_LOCAL_PARTS = frozenset({"test", "noreply", "no-reply", "none", "null"})


def is_junk(id_type: IdType, normalized_value: str) -> bool:
    value = normalized_value.casefold()
    if value in JUNK_VALUES:
        return True
    if id_type is IdType.EMAIL:
        local, _, _ = value.rpartition("@")
        return local in _JUNK_EMAIL_LOCAL_PARTS
    if id_type is IdType.PHONE:
        try:
            number = phonenumbers.parse(normalized_value, None)
        except phonenumbers.NumberParseException:
            return False
        national = phonenumbers.national_significant_number(number)
        return len(set(national)) == 1
    return False
