"""The identity graph, first slice: identifiers seen together belong to one
customer (deterministic linking), and customers found to share an identifier
merge into the oldest one, whose id survives."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta


@dataclass(frozen=True, slots=True)
class HashedId:
    """An identifier after normalisation and keyed hashing (never raw)."""

    id_type: str
    hash: str
    namespace: str = ""


@dataclass(slots=True)
class LinkOutcome:
    customer_id: str
    created: bool = False
    created_at: datetime | None = None
    added: list[HashedId] = field(default_factory=list)
    merged_customer_ids: list[str] = field(default_factory=list)


def new_customer_id() -> str:
    return str(uuid.uuid4())


@dataclass(slots=True)
class GraphView:
    """The part of the graph one batch touches, loaded up front so linking a
    whole batch needs no further reads."""

    owner_of: dict[str, str] = field(default_factory=dict)  # identifier hash -> customer id
    created_at: dict[str, datetime] = field(default_factory=dict)  # customer id -> created
    members: dict[str, set[str]] = field(default_factory=dict)  # customer id -> hashes in view
    _created_in_view: int = 0

    def know(self, hash_: str, customer_id: str, created: datetime) -> None:
        self.owner_of[hash_] = customer_id
        self.created_at.setdefault(customer_id, created)
        self.members.setdefault(customer_id, set()).add(hash_)

    def link(
        self,
        identifiers: Iterable[HashedId],
        now: datetime,
        new_id: Callable[[], str] = new_customer_id,
    ) -> LinkOutcome | None:
        """Link identifiers seen together. None when there is nothing to link."""
        ids = list({i.hash: i for i in identifiers}.values())
        if not ids:
            return None
        owners = {self.owner_of[i.hash] for i in ids if i.hash in self.owner_of}
        if not owners:
            cid = new_id()
            # Customers created in one batch keep their order of appearance,
            # so "oldest survives" means first seen, not a random id order.
            self._created_in_view += 1
            created = now + timedelta(microseconds=self._created_in_view)
            self.created_at[cid] = created
            outcome = LinkOutcome(customer_id=cid, created=True, created_at=created)
        else:
            # Oldest customer survives; ties broken by id so every replica
            # decides the same way.
            ordered = sorted(owners, key=lambda c: (self.created_at[c], c))
            outcome = LinkOutcome(customer_id=ordered[0])
            for loser in ordered[1:]:
                self._fold(loser, into=ordered[0])
                outcome.merged_customer_ids.append(loser)
        members = self.members.setdefault(outcome.customer_id, set())
        for i in ids:
            if i.hash not in self.owner_of:
                outcome.added.append(i)
            self.owner_of[i.hash] = outcome.customer_id
            members.add(i.hash)
        return outcome

    def _fold(self, loser: str, *, into: str) -> None:
        moved = self.members.pop(loser, set())
        for h in moved:
            self.owner_of[h] = into
        self.members.setdefault(into, set()).update(moved)
