"""Operator use cases on the identity graph: look up, explain, merge and split
by hand, count. Each runs in one transaction; every change lands in the
append-only history and its events in the outbox of that transaction."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from cxloop.identity.v1 import events_pb2 as identity_events
from sqlmodel import Session

from cxloop_libs.errors import InvalidArgument, NotFound
from cxloop_libs.messaging import OutboxWriter
from cxloop_libs.messaging import catalog as ev
from identity.adapters.repository import GraphCounts, GraphRepository, ProfileRecord
from identity.adapters.trait_store import TraitStore
from identity.domain.model import HashedId, new_customer_id
from identity.service_layer.handlers import GraphWrite, derived_event_id, to_proto, utcnow

# Hops followed from an identifier to its live customer; a longer chain means
# corrupt history, not a real explanation.
MAX_HOPS = 100


@dataclass(frozen=True, slots=True)
class Step:
    """One edge of an explanation: an identifier linked to a customer
    (`kind="link"`), a customer merged into another (`kind="merge"`), or a
    link merge protection refused (`kind="blocked"`: `identifier`, held by
    `from_customer_id`, was not joined to `customer_id`)."""

    kind: str
    customer_id: str
    at: datetime
    event_id: str = ""
    source: str = ""
    rule: str = ""
    identifier: HashedId | None = None
    from_customer_id: str = ""
    # A probabilistic link: its probability and field -> (level, weight in bits).
    match_probability: float = 0.0
    match_weights: tuple[tuple[str, str, float], ...] = ()


@dataclass(slots=True)
class Explanation:
    same_customer: bool
    customer_id_a: str
    customer_id_b: str
    path: list[Step] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class SplitResult:
    customer_id: str
    new_customer_id: str
    moved: list[HashedId]


def _with_match_evidence(repo: GraphRepository, steps: list[Step]) -> list[Step]:
    """Attach the per-field weights to the steps a probabilistic match made."""
    causes = [s.event_id for s in steps if s.rule == "probabilistic" and s.event_id]
    found = repo.matches_for(causes)
    out = []
    for s in steps:
        m = found.get(s.event_id) if s.rule == "probabilistic" else None
        if m is not None:
            weights = tuple(
                (name, str(level), float(w)) for name, (level, w) in json.loads(m.weights).items()
            )
            s = replace(s, match_probability=m.probability, match_weights=weights)
        out.append(s)
    return out


def _aware(ts: datetime) -> datetime:
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


class GraphOperations:
    def __init__(
        self, *, clock: Callable[[], datetime] = utcnow, traits: TraitStore | None = None
    ) -> None:
        self.clock = clock
        # Trait observations follow merges and splits (re-sealed).
        self.traits = traits

    # -- queries -------------------------------------------------------------
    def lookup(self, session: Session, identifier: HashedId) -> ProfileRecord | None:
        repo = GraphRepository(session)
        row = repo.identifier(identifier.hash)
        return None if row is None else repo.profile(row.customer_id)

    def explain(self, session: Session, a: HashedId, b: HashedId) -> Explanation:
        repo = GraphRepository(session)
        chains = []
        for name, ident in (("identifier_a", a), ("identifier_b", b)):
            row = repo.identifier(ident.hash)
            if row is None:
                raise NotFound(f"{name} is not a known identifier")
            ident = HashedId(row.id_type, row.hash, row.namespace)
            chains.append(self._chain(repo, ident, row.customer_id))
        (steps_a, into_a), (steps_b, into_b) = chains
        out = Explanation(
            same_customer=into_a[-1] == into_b[-1],
            customer_id_a=into_a[-1],
            customer_id_b=into_b[-1],
        )
        if not out.same_customer:
            refused = [
                Step(
                    "blocked",
                    out.customer_id_b if holder == out.customer_id_a else out.customer_id_a,
                    _aware(link.created_at),
                    event_id=link.event_id,
                    source=link.source,
                    rule=link.rule,
                    identifier=self._hashed(repo, link.hash),
                    from_customer_id=holder,
                )
                for link, holder in repo.blocked_between(out.customer_id_a, out.customer_id_b)
            ]
            out.path = _with_match_evidence(repo, steps_a + steps_b + refused)
            return out
        # Walk from a up to the first customer b's chain also reaches, then
        # down b's chain: the shortest story of how they became one.
        meet_a = next(n for n, c in enumerate(into_a) if c in into_b)
        meet_b = into_b.index(into_a[meet_a])
        out.path = _with_match_evidence(
            repo, steps_a[: meet_a + 1] + list(reversed(steps_b[: meet_b + 1]))
        )
        return out

    @staticmethod
    def _hashed(repo: GraphRepository, hash_: str) -> HashedId | None:
        row = repo.identifier(hash_)
        return None if row is None else HashedId(row.id_type, row.hash, row.namespace)

    def _chain(
        self, repo: GraphRepository, ident: HashedId, live: str
    ) -> tuple[list[Step], list[str]]:
        """How an identifier reached its live customer: the link that put it
        in a customer, then every merge from there. Returns the steps and the
        customer each step leads into."""
        link = repo.last_link(ident.hash)
        if link is None:  # stored before provenance existed
            row = repo.identifier(ident.hash)
            seen = _aware(row.first_seen_at) if row else self.clock()
            return [Step("link", live, seen, identifier=ident)], [live]
        steps = [
            Step(
                "link",
                link.customer_id,
                _aware(link.created_at),
                event_id=link.event_id,
                source=link.source,
                rule=link.rule,
                identifier=ident,
            )
        ]
        into = [link.customer_id]
        current = link.customer_id
        while current != live and len(steps) < MAX_HOPS:
            merge = repo.merge_of(current)
            if merge is None:  # merged before the history existed
                steps.append(Step("merge", live, self.clock(), from_customer_id=current))
                into.append(live)
                break
            steps.append(
                Step(
                    "merge",
                    merge.customer_id,
                    _aware(merge.at),
                    event_id=merge.event_id,
                    source=merge.source,
                    rule=merge.reason,
                    from_customer_id=current,
                )
            )
            current = merge.customer_id
            into.append(current)
        return steps, into

    def stats(self, session: Session) -> GraphCounts:
        return GraphRepository(session).stats()

    # -- commands ------------------------------------------------------------
    def merge(
        self, session: Session, customer_ids: Sequence[str], *, reason: str, actor: str
    ) -> tuple[str, list[str]]:
        """Merge customers by hand; the oldest survives. Customers already one
        are left as they are (a repeated request is a no-op)."""
        if len(set(customer_ids)) < 2:
            raise InvalidArgument("customer_ids", "name at least two different customers")
        repo = GraphRepository(session)
        live: list[str] = []
        for n, cid in enumerate(customer_ids):
            resolved = repo.live_customer_id(cid)
            if resolved is None:
                raise NotFound(f"customer_ids[{n}] is not a known customer")
            if resolved not in live:
                live.append(resolved)
        rows = repo.customers(live)
        ordered = sorted(live, key=lambda c: (_aware(rows[c].created_at), c))
        survivor, losers = ordered[0], ordered[1:]
        if not losers:
            return survivor, []
        now = self.clock()
        cause = f"merge:{uuid.uuid4()}"
        write = GraphWrite(repo=repo, outbox=OutboxWriter(session), now=now, traits=self.traits)
        repo.allow_link(ordered)
        for loser in losers:
            repo.merge(loser, survivor, now)
            write.folded[loser] = survivor
            write.record(
                "merge",
                survivor,
                cause=cause,
                source="manual-merge",
                reason=reason,
                actor=actor,
                related=[loser],
            )
        write.outbox.stage(
            ev.PROFILE_MERGED,
            identity_events.ProfileMerged(
                surviving_customer_id=survivor,
                merged_customer_ids=losers,
                cause_event_id=cause,
                reason=reason or "manual-merge",
            ),
            subject=survivor,
            event_id=derived_event_id(cause, f"merged/{survivor}"),
        )
        write.flush_graph()
        write.outbox.flush()
        return survivor, losers

    def split(
        self,
        session: Session,
        customer_id: str,
        moves: Sequence[tuple[str, str]],
        *,
        reason: str,
        actor: str,
    ) -> SplitResult:
        """Move identifiers (pairs of request field name and hash) out of a
        customer into a new one. The original keeps its id, its other
        identifiers and its interaction history."""
        if not moves:
            raise InvalidArgument("identifiers", "name at least one identifier to move")
        repo = GraphRepository(session)
        live = repo.live_customer_id(customer_id)
        if live is None:
            raise NotFound("customer_id is not a known customer")
        held = {i.hash: i for i in repo.hashed_ids_of(live)}
        moved: dict[str, HashedId] = {}
        for field_name, hash_ in moves:
            if hash_ not in held:
                raise InvalidArgument(field_name, "not an identifier of this customer")
            moved[hash_] = held[hash_]
        if len(moved) == len(held):
            raise InvalidArgument(
                "identifiers", "would move every identifier; the customer would be empty"
            )
        now = self.clock()
        cause = f"split:{uuid.uuid4()}"
        new_cid = new_customer_id()
        write = GraphWrite(repo=repo, outbox=OutboxWriter(session), now=now)
        write.customers.append(
            {"customer_id": new_cid, "created_at": now, "updated_at": now, "interaction_count": 0}
        )
        write.flush_graph()
        repo.move_identifiers(list(moved), new_cid)
        # Retract the edge for good: the events that joined them must not
        # join them again (ADR 0012).
        repo.forbid_link(live, new_cid, cause=cause, now=now)
        hashes = list(moved)
        if self.traits is not None:
            # Each side keeps what its own records said.
            self.traits.follow_split(session, live, new_cid, hashes)
        for h in hashes:
            write.link_row(h, new_cid, cause=cause, source="manual-split", rule="split")
        write.record(
            "split",
            live,
            cause=cause,
            source="manual-split",
            reason=reason,
            actor=actor,
            related=[new_cid],
            hashes=hashes,
        )
        write.flush_graph()
        protos = [to_proto(i) for i in moved.values()]
        stage = write.outbox.stage
        stage(
            ev.PROFILE_SPLIT,
            identity_events.ProfileSplit(
                original_customer_id=live,
                resulting_customer_ids=[live, new_cid],
                reason=reason,
                moved_identifiers=protos,
                cause_event_id=cause,
            ),
            subject=live,
            event_id=derived_event_id(cause, f"split/{live}"),
        )
        stage(
            ev.PROFILE_UPDATED,
            identity_events.ProfileUpdated(
                customer_id=live, removed_identifiers=protos, cause_event_id=cause
            ),
            subject=live,
            event_id=derived_event_id(cause, f"updated/{live}"),
        )
        stage(
            ev.PROFILE_CREATED,
            identity_events.ProfileCreated(
                customer_id=new_cid, identifiers=protos, cause_event_id=cause
            ),
            subject=new_cid,
            event_id=derived_event_id(cause, f"created/{new_cid}"),
        )
        write.outbox.flush()
        return SplitResult(live, new_cid, list(moved.values()))
