from __future__ import annotations

import hashlib
import hmac

import pytest
from cxloop.common.v1 import identifier_pb2

from cxloop_libs.pii import JUNK_VALUES, IdentifierHasher, IdType, InvalidIdentifier, is_junk

KEY = b"k" * 32
OTHER_KEY = b"o" * 32


@pytest.fixture
def hasher() -> IdentifierHasher:
    return IdentifierHasher(KEY)


def test_key_too_short() -> None:
    with pytest.raises(ValueError):
        IdentifierHasher(b"x" * 15)
    IdentifierHasher(b"x" * 16)


def test_hash_is_plain_hmac_sha256(hasher: IdentifierHasher) -> None:
    expected = hmac.new(KEY, b"email:" + b":a@example.com", hashlib.sha256).hexdigest()
    assert hasher.hash_normalized(IdType.EMAIL, "a@example.com") == expected
    assert expected == expected.lower() and len(expected) == 64


def test_namespace_is_in_message(hasher: IdentifierHasher) -> None:
    expected = hmac.new(KEY, b"external:pos:123", hashlib.sha256).hexdigest()
    assert hasher.hash(IdType.EXTERNAL, "123", "POS") == expected


def test_deterministic_across_instances(hasher: IdentifierHasher) -> None:
    first = hasher.hash(IdType.PHONE, "010-1234-5678")
    assert hasher.hash(IdType.PHONE, "010-1234-5678") == first
    assert IdentifierHasher(KEY).hash(IdType.PHONE, "010-1234-5678") == first


def test_different_key_different_hash(hasher: IdentifierHasher) -> None:
    other = IdentifierHasher(OTHER_KEY)
    assert hasher.hash(IdType.USER_ID, "u1") != other.hash(IdType.USER_ID, "u1")


@pytest.mark.parametrize(
    ("id_type", "a", "b"),
    [
        (IdType.EMAIL, " John.Doe+news@Example.COM ", "john.doe@example.com"),
        (IdType.EMAIL, "J.o.h.n@googlemail.com", "john@gmail.com"),
        (IdType.PHONE, "010-1234-5678", "+82 10 1234 5678"),
        (IdType.USER_ID, " u  1 ", "u 1"),
    ],
)
def test_spellings_share_a_hash(hasher: IdentifierHasher, id_type: IdType, a: str, b: str) -> None:
    assert hasher.hash(id_type, a) == hasher.hash(id_type, b)


def test_case_matters_for_ids(hasher: IdentifierHasher) -> None:
    assert hasher.hash(IdType.USER_ID, "ABC") != hasher.hash(IdType.USER_ID, "abc")


def test_type_is_part_of_hash(hasher: IdentifierHasher) -> None:
    assert hasher.hash(IdType.USER_ID, "abc") != hasher.hash(IdType.ANONYMOUS_ID, "abc")


def test_hash_validates(hasher: IdentifierHasher) -> None:
    with pytest.raises(InvalidIdentifier) as exc:
        hasher.hash(IdType.PHONE, "123", field="traits.phone")
    assert exc.value.field == "traits.phone"


def test_hasher_default_region() -> None:
    us = IdentifierHasher(KEY, default_region="US")
    assert us.hash(IdType.PHONE, "(650) 253-0000") == us.hash_normalized(
        IdType.PHONE, "+16502530000"
    )


def test_repr_hides_key(hasher: IdentifierHasher) -> None:
    assert "kkkk" not in repr(hasher)


def test_hashed_proto(hasher: IdentifierHasher) -> None:
    msg = hasher.hashed(IdType.EXTERNAL, " 42 ", "CRM")
    assert isinstance(msg, identifier_pb2.HashedIdentifier)
    assert msg.type == identifier_pb2.IDENTIFIER_TYPE_EXTERNAL
    assert msg.namespace == "crm"
    assert msg.hash == hasher.hash_normalized(IdType.EXTERNAL, "42", "crm")

    email = hasher.hashed(IdType.EMAIL, "A@Example.com")
    assert email.type == identifier_pb2.IDENTIFIER_TYPE_EMAIL
    assert email.namespace == ""
    assert email.hash == hasher.hash(IdType.EMAIL, "a@example.com")


@pytest.mark.parametrize(
    ("id_type", "value", "junk"),
    [
        (IdType.USER_ID, "null", True),
        (IdType.USER_ID, "NULL", True),
        (IdType.USER_ID, "Undefined", True),
        (IdType.ANONYMOUS_ID, "anonymous", True),
        (IdType.LOYALTY_CARD, "0", True),
        (IdType.EXTERNAL, "N/A", True),
        (IdType.USER_ID, "-", True),
        (IdType.USER_ID, "u-123", False),
        (IdType.EMAIL, "test@test.com", True),
        (IdType.EMAIL, "Test@Example.com", True),
        (IdType.EMAIL, "a@a.com", True),
        (IdType.EMAIL, "noreply@shop.co.kr", True),
        (IdType.EMAIL, "no-reply@shop.co.kr", True),
        (IdType.EMAIL, "null@shop.co.kr", True),
        (IdType.EMAIL, "john@example.com", False),
        (IdType.EMAIL, "tester@example.com", False),
        (IdType.PHONE, "+821000000000", True),
        (IdType.PHONE, "+821011111111", True),
        (IdType.PHONE, "+11111111111", True),
        (IdType.PHONE, "+8222222222", True),
        (IdType.PHONE, "+821012345678", False),
        (IdType.PHONE, "+16502530000", False),
        (IdType.PHONE, "not-a-phone", False),
    ],
)
def test_is_junk(id_type: IdType, value: str, junk: bool) -> None:
    assert is_junk(id_type, value) is junk


def test_junk_values_are_normalised() -> None:
    assert all(v == v.strip().lower() for v in JUNK_VALUES)
