"""Inbox: ids of events a consumer has processed, written in the same
transaction as the state change, so a redelivered event is a no-op."""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa
from sqlmodel import Session

from cxloop_libs.db import bulk_insert, one_of
from cxloop_libs.messaging.tables import InboxEvent, utcnow

_INBOX: sa.Table = InboxEvent.__table__  # type: ignore[attr-defined]


def already_processed(session: Session, consumer: str, event_ids: Iterable[str]) -> set[str]:
    ids = list(set(event_ids))
    if not ids:
        return set()
    seen: set[str] = set()
    # Chunked to stay under SQLite's bound-parameter limit.
    for i in range(0, len(ids), 900):
        chunk = ids[i : i + 900]
        rows = session.execute(
            sa.select(_INBOX.c.event_id).where(
                _INBOX.c.consumer == consumer,
                one_of(_INBOX.c.event_id, chunk, session.get_bind().dialect.name),
            )
        )
        seen.update(r[0] for r in rows)
    return seen


def mark_processed(session: Session, consumer: str, event_ids: Iterable[str]) -> None:
    now = utcnow()
    rows = [{"consumer": consumer, "event_id": e, "processed_at": now} for e in set(event_ids)]
    if rows:
        bulk_insert(session, _INBOX, rows)
