"""Trait observations at rest: every value sealed with the customer's subject
key (`cxloop_libs.pii.envelope`, ADR 0015; associated data = the trait name),
so erasing the customer's key makes every copy unreadable, backups included.

Observations belong to the live customer: when customers merge they are
re-sealed under the survivor's key in the same transaction (and the merged
customer's key is shredded: nothing is sealed under it any more); a split
takes the observations of the moved records with it. Works in bulk: one key
read per batch of customers, one insert per batch of observations.
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from cxloop_libs.db import InsertBatch, bulk_insert, one_of_bound
from cxloop_libs.pii.envelope import InvalidCiphertext, KeyShredded, SubjectKey, SubjectKeyring
from identity.adapters.tables import IdentifierRow, TraitObservationRow
from identity.domain.survivorship import TraitObservation

_OBS: sa.Table = TraitObservationRow.__table__  # type: ignore[attr-defined]
_IDENT: sa.Table = IdentifierRow.__table__  # type: ignore[attr-defined]
_CHUNK = 900


def _aware(ts: datetime) -> datetime:
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def _chunks(values: Sequence[str]) -> Iterator[list[str]]:
    for i in range(0, len(values), _CHUNK):
        yield list(values[i : i + _CHUNK])


@functools.cache
def _statements_by_ref(dialect: str) -> sa.Select[Any]:
    """The statements stored for a list of records (bound as ``values``),
    built once: a sign-up whose email was known reads it in every batch."""
    return sa.select(
        _OBS.c.id, _OBS.c.record_ref, _OBS.c.source, _OBS.c.trait, _OBS.c.observed_at
    ).where(one_of_bound(_OBS.c.record_ref, dialect))


@dataclass(frozen=True, slots=True)
class NewObservation:
    customer_id: str
    trait: str
    value: str  # raw; sealed before it is stored
    source: str
    observed_at: datetime
    record_ref: str  # identifier hash of the record in the graph
    record_id: str = ""


@dataclass(frozen=True, slots=True)
class StoredRecord:
    """One earlier record as the real-time matcher needs it: its identifier
    in the graph and the latest value of each trait it stated."""

    record_ref: str
    id_type: str
    namespace: str
    source: str
    record_id: str
    traits: dict[str, str]
    customer_id: str = ""


class TraitStore:
    def __init__(self, keyring: SubjectKeyring) -> None:
        self.keyring = keyring

    # -- writes ----------------------------------------------------------------
    def observe(
        self,
        session: Session,
        observations: Sequence[NewObservation],
        now: datetime,
        *,
        new_refs: Collection[str] = (),
        new_customers: Collection[str] = (),
        into: InsertBatch | None = None,
    ) -> int:
        """Store observations; an older statement of the same record, source
        and trait is replaced, a newer one stored earlier is kept. Returns
        how many were stored. ``new_refs``: record refs (identifier hashes)
        and ``new_customers``: customers the caller inserted into the graph
        in this transaction, so nothing can be stored about them yet: they
        are not looked up (a batch of sign-ups, each a new email, reads no
        earlier statements and no keys of its new customers). ``into``: the
        new keys and observations are added to that batch instead of
        inserted here (the caller flushes it before the commit)."""
        latest: dict[tuple[str, str, str], NewObservation] = {}
        for o in observations:
            k = (o.record_ref, o.source, o.trait)
            if k not in latest or latest[k].observed_at <= o.observed_at:
                latest[k] = o
        if not latest:
            return 0
        refs = sorted({k[0] for k in latest if k[0] not in new_refs})
        stale: list[int] = []
        by_ref = _statements_by_ref(session.get_bind().dialect.name)
        for chunk in _chunks(refs):
            rows = session.execute(by_ref, {"values": chunk})
            for rid, ref, source, trait, seen in rows:
                k = (ref, source, trait)
                if k not in latest:
                    continue
                if _aware(seen) > latest[k].observed_at:
                    del latest[k]  # the store already has a newer statement
                else:
                    stale.append(rid)
        for i in range(0, len(stale), _CHUNK):
            session.execute(sa.delete(_OBS).where(_OBS.c.id.in_(stale[i : i + _CHUNK])))
        keys = self.keyring.keys(
            session,
            {o.customer_id for o in latest.values()},
            create=True,
            new=new_customers,
            into=into,
        )
        rows_out = [
            {
                "customer_id": o.customer_id,
                "trait": o.trait,
                "sealed": keys[o.customer_id].seal(o.value.encode(), context=o.trait.encode()),
                "source": o.source,
                "observed_at": o.observed_at,
                "received_at": now,
                "record_ref": o.record_ref,
                "record_id": o.record_id[:200],
            }
            for o in latest.values()
        ]
        if into is not None:
            into.add(_OBS, rows_out)
        else:
            bulk_insert(session, _OBS, rows_out)
        return len(rows_out)

    def _reseal(self, session: Session, rows: Sequence[Any], moves: Mapping[int, str]) -> int:
        """Re-seal rows (id -> new customer) under the new customer's key.
        A row whose key is gone cannot be read by anyone: it is dropped."""
        old_keys = self.keyring.keys(session, {r.customer_id for r in rows})
        new_keys = self.keyring.keys(session, set(moves.values()), create=True)
        updates: list[dict[str, object]] = []
        unreadable: list[int] = []
        for r in rows:
            old: SubjectKey | None = old_keys.get(r.customer_id)
            target = moves[r.id]
            try:
                if old is None:
                    raise KeyShredded(r.customer_id)
                value = old.open(bytes(r.sealed), context=r.trait.encode())
            except (KeyShredded, InvalidCiphertext):
                unreadable.append(r.id)
                continue
            updates.append(
                {
                    "rid": r.id,
                    "cid": target,
                    "sv": new_keys[target].seal(value, context=r.trait.encode()),
                }
            )
        if updates:
            session.connection().execute(
                sa.update(_OBS)
                .where(_OBS.c.id == sa.bindparam("rid"))
                .values(customer_id=sa.bindparam("cid"), sealed=sa.bindparam("sv")),
                updates,
            )
        for i in range(0, len(unreadable), _CHUNK):
            session.execute(sa.delete(_OBS).where(_OBS.c.id.in_(unreadable[i : i + _CHUNK])))
        return len(updates)

    def follow_merges(self, session: Session, folded: Mapping[str, str]) -> int:
        """Customers merged away (loser -> survivor): their observations move
        to the survivor, re-sealed; their keys go (nothing is sealed under
        them any more). Costs nothing when no loser has observations."""
        losers = sorted(folded)
        rows: list[Any] = []
        for chunk in _chunks(losers):
            rows += session.execute(
                sa.select(_OBS.c.id, _OBS.c.customer_id, _OBS.c.trait, _OBS.c.sealed).where(
                    _OBS.c.customer_id.in_(chunk)
                )
            ).all()
        if not rows:
            return 0
        moved = self._reseal(session, rows, {r.id: folded[r.customer_id] for r in rows})
        self.keyring.shred_many(session, {r.customer_id for r in rows})
        return moved

    def follow_split(
        self, session: Session, original: str, new_customer: str, moved_hashes: Iterable[str]
    ) -> int:
        """The observations of the records whose identifiers moved go with
        them to the new customer; the rest stay with the original."""
        hashes = sorted(set(moved_hashes))
        rows: list[Any] = []
        for chunk in _chunks(hashes):
            rows += session.execute(
                sa.select(_OBS.c.id, _OBS.c.customer_id, _OBS.c.trait, _OBS.c.sealed).where(
                    _OBS.c.customer_id == original, _OBS.c.record_ref.in_(chunk)
                )
            ).all()
        return self._reseal(session, rows, {r.id: new_customer for r in rows}) if rows else 0

    def erase(self, session: Session, customers: Sequence[str], hashes: Sequence[str]) -> int:
        """Delete the observations of these customers or records."""
        n = 0
        for chunk in _chunks(list(customers)):
            result: Any = session.execute(sa.delete(_OBS).where(_OBS.c.customer_id.in_(chunk)))
            n += int(result.rowcount)
        for chunk in _chunks(list(hashes)):
            result = session.execute(sa.delete(_OBS).where(_OBS.c.record_ref.in_(chunk)))
            n += int(result.rowcount)
        return n

    # -- reads -----------------------------------------------------------------
    def observations(self, session: Session, customer_id: str) -> list[TraitObservation]:
        """The customer's observations, opened (for the golden record)."""
        rows = session.execute(
            sa.select(
                _OBS.c.id, _OBS.c.trait, _OBS.c.sealed, _OBS.c.source, _OBS.c.observed_at
            ).where(_OBS.c.customer_id == customer_id)
        ).all()
        if not rows:
            return []
        key = self.keyring.keys(session, [customer_id]).get(customer_id)
        out = []
        for r in rows:
            if key is None:
                break
            try:
                value = key.open(bytes(r.sealed), context=r.trait.encode()).decode()
            except (KeyShredded, InvalidCiphertext):
                continue  # unreadable: shredded or tampered, never shown
            out.append(TraitObservation(r.trait, value, r.source, _aware(r.observed_at), r.id))
        return out

    def metadata(self, session: Session, customers: Sequence[str]) -> list[dict[str, object]]:
        """Trait names, sources and times without values (access exports)."""
        out: list[dict[str, object]] = []
        for chunk in _chunks(list(customers)):
            for r in session.execute(
                sa.select(
                    _OBS.c.customer_id, _OBS.c.trait, _OBS.c.source, _OBS.c.observed_at
                ).where(_OBS.c.customer_id.in_(chunk))
            ):
                out.append(
                    {
                        "customer_id": r.customer_id,
                        "trait": r.trait,
                        "source": r.source,
                        "observed_at": _aware(r.observed_at).isoformat(),
                    }
                )
        return out

    def records(
        self, session: Session, batch: int = 5000, customers: Collection[str] | None = None
    ) -> Iterator[StoredRecord]:
        """Every stored record (of ``customers``, when given) with its traits
        opened, for the real-time index; records whose identifier left the
        graph are skipped."""
        last = ""
        only = _OBS.c.customer_id.in_(sorted(customers)) if customers is not None else sa.true()
        while True:
            refs = [
                r[0]
                for r in session.execute(
                    sa.select(_OBS.c.record_ref)
                    .where(_OBS.c.record_ref > last, only)
                    .group_by(_OBS.c.record_ref)
                    .order_by(_OBS.c.record_ref)
                    .limit(batch)
                )
            ]
            if not refs:
                return
            last = refs[-1]
            rows = session.execute(
                sa.select(
                    _OBS.c.customer_id,
                    _OBS.c.trait,
                    _OBS.c.sealed,
                    _OBS.c.source,
                    _OBS.c.record_ref,
                    _OBS.c.record_id,
                    _IDENT.c.id_type,
                    _IDENT.c.namespace,
                )
                .join(_IDENT, _IDENT.c.hash == _OBS.c.record_ref)
                .where(_OBS.c.record_ref.in_(refs), only)
                .order_by(_OBS.c.record_ref, _OBS.c.source)
            ).all()
            keys = self.keyring.keys(session, {r.customer_id for r in rows})
            found: dict[tuple[str, str], StoredRecord] = {}
            for r in rows:
                key = keys.get(r.customer_id)
                if key is None:
                    continue
                try:
                    value = key.open(bytes(r.sealed), context=r.trait.encode()).decode()
                except (KeyShredded, InvalidCiphertext):
                    continue
                rec = found.get((r.record_ref, r.source))
                if rec is None:
                    rec = StoredRecord(
                        r.record_ref,
                        r.id_type,
                        r.namespace,
                        r.source,
                        r.record_id,
                        {},
                        r.customer_id,
                    )
                    found[(r.record_ref, r.source)] = rec
                rec.traits[r.trait] = value
            yield from found.values()
