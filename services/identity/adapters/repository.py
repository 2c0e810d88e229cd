"""SQL for the identity graph, written for micro-batches: a handful of
statements per batch, whatever its size."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col

from cxloop_libs.db import bulk_insert
from cxloop_libs.db.aio import json_default
from identity.adapters.owner_cache import note_moved
from identity.adapters.tables import (
    CannotLinkRow,
    CounterRow,
    CustomerRow,
    HistoryRow,
    IdentifierRow,
    LinkRow,
    MatchRow,
    ReviewItemRow,
)
from identity.domain.model import GraphView, HashedId
from identity.domain.survivorship import GoldenTrait

EVENTS_WITHOUT_IDENTIFIERS = "events_without_identifiers"


_HISTORY_COLS = (
    "at, action, customer_id, related_customer_ids, identifier_hashes, event_id,"
    " source, reason, actor"
)


def _aware(ts: datetime) -> datetime:
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class ProfileCustomer:
    """The customer row's columns a profile shows (plain values, no ORM state)."""

    customer_id: str
    created_at: datetime
    updated_at: datetime
    last_seen_at: datetime | None
    interaction_count: int


@dataclass(slots=True)
class ProfileRecord:
    customer: ProfileCustomer
    identifiers: list[HashedId]
    merged_ids: list[str]
    golden: list[GoldenTrait] = field(default_factory=list)


def _profile_statement() -> sa.CompoundSelect:
    """A profile in one round trip (GetProfile is read on every customer 360):
    the live customer behind an id (itself, or the survivor it was merged
    into), its identifiers and the ids merged into it, as rows of one UNION
    ALL told apart by ``kind``. Core rows, no ORM objects: loading those was
    half of GetProfile's CPU."""
    c, i = CustomerRow.__table__, IdentifierRow.__table__  # type: ignore[attr-defined]
    asked = c.alias("asked")
    live = (
        sa.select(sa.func.coalesce(asked.c.merged_into, asked.c.customer_id))
        .where(asked.c.customer_id == sa.bindparam("cid"))
        .scalar_subquery()
    )
    no_ts = sa.cast(sa.null(), c.c.created_at.type)
    return sa.union_all(
        sa.select(
            sa.literal("c").label("kind"),
            c.c.customer_id.label("a"),
            sa.literal("").label("b"),
            sa.literal("").label("ns"),
            c.c.created_at.label("t1"),
            c.c.updated_at.label("t2"),
            c.c.last_seen_at.label("t3"),
            c.c.interaction_count.label("n"),
        ).where(c.c.customer_id == live),
        sa.select(
            sa.literal("i"),
            i.c.id_type,
            i.c.hash,
            i.c.namespace,
            i.c.first_seen_at,
            no_ts,
            no_ts,
            sa.literal(0),
        ).where(i.c.customer_id == live),
        sa.select(
            sa.literal("m"),
            c.c.customer_id,
            sa.literal(""),
            sa.literal(""),
            no_ts,
            no_ts,
            no_ts,
            sa.literal(0),
        ).where(c.c.merged_into == live),
    )


_PROFILE = _profile_statement()


def _owners() -> sa.Select[tuple[str, str, datetime, datetime | None]]:
    """Identifiers with their customer and its creation time (a graph
    view's rows). Table columns, not ORM attributes: the same SQL, without
    the ORM's statement and row handling, twice in every Resolve batch."""
    i, c = IdentifierRow.__table__, CustomerRow.__table__  # type: ignore[attr-defined]
    return sa.select(i.c.hash, i.c.customer_id, c.c.created_at, i.c.shared_at).select_from(
        i.join(c, c.c.customer_id == i.c.customer_id)
    )


_OWNERS = _owners()


def _in_values(column: Any, dialect: str) -> Any:
    """``column`` is one of the list bound as ``values``: on PostgreSQL one
    array parameter (``= ANY``), elsewhere an expanding IN (`one_of`'s
    forms, with a named parameter so a statement can be built once)."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import ARRAY

        return column == sa.any_(sa.bindparam("values", type_=ARRAY(column.type)))
    return column.in_(sa.bindparam("values", expanding=True))


@functools.cache
def _touch_updated(dialect: str) -> sa.Update:
    cust = CustomerRow.__table__  # type: ignore[attr-defined]
    return (
        sa.update(cust)
        .where(_in_values(cust.c.customer_id, dialect))
        .values(updated_at=sa.bindparam("now"))
    )


@functools.cache
def _open_review_pairs(dialect: str) -> sa.Select[Any]:
    items = ReviewItemRow.__table__  # type: ignore[attr-defined]
    return sa.select(items.c.hash_a, items.c.hash_b).where(
        items.c.status == "open",
        _in_values(items.c.hash_a, dialect) | _in_values(items.c.hash_b, dialect),
    )


@functools.cache
def _graph_reads(dialect: str) -> tuple[sa.Select[Any], sa.Select[Any], sa.CompoundSelect]:
    """The graph view's three reads (by hash, by customer; identifier counts
    and split-apart constraints by customer), built once per dialect: every
    Resolve batch with traits runs them, and building a statement and its
    cache key each time cost as much as executing it."""
    ident = IdentifierRow.__table__  # type: ignore[attr-defined]
    apart = CannotLinkRow.__table__  # type: ignore[attr-defined]
    counts = (
        sa.select(ident.c.customer_id, ident.c.id_type.label("key"), sa.func.count())
        .where(_in_values(ident.c.customer_id, dialect))
        .group_by(ident.c.customer_id, ident.c.id_type)
    )
    # Constraint rows come back as (customer, "!" + other, 0): no id type
    # starts with "!".
    constraints = sa.select(
        apart.c.customer_id,
        (sa.literal("!") + apart.c.other_customer_id).label("key"),
        sa.literal(0),
    ).where(_in_values(apart.c.customer_id, dialect))
    return (
        _OWNERS.where(_in_values(ident.c.hash, dialect)),
        _OWNERS.where(_in_values(ident.c.customer_id, dialect)),
        sa.union_all(counts, constraints),
    )


@functools.cache
def _customers_of(dialect: str) -> sa.CompoundSelect:
    """Every identifier of the customers that own any of the hashes bound as
    ``values``, with its customer's creation time, and those customers'
    split-apart constraints (rows with an empty hash): the graph view, the
    merge-protection counts and the chaining guard's identifiers of a batch
    with traits, in one statement instead of three."""
    ident = IdentifierRow.__table__  # type: ignore[attr-defined]
    cust = CustomerRow.__table__  # type: ignore[attr-defined]
    apart = CannotLinkRow.__table__  # type: ignore[attr-defined]
    named = ident.alias("named")
    owners = sa.select(named.c.customer_id).where(_in_values(named.c.hash, dialect))
    no_ts = sa.cast(sa.null(), cust.c.created_at.type)
    return sa.union_all(
        sa.select(
            ident.c.hash,
            ident.c.customer_id,
            cust.c.created_at,
            ident.c.shared_at,
            ident.c.id_type,
            sa.literal("").label("other"),
        )
        .select_from(ident.join(cust, cust.c.customer_id == ident.c.customer_id))
        .where(ident.c.customer_id.in_(owners)),
        sa.select(
            sa.literal(""),
            apart.c.customer_id,
            no_ts,
            no_ts,
            sa.literal(""),
            apart.c.other_customer_id,
        ).where(apart.c.customer_id.in_(owners)),
    )


@dataclass(slots=True)
class CustomersRead:
    """What `GraphRepository.read_customers` found: the identifiers of every
    customer owning one of the hashes asked for, and their constraints. It
    answers `load_view`, `load_counts` and `extend_view` as those would
    have (for the hashes asked, and customers among their owners) without
    another statement."""

    # hash -> (customer, its creation time, shared)
    rows: dict[str, tuple[str, datetime, bool]] = field(default_factory=dict)
    # customer -> its identifiers' hashes and types, in the order read
    by_customer: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    apart: list[tuple[str, str]] = field(default_factory=list)

    def view(self, hashes: Iterable[str]) -> GraphView:
        view = GraphView()
        for h in set(hashes):
            if (found := self.rows.get(h)) is not None:
                cid, created, shared = found
                view.know(h, cid, created, shared=shared)
        return view

    def load_counts(self, view: GraphView, customers: Iterable[str]) -> None:
        wanted = set(customers)
        for cid in wanted:
            for _, id_type in self.by_customer.get(cid, ()):
                counts = view.counts(cid)
                counts[id_type] = counts.get(id_type, 0) + 1
        for cid, other in self.apart:
            if cid in wanted:
                view.forbid(cid, other)

    def extend_view(self, view: GraphView, customers: Iterable[str]) -> list[str]:
        out: list[str] = []
        for cid in sorted(set(customers)):
            for h, _ in self.by_customer.get(cid, ()):
                out.append(h)
                if h not in view.owner_of:
                    owner, created, shared = self.rows[h]
                    view.know(h, owner, created, shared=shared)
        return out


def staged_tables(
    customers: list[dict[str, object]],
    identifiers: list[dict[str, object]],
    links: list[dict[str, object]],
    history: list[dict[str, object]],
) -> list[tuple[sa.Table, list[dict[str, object]]]]:
    """Staged graph rows by table, in insert order, for a writer outside the
    session (`cxloop_libs.db.aio.AsyncStatements.insert_rows`)."""
    return [
        (CustomerRow.__table__, customers),  # type: ignore[attr-defined]
        (IdentifierRow.__table__, identifiers),  # type: ignore[attr-defined]
        (LinkRow.__table__, links),  # type: ignore[attr-defined]
        (HistoryRow.__table__, history),  # type: ignore[attr-defined]
    ]


# `GraphRepository.merge` on PostgreSQL: the loser's identifiers, its alias
# rows, its split-apart constraints and its interaction count move to the
# survivor in one statement. The data-modifying CTEs touch different rows
# (the survivor is live, never merged into the loser), and every part reads
# the statement's snapshot, as the four statements read theirs: the loser's
# count is read before anything changed it (nothing here does).
_MERGE_PG = sa.text(
    "WITH moved AS ("
    " UPDATE identifier SET customer_id = :survivor WHERE customer_id = :loser),"
    " aliases AS ("
    " UPDATE customer SET merged_into = :survivor, updated_at = :now"
    " WHERE merged_into = :loser OR customer_id = :loser),"
    " apart AS ("
    " UPDATE identity_cannot_link SET"
    " customer_id = CASE WHEN customer_id = :loser THEN :survivor ELSE customer_id END,"
    " other_customer_id = CASE WHEN other_customer_id = :loser THEN :survivor"
    " ELSE other_customer_id END"
    " WHERE customer_id = :loser OR other_customer_id = :loser)"
    " UPDATE customer SET updated_at = :now, interaction_count = interaction_count"
    " + (SELECT c.interaction_count FROM customer AS c WHERE c.customer_id = :loser)"
    " WHERE customer_id = :survivor"
)


_HISTORY_FROM_JSON = sa.text(
    f"INSERT INTO identity_history ({_HISTORY_COLS})"
    f" SELECT {_HISTORY_COLS} FROM json_to_recordset(CAST(:doc AS json))"
    " AS r(at timestamptz, action text, customer_id text,"
    " related_customer_ids text, identifier_hashes text, event_id text,"
    " source text, reason text, actor text)"
)


class GraphRepository:
    def __init__(self, session: Session) -> None:
        self.s = session

    def load_view(self, hashes: Iterable[str]) -> GraphView:
        view = GraphView()
        wanted = list(set(hashes))
        by_hash = _graph_reads(self.s.get_bind().dialect.name)[0]
        for i in range(0, len(wanted), 900):
            rows = self.s.execute(by_hash, {"values": wanted[i : i + 900]})
            for h, cid, created, shared_at in rows:
                view.know(h, cid, _aware(created), shared=shared_at is not None)
        return view

    def read_customers(self, hashes: Iterable[str]) -> CustomersRead:
        """Every identifier of the customers owning these hashes, and their
        split-apart constraints, in one statement (`CustomersRead`)."""
        out = CustomersRead()
        wanted = list(set(hashes))
        statement = _customers_of(self.s.get_bind().dialect.name)
        for i in range(0, len(wanted), 900):
            rows = self.s.execute(statement, {"values": wanted[i : i + 900]})
            for h, cid, created, shared_at, id_type, other in rows:
                if not h:
                    out.apart.append((cid, other))
                elif h not in out.rows:
                    out.rows[h] = (cid, _aware(created), shared_at is not None)
                    out.by_customer.setdefault(cid, []).append((h, id_type))
        return out

    def extend_view(self, view: GraphView, customers: Iterable[str]) -> list[str]:
        """Every identifier of these customers into ``view`` (the chaining
        guard compares all their records); returns the hashes."""
        wanted = sorted(set(customers))
        by_customer = _graph_reads(self.s.get_bind().dialect.name)[1]
        out: list[str] = []
        for i in range(0, len(wanted), 900):
            rows = self.s.execute(by_customer, {"values": wanted[i : i + 900]})
            for h, cid, created, shared_at in rows:
                out.append(h)
                if h not in view.owner_of:
                    view.know(h, cid, _aware(created), shared=shared_at is not None)
        return out

    def load_counts(self, view: GraphView, customers: Iterable[str]) -> None:
        """For merge protection, about the given customers: every identifier
        count per type, and the customers each was split from. One query
        (the two reads share a UNION ALL), none when no customer is at stake."""
        wanted = list(customers)
        counts = _graph_reads(self.s.get_bind().dialect.name)[2]
        for i in range(0, len(wanted), 900):
            for cid, key, n in self.s.execute(counts, {"values": wanted[i : i + 900]}):
                if key.startswith("!"):
                    view.forbid(cid, key[1:])
                else:
                    view.counts(cid)[key] = n

    def insert_customers(self, rows: Sequence[dict[str, object]]) -> None:
        if rows:
            bulk_insert(self.s, CustomerRow.__table__, rows)  # type: ignore[attr-defined]

    def insert_identifiers(self, rows: Sequence[dict[str, object]]) -> None:
        if rows:
            bulk_insert(self.s, IdentifierRow.__table__, rows)  # type: ignore[attr-defined]

    def insert_links(self, rows: Sequence[dict[str, object]]) -> None:
        if rows:
            bulk_insert(self.s, LinkRow.__table__, rows)  # type: ignore[attr-defined]

    def insert_history(self, rows: Sequence[dict[str, object]]) -> None:
        if not rows:
            return
        if self.s.get_bind().dialect.name != "postgresql":
            self.s.execute(HistoryRow.__table__.insert(), list(rows))  # type: ignore[attr-defined]
            return
        # One JSON document expanded by the server: psycopg dumps text arrays
        # element by element in Python, which for ~9 columns of a busy batch
        # cost the consumer a fifth of its throughput.
        doc = json.dumps(rows, default=json_default, separators=(",", ":"))
        self.s.execute(_HISTORY_FROM_JSON, {"doc": doc})

    def mark_shared(self, hashes: Sequence[str], now: datetime) -> None:
        if hashes:
            self.s.execute(
                sa.update(IdentifierRow)
                .where(col(IdentifierRow.hash).in_(list(hashes)))
                .values(shared_at=now)
            )

    def add_to_counter(self, name: str, n: int) -> None:
        if n:
            c = CounterRow.__table__  # type: ignore[attr-defined]
            self.s.execute(sa.update(c).where(c.c.name == name).values(value=c.c.value + n))

    def merge(self, loser: str, survivor: str, now: datetime) -> None:
        note_moved(self.s, customers=[loser])
        if self.s.get_bind().dialect.name == "postgresql":
            # The four updates below as one statement: one round trip and
            # one statement to build instead of four (a scored sign-up that
            # matches an earlier customer merges into it; ADR 0196).
            self.s.execute(_MERGE_PG, {"loser": loser, "survivor": survivor, "now": now})
            return
        self.s.execute(
            sa.update(IdentifierRow)
            .where(IdentifierRow.customer_id == loser)
            .values(customer_id=survivor)
        )
        # Earlier merges into the loser now point at the survivor too, so an
        # alias is always one hop from its live customer.
        self.s.execute(
            sa.update(CustomerRow)
            .where(col(CustomerRow.merged_into).in_([loser]) | (CustomerRow.customer_id == loser))
            .values(merged_into=survivor, updated_at=now)
        )
        # Split-apart constraints follow the customer into its survivor.
        apart = CannotLinkRow.__table__  # type: ignore[attr-defined]
        self.s.execute(
            sa.update(apart)
            .where((apart.c.customer_id == loser) | (apart.c.other_customer_id == loser))
            .values(
                {
                    c: sa.case((c == loser, survivor), else_=c)
                    for c in (apart.c.customer_id, apart.c.other_customer_id)
                }
            )
        )
        cust = CustomerRow.__table__
        loser_count = (
            sa.select(cust.c.interaction_count).where(cust.c.customer_id == loser).scalar_subquery()
        )
        self.s.execute(
            sa.update(cust)
            .where(cust.c.customer_id == survivor)
            .values(interaction_count=cust.c.interaction_count + loser_count, updated_at=now)
        )

    def touch_updated(self, customers: Sequence[str], now: datetime) -> None:
        """Set ``updated_at`` of these customers (merges done in staged rows)."""
        if customers:
            self.s.execute(
                _touch_updated(self.s.get_bind().dialect.name),
                {"values": list(customers), "now": now},
            )

    def touch(self, activity: dict[str, tuple[int, datetime]], now: datetime) -> None:
        """Add interaction counts and last-seen times for a batch of customers."""
        if not activity:
            return
        cust = CustomerRow.__table__  # type: ignore[attr-defined]
        if self.s.get_bind().dialect.name == "postgresql":
            # One UPDATE over unnest()ed arrays: three bind parameters whatever
            # the batch size, so one round trip and a cached statement.
            cids, ns, seens = zip(*((c, n, seen) for c, (n, seen) in activity.items()), strict=True)
            self.s.execute(
                sa.text(
                    "UPDATE customer AS c SET"
                    " interaction_count = c.interaction_count + v.n,"
                    " last_seen_at = GREATEST(COALESCE(c.last_seen_at, v.seen), v.seen),"
                    " updated_at = :now"
                    " FROM unnest(CAST(:cids AS text[]), CAST(:ns AS int[]),"
                    " CAST(:seens AS timestamptz[])) AS v(cid, n, seen)"
                    " WHERE c.customer_id = v.cid"
                ),
                {"cids": list(cids), "ns": list(ns), "seens": list(seens), "now": now},
            )
            return
        # SQLite is in-process: executemany costs no round trips.
        stmt = (
            sa.update(cust)
            .where(cust.c.customer_id == sa.bindparam("cid"))
            .values(
                interaction_count=cust.c.interaction_count + sa.bindparam("n"),
                last_seen_at=sa.func.max(
                    sa.func.coalesce(cust.c.last_seen_at, sa.bindparam("seen")),
                    sa.bindparam("seen"),
                ),
                updated_at=now,
            )
        )
        self.s.connection().execute(
            stmt,
            [{"cid": c, "n": n, "seen": seen} for c, (n, seen) in activity.items()],
        )

    def live_customer_id(self, customer_id: str) -> str | None:
        row = self.s.get(CustomerRow, customer_id)
        if row is None:
            return None
        return row.merged_into or row.customer_id

    def profile(self, customer_id: str) -> ProfileRecord | None:
        customer: ProfileCustomer | None = None
        idents: list[tuple[datetime, HashedId]] = []
        merged: list[str] = []
        for kind, a, b, ns, t1, t2, t3, n in self.s.execute(_PROFILE, {"cid": customer_id}):
            if kind == "c":
                customer = ProfileCustomer(a, t1, t2, t3, int(n))
            elif kind == "i":
                idents.append((t1, HashedId(a, b, ns)))
            else:
                merged.append(a)
        if customer is None:
            return None
        idents.sort(key=lambda x: (x[0], x[1].hash))
        return ProfileRecord(
            customer=customer, identifiers=[h for _, h in idents], merged_ids=sorted(merged)
        )

    def hashed_ids_of(self, customer_id: str) -> list[HashedId]:
        rows = self.s.execute(
            sa.select(IdentifierRow.id_type, IdentifierRow.hash, IdentifierRow.namespace).where(
                IdentifierRow.customer_id == customer_id
            )
        )
        return [HashedId(t, h, n) for t, h, n in rows]

    # -- graph operations (operator calls, not the hot path) ------------------
    def identifier(self, hash_: str) -> IdentifierRow | None:
        return self.s.get(IdentifierRow, hash_)

    def customers(self, customer_ids: Iterable[str]) -> dict[str, CustomerRow]:
        ids = list(set(customer_ids))
        if not ids:
            return {}
        found = self.s.exec(
            sa.select(CustomerRow).where(col(CustomerRow.customer_id).in_(ids))  # type: ignore[call-overload]
        ).scalars()
        return {c.customer_id: c for c in found}

    def forbid_link(self, a: str, b: str, *, cause: str, now: datetime) -> None:
        rows = [
            {"customer_id": x, "other_customer_id": y, "event_id": cause[:64], "created_at": now}
            for x, y in ((a, b), (b, a))
        ]
        bulk_insert(self.s, CannotLinkRow.__table__, rows)  # type: ignore[attr-defined]

    def allow_link(self, customers: Sequence[str]) -> None:
        """An operator merged these: constraints among them no longer hold."""
        apart = CannotLinkRow.__table__  # type: ignore[attr-defined]
        self.s.execute(
            sa.delete(apart).where(
                apart.c.customer_id.in_(list(customers)),
                apart.c.other_customer_id.in_(list(customers)),
            )
        )

    def move_identifiers(self, hashes: Sequence[str], to_customer: str) -> None:
        note_moved(self.s, hashes=hashes)
        self.s.execute(
            sa.update(IdentifierRow)
            .where(col(IdentifierRow.hash).in_(list(hashes)))
            .values(customer_id=to_customer)
        )

    def last_link(self, hash_: str) -> LinkRow | None:
        """The provenance row that put the identifier where it is now (refused
        links are skipped)."""
        return self.s.exec(
            sa.select(LinkRow)  # type: ignore[call-overload]
            .where(LinkRow.hash == hash_, ~col(LinkRow.rule).startswith("blocked:"))
            .order_by(col(LinkRow.id).desc())
            .limit(1)
        ).scalar_one_or_none()

    def blocked_between(self, a: str, b: str) -> list[tuple[LinkRow, str]]:
        """Refused links from an identifier of one of the two (live) customers
        into the other, oldest first, with the customer the identifier is in."""
        rows = self.s.execute(
            sa.select(LinkRow, IdentifierRow.customer_id)
            .join(IdentifierRow, IdentifierRow.hash == LinkRow.hash)
            .where(
                col(IdentifierRow.customer_id).in_([a, b]),
                col(LinkRow.rule).startswith("blocked:"),
            )
            .order_by(col(LinkRow.id))
        ).all()
        out = []
        for link, holder in rows:
            into = self.live_customer_id(link.customer_id)
            if into in (a, b) and into != holder:
                out.append((link, holder))
        return out

    def merge_of(self, customer_id: str) -> HistoryRow | None:
        """The history row of the merge that retired `customer_id`."""
        return self.s.exec(
            sa.select(HistoryRow)  # type: ignore[call-overload]
            .where(
                col(HistoryRow.action) == "merge",
                col(HistoryRow.related_customer_ids) == customer_id,
            )
            .order_by(col(HistoryRow.id).desc())
            .limit(1)
        ).scalar_one_or_none()

    def stats(self) -> GraphCounts:
        cust = CustomerRow.__table__  # type: ignore[attr-defined]
        ident = IdentifierRow.__table__  # type: ignore[attr-defined]
        hist = HistoryRow.__table__  # type: ignore[attr-defined]
        counter = CounterRow.__table__  # type: ignore[attr-defined]

        def scalar(q: Any) -> int:
            return int(self.s.execute(q).scalar_one_or_none() or 0)

        count = sa.func.count()
        by_action = dict(
            self.s.execute(
                sa.select(hist.c.action, count)
                .where(hist.c.action.in_(["block", "split"]))
                .group_by(hist.c.action)
            ).all()
        )
        return GraphCounts(
            customers=scalar(
                sa.select(count).select_from(cust).where(cust.c.merged_into.is_(None))
            ),
            merged=scalar(
                sa.select(count).select_from(cust).where(cust.c.merged_into.is_not(None))
            ),
            identifiers_by_type={
                t: int(n)
                for t, n in self.s.execute(
                    sa.select(ident.c.id_type, count).group_by(ident.c.id_type)
                )
            },
            shared_devices=scalar(
                sa.select(count).select_from(ident).where(ident.c.shared_at.is_not(None))
            ),
            blocked_links=int(by_action.get("block", 0)),
            splits=int(by_action.get("split", 0)),
            events_without_identifiers=scalar(
                sa.select(counter.c.value).where(counter.c.name == EVENTS_WITHOUT_IDENTIFIERS)
            ),
        )

    # -- probabilistic links and the review queue ------------------------------
    def insert_matches(self, rows: Sequence[dict[str, object]]) -> None:
        if rows:
            bulk_insert(self.s, MatchRow.__table__, rows)  # type: ignore[attr-defined]

    def matches_for(self, event_ids: Sequence[str]) -> dict[str, MatchRow]:
        """Evidence of probabilistic links by the event id that made them."""
        if not event_ids:
            return {}
        found = self.s.exec(
            sa.select(MatchRow).where(col(MatchRow.event_id).in_(list(set(event_ids))))  # type: ignore[call-overload]
        ).scalars()
        return {m.event_id: m for m in found}

    def insert_review_items(self, rows: Sequence[dict[str, object]]) -> None:
        if rows:
            self.s.execute(ReviewItemRow.__table__.insert(), list(rows))  # type: ignore[attr-defined]

    def open_review_pairs(self, hashes: Iterable[str]) -> set[frozenset[str]]:
        """Record pairs (external identifier hashes) already waiting for a decision."""
        wanted = list(set(hashes))
        out: set[frozenset[str]] = set()
        statement = _open_review_pairs(self.s.get_bind().dialect.name)
        for i in range(0, len(wanted), 900):
            rows = self.s.execute(statement, {"values": wanted[i : i + 900]})
            out.update(frozenset((a, b)) for a, b in rows)
        return out

    def review_items(self, status: str, limit: int) -> list[ReviewItemRow]:
        return list(
            self.s.exec(
                sa.select(ReviewItemRow)  # type: ignore[call-overload]
                .where(col(ReviewItemRow.status) == status)
                .order_by(col(ReviewItemRow.probability).desc(), col(ReviewItemRow.created_at))
                .limit(limit)
            ).scalars()
        )

    def review_item(self, item_id: str) -> ReviewItemRow | None:
        return self.s.get(ReviewItemRow, item_id)

    def owner_of(self, hash_: str) -> str | None:
        row = self.s.get(IdentifierRow, hash_)
        return None if row is None else row.customer_id

    def is_forbidden(self, a: str, b: str) -> bool:
        apart = CannotLinkRow.__table__  # type: ignore[attr-defined]
        q = sa.select(sa.func.count()).where(
            apart.c.customer_id == a, apart.c.other_customer_id == b
        )
        return bool(self.s.execute(q).scalar_one())


@dataclass(slots=True)
class GraphCounts:
    customers: int
    merged: int
    identifiers_by_type: dict[str, int]
    shared_devices: int
    blocked_links: int
    splits: int
    events_without_identifiers: int
