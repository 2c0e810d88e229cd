"""Scheduled ledger work: activation after the return window, expiry with
notices ahead, release of unconfirmed reservations, tier review at cycle
end, birthday rewards, forgetting old partner idempotency answers. Every step is safe to run
in two replicas at once (each re-checks the row's state under the member's
lock)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import timedelta

import sqlalchemy as sa
from sqlmodel import Session

from cxloop_libs.db import Database
from loyalty.adapters import tables as t
from loyalty.adapters.store import Tx, utcnow
from loyalty.service_layer.handlers import LoyaltyHandlers

log = logging.getLogger(__name__)


class LedgerSchedule:
    def __init__(
        self,
        db: Database,
        handlers: LoyaltyHandlers,
        *,
        notice_days: int,
        idempotency_ttl: timedelta,
        after_commit: Callable[[], None],
    ) -> None:
        self.db = db
        self.h = handlers
        self.notice_days = notice_days
        self.idempotency_ttl = idempotency_ttl
        self.after_commit = after_commit
        self._stopping = asyncio.Event()

    def _step(self, fn: Callable[[Tx], int]) -> Callable[[Session], int]:
        def run(session: Session) -> int:
            tx = Tx(session)
            n = fn(tx)
            tx.flush()
            return n

        return run

    def run_once(self) -> dict[str, int]:
        """One round, each step in its own transaction (sync; tests call it)."""
        done: dict[str, int] = {}
        with self.db.session() as s:
            self.h.rules.load(s)
        steps: list[tuple[str, Callable[[Tx], int]]] = [
            ("reservations_released", self.h.release_expired_reservations),
            ("lots_activated", self.h.activate_due),
            ("lots_expired", self.h.expire_due),
            ("expiry_notices", lambda tx: self.h.notify_expiring(tx, self.notice_days)),
            ("tiers_reviewed", self.h.review_tiers),
            ("birthdays_granted", self.h.grant_birthdays),
        ]
        for name, fn in steps:
            with self.db.session() as s:
                done[name] = self._step(fn)(s)
        with self.db.session() as s:
            res = s.execute(
                t.request.delete().where(t.request.c.created_at < utcnow() - self.idempotency_ttl)
            )
            done["idempotency_forgotten"] = int(res.rowcount)  # type: ignore[attr-defined]
        return done

    async def run(self, ready: asyncio.Event, interval_s: float) -> None:
        await ready.wait()
        while not self._stopping.is_set():
            try:
                done = await self.db.run(self.run_once)
                if any(done.values()):
                    self.after_commit()
                    log.info("ledger schedule", extra=done)
            except Exception as exc:  # the next round tries again
                log.warning("ledger schedule round failed: %r", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), interval_s)

    async def stop(self) -> None:
        self._stopping.set()


def ledger_balances(session: Session) -> dict[tuple[str, str], int]:
    """(owner, book) -> balance straight from the legs."""
    rows = session.execute(
        sa.select(t.leg.c.owner, t.leg.c.book, sa.func.sum(t.leg.c.amount)).group_by(
            t.leg.c.owner, t.leg.c.book
        )
    )
    return {(r[0], r[1]): int(r[2]) for r in rows}


def check_books(session: Session) -> list[str]:
    """Every invariant of the ledger that must hold; the problems found."""
    problems: list[str] = []
    legs = ledger_balances(session)
    total = sum(legs.values())
    if total != 0:
        problems.append(f"legs sum to {total}, not 0")
    unbalanced = session.execute(
        sa.select(t.leg.c.posting_id)
        .group_by(t.leg.c.posting_id)
        .having(sa.func.sum(t.leg.c.amount) != 0)
        .limit(5)
    ).all()
    if unbalanced:
        problems.append(f"unbalanced postings: {[r[0] for r in unbalanced]}")
    for r in session.execute(sa.select(t.account)).mappings():
        cid = r["customer_id"]
        for book in ("available", "pending", "reserved"):
            if legs.get((cid, book), 0) != int(r[book]):
                problems.append(
                    f"{cid} {book}: account {r[book]} != ledger {legs.get((cid, book), 0)}"
                )
        lots = dict(
            session.execute(
                sa.select(t.lot.c.state, sa.func.coalesce(sa.func.sum(t.lot.c.remaining), 0))
                .where(t.lot.c.customer_id == cid)
                .group_by(t.lot.c.state)
            ).all()
        )
        if int(lots.get("active", 0)) - int(r["debt"]) != int(r["available"]):
            problems.append(
                f"{cid}: active lots {lots.get('active', 0)} - debt {r['debt']} != available {r['available']}"
            )
        if int(lots.get("pending", 0)) != int(r["pending"]):
            problems.append(
                f"{cid}: pending lots {lots.get('pending', 0)} != pending {r['pending']}"
            )
    return problems
