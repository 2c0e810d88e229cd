"""Scheduled birthday rewards. Replica-safe: a member's reward for a year is
claimed by inserting (member, year) into `loyalty_birthday_grant`, whose
primary key lets one transaction in; a second replica's insert waits for the
first to commit and then inserts nothing, so it grants nothing. A `Birthday`
track event claims the same row, so the two paths never both grant."""

from __future__ import annotations

from datetime import datetime, tzinfo

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from loyalty.adapters import tables as t
from loyalty.adapters.store import Tx
from loyalty.domain.birthdays import birthday_of, birthdays_on
from loyalty.service_layer.commands import ActivityIn


def claim(tx: Tx, customer_id: str, year: int) -> bool:
    """True when this transaction is the one to grant ``year``'s reward."""
    insert = pg_insert if tx.pg else sqlite_insert
    row = tx.s.execute(
        insert(t.birthday_grant)
        .values(customer_id=customer_id, year=year, granted_at=tx.now)
        .on_conflict_do_nothing()
        .returning(t.birthday_grant.c.customer_id)
    ).first()
    return row is not None


def set_birthday(tx: Tx, customer_id: str, month: int, day: int) -> str:
    value = birthday_of(month, day)
    cid = tx.survivor(customer_id)
    tx.lock([cid])
    tx.s.execute(t.account.update().where(t.account.c.customer_id == cid).values(birthday=value))
    return value


def due(tx: Tx, zone: tzinfo, limit: int = 500) -> list[ActivityIn]:
    """Members whose birthday is today (in ``zone``) and who have not had
    this year's reward: the activities to grant (each claims its row)."""
    today = tx.now.astimezone(zone).date()
    granted = sa.select(t.birthday_grant.c.customer_id).where(
        t.birthday_grant.c.customer_id == t.account.c.customer_id,
        t.birthday_grant.c.year == today.year,
    )
    cids = tx.s.execute(
        sa.select(t.account.c.customer_id)
        .where(
            t.account.c.birthday != "",  # the partial index's condition
            t.account.c.birthday.in_(birthdays_on(today)),
            t.account.c.merged_into == "",
            ~granted.exists(),
        )
        .order_by(t.account.c.customer_id)
        .limit(limit)
    ).scalars()
    return [ActivityIn(cid, "birthday", tx.now, f"birthday:{cid}:{today.year}") for cid in cids]


def year_of(when: datetime, zone: tzinfo) -> int:
    return when.astimezone(zone).year
