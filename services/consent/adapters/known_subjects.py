"""Customer ids the suite has known (migration 0006): those identity announced
in its profile events, and those with a consent ledger row. A privacy request
for any other id is refused (docs/adr/0020-audit-log.md, "unknown subjects")."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, Session, SQLModel

from consent.adapters.tables import SubjectRow

TS = sa.DateTime(timezone=True)


class KnownSubjectRow(SQLModel, table=True):
    """Customer ids identity announced (profile created, merged, split)."""

    __tablename__ = "consent_known_subject"

    customer_id: str = Field(primary_key=True, max_length=64)
    first_seen_at: datetime = Field(sa_column=sa.Column(TS, nullable=False))


KNOWN: sa.Table = KnownSubjectRow.__table__  # type: ignore[attr-defined]
_SUBJECT: sa.Table = SubjectRow.__table__  # type: ignore[attr-defined]


def mark_known(session: Session, customer_ids: list[str], now: datetime) -> None:
    ids = sorted({c for c in customer_ids if c})
    if not ids:
        return
    have = {
        r[0]
        for r in session.execute(sa.select(KNOWN.c.customer_id).where(KNOWN.c.customer_id.in_(ids)))
    }
    new = [{"customer_id": c, "first_seen_at": now} for c in ids if c not in have]
    if new:
        session.execute(sa.insert(KNOWN), new)


def is_known(session: Session, customer_id: str) -> bool:
    """Announced by identity, or in consent's own ledger projection."""
    for table in (KNOWN, _SUBJECT):
        found = session.execute(
            sa.select(table.c.customer_id).where(table.c.customer_id == customer_id)
        ).first()
        if found is not None:
            return True
    return False
