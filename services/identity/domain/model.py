"""The identity graph: identifiers seen together belong to one customer
(deterministic linking), customers found to share an identifier merge into the
oldest one, whose id survives, and merge protection (`policy.py`) refuses the
links that would glue different people together."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from identity.domain.policy import ANONYMOUS_ID, DEFAULT_POLICY, USER_ID, MergePolicy


@dataclass(frozen=True, slots=True)
class HashedId:
    """An identifier after normalisation and keyed hashing (never raw)."""

    id_type: str
    hash: str
    namespace: str = ""


@dataclass(frozen=True, slots=True)
class BlockedLink:
    """A link merge protection refused: `identifiers` of the event were not
    joined to the event's customer. They stay with `kept_by` (None: they were
    new and are not stored)."""

    identifiers: tuple[HashedId, ...]
    reason: str
    kept_by: str | None


@dataclass(slots=True)
class LinkOutcome:
    customer_id: str
    created: bool = False
    created_at: datetime | None = None
    added: list[HashedId] = field(default_factory=list)
    merged_customer_ids: list[str] = field(default_factory=list)
    blocked: list[BlockedLink] = field(default_factory=list)
    # Anonymous ids this link found to be shared devices.
    newly_shared: list[HashedId] = field(default_factory=list)


def new_customer_id() -> str:
    return str(uuid.uuid4())


@dataclass(slots=True)
class _Side:
    """One candidate side of a link: a known customer with the event's
    identifiers it holds, or one identifier nobody holds yet."""

    ids: list[HashedId]
    counts: Mapping[str, int]
    customer_id: str | None = None


@dataclass(slots=True)
class GraphView:
    """The part of the graph one batch touches, loaded up front so linking a
    whole batch needs no further reads."""

    owner_of: dict[str, str] = field(default_factory=dict)  # identifier hash -> customer id
    created_at: dict[str, datetime] = field(default_factory=dict)  # customer id -> created
    members: dict[str, set[str]] = field(default_factory=dict)  # customer id -> hashes in view
    # customer id -> identifiers per type, all of them (not only those in view)
    type_counts: dict[str, dict[str, int]] = field(default_factory=dict)
    shared: set[str] = field(default_factory=set)  # anonymous ids known to be shared devices
    # customer id -> customers it must never merge with automatically (split apart)
    cannot_link: dict[str, set[str]] = field(default_factory=dict)
    _created_in_view: int = 0

    def know(
        self,
        hash_: str,
        customer_id: str,
        created: datetime,
        *,
        id_type: str | None = None,
        shared: bool = False,
    ) -> None:
        """Record a stored identifier. With `id_type`, also count it (callers
        that load counts separately with `set_counts` leave it out)."""
        self.owner_of[hash_] = customer_id
        self.created_at.setdefault(customer_id, created)
        self.members.setdefault(customer_id, set()).add(hash_)
        if id_type is not None:
            counts = self.counts(customer_id)
            counts[id_type] = counts.get(id_type, 0) + 1
        if shared:
            self.shared.add(hash_)

    def set_counts(self, customer_id: str, counts: dict[str, int]) -> None:
        self.type_counts[customer_id] = counts

    def forbid(self, customer_id: str, other: str) -> None:
        """Record that two customers were split apart: no automatic link may
        join them again (an operator's Merge still can)."""
        self.cannot_link.setdefault(customer_id, set()).add(other)
        self.cannot_link.setdefault(other, set()).add(customer_id)

    def counts(self, customer_id: str) -> dict[str, int]:
        return self.type_counts.setdefault(customer_id, {})

    def customers_at_stake(self, events: Iterable[Iterable[str]]) -> set[str]:
        """Customers whose identifier counts merge protection may consult: those
        in an event that links something new or several customers. A batch of
        returning customers needs none, so loading counts costs nothing there."""
        out: set[str] = set()
        for hashes in events:
            owners = {self.owner_of.get(h) for h in hashes}
            if len(owners) > 1:
                out.update(o for o in owners if o is not None)
        return out

    def link(
        self,
        identifiers: Iterable[HashedId],
        now: datetime,
        new_id: Callable[[], str] = new_customer_id,
        policy: MergePolicy = DEFAULT_POLICY,
    ) -> LinkOutcome | None:
        """Link identifiers seen together, as far as `policy` allows. None
        when there is nothing to link."""
        ids = list({i.hash: i for i in identifiers}.values())
        if policy.ignored_hashes:
            ids = [i for i in ids if i.hash not in policy.ignored_hashes]
        if not ids:
            return None
        seen = ids
        ids, newly_shared = self._set_aside_shared_devices(ids, policy)
        if not ids:  # only shared devices: they resolve where they stayed
            return LinkOutcome(customer_id=self.owner_of[seen[0].hash])
        owners_seen = {self.owner_of.get(i.hash) for i in ids}
        blocked: list[BlockedLink] = []
        if len(owners_seen) == 1:
            (only,) = owners_seen
            # Hot path: a returning customer, nothing new to store.
            if only is not None and all(i.hash in self.owner_of for i in newly_shared):
                return LinkOutcome(customer_id=only, newly_shared=newly_shared)
        if owners_seen == {None} and policy.exceeded({}, _type_counts(ids)) is None:
            accepted = [_Side(ids, {})]  # all new and within limits
        else:
            accepted = []
            held: dict[str, int] = {}
            apart: set[str] = set()  # customers an accepted side was split from
            for side in self._sides(ids, policy):
                reason = None
                if accepted and side.customer_id in apart:
                    reason = "cannot-link"
                elif accepted:
                    reason = policy.exceeded(held, side.counts)
                if reason is None:
                    accepted.append(side)
                    for t, n in side.counts.items():
                        held[t] = held.get(t, 0) + n
                    if side.customer_id is not None:
                        apart |= self.cannot_link.get(side.customer_id, set())
                else:
                    blocked.append(BlockedLink(tuple(side.ids), reason, side.customer_id))
        owners = [s.customer_id for s in accepted if s.customer_id is not None]
        if not owners:
            cid = new_id()
            # Customers created in one batch keep their order of appearance,
            # so "oldest survives" means first seen, not a random id order.
            self._created_in_view += 1
            created = now + timedelta(microseconds=self._created_in_view)
            self.created_at[cid] = created
            self.type_counts[cid] = {}
            outcome = LinkOutcome(customer_id=cid, created=True, created_at=created)
        else:
            # Oldest customer survives; ties broken by id so every replica
            # decides the same way.
            ordered = sorted(owners, key=lambda c: (self.created_at[c], c))
            outcome = LinkOutcome(customer_id=ordered[0])
            for loser in ordered[1:]:
                self._fold(loser, into=ordered[0])
                outcome.merged_customer_ids.append(loser)
        cid = outcome.customer_id
        new = [i for s in accepted if s.customer_id is None for i in s.ids]
        if policy.link_gate is not None and not outcome.created and new:
            refused = policy.link_gate(cid, new)
            for i in new:
                if i.hash in refused:
                    blocked.append(BlockedLink((i,), refused[i.hash], None))
            new = [i for i in new if i.hash not in refused]
        outcome.blocked = blocked
        members = self.members.setdefault(cid, set())
        counts = self.counts(cid)
        # A device first seen already shared goes with the winning side and
        # stays there, like any shared device stays with its first customer.
        new += [i for i in newly_shared if i.hash not in self.owner_of]
        for i in new:
            outcome.added.append(i)
            self.owner_of[i.hash] = cid
            members.add(i.hash)
            counts[i.id_type] = counts.get(i.id_type, 0) + 1
        outcome.newly_shared = newly_shared
        return outcome

    def _set_aside_shared_devices(
        self, ids: list[HashedId], policy: MergePolicy
    ) -> tuple[list[HashedId], list[HashedId]]:
        """Drop anonymous ids that are (or now turn out to be) shared devices
        from linking. A shared device never bridges two identifiers; alone it
        still resolves to the customer it stayed with."""
        if len(ids) < 2 or policy.shared_device_max_user_ids is None:
            return ids, []
        users = [i for i in ids if i.id_type == USER_ID]
        kept: list[HashedId] = []
        newly: list[HashedId] = []
        for i in ids:
            if i.id_type != ANONYMOUS_ID:
                kept.append(i)
            elif i.hash in self.shared:
                continue
            elif users and self._user_ids_seen_with(i, users) > policy.shared_device_max_user_ids:
                self.shared.add(i.hash)
                newly.append(i)
            else:
                kept.append(i)
        return kept, newly

    def _user_ids_seen_with(self, device: HashedId, users: list[HashedId]) -> int:
        """Distinct user ids a device has been seen with: those of the customer
        it belongs to plus the event's user ids from elsewhere (ADR 0012)."""
        owner = self.owner_of.get(device.hash)
        if owner is None:
            return len(users)
        outside = sum(1 for u in users if self.owner_of.get(u.hash) != owner)
        return self.counts(owner).get(USER_ID, 0) + outside

    def _sides(self, ids: list[HashedId], policy: MergePolicy) -> list[_Side]:
        """Sides in the order they claim the event: the side holding the
        highest-priority identifier first, a known customer before a new
        identifier of the same rank, then the oldest customer."""
        by_owner: dict[str, list[HashedId]] = {}
        keyed: list[tuple[tuple[int, int, datetime, str, int], _Side]] = []
        for n, i in enumerate(ids):
            owner = self.owner_of.get(i.hash)
            if owner is None:
                side = _Side([i], {i.id_type: 1})
                keyed.append(((policy.rank(i.id_type), 1, _EPOCH, "", n), side))
            else:
                by_owner.setdefault(owner, []).append(i)
        for owner, held in by_owner.items():
            rank = min(policy.rank(i.id_type) for i in held)
            side = _Side(held, self.counts(owner), owner)
            keyed.append(((rank, 0, self.created_at[owner], owner, 0), side))
        keyed.sort(key=lambda k: k[0])
        return [s for _, s in keyed]

    def _fold(self, loser: str, *, into: str) -> None:
        moved = self.members.pop(loser, set())
        for h in moved:
            self.owner_of[h] = into
        self.members.setdefault(into, set()).update(moved)
        counts = self.counts(into)
        for t, n in self.type_counts.pop(loser, {}).items():
            counts[t] = counts.get(t, 0) + n
        for other in self.cannot_link.pop(loser, set()):
            self.cannot_link.get(other, set()).discard(loser)
            self.forbid(into, other)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _type_counts(ids: Iterable[HashedId]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for i in ids:
        counts[i.id_type] = counts.get(i.id_type, 0) + 1
    return counts
