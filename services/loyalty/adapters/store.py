"""The ledger's unit of work: locks members, appends postings with their legs
and lots, keeps the members' running books, stages events — all in the
caller's transaction.

Concurrency: every change of a member's points first locks the member's
account row (``SELECT ... FOR UPDATE`` on PostgreSQL, the database write lock
on SQLite), always in customer-id order, so two writers of one member queue
and two writers of several members cannot deadlock. Exactly-once: each
posting's ``idempotency_key`` is unique in the database.
"""

from __future__ import annotations

import functools
import json
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import psycopg
import sqlalchemy as sa
from google.protobuf.message import Message
from sqlalchemy.dialects import postgresql
from sqlmodel import Session

from cxloop_libs.db import one_of
from cxloop_libs.messaging import EventKind, OutboxWriter
from cxloop_libs.telemetry import current_traceparent
from loyalty.adapters import tables as t
from loyalty.domain.ledger import Kind, LotView, legs_for

PG_TEXT_ARRAY = postgresql.ARRAY(sa.Text)


def new_id() -> str:
    """A random (version 4) UUID for a posting or lot. Ids only need to be
    unique, not secret; uuid4() costs a system call each (ADR 0022), and
    formatting a ``uuid.UUID`` costs twice this whole function."""
    h = "%032x" % ((random.getrandbits(128) & _UUID_CLEAR) | _UUID_V4)
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


# Version 4, RFC 4122 variant: the bits uuid.UUID(version=4) sets.
_UUID_CLEAR = ~((0xF000 << 64) | (0xC000 << 48)) & ((1 << 128) - 1)
_UUID_V4 = (0x4000 << 64) | (0x8000 << 48)


def utcnow() -> datetime:
    return datetime.now(UTC)


def aware(ts: datetime | None) -> datetime | None:
    if ts is None:
        return None
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def _iso(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


@functools.lru_cache(maxsize=1024)
def _rule_ids_json(rule_ids: tuple[str, ...]) -> str:
    # A batch's postings share a few rule lists: encode each once.
    return json.dumps(list(rule_ids))


POSTING_COLUMNS = (
    "posting_id",
    "customer_id",
    "kind",
    "available",
    "pending",
    "reserved",
    "score",
    "idempotency_key",
    "reference_id",
    "cause_event_id",
    "rule_ids",
    "description",
    "reverses_posting_id",
    "occurred_at",
)
LEG_COLUMNS = ("posting_id", "owner", "book", "amount")
LOT_COLUMNS = (
    "lot_id",
    "customer_id",
    "earned_by",
    "origin",
    "reference_id",
    "points",
    "remaining",
    "state",
    "earned_at",
    "activates_at",
    "expires_at",
    "notified",
)


@dataclass(slots=True)
class Account:
    customer_id: str
    available: int
    pending: int
    reserved: int
    debt: int
    tier: str
    tier_floor: str
    tier_valid_until: datetime | None
    tier_grace_until: datetime | None
    merged_into: str
    dirty: bool = False
    tier_dirty: bool = False


@dataclass(slots=True)
class Posted:
    posting_id: str
    customer_id: str
    kind: Kind
    available: int
    pending: int
    reserved: int
    available_after: int
    occurred_at: datetime
    rule_ids: list[str] = field(default_factory=list)


class Tx:
    def __init__(self, session: Session, now: datetime | None = None) -> None:
        self.s = session
        self.now = now or utcnow()
        self.outbox = OutboxWriter(session)
        self.pg = session.get_bind().dialect.name == "postgresql"
        self.accounts: dict[str, Account] = {}
        self._postings: list[tuple[Any, ...]] = []
        self._legs: list[tuple[Any, ...]] = []
        self._lots: list[tuple[Any, ...]] = []
        self.relay_needed = False
        # One trace context per transaction: looked up once, not per event.
        self._traceparent: str | None = None

    def _in(self, col: Any, values: list[Any]) -> Any:
        """``col IN values`` for the string keys of a batch (hundreds of ids).
        On PostgreSQL the ids travel as one JSON document: psycopg dumps a
        list parameter element by element (~1 ms for 450 ids), json.dumps in
        C (~60 µs); `= ANY(ARRAY(...))` still uses the column's index."""
        if self.pg and values and all(isinstance(v, str) for v in values):
            doc = sa.bindparam(None, json.dumps(values), type_=sa.Text)
            ids = sa.select(
                sa.func.json_array_elements_text(sa.cast(doc, postgresql.JSON))
            ).scalar_subquery()
            return col == sa.any_(sa.func.array(ids))
        return one_of(col, values, self.s.get_bind().dialect.name)

    # -- members -----------------------------------------------------------
    def lock(self, customer_ids: Iterable[str]) -> dict[str, Account]:
        """Lock (creating where new) the members' accounts, in id order."""
        want = sorted({c for c in customer_ids if c and c not in self.accounts})
        if not want:
            return self.accounts
        q = (
            sa.select(t.account)
            .where(self._in(t.account.c.customer_id, want))
            .order_by(t.account.c.customer_id)
            .with_for_update()
        )
        if not self.pg:
            # SQLite has no row locks: a write takes the database lock, which
            # the first UPDATE below would do anyway; do it now, before reading.
            self.s.execute(
                t.account.update()
                .where(self._in(t.account.c.customer_id, want))
                .values(version=t.account.c.version + 1)
            )
        rows = list(self.s.execute(q).mappings())
        missing = sorted(set(want) - {r["customer_id"] for r in rows})
        if missing:
            new = [{"customer_id": c, "created_at": self.now} for c in missing]
            if self.pg:
                # The rows we insert are ours (locked) until commit: read them
                # back from the INSERT; only ids another writer created
                # meanwhile need the locking SELECT.
                made = self._insert_accounts(missing)
                rows += made
                missing = sorted(set(missing) - {r["customer_id"] for r in made})
            else:
                self.s.execute(t.account.insert().prefix_with("OR IGNORE"), new)
            if missing:
                rows += list(
                    self.s.execute(q.where(self._in(t.account.c.customer_id, missing))).mappings()
                )
        for r in rows:
            self._remember(r)
        return self.accounts

    def lock_owners(self, customer_ids: Iterable[str]) -> dict[str, str]:
        """Lock the accounts the customers post to (a merged-away customer
        posts to its survivor); customer id -> owner.

        On PostgreSQL one statement locks the members that were not merged
        away (`merged_into = ''` is re-checked on the locked row, so a merge
        committed while we waited counts) and the new ones come back from
        their INSERT; only ids left over (merged away, or created by another
        writer meanwhile) take the survivor look-up. On SQLite: the write
        lock, then the look-up.
        """
        ids = sorted({c for c in customer_ids if c})
        if not self.pg:
            # The database's write lock first (lock() takes it), so no merge
            # can commit between the survivor look-up and the postings.
            self.lock(ids)
            owners = self.survivors(ids)
            self.lock(owners.values())
            return owners
        owners = {c: c for c in ids if c in self.accounts and not self.accounts[c].merged_into}
        want = [c for c in ids if c not in owners and c not in self.accounts]
        if want:
            q = (
                sa.select(t.account)
                .where(self._in(t.account.c.customer_id, want), t.account.c.merged_into == "")
                .order_by(t.account.c.customer_id)
                .with_for_update()
            )
            rows = list(self.s.execute(q).mappings())
            missing = sorted(set(want) - {r["customer_id"] for r in rows})
            if missing:
                rows += self._insert_accounts(missing)
            for r in rows:
                self._remember(r)
                owners[r["customer_id"]] = r["customer_id"]
        rest = [c for c in ids if c not in owners]
        if rest:
            found = self.survivors(rest)
            self.lock(found.values())
            owners.update(found)
        return owners

    def _insert_accounts(self, missing: list[str]) -> list[Any]:
        """Insert new members' accounts (PostgreSQL); the rows we inserted,
        ours (locked) until commit."""
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return list(
            self.s.execute(
                pg_insert(t.account)
                .from_select(
                    ["customer_id", "created_at"],
                    sa.select(
                        sa.func.unnest(sa.bindparam("ids", missing, type_=PG_TEXT_ARRAY)).label(
                            "customer_id"
                        ),
                        sa.bindparam("at", self.now, type_=t.account.c.created_at.type),
                    ).order_by(sa.text("1")),
                )
                .on_conflict_do_nothing()
                .returning(*t.account.c)
            ).mappings()
        )

    def _remember(self, r: Any) -> None:
        self.accounts[r["customer_id"]] = Account(
            r["customer_id"],
            int(r["available"]),
            int(r["pending"]),
            int(r["reserved"]),
            int(r["debt"]),
            r["tier"],
            r["tier_floor"],
            aware(r["tier_valid_until"]),
            aware(r["tier_grace_until"]),
            r["merged_into"],
        )

    def survivor(self, customer_id: str) -> str:
        """The member a (merged-away) customer id posts to now."""
        seen = {customer_id}
        cid = customer_id
        while True:
            row = self.s.execute(
                sa.select(t.account.c.merged_into).where(t.account.c.customer_id == cid)
            ).first()
            if row is None or not row[0] or row[0] in seen:
                return cid
            cid = row[0]
            seen.add(cid)

    def survivors(self, customer_ids: Iterable[str]) -> dict[str, str]:
        ids = sorted(set(customer_ids))
        if not ids:
            return {}
        merged = {
            r[0]: r[1]
            for r in self.s.execute(
                sa.select(t.account.c.customer_id, t.account.c.merged_into).where(
                    self._in(t.account.c.customer_id, ids), t.account.c.merged_into != ""
                )
            )
        }
        return {c: (self.survivor(c) if c in merged else c) for c in ids}

    # -- postings ------------------------------------------------------------
    def existing_keys(self, keys: Sequence[str]) -> set[str]:
        if not keys:
            return set()
        col = t.posting.c.idempotency_key
        return {r[0] for r in self.s.execute(sa.select(col).where(self._in(col, list(keys))))}

    def post(
        self,
        kind: Kind,
        customer_id: str,
        key: str,
        *,
        available: int = 0,
        pending: int = 0,
        reserved: int = 0,
        score: int = 0,
        reference_id: str = "",
        cause_event_id: str = "",
        rule_ids: Sequence[str] = (),
        description: str = "",
        reverses: str | None = None,
        posting_id: str | None = None,
        occurred_at: datetime | None = None,
    ) -> Posted:
        acct = self.accounts[customer_id]  # locked first, always
        pid = posting_id or new_id()
        when = occurred_at or self.now
        # Rows as tuples in POSTING_COLUMNS / LEG_COLUMNS order (COPY takes
        # them as they are; a dict per row cost more than its COPY line).
        self._postings.append(
            (
                pid,
                customer_id,
                kind.value,
                available,
                pending,
                reserved,
                score,
                key[:200],
                reference_id[:128],
                cause_event_id[:128],
                _rule_ids_json(tuple(rule_ids)),
                description[:200],
                reverses,
                when,
            )
        )
        for leg in legs_for(
            kind, customer_id, available=available, pending=pending, reserved=reserved
        ):
            self._legs.append((pid, leg.owner, leg.book.value, leg.amount))
        acct.available += available
        acct.pending += pending
        acct.reserved += reserved
        acct.dirty = True
        return Posted(
            pid,
            customer_id,
            kind,
            available,
            pending,
            reserved,
            acct.available,
            when,
            list(rule_ids),
        )

    def new_lot(
        self,
        lot_id: str,
        customer_id: str,
        points: int,
        *,
        origin: str,
        reference_id: str,
        earned_at: datetime,
        activates_at: datetime,
        expires_at: datetime,
        pending: bool,
        earned_by: str | None = None,
    ) -> None:
        self._lots.append(
            (
                lot_id,
                customer_id,
                earned_by or customer_id,
                origin,
                reference_id[:128],
                points,
                points,
                "pending" if pending else "active",
                earned_at,
                activates_at,
                expires_at,
                False,
            )
        )

    def stage(self, kind: EventKind, message: Message, subject: str) -> None:
        # A cheap random id (uuid4 costs a system call per event, ADR 0022).
        if self._traceparent is None:
            self._traceparent = current_traceparent()
        self.outbox.stage(
            kind, message, subject=subject, event_id=new_id(), traceparent=self._traceparent
        )
        self.relay_needed = True

    # -- lots ----------------------------------------------------------------
    def active_lots(self, customer_id: str, exclude: str = "") -> list[LotView]:
        self.flush_lots()
        rows = self.s.execute(
            sa.select(
                t.lot.c.lot_id, t.lot.c.remaining, t.lot.c.expires_at, t.lot.c.earned_at
            ).where(
                t.lot.c.customer_id == customer_id,
                t.lot.c.state == "active",
                t.lot.c.remaining > 0,
                t.lot.c.lot_id != exclude,
            )
        )
        return [
            LotView(r[0], int(r[1]), aware(r[2]) or self.now, aware(r[3]) or self.now) for r in rows
        ]

    def take_from_lots(self, plan: Sequence[tuple[str, int]]) -> None:
        if self.pg and len(plan) > 1:
            self.s.execute(
                sa.text(
                    "UPDATE loyalty_lot AS l SET remaining = l.remaining - v.n"
                    " FROM unnest(CAST(:ids AS text[]), CAST(:ns AS bigint[])) AS v(id, n)"
                    " WHERE l.lot_id = v.id"
                ),
                {"ids": [p[0] for p in plan], "ns": [p[1] for p in plan]},
            )
            return
        for lot_id, n in plan:
            self.s.execute(
                t.lot.update()
                .where(t.lot.c.lot_id == lot_id)
                .values(remaining=t.lot.c.remaining - n)
            )

    def give_to_lots(self, plan: Sequence[tuple[str, int]]) -> None:
        for lot_id, n in plan:
            self.s.execute(
                t.lot.update()
                .where(t.lot.c.lot_id == lot_id)
                .values(remaining=t.lot.c.remaining + n, state="active")
            )

    def pay_debt(self, customer_id: str, lot_id: str, lot_points: int) -> int:
        """New active points first pay a member's debt (from returns under
        allow_negative); available does not move (it already counts the debt)."""
        acct = self.accounts[customer_id]
        pay = min(acct.debt, lot_points)
        if pay > 0:
            acct.debt -= pay
            acct.dirty = True
            self.flush_lots()
            self.s.execute(
                t.lot.update()
                .where(t.lot.c.lot_id == lot_id)
                .values(remaining=t.lot.c.remaining - pay)
            )
        return pay

    def flush_lots(self) -> None:
        if self._lots:
            self._insert(t.lot, LOT_COLUMNS, self._lots)
            self._lots = []

    # -- commit --------------------------------------------------------------
    def _insert(
        self, table: sa.Table, columns: tuple[str, ...], rows: list[tuple[Any, ...]]
    ) -> None:
        if len(rows) <= 4 or not self.pg:
            # A few rows (a gRPC call): one INSERT beats COPY's extra round trips.
            self.s.execute(table.insert(), [dict(zip(columns, r, strict=True)) for r in rows])
            return
        # COPY through the session's connection (same transaction), as
        # cxloop_libs.db.bulk_insert does, but from tuples.
        statement = f"COPY {table.name} ({', '.join(columns)}) FROM STDIN"
        raw: Any = self.s.connection().connection.driver_connection
        try:
            with raw.cursor() as cur, cur.copy(statement) as copy:
                for r in rows:
                    copy.write_row(r)
        except psycopg.errors.IntegrityError as err:
            # Wrapped as SQLAlchemy would: the consumer re-runs a transaction
            # a concurrent writer beat (is_conflict_error).
            raise sa.exc.IntegrityError(statement, None, err) from err
        except psycopg.OperationalError as err:
            raise sa.exc.OperationalError(statement, None, err) from err

    def flush_rows(self) -> None:
        """Write staged postings, legs and lots (not the accounts)."""
        if self._postings:
            self._insert(t.posting, POSTING_COLUMNS, self._postings)
            self._postings = []
        if self._legs:
            self._insert(t.leg, LEG_COLUMNS, self._legs)
            self._legs = []
        self.flush_lots()

    def flush(self) -> None:
        """Write what was staged; call once at the end of the transaction."""
        self.flush_rows()
        changed = [a for a in self.accounts.values() if a.dirty or a.tier_dirty]
        if changed:
            rows = [
                {
                    "cid": a.customer_id,
                    "a": a.available,
                    "p": a.pending,
                    "r": a.reserved,
                    "d": a.debt,
                    "tier": a.tier,
                    "floor": a.tier_floor,
                    "vu": a.tier_valid_until,
                    "gu": a.tier_grace_until,
                }
                for a in changed
            ]
            if self.pg and len(rows) > 1:
                # One statement for the batch (executemany is a round trip a row).
                # The rows as one JSON document: psycopg dumps nine arrays of
                # hundreds of values element by element, json.dumps in C.
                self.s.execute(
                    sa.text(
                        "UPDATE loyalty_account AS a SET available = v.a, pending = v.p,"
                        " reserved = v.r, debt = v.d, tier = v.tier, tier_floor = v.floor,"
                        " tier_valid_until = v.vu, tier_grace_until = v.gu,"
                        " version = a.version + 1"
                        " FROM json_to_recordset(CAST(:rows AS json)) AS v(cid text, a bigint,"
                        " p bigint, r bigint, d bigint, tier text, floor text, vu timestamptz,"
                        " gu timestamptz) WHERE a.customer_id = v.cid"
                    ),
                    {"rows": json.dumps(rows, default=_iso, separators=(",", ":"))},
                )
            else:
                self.s.execute(
                    t.account.update()
                    .where(t.account.c.customer_id == sa.bindparam("cid"))
                    .values(
                        available=sa.bindparam("a"),
                        pending=sa.bindparam("p"),
                        reserved=sa.bindparam("r"),
                        debt=sa.bindparam("d"),
                        tier=sa.bindparam("tier"),
                        tier_floor=sa.bindparam("floor"),
                        tier_valid_until=sa.bindparam("vu"),
                        tier_grace_until=sa.bindparam("gu"),
                        version=t.account.c.version + 1,
                    ),
                    rows,
                )
            for a in changed:
                a.dirty = a.tier_dirty = False
        self.outbox.flush()


# -- the reservation's fast path on PostgreSQL ---------------------------------
# Three round trips: a conditional UPDATE that takes the member's row lock and
# checks the balance at once, then one statement (with a fresh snapshot, taken
# after the lock) that picks the soonest-expiring lots, takes the points from
# them and writes the posting, its legs and the redemption; then COMMIT.
_RESERVE_LOCK = sa.text(
    "UPDATE loyalty_account SET available = available - :n, reserved = reserved + :n,"
    " version = version + 1 WHERE customer_id = :cid AND available >= :n RETURNING available"
)
_RESERVE_WRITE = sa.text(
    """
WITH lots AS (
  SELECT lot_id, remaining,
         SUM(remaining) OVER (ORDER BY expires_at, earned_at, lot_id) AS upto
  FROM loyalty_lot
  WHERE customer_id = :cid AND state = 'active' AND remaining > 0
), plan AS (
  SELECT lot_id, LEAST(remaining, :n - (upto - remaining)) AS take
  FROM lots WHERE upto - remaining < :n
), taken AS (
  UPDATE loyalty_lot AS l SET remaining = l.remaining - p.take
  FROM plan AS p WHERE l.lot_id = p.lot_id
  RETURNING p.lot_id, p.take
), redemption AS (
  INSERT INTO loyalty_redemption (redemption_id, customer_id, points, reward_id, status,
    idempotency_key, allocations, reserved_at, expires_at)
  SELECT :rid, :cid, :n, :reward, 'reserved', :idem,
    COALESCE((SELECT json_agg(json_build_array(lot_id, take)) FROM plan)::text, '[]'),
    :now, :expires
), posting AS (
  INSERT INTO loyalty_posting (posting_id, customer_id, kind, available, pending, reserved,
    score, idempotency_key, reference_id, cause_event_id, rule_ids, description,
    reverses_posting_id, occurred_at)
  VALUES (:pid, :cid, 'reserve', -CAST(:n AS bigint), 0, :n, 0, :key, :rid, '', '[]', :descr,
    NULL, :now)
), legs AS (
  INSERT INTO loyalty_leg (posting_id, owner, book, amount)
  VALUES (:pid, :cid, 'available', -CAST(:n AS bigint)), (:pid, :cid, 'reserved', :n)
)
SELECT COALESCE(SUM(take), 0) FROM taken
"""
)


def reserve_fast(
    session: Session,
    cid: str,
    points: int,
    *,
    redemption_id: str,
    posting_id: str,
    reward_id: str,
    idem: str,
    now: datetime,
    expires: datetime,
) -> int | None:
    """Available after the reservation, or None when the member (locked)
    has too few points."""
    after = session.execute(_RESERVE_LOCK, {"n": points, "cid": cid}).scalar()
    if after is None:
        return None
    taken = session.execute(
        _RESERVE_WRITE,
        {
            "cid": cid,
            "n": points,
            "rid": redemption_id,
            "pid": posting_id,
            "reward": reward_id[:64],
            "idem": idem[:200],
            "key": f"reserve:{redemption_id}",
            "descr": f"Reserved for {reward_id or 'checkout'}"[:200],
            "now": now,
            "expires": expires,
        },
    ).scalar_one()
    if int(taken) != points:
        # Lots and balance disagree: refuse (the transaction rolls back).
        raise RuntimeError(f"lots held {taken} of {points} points the balance promised")
    return int(after)


# -- a member's concurrent reservations in one transaction (PostgreSQL) ----------
# Group commit (ADR 0070): the calls that queued for one member while its
# previous group was being written are decided together. Two statements and
# the commit under the member's row lock, however many calls the group holds.
_GROUP_LOCK = sa.text(
    "SELECT a.available, a.merged_into,"
    " (SELECT COALESCE(json_agg(json_build_array(r.idempotency_key, r.redemption_id,"
    "   r.customer_id, r.points, r.reward_id, r.status, r.expires_at)), '[]')"
    "  FROM loyalty_redemption AS r WHERE r.idempotency_key = ANY(CAST(:keys AS text[])))"
    " FROM loyalty_account AS a WHERE a.customer_id = :cid FOR UPDATE OF a"
)
# Requests and lots both laid end to end (running sums); a request takes from
# each lot the overlap of their two intervals, so the group spends the
# soonest-expiring lots first and, within the group, in arrival order.
_GROUP_WRITE = sa.text(
    """
WITH rq AS (
  SELECT r.*, SUM(r.n) OVER (ORDER BY r.ord) AS hi
  FROM unnest(CAST(:rids AS text[]), CAST(:pids AS text[]), CAST(:ns AS bigint[]),
              CAST(:rewards AS text[]), CAST(:idems AS text[]), CAST(:descrs AS text[]),
              CAST(:expires AS timestamptz[]))
       WITH ORDINALITY AS r(rid, pid, n, reward, idem, descr, expires, ord)
), lots AS (
  SELECT lot_id, remaining,
         SUM(remaining) OVER (ORDER BY expires_at, earned_at, lot_id) AS hi
  FROM loyalty_lot
  WHERE customer_id = :cid AND state = 'active' AND remaining > 0
), pieces AS (
  SELECT rq.ord, l.lot_id, l.hi AS lot_hi,
         LEAST(l.hi, rq.hi) - GREATEST(l.hi - l.remaining, rq.hi - rq.n) AS take
  FROM rq JOIN lots AS l ON l.hi - l.remaining < rq.hi AND l.hi > rq.hi - rq.n
), taken AS (
  UPDATE loyalty_lot AS l SET remaining = l.remaining - p.take
  FROM (SELECT lot_id, SUM(take) AS take FROM pieces GROUP BY lot_id) AS p
  WHERE l.lot_id = p.lot_id
  RETURNING p.take
), redemption AS (
  INSERT INTO loyalty_redemption (redemption_id, customer_id, points, reward_id, status,
    idempotency_key, allocations, reserved_at, expires_at)
  SELECT rq.rid, :cid, rq.n, rq.reward, 'reserved', rq.idem,
    COALESCE((SELECT json_agg(json_build_array(p.lot_id, p.take) ORDER BY p.lot_hi)
              FROM pieces AS p WHERE p.ord = rq.ord)::text, '[]'),
    :now, rq.expires
  FROM rq
), posting AS (
  INSERT INTO loyalty_posting (posting_id, customer_id, kind, available, pending, reserved,
    score, idempotency_key, reference_id, cause_event_id, rule_ids, description,
    reverses_posting_id, occurred_at)
  SELECT rq.pid, :cid, 'reserve', -rq.n, 0, rq.n, 0, 'reserve:' || rq.rid, rq.rid, '', '[]',
    rq.descr, NULL, :now
  FROM rq
), legs AS (
  INSERT INTO loyalty_leg (posting_id, owner, book, amount)
  SELECT rq.pid, :cid, b.book, CASE WHEN b.book = 'available' THEN -rq.n ELSE rq.n END
  FROM rq CROSS JOIN (VALUES ('available'), ('reserved')) AS b(book)
), account AS (
  UPDATE loyalty_account SET available = available - :total, reserved = reserved + :total,
    version = version + 1
  WHERE customer_id = :cid
)
SELECT COALESCE(SUM(take), 0) FROM taken
"""
)


@dataclass(frozen=True, slots=True)
class HeldRedemption:
    """A redemption already stored under one of a group's idempotency keys."""

    redemption_id: str
    customer_id: str
    points: int
    reward_id: str
    status: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class NewReservation:
    redemption_id: str
    posting_id: str
    points: int
    reward_id: str
    idempotency_key: str
    expires_at: datetime


def lock_for_reservations(
    session: Session, cid: str, keys: Sequence[str]
) -> tuple[int, str, dict[str, HeldRedemption]] | None:
    """Lock the member's account row; (available, merged_into, the
    redemptions already stored under ``keys``), or None without an account.

    The key lookup shares the statement's snapshot, which may predate the
    lock: a redemption another replica stored meanwhile under the same key is
    caught by the key's unique index (the group re-runs and then finds it),
    and before refusing a call for want of points the caller asks again
    (`held_redemptions`), so a retry is never refused what its first attempt
    got."""
    row = session.execute(_GROUP_LOCK, {"cid": cid, "keys": list(keys)}).first()
    if row is None:
        return None
    return int(row[0]), row[1], _held(row[2])


_HELD = sa.text(
    "SELECT COALESCE(json_agg(json_build_array(r.idempotency_key, r.redemption_id,"
    " r.customer_id, r.points, r.reward_id, r.status, r.expires_at)), '[]')"
    " FROM loyalty_redemption AS r WHERE r.idempotency_key = ANY(CAST(:keys AS text[]))"
)


def _held(found: Any) -> dict[str, HeldRedemption]:
    rows = json.loads(found) if isinstance(found, str) else found
    return {
        key: HeldRedemption(rid, owner, int(n), reward, status, datetime.fromisoformat(expires))
        for key, rid, owner, n, reward, status, expires in rows
    }


def held_redemptions(session: Session, keys: Sequence[str]) -> dict[str, HeldRedemption]:
    """Redemptions stored under ``keys``, read by a statement of its own: run
    under the member's lock, it sees every redemption committed before."""
    return _held(session.execute(_HELD, {"keys": list(keys)}).scalar_one())


def reserve_many(
    session: Session, cid: str, items: Sequence[NewReservation], now: datetime
) -> None:
    """Write a locked member's reservations: lots, redemptions, postings,
    legs and the account, in one statement (its snapshot starts after the
    lock, so it sees every earlier change of the member's lots)."""
    if not items:
        return
    total = sum(i.points for i in items)
    taken = session.execute(
        _GROUP_WRITE,
        {
            "cid": cid,
            "rids": [i.redemption_id for i in items],
            "pids": [i.posting_id for i in items],
            "ns": [i.points for i in items],
            "rewards": [i.reward_id[:64] for i in items],
            "idems": [i.idempotency_key[:200] for i in items],
            "descrs": [f"Reserved for {i.reward_id or 'checkout'}"[:200] for i in items],
            "expires": [i.expires_at for i in items],
            "total": total,
            "now": now,
        },
    ).scalar_one()
    if int(taken) != total:
        # Lots and balance disagree: refuse (the transaction rolls back).
        raise RuntimeError(f"lots held {taken} of {total} points the balance promised")
