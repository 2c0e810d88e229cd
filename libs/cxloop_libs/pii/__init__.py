"""Identifier normalisation, keyed hashing and junk detection: the one place
that decides when two identifiers are the same (DESIGN.md, "Privacy rules")."""

from cxloop_libs.pii.hashing import IdentifierHasher
from cxloop_libs.pii.junk import JUNK_VALUES, is_junk
from cxloop_libs.pii.normalize import (
    IdType,
    InvalidIdentifier,
    PhoneKind,
    normalize_email,
    normalize_identifier,
    normalize_phone,
    normalize_text,
    phone_kind,
)

__all__ = [
    "JUNK_VALUES",
    "IdType",
    "IdentifierHasher",
    "InvalidIdentifier",
    "PhoneKind",
    "is_junk",
    "normalize_email",
    "normalize_identifier",
    "normalize_phone",
    "normalize_text",
    "phone_kind",
]
