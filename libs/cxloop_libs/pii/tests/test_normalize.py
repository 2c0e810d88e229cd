from __future__ import annotations

import pickle

import pytest
from cxloop.common.v1 import identifier_pb2

from cxloop_libs.pii import (
    IdType,
    InvalidIdentifier,
    normalize_email,
    normalize_identifier,
    normalize_phone,
    normalize_text,
)


def fullwidth(ascii_text: str) -> str:
    # Built rather than typed so the source stays free of look-alike characters.
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in ascii_text)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("010-1234-5678", "+821012345678"),
        ("01012345678", "+821012345678"),
        ("010 1234 5678", "+821012345678"),
        ("+82 10 1234 5678", "+821012345678"),
        ("+82 010 1234 5678", "+821012345678"),
        # Without "+", phonenumbers still recognises the KR country code because
        # the rest is a valid KR mobile number.
        ("82-10-1234-5678", "+821012345678"),
        (fullwidth("01012345678"), "+821012345678"),
        (fullwidth("010-1234-5678"), "+821012345678"),
        ("  010-1234-5678  ", "+821012345678"),
        ("02-312-3456", "+8223123456"),
        ("+1 650-253-0000", "+16502530000"),
    ],
)
def test_phone_to_e164(raw: str, expected: str) -> None:
    assert normalize_phone(raw) == expected
    assert normalize_identifier(IdType.PHONE, raw) == (expected, "")


def test_phone_default_region() -> None:
    assert normalize_phone("(650) 253-0000", default_region="US") == "+16502530000"


@pytest.mark.parametrize("raw", ["123", "abc", "010-1234", "", "   "])
def test_invalid_phone(raw: str) -> None:
    with pytest.raises(InvalidIdentifier) as exc:
        normalize_phone(raw)
    assert exc.value.field == "phone"
    assert exc.value.reason


def test_invalid_phone_reason_names_region() -> None:
    with pytest.raises(InvalidIdentifier) as exc:
        normalize_phone("123")
    assert exc.value.reason == "not a valid phone number for region KR"


def test_invalid_phone_uses_caller_field() -> None:
    with pytest.raises(InvalidIdentifier) as exc:
        normalize_identifier(IdType.PHONE, "010-1234", field="traits.phone")
    assert exc.value.field == "traits.phone"
    assert isinstance(exc.value, ValueError)
    assert str(exc.value).startswith("traits.phone: ")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (" John.Doe+news@Example.COM ", "john.doe@example.com"),
        ("J.o.h.n@googlemail.com", "john@gmail.com"),
        ("J.o.h.n+shop@GMAIL.com", "john@gmail.com"),
        ("john.doe@example.com", "john.doe@example.com"),
        ("a+b+c@example.com", "a@example.com"),
        # Nothing before the tag: the "+tag" is the whole mailbox name.
        ("+news@example.com", "+news@example.com"),
        (fullwidth("JOHN@EXAMPLE.COM"), "john@example.com"),
        ("\ufb01le@example.com", "file@example.com"),
    ],
)
def test_email_canonical_form(raw: str, expected: str) -> None:
    assert normalize_email(raw) == expected
    assert normalize_identifier(IdType.EMAIL, raw) == (expected, "")


@pytest.mark.parametrize(
    "raw",
    ["no-at-sign", "a@b", "a@@b.com", "a b@c.com", "a@b c.com", "@example.com", "a@b..com", ""],
)
def test_invalid_email(raw: str) -> None:
    with pytest.raises(InvalidIdentifier) as exc:
        normalize_email(raw)
    assert exc.value.field == "email"


def test_invalid_email_uses_caller_field() -> None:
    with pytest.raises(InvalidIdentifier) as exc:
        normalize_identifier(IdType.EMAIL, "a@@b.com", field="traits.email")
    assert exc.value.field == "traits.email"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  a   b\tc\n", "a b c"),
        (fullwidth("ABC123"), "ABC123"),
        ("\ufb01", "fi"),
        ("a\u00a0b", "a b"),
        ("", ""),
    ],
)
def test_normalize_text(raw: str, expected: str) -> None:
    assert normalize_text(raw) == expected


@pytest.mark.parametrize("id_type", [IdType.USER_ID, IdType.ANONYMOUS_ID, IdType.LOYALTY_CARD])
def test_opaque_ids_keep_case(id_type: IdType) -> None:
    assert normalize_identifier(id_type, "  AbC  123 ") == ("AbC 123", "")


@pytest.mark.parametrize("id_type", [IdType.USER_ID, IdType.ANONYMOUS_ID, IdType.LOYALTY_CARD])
def test_opaque_ids_must_not_be_empty(id_type: IdType) -> None:
    with pytest.raises(InvalidIdentifier) as exc:
        normalize_identifier(id_type, " \t ")
    assert exc.value.field == id_type.value
    assert exc.value.reason == "must not be empty"


def test_opaque_id_max_length() -> None:
    assert normalize_identifier(IdType.USER_ID, "x" * 256)[0] == "x" * 256
    with pytest.raises(InvalidIdentifier) as exc:
        normalize_identifier(IdType.USER_ID, "x" * 257, field="userId")
    assert exc.value.field == "userId"


def test_namespace_dropped_for_non_external() -> None:
    assert normalize_identifier(IdType.EMAIL, "a@example.com", "crm") == ("a@example.com", "")


def test_external_id() -> None:
    assert normalize_identifier(IdType.EXTERNAL, " Ab-1 ", " POS ") == ("Ab-1", "pos")


@pytest.mark.parametrize("namespace", ["", "  ", "pos system", "p.o.s", "x" * 33])
def test_external_id_bad_namespace(namespace: str) -> None:
    with pytest.raises(InvalidIdentifier) as exc:
        normalize_identifier(IdType.EXTERNAL, "123", namespace)
    assert exc.value.field == "external.namespace"


def test_external_id_empty_value() -> None:
    with pytest.raises(InvalidIdentifier) as exc:
        normalize_identifier(IdType.EXTERNAL, "  ", "pos", field="externalId")
    assert exc.value.field == "externalId"


@pytest.mark.parametrize("id_type", list(IdType))
def test_proto_round_trip(id_type: IdType) -> None:
    proto = id_type.to_proto()
    assert identifier_pb2.IdentifierType.Name(proto) == "IDENTIFIER_TYPE_" + id_type.name
    assert IdType.from_proto(proto) is id_type


@pytest.mark.parametrize("value", [identifier_pb2.IDENTIFIER_TYPE_UNSPECIFIED, 99])
def test_from_proto_rejects_unknown(value: int) -> None:
    with pytest.raises(InvalidIdentifier) as exc:
        IdType.from_proto(value)
    assert exc.value.field == "type"


def test_invalid_identifier_pickles() -> None:
    err = pickle.loads(pickle.dumps(InvalidIdentifier("email", "bad")))
    assert (err.field, err.reason, str(err)) == ("email", "bad", "email: bad")


# -- Korean mobiles ahead of the metadata; whose a number is -----------------


def test_a_korean_mobile_the_metadata_does_not_know_yet_is_accepted() -> None:
    import phonenumbers

    from cxloop_libs.pii import normalize_phone

    lagging = phonenumbers.parse("010-5999-1234", "KR")
    assert phonenumbers.is_possible_number(lagging)
    assert not phonenumbers.is_valid_number(lagging)  # the case this is for
    assert normalize_phone("010-5999-1234") == "+821059991234"
    assert normalize_phone("+82 10 5999 1234") == "+821059991234"


@pytest.mark.parametrize("bad", ["010-599-123", "011-5999-12345", "02-0000-00000"])
def test_other_impossible_or_invalid_numbers_stay_rejected(bad: str) -> None:
    from cxloop_libs.pii import InvalidIdentifier, normalize_phone

    with pytest.raises(InvalidIdentifier):
        normalize_phone(bad)


@pytest.mark.parametrize(
    ("number", "kind"),
    [
        ("010-1234-5678", "mobile"),
        ("010-5999-1234", "mobile"),
        ("+821059991234", "mobile"),
        ("02-555-0100", "shared"),
        ("031-123-4567", "shared"),
        ("070-1234-5678", "shared"),
        ("1588-1234", "shared"),
        ("not a number", "shared"),
    ],
)
def test_phone_kind_tells_personal_from_household_numbers(number: str, kind: str) -> None:
    from cxloop_libs.pii import phone_kind

    assert phone_kind(number, "KR").value == kind
