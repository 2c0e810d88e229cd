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

from identity.domain.matching.names import clean, family_key, name_keys

_DIGITS = re.compile(r"\D+")


@dataclass(frozen=True, slots=True)
class CustomerRecord:
    record_id: str
    given_name: str = ""
    family_name: str = ""
    full_name: str = ""  # one-box names, e.g. "김민준"; used when the split fields are empty
    date_of_birth: str = ""  # YYYY-MM-DD (YYYYMMDD accepted) or ""
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


def _words(text: str) -> str:
    folded = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(w for w in (clean(p) for p in folded.split()) if w)


def _dob(text: str) -> str:
    # Separators vary by source; the digits do not. A value that is not eight
    # digits cannot be compared component-wise, so it counts as missing.
    digits = _DIGITS.sub("", unicodedata.normalize("NFKC", text))
    return digits if len(digits) == 8 else ""


def normalise_record(record: CustomerRecord) -> NormalisedRecord:
    given, family = name_keys(record.given_name, record.family_name, record.full_name)
    return NormalisedRecord(
        record_id=record.record_id,
        given=given,
        family=family,
        given_as_family=family_key(given) if given else "",
        dob=_dob(record.date_of_birth),
        street=_words(record.street),
        city=_words(record.city),
        postcode=clean(record.postcode),
        state=clean(record.state),
        phone=_DIGITS.sub("", unicodedata.normalize("NFKC", record.phone)),
        email_hash=record.email_hash.strip().lower(),
        national_id=clean(record.national_id),
    )
