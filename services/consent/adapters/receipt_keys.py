"""Receipt signing keys (migration 0006): every key that ever signed a receipt."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, Session, SQLModel

TS = sa.DateTime(timezone=True)


class ReceiptKeyRow(SQLModel, table=True):
    __tablename__ = "consent_receipt_key"

    kid: str = Field(primary_key=True, max_length=64)
    alg: str = Field(max_length=16)
    public_jwk: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    # A generated key's private half, sealed under the master key; NULL for the
    # key from CXLOOP_CONSENT_SIGNING_KEY (it stays in configuration).
    private_sealed: bytes | None = Field(
        default=None, sa_column=sa.Column(sa.LargeBinary, nullable=True)
    )
    source: str = Field(max_length=16)
    created_at: datetime = Field(sa_column=sa.Column(TS, nullable=False))
    retired_at: datetime | None = Field(default=None, sa_column=sa.Column(TS, nullable=True))


KEYS: sa.Table = ReceiptKeyRow.__table__  # type: ignore[attr-defined]


def _aware(ts: datetime | None) -> datetime | None:
    if ts is None or ts.tzinfo is not None:
        return ts
    return ts.replace(tzinfo=UTC)


class ReceiptKeyStore:
    def __init__(self, session: Session) -> None:
        self.s = session

    def all(self) -> list[Any]:
        """Every key, newest first."""
        return list(self.s.execute(sa.select(KEYS).order_by(KEYS.c.created_at.desc())).all())

    def insert(
        self,
        *,
        kid: str,
        alg: str,
        public_jwk: str,
        private_sealed: bytes | None,
        source: str,
        now: datetime,
    ) -> None:
        self.s.execute(
            sa.insert(KEYS).values(
                kid=kid,
                alg=alg,
                public_jwk=public_jwk,
                private_sealed=private_sealed,
                source=source,
                created_at=now,
            )
        )

    def retire_all_but(self, kid: str, now: datetime) -> None:
        self.s.execute(
            sa.update(KEYS)
            .where(KEYS.c.kid != kid, KEYS.c.retired_at.is_(None))
            .values(retired_at=now)
        )

    def lock(self) -> None:
        """Serialise rotations (row locks on PostgreSQL, the write lock on SQLite)."""
        self.s.execute(sa.update(KEYS).where(KEYS.c.kid == "").values(alg=""))
