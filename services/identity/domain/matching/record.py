"""A customer record as the matcher sees it, before and after normalisation.

Records come from store sign-ups, POS and CRM imports that share no exact
identifier with each other. Normalisation makes equal things look equal before
any comparison, so the comparison levels measure real differences (typos, moved
house) rather than formatting (case, full-width digits, punctuation).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date

from cxloop_libs.pii import PhoneKind, normalize_phone, phone_kind
from identity.domain.matching.names import (
    clean,
    family_key,
    given_key,
    has_hangul,
    is_korean_name,
    name_fields,
    strip_marks,
)

_DIGITS = re.compile(r"\D+")


@dataclass(frozen=True, slots=True)
class CustomerRecord:
    record_id: str
    given_name: str = ""
    family_name: str = ""
    full_name: str = ""  # one-box names, e.g. "김민준"; used when the split fields are empty
    # YYYY-MM-DD; also YYYYMMDD, YYYY.MM.DD, YYYY/MM/DD, YY/MM/DD, YYMMDD
    date_of_birth: str = ""
    street: str = ""
    city: str = ""  # suburb or city
    postcode: str = ""
    state: str = ""
    phone: str = ""  # E.164 or ""
    email_hash: str = ""
    national_id: str = ""


@dataclass(frozen=True, slots=True)
class NormalisedRecord:
    record_id: str
    given: str
    family: str
    # The given-name box read as a family name: when a source put the names
    # in the wrong boxes, "Gim" there must still agree with "Kim" elsewhere.
    given_as_family: str
    dob: str  # YYYYMMDD or ""
    street: str
    city: str
    postcode: str
    state: str
    phone: str  # digits only
    email_hash: str
    national_id: str
    # The given name as written (Hangul, or Latin without marks, no spaces):
    # a Hangul name is checked against the other record's Latin spelling.
    given_written: str = ""
    # A mobile (personal) number; a landline or 070 number is shared by a
    # household and is weak evidence at most.
    phone_personal: bool = False
    # A Korean name (Hangul, or a Korean family name): the household rules
    # apply between two such records (model.HouseholdRules).
    korean_name: bool = False


def _words(text: str) -> str:
    folded = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(w for w in (clean(p) for p in folded.split()) if w)


_DATE_PARTS = re.compile(r"\d+")


def _dob(text: str, today: date | None = None) -> str:
    """YYYYMMDD from the forms customers and systems send: 1990-03-07,
    19900307, 1990.03.07, 1990/03/07, 1990-3-7, 90/03/07, 900307. A two-digit
    year is the latest year ending so that is not in the future (07 is 2007
    in 2026, 90 is 1990). Anything else counts as missing: it cannot be
    compared component-wise."""
    parts = _DATE_PARTS.findall(unicodedata.normalize("NFKC", text))
    if len(parts) == 1 and len(parts[0]) in (6, 8):
        d = parts[0]
        parts = [d[:-4], d[-4:-2], d[-2:]]
    if (
        len(parts) != 3
        or len(parts[0]) not in (2, 4)
        or not all(1 <= len(p) <= 2 for p in parts[1:])
    ):
        return ""
    year, month, day = (int(p) for p in parts)
    if len(parts[0]) == 2:
        this_year = (today or date.today()).year
        year += this_year - this_year % 100
        if year > this_year:
            year -= 100
    # A mistyped month or day (1975-50-09) stays: the comparison levels
    # grade one wrong component, and the year and the other still agree.
    return f"{year:04d}{month:02d}{day:02d}"


def _e164(phone: str) -> str:
    # The service passes E.164; a national number (010-…) from elsewhere is
    # brought to the same form, so the two compare exactly.
    if not phone.strip() or phone.lstrip().startswith("+"):
        return phone
    try:
        return normalize_phone(phone, "KR")
    except ValueError:
        return phone


def normalise_record(record: CustomerRecord) -> NormalisedRecord:
    given_as_written, family_as_written = name_fields(
        record.given_name, record.family_name, record.full_name
    )
    written = clean(given_as_written)
    korean = is_korean_name(given_as_written, family_as_written)
    # Korean spellings fold to one phonetic key; other names (and Korean
    # names without a family name to tell) are compared as written.
    given = given_key(given_as_written) if korean else strip_marks(written)
    phone = _DIGITS.sub("", unicodedata.normalize("NFKC", _e164(record.phone)))
    return NormalisedRecord(
        record_id=record.record_id,
        given=given,
        family=family_key(family_as_written),
        given_as_family=family_key(given_as_written) if given else "",
        dob=_dob(record.date_of_birth),
        street=_words(record.street),
        city=_words(record.city),
        postcode=clean(record.postcode),
        state=clean(record.state),
        phone=phone,
        email_hash=record.email_hash.strip().lower(),
        national_id=clean(record.national_id),
        given_written=written if has_hangul(written) else strip_marks(written),
        phone_personal=bool(phone) and phone_kind(record.phone, "KR") is PhoneKind.MOBILE,
        korean_name=korean,
    )
