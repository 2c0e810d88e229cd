"""Envelope encryption per data subject, for crypto-shredding.

Every subject (customer) has its own 256-bit data key; values are sealed with
AES-GCM under it, the subject id bound in as associated data. Data keys are
stored only wrapped (AES-GCM) by the master key from configuration
(``CXLOOP_MASTER_KEY``, 32 bytes base64; a fixed development key outside
production), in the owning service's own database (``pii_subject_key``).

Erasing a subject deletes its data key (:meth:`SubjectKeyring.shred`): every
copy of a value sealed under it — in any table, stream message or backup —
can no longer be decrypted (:class:`KeyShredded`). Why a keyring per service
rather than a central key service: docs/adr/0015-per-service-subject-keyrings.md.

Sealed format: ``b"\\x01" + key id (8 bytes) + nonce (12) + ciphertext||tag``,
version 1. The key id is random per data key, so a value sealed under a key
that was shredded and later re-created for the same subject still fails.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import os
from collections.abc import Collection, Iterable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlmodel import Field, Session, SQLModel

from cxloop_libs.config import ConfigError, Environment, ServiceSettings

if TYPE_CHECKING:
    from cxloop_libs.db import InsertBatch

VERSION = 1
KEY_ID_BYTES = 8
NONCE_BYTES = 12
DEV_MASTER_KEY = hashlib.sha256(b"cxloop-development-only-master-key").digest()


class KeyShredded(Exception):
    """The subject's key is gone (erased): the value can never be read again."""


class InvalidCiphertext(Exception):
    """Not a sealed value, sealed for another subject or context, or tampered."""


class SubjectKeyRow(SQLModel, table=True):
    __tablename__ = "pii_subject_key"

    subject_id: str = Field(primary_key=True, max_length=64)
    key_id: bytes = Field(sa_column=sa.Column(sa.LargeBinary, nullable=False))
    # Data key wrapped by the master key: nonce (12) + ciphertext||tag.
    wrapped_key: bytes = Field(sa_column=sa.Column(sa.LargeBinary, nullable=False))
    # Which master key wrapped it (first 8 bytes of its SHA-256), for rotation.
    master_key_id: str = Field(max_length=16)
    created_at: datetime = Field(sa_column=sa.Column(sa.DateTime(timezone=True), nullable=False))


_KEYS: sa.Table = SubjectKeyRow.__table__  # type: ignore[attr-defined]


def create_subject_key_table(op: Any) -> None:
    """For a service's Alembic revision (the schema is written once, here)."""
    op.create_table(
        "pii_subject_key",
        sa.Column("subject_id", sa.String(64), primary_key=True),
        sa.Column("key_id", sa.LargeBinary, nullable=False),
        sa.Column("wrapped_key", sa.LargeBinary, nullable=False),
        sa.Column("master_key_id", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )


def master_key_from_settings(
    settings: ServiceSettings, environ: Mapping[str, str] | None = None
) -> bytes:
    """``CXLOOP_MASTER_KEY`` (base64 of 32 bytes); required in production."""
    environ = os.environ if environ is None else environ
    raw = environ.get("CXLOOP_MASTER_KEY", "").strip()
    if not raw:
        if settings.env is Environment.PRODUCTION:
            raise ConfigError(
                settings.service_name,
                ["CXLOOP_MASTER_KEY: required outside development mode (base64 of 32 bytes)"],
            )
        return DEV_MASTER_KEY
    try:
        key = base64.b64decode(raw, validate=True)
    except ValueError:
        key = b""
    if len(key) != 32:
        raise ConfigError(settings.service_name, ["CXLOOP_MASTER_KEY: must be base64 of 32 bytes"])
    if settings.env is Environment.PRODUCTION and key == DEV_MASTER_KEY:
        raise ConfigError(
            settings.service_name, ["CXLOOP_MASTER_KEY: must not be the development key"]
        )
    return key


def _aad(subject_id: str, context: bytes) -> bytes:
    return subject_id.encode() + b"\x00" + context


class SubjectKey:
    """One subject's unwrapped data key, from :meth:`SubjectKeyring.keys`:
    seals and opens many values without a database read each. Hold it only
    for the transaction that fetched it (erasure may shred the key)."""

    __slots__ = ("_aead", "key_id", "subject_id")

    def __init__(self, subject_id: str, key_id: bytes, aead: AESGCM) -> None:
        self.subject_id = subject_id
        self.key_id = key_id
        self._aead = aead

    def seal(self, plaintext: bytes, *, context: bytes = b"") -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        body = self._aead.encrypt(nonce, plaintext, _aad(self.subject_id, context))
        return bytes([VERSION]) + self.key_id + nonce + body

    def open(self, sealed: bytes, *, context: bytes = b"") -> bytes:
        if len(sealed) < 1 + KEY_ID_BYTES + NONCE_BYTES + 16 or sealed[0] != VERSION:
            raise InvalidCiphertext("not a sealed value")
        if sealed[1 : 1 + KEY_ID_BYTES] != self.key_id:
            raise KeyShredded(f"the key of subject {self.subject_id[:64]!r} no longer exists")
        body = sealed[1 + KEY_ID_BYTES :]
        try:
            return self._aead.decrypt(
                body[:NONCE_BYTES], body[NONCE_BYTES:], _aad(self.subject_id, context)
            )
        except InvalidTag:
            raise InvalidCiphertext("tampered, or sealed for another subject or context") from None


@functools.cache
def _keys_of(dialect: str) -> sa.Select[Any]:
    """The keys of a list of subjects (bound as ``values``), built once: a
    batch that seals for an earlier customer reads its key every time."""
    from cxloop_libs.db import one_of_bound

    return sa.select(_KEYS).where(one_of_bound(_KEYS.c.subject_id, dialect))


class SubjectKeyring:
    """Per-subject data keys in the owning service's database. Every method
    takes the caller's session, so a key is created, used or shredded in the
    same transaction as the rows it protects."""

    def __init__(self, master_key: bytes) -> None:
        if len(master_key) != 32:
            raise ValueError("the master key must be 32 bytes")
        self._master = AESGCM(master_key)
        self.master_key_id = hashlib.sha256(master_key).hexdigest()[:16]

    def _unwrap(self, subject_id: str, row: Any) -> AESGCM:
        wrapped = bytes(row.wrapped_key)
        try:
            data_key = self._master.decrypt(
                wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:], _aad(subject_id, bytes(row.key_id))
            )
        except InvalidTag:
            raise InvalidCiphertext("data key does not unwrap with this master key") from None
        return AESGCM(data_key)

    def _row(self, session: Session, subject_id: str) -> Any:
        return session.execute(sa.select(_KEYS).where(_KEYS.c.subject_id == subject_id)).first()

    def _create(self, session: Session, subject_id: str) -> Any:
        key_id, data_key, nonce = os.urandom(KEY_ID_BYTES), AESGCM.generate_key(256), os.urandom(12)
        wrapped = nonce + self._master.encrypt(nonce, data_key, _aad(subject_id, key_id))
        session.execute(
            sa.insert(_KEYS).values(
                subject_id=subject_id,
                key_id=key_id,
                wrapped_key=wrapped,
                master_key_id=self.master_key_id,
                created_at=datetime.now(UTC),
            )
        )
        return self._row(session, subject_id)

    def seal(
        self, session: Session, subject_id: str, plaintext: bytes, *, context: bytes = b""
    ) -> bytes:
        """Encrypt under the subject's key (created on first use). ``context``
        (e.g. the field name) must be given again to open it."""
        row = self._row(session, subject_id) or self._create(session, subject_id)
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._unwrap(subject_id, row).encrypt(nonce, plaintext, _aad(subject_id, context))
        return bytes([VERSION]) + bytes(row.key_id) + nonce + sealed

    def open(
        self, session: Session, subject_id: str, sealed: bytes, *, context: bytes = b""
    ) -> bytes:
        if len(sealed) < 1 + KEY_ID_BYTES + NONCE_BYTES + 16 or sealed[0] != VERSION:
            raise InvalidCiphertext("not a sealed value")
        key_id = sealed[1 : 1 + KEY_ID_BYTES]
        row = self._row(session, subject_id)
        if row is None or bytes(row.key_id) != key_id:
            raise KeyShredded(f"the key of subject {subject_id[:64]!r} no longer exists")
        body = sealed[1 + KEY_ID_BYTES :]
        try:
            return self._unwrap(subject_id, row).decrypt(
                body[:NONCE_BYTES], body[NONCE_BYTES:], _aad(subject_id, context)
            )
        except InvalidTag:
            raise InvalidCiphertext("tampered, or sealed for another subject or context") from None

    def keys(
        self,
        session: Session,
        subject_ids: Iterable[str],
        *,
        create: bool = False,
        new: Collection[str] = (),
        into: InsertBatch | None = None,
    ) -> dict[str, SubjectKey]:
        """The data keys of many subjects with one read (and, with ``create``,
        one insert for those without a key), for sealing or opening many
        values in one transaction. Subjects without a key are left out unless
        ``create``. Same sealed format as :meth:`seal` / :meth:`open`.
        ``new``: subjects the caller created in this transaction, who cannot
        have a key yet: they are not read (no read at all when every subject
        is new). ``into``: the new keys' rows are added to that batch (the
        caller flushes it in this transaction) instead of inserted here."""
        wanted = sorted(set(subject_ids))
        out: dict[str, SubjectKey] = {}
        known = [s for s in wanted if s not in new] if new else wanted
        by_subject = _keys_of(session.get_bind().dialect.name)
        for i in range(0, len(known), 900):
            chunk = known[i : i + 900]
            for row in session.execute(by_subject, {"values": chunk}):
                out[row.subject_id] = SubjectKey(
                    row.subject_id, bytes(row.key_id), self._unwrap(row.subject_id, row)
                )
        missing = [s for s in wanted if s not in out] if create else []
        if missing:
            now = datetime.now(UTC)
            rows = []
            for subject_id in missing:
                key_id, data_key = os.urandom(KEY_ID_BYTES), AESGCM.generate_key(256)
                nonce = os.urandom(NONCE_BYTES)
                wrapped = nonce + self._master.encrypt(nonce, data_key, _aad(subject_id, key_id))
                rows.append(
                    {
                        "subject_id": subject_id,
                        "key_id": key_id,
                        "wrapped_key": wrapped,
                        "master_key_id": self.master_key_id,
                        "created_at": now,
                    }
                )
                out[subject_id] = SubjectKey(subject_id, key_id, AESGCM(data_key))
            if into is not None:
                into.add(_KEYS, rows)
            else:
                session.execute(sa.insert(_KEYS), rows)
        return out

    def shred_many(self, session: Session, subject_ids: Iterable[str]) -> int:
        """Delete the keys of many subjects; how many there were."""
        wanted = sorted(set(subject_ids))
        n = 0
        for i in range(0, len(wanted), 900):
            result: Any = session.execute(
                sa.delete(_KEYS).where(_KEYS.c.subject_id.in_(wanted[i : i + 900]))
            )
            n += int(result.rowcount)
        return n

    def shred(self, session: Session, subject_id: str) -> int:
        """Delete the subject's key: 1 if there was one, else 0."""
        result: Any = session.execute(sa.delete(_KEYS).where(_KEYS.c.subject_id == subject_id))
        return int(result.rowcount)

    def has_key(self, session: Session, subject_id: str) -> bool:
        return self._row(session, subject_id) is not None
