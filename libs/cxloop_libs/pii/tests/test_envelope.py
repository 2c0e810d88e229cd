"""Envelope encryption per subject without a network: sealed values open only
for their subject and context, tampering is detected, and a shredded key makes
every earlier value unreadable, even if the subject gets a new key later."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlmodel import Session

from cxloop_libs.config import ConfigError, ServiceSettings
from cxloop_libs.pii.envelope import (
    DEV_MASTER_KEY,
    InvalidCiphertext,
    KeyShredded,
    SubjectKeyring,
    SubjectKeyRow,
    master_key_from_settings,
)


@pytest.fixture
def session() -> Iterator[Session]:
    engine = sa.create_engine("sqlite://")
    SubjectKeyRow.__table__.create(engine)  # type: ignore[attr-defined]
    with Session(engine) as s:
        yield s


def test_seal_open_and_shred(session: Session) -> None:
    ring = SubjectKeyring(b"k" * 32)
    sealed = ring.seal(session, "c1", "홍길동 <hong@example.com>".encode(), context=b"name")
    assert b"hong" not in sealed
    assert ring.open(session, "c1", sealed, context=b"name").decode() == "홍길동 <hong@example.com>"
    with pytest.raises(InvalidCiphertext):
        ring.open(session, "c1", sealed, context=b"email")  # another field
    other = ring.seal(session, "c2", b"x")
    with pytest.raises((InvalidCiphertext, KeyShredded)):
        ring.open(session, "c1", other)  # another subject's value
    tampered = sealed[:-1] + bytes([sealed[-1] ^ 1])
    with pytest.raises(InvalidCiphertext):
        ring.open(session, "c1", tampered, context=b"name")

    assert ring.shred(session, "c1") == 1
    with pytest.raises(KeyShredded):
        ring.open(session, "c1", sealed, context=b"name")
    # The subject comes back (a new key): old values stay unreadable.
    ring.seal(session, "c1", b"new")
    with pytest.raises(KeyShredded):
        ring.open(session, "c1", sealed, context=b"name")
    assert ring.open(session, "c2", other) == b"x"  # others are untouched
    assert ring.shred(session, "nobody") == 0


def test_keys_are_stored_wrapped_by_the_master_key(session: Session) -> None:
    ring = SubjectKeyring(b"k" * 32)
    sealed = ring.seal(session, "c1", b"secret")
    with pytest.raises(InvalidCiphertext):
        SubjectKeyring(b"m" * 32).open(session, "c1", sealed)  # wrong master key


def test_master_key_from_configuration() -> None:
    dev = ServiceSettings(env="development")
    assert master_key_from_settings(dev, {}) == DEV_MASTER_KEY
    prod = ServiceSettings(env="production", pii_hash_key="h" * 32)
    with pytest.raises(ConfigError):
        master_key_from_settings(prod, {})
    with pytest.raises(ConfigError):
        master_key_from_settings(
            prod, {"CXLOOP_MASTER_KEY": base64.b64encode(DEV_MASTER_KEY).decode()}
        )
    with pytest.raises(ConfigError):
        master_key_from_settings(prod, {"CXLOOP_MASTER_KEY": "short"})
    key = bytes(range(32))
    assert (
        master_key_from_settings(prod, {"CXLOOP_MASTER_KEY": base64.b64encode(key).decode()}) == key
    )


def test_batch_keys_interoperate_with_seal_and_open_and_shred_many(session: Session) -> None:
    ring = SubjectKeyring(b"k" * 32)
    earlier = ring.seal(session, "c1", b"one", context=b"given_name")
    keys = ring.keys(session, ["c1", "c2", "c3"], create=False)
    assert set(keys) == {"c1"}  # only subjects with a key, unless asked to create
    keys = ring.keys(session, ["c1", "c2", "c3"], create=True)
    assert set(keys) == {"c1", "c2", "c3"}
    assert keys["c1"].open(earlier, context=b"given_name") == b"one"
    sealed = keys["c2"].seal(b"two", context=b"city")
    assert ring.open(session, "c2", sealed, context=b"city") == b"two"
    with pytest.raises(InvalidCiphertext):
        keys["c2"].open(sealed, context=b"street")
    with pytest.raises(KeyShredded):
        keys["c3"].open(sealed, context=b"city")  # another subject's value
    assert ring.shred_many(session, ["c1", "c2", "nobody"]) == 2
    with pytest.raises(KeyShredded):
        ring.open(session, "c2", sealed, context=b"city")
    # A new key for a returning subject does not open the old value.
    fresh = ring.keys(session, ["c2"], create=True)["c2"]
    with pytest.raises(KeyShredded):
        fresh.open(sealed, context=b"city")


def test_keys_of_subjects_created_in_the_transaction_are_not_read(session: Session) -> None:
    ring = SubjectKeyring(b"k" * 32)
    earlier = ring.seal(session, "old", b"one", context=b"city")
    reads: list[str] = []
    sa.event.listen(
        session.get_bind(),
        "before_cursor_execute",
        lambda conn, cursor, statement, *rest: (
            reads.append(statement) if statement.lstrip().upper().startswith("SELECT") else None
        ),
    )
    keys = ring.keys(session, ["new1", "new2"], create=True, new={"new1", "new2"})
    assert reads == []  # every subject new: no read at all
    assert ring.open(session, "new1", keys["new1"].seal(b"x"), context=b"") == b"x"
    # Subjects not named new are still read: an existing key is kept.
    reads.clear()
    keys = ring.keys(session, ["old", "new3"], create=True, new={"new3"})
    assert len(reads) == 1
    assert keys["old"].open(earlier, context=b"city") == b"one"
    assert ring.has_key(session, "new3")
