"""Identity's use cases: link the identifiers of incoming interactions, resolve
identifiers on request, read a profile."""

from __future__ import annotations

import dataclasses
import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import sqlalchemy as sa
from cxloop.common.v1 import identifier_pb2
from cxloop.gateway.v1 import events_pb2 as gateway_events
from cxloop.identity.v1 import events_pb2 as identity_events
from opentelemetry import trace
from sqlmodel import Session

from cxloop_libs.db import InsertBatch
from cxloop_libs.messaging import MalformedEvent, OutboxWriter, ReceivedEvent
from cxloop_libs.messaging import catalog as ev
from cxloop_libs.pii import IdType
from cxloop_libs.telemetry import traceparent_of
from identity.adapters.owner_cache import note_moved
from identity.adapters.repository import (
    EVENTS_WITHOUT_IDENTIFIERS,
    CustomersRead,
    GraphRepository,
    ProfileRecord,
    staged_tables,
)
from identity.adapters.tables import MatchRow, ReviewItemRow
from identity.adapters.trait_store import NewObservation, TraitStore
from identity.domain.matching import (
    LOWER_THRESHOLD,
    UPPER_THRESHOLD,
    MatchModel,
    NormalisedRecord,
    normalise_record,
)
from identity.domain.model import GraphView, HashedId, LinkOutcome, new_customer_id
from identity.domain.policy import DEFAULT_POLICY, MergePolicy
from identity.domain.survivorship import GoldenTrait, SurvivorshipPolicy, golden_record
from identity.service_layer.realtime import (
    INDEX_RECORDS_SUBJECT,
    CandidateIndex,
    ChainGuard,
    PairScore,
    RecordRef,
    evidence_row,
    features_of,
    review_item_rows,
)

log = logging.getLogger(__name__)
tracer = trace.get_tracer("cxloop.identity")

_EVENT_NS = uuid.UUID("6f1d1c4e-5b8a-4c1e-9a51-2f0c3c7d9e10")
_HEX = frozenset("0123456789abcdef")


def derived_event_id(cause: str, what: str) -> str:
    """Same cause, same id: a replayed handler cannot emit a second copy."""
    return str(uuid.uuid5(_EVENT_NS, f"{cause}/{what}"))


def utcnow() -> datetime:
    return datetime.now(UTC)


def to_hashed(h: identifier_pb2.HashedIdentifier) -> HashedId:
    if h.type == identifier_pb2.IDENTIFIER_TYPE_UNSPECIFIED:
        raise MalformedEvent("identifier without a type")
    if len(h.hash) != 64 or not set(h.hash) <= _HEX:
        raise MalformedEvent("identifier hash is not 64 lower-case hex characters")
    return HashedId(IdType.from_proto(h.type).value, h.hash, h.namespace)


def to_proto(i: HashedId) -> identifier_pb2.HashedIdentifier:
    return identifier_pb2.HashedIdentifier(
        type=IdType(i.id_type).to_proto(), hash=i.hash, namespace=i.namespace
    )


@dataclass(frozen=True, slots=True)
class ResolveCommand:
    """One `Resolve` call: identifiers seen together, already hashed, and
    what the caller said about the customer (raw trait values, validated)."""

    identifiers: tuple[HashedId, ...]
    source: str
    traits: tuple[tuple[str, str], ...] = ()
    observed_at: datetime | None = None
    email_hash: str = ""  # of the `email` trait, for the matcher


def _keyed(record: NormalisedRecord, key: str) -> NormalisedRecord:
    """The record under the key it is indexed by (merge protection may have
    anchored the call's record to another of its identifiers)."""
    return record if record.record_id == key else dataclasses.replace(record, record_id=key)


def answered_without_writing(command: ResolveCommand, owners: Mapping[str, str]) -> str | None:
    """The customer a call resolves to when every identifier is known and
    all belong to one customer: linking would change nothing (the returning
    customer path of `GraphView.link`), so no write transaction is needed."""
    found = {owners.get(i.hash) for i in command.identifiers}
    if len(found) != 1:
        return None
    (only,) = found
    return only


@dataclass(slots=True)
class LinkStats:
    interactions: int = 0
    without_identifiers: int = 0
    customers_created: int = 0
    merges: int = 0
    blocked_links: int = 0
    shared_devices: int = 0


@dataclass(slots=True)
class GraphWrite:
    """Changes of one transaction, written in bulk at the end: through the
    session's repository (`flush_graph`), or handed to a writer of its own
    (`drain`) when nothing had to be read or updated in the transaction."""

    repo: GraphRepository | None
    outbox: OutboxWriter
    now: datetime
    customers: list[dict[str, object]] = field(default_factory=list)
    identifiers: list[dict[str, object]] = field(default_factory=list)
    links: list[dict[str, object]] = field(default_factory=list)
    history: list[dict[str, object]] = field(default_factory=list)
    shared: list[str] = field(default_factory=list)
    folded: dict[str, str] = field(default_factory=dict)  # merged id -> survivor
    # Trait observations follow merges into the survivor (re-sealed).
    traits: TraitStore | None = None
    _followed: set[str] = field(default_factory=set)
    # Customers this write created: nothing is sealed under them yet (every
    # writer stores observations after its graph rows), so a merge of one
    # has no observations to follow.
    _created: set[str] = field(default_factory=set)
    # Live customers a merge of a still-staged customer touched: their
    # `updated_at` is set at the flush, in one statement.
    _touched: set[str] = field(default_factory=set)
    # Identifier hashes this write inserted: nothing was stored about them
    # before (`TraitStore.observe` need not look them up).
    inserted: set[str] = field(default_factory=set)

    def record(
        self,
        action: str,
        customer_id: str,
        *,
        cause: str,
        source: str = "",
        reason: str = "",
        actor: str = "system",
        related: Sequence[str] = (),
        hashes: Sequence[str] = (),
    ) -> None:
        """Stage one row of the append-only history."""
        self.history.append(
            {
                "at": self.now,
                "action": action,
                "customer_id": customer_id,
                "related_customer_ids": ",".join(related),
                "identifier_hashes": ",".join(hashes),
                "event_id": cause[:64],
                "source": source[:100],
                "reason": reason[:200],
                "actor": actor[:100],
            }
        )

    def link_row(self, hash_: str, customer_id: str, *, cause: str, source: str, rule: str) -> None:
        self.links.append(
            {
                "hash": hash_,
                "customer_id": customer_id,
                "event_id": cause[:64],
                "source": source[:100],
                "rule": rule[:64],
                "created_at": self.now,
            }
        )

    def apply(
        self,
        outcome: LinkOutcome,
        *,
        cause: str,
        source: str,
        rule: str,
        actor: str = "system",
        observed_traits: Sequence[str] = (),
    ) -> None:
        cid = outcome.customer_id
        for b in outcome.blocked:
            hashes = [i.hash for i in b.identifiers]
            for h in hashes:
                self.link_row(h, cid, cause=cause, source=source, rule=f"blocked:{b.reason}")
            self.record(
                "block",
                cid,
                cause=cause,
                source=source,
                reason=b.reason,
                actor=actor,
                related=[b.kept_by] if b.kept_by else [],
                hashes=hashes,
            )
        if outcome.created:
            self._created.add(cid)
            self.customers.append(
                {
                    "customer_id": cid,
                    "created_at": outcome.created_at or self.now,
                    "updated_at": self.now,
                    "interaction_count": 0,
                    "merged_into": None,
                }
            )
        if outcome.merged_customer_ids:
            assert self.repo is not None
            # A customer created by this write and not flushed yet (a sign-up
            # the matcher merges into an earlier customer) is merged in the
            # staged rows: no flush and no UPDATEs (ADR 0196).
            staged = {str(r["customer_id"]) for r in self.customers}
            in_memory = all(loser in staged for loser in outcome.merged_customer_ids)
            if not in_memory:
                self.flush_graph()  # the merge UPDATEs must see rows staged so far
            for loser in outcome.merged_customer_ids:
                if in_memory:
                    self._merge_staged(loser, cid)
                else:
                    self.repo.merge(loser, cid, self.now)
                self.record(
                    "merge",
                    cid,
                    cause=cause,
                    source=source,
                    reason=rule,
                    actor=actor,
                    related=[loser],
                )
                self.folded[loser] = cid
                for k, v in list(self.folded.items()):
                    if v == loser:
                        self.folded[k] = cid
            self.outbox.stage(
                ev.PROFILE_MERGED,
                identity_events.ProfileMerged(
                    surviving_customer_id=cid,
                    merged_customer_ids=outcome.merged_customer_ids,
                    cause_event_id=cause,
                    reason=rule,
                ),
                subject=cid,
                event_id=derived_event_id(cause, f"merged/{cid}"),
            )
        for i in outcome.added:
            self.inserted.add(i.hash)
            self.identifiers.append(
                {
                    "hash": i.hash,
                    "id_type": i.id_type,
                    "namespace": i.namespace,
                    "customer_id": cid,
                    "first_seen_at": self.now,
                }
            )
            self.link_row(i.hash, cid, cause=cause, source=source, rule=rule)
        # After the identifiers are staged: a device first seen already shared
        # is inserted by this outcome and marked in the same flush.
        for i in outcome.newly_shared:
            self.shared.append(i.hash)
            self.record(
                "shared",
                cid,
                cause=cause,
                source=source,
                reason="shared-device",
                actor=actor,
                hashes=[i.hash],
            )
        if outcome.created or outcome.added:
            self.record(
                "create" if outcome.created else "link",
                cid,
                cause=cause,
                source=source,
                reason=rule,
                actor=actor,
                hashes=[i.hash for i in outcome.added],
            )
        added = [to_proto(i) for i in outcome.added]
        if outcome.created:
            self.outbox.stage(
                ev.PROFILE_CREATED,
                identity_events.ProfileCreated(
                    customer_id=cid,
                    identifiers=added,
                    cause_event_id=cause,
                    observed_traits=observed_traits,
                ),
                subject=cid,
                event_id=derived_event_id(cause, f"created/{cid}"),
            )
        elif added or observed_traits:
            self.outbox.stage(
                ev.PROFILE_UPDATED,
                identity_events.ProfileUpdated(
                    customer_id=cid,
                    added_identifiers=added,
                    cause_event_id=cause,
                    observed_traits=observed_traits,
                ),
                subject=cid,
                event_id=derived_event_id(cause, f"updated/{cid}"),
            )
        if observed_traits:
            # For the other replicas' index sync (ADR 0197): which customer
            # has new records, on a subject of its own.
            self.outbox.stage(
                ev.PROFILE_UPDATED,
                identity_events.ProfileUpdated(
                    customer_id=cid, cause_event_id=cause, observed_traits=observed_traits
                ),
                subject=cid,
                event_id=derived_event_id(cause, f"indexed/{cid}"),
                nats_subject=INDEX_RECORDS_SUBJECT,
            )

    def _merge_staged(self, loser: str, survivor: str) -> None:
        """`GraphRepository.merge` for a customer whose rows are still staged
        here: the same rows as merging after the flush would leave (its row
        an alias of the survivor, its identifiers the survivor's; its links
        keep naming it, as links do; it has no interactions, no split-apart
        constraint and nothing sealed yet); the survivor's `updated_at` is
        set at the flush."""
        assert self.repo is not None
        note_moved(self.repo.s, customers=[loser])
        for row in self.customers:
            if row["customer_id"] == loser or row["merged_into"] == loser:
                row["merged_into"] = survivor
        for row in self.identifiers:
            if row["customer_id"] == loser:
                row["customer_id"] = survivor
        if survivor in {r["customer_id"] for r in self.customers}:
            for row in self.customers:
                if row["customer_id"] == survivor:
                    row["updated_at"] = self.now
        else:
            self._touched.add(survivor)
        self._touched.discard(loser)

    def created_live(self) -> set[str]:
        """Customers this write created that are still live and took in no
        earlier customer (whose observations, re-sealed under theirs at the
        flush, gave them a key already)."""
        survivors = set(self.folded.values())
        return {c for c in self._created if c not in self.folded and c not in survivors}

    def live(self, customer_id: str) -> str:
        return self.folded.get(customer_id, customer_id)

    def drain(self) -> list[tuple[sa.Table, list[dict[str, object]]]]:
        """Every staged row by table, graph first, then the outbox; for a
        write without a session (nothing to merge, no device to mark)."""
        if self.shared or self.folded:
            raise RuntimeError("merges and shared devices are written through the repository")
        rows = [
            *staged_tables(self.customers, self.identifiers, self.links, self.history),
            (OutboxWriter.TABLE, self.outbox.drain()),
        ]
        self.customers, self.identifiers, self.links, self.history = [], [], [], []
        return rows

    def flush_graph(self, into: InsertBatch | None = None) -> None:
        """Write the staged graph rows; with ``into``, the inserts are added
        to that batch (written with the transaction's other inserts at its
        end) unless a device must be marked shared, which updates rows staged
        here."""
        assert self.repo is not None, "a write without a repository is drained"
        if into is not None and not self.shared:
            for table, rows in staged_tables(
                self.customers, self.identifiers, self.links, self.history
            ):
                into.add(table, rows)
        else:
            self.repo.insert_customers(self.customers)
            self.repo.insert_identifiers(self.identifiers)
            self.repo.insert_links(self.links)
            self.repo.insert_history(self.history)
            self.repo.mark_shared(self.shared, self.now)
        if self._touched:
            self.repo.touch_updated(sorted(self._touched), self.now)
            self._touched = set()
        self.customers, self.identifiers, self.links = [], [], []
        self.history, self.shared = [], []
        if self.traits is not None:
            merged = {
                k: self.live(k)
                for k in self.folded
                if k not in self._followed and k not in self._created
            }
            if merged:
                self.traits.follow_merges(self.repo.s, merged)
                self._followed.update(merged)


class IdentityHandlers:
    def __init__(
        self,
        *,
        clock: Callable[[], datetime] = utcnow,
        policy: MergePolicy = DEFAULT_POLICY,
        traits: TraitStore | None = None,
        survivorship: SurvivorshipPolicy | None = None,
        index: CandidateIndex | None = None,
        model: MatchModel | None = None,
        upper: float = UPPER_THRESHOLD,
        lower: float = LOWER_THRESHOLD,
    ) -> None:
        self.clock = clock
        self.policy = policy
        self.stats = LinkStats()
        self.traits = traits
        self.survivorship = survivorship or SurvivorshipPolicy()
        # Real-time scoring of Resolve calls with traits (ADR 0017).
        self.index = index
        self.model = model
        self.upper = upper
        self.lower = lower
        # Probabilistic merges the chaining guard refused (Resolve with traits).
        self.links_refused_chaining = 0

    # -- events -----------------------------------------------------------
    def on_interactions(self, session: Session, events: list[ReceivedEvent]) -> None:
        """BatchHandler for `interaction recorded`: one transaction per batch."""
        decoded: list[tuple[ReceivedEvent, gateway_events.InteractionRecorded, list[HashedId]]] = []
        for e in events:
            m = e.message()
            decoded.append((e, m, [to_hashed(h) for h in m.identifiers]))
        now = self.clock()
        repo = GraphRepository(session)
        view = repo.load_view(h.hash for _, _, ids in decoded for h in ids)
        repo.load_counts(
            view, view.customers_at_stake([h.hash for h in ids] for _, _, ids in decoded)
        )
        write = GraphWrite(repo=repo, outbox=OutboxWriter(session), now=now, traits=self.traits)
        activity: dict[str, tuple[int, datetime]] = {}
        resolved: list[tuple[ReceivedEvent, gateway_events.InteractionRecorded, str, str]] = []
        stats = LinkStats()
        for e, m, ids in decoded:
            # The message's own consumer span (its "process" span) records
            # what linking did: no second span per event (ADR 0022).
            span = trace.get_current_span(e.trace_context)
            span.set_attribute("cxloop.identifier_count", len(ids))
            outcome = view.link(ids, now, policy=self.policy)
            if outcome is None:
                stats.without_identifiers += 1
                continue
            write.apply(outcome, cause=e.id, source=m.source, rule="seen-together")
            span.set_attribute("cxloop.customer_id", outcome.customer_id)
            stats.interactions += 1
            stats.customers_created += int(outcome.created)
            stats.merges += len(outcome.merged_customer_ids)
            stats.blocked_links += len(outcome.blocked)
            stats.shared_devices += len(outcome.newly_shared)
            if outcome.blocked:
                span.set_attribute("cxloop.blocked_links", len(outcome.blocked))
            seen = m.occurred_at.ToDatetime(UTC) if m.HasField("occurred_at") else now
            n, last = activity.get(outcome.customer_id, (0, seen))
            activity[outcome.customer_id] = (n + 1, max(last, seen))
            resolved.append((e, m, outcome.customer_id, traceparent_of(span)))
        write.flush_graph()
        live_activity: dict[str, tuple[int, datetime]] = {}
        for cid, (n, seen) in activity.items():
            live = write.live(cid)
            pn, pseen = live_activity.get(live, (0, seen))
            live_activity[live] = (pn + n, max(pseen, seen))
        repo.touch(live_activity, now)
        repo.add_to_counter(EVENTS_WITHOUT_IDENTIFIERS, stats.without_identifiers)
        for e, m, cid, traceparent in resolved:
            live = write.live(cid)
            write.outbox.stage(
                ev.INTERACTION_RESOLVED,
                identity_events.InteractionResolved(customer_id=live, interaction=m),
                subject=live,
                event_id=derived_event_id(e.id, "resolved"),
                traceparent=traceparent,
            )
        write.outbox.flush()
        self._add_stats(stats)

    def _add_stats(self, s: LinkStats) -> None:
        self.stats.interactions += s.interactions
        self.stats.without_identifiers += s.without_identifiers
        self.stats.customers_created += s.customers_created
        self.stats.merges += s.merges
        self.stats.blocked_links += s.blocked_links
        self.stats.shared_devices += s.shared_devices

    # -- commands and queries ------------------------------------------------
    def resolve(
        self, session: Session, identifiers: Sequence[HashedId], *, source: str
    ) -> LinkOutcome:
        (outcome,) = self.resolve_many(session, [ResolveCommand(tuple(identifiers), source)])
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    def resolve_many(
        self, session: Session, commands: Sequence[ResolveCommand]
    ) -> list[LinkOutcome | BaseException]:
        """Resolve calls that arrived together, in one transaction: one view
        of the graph for all of them (one indexed SELECT), linked in arrival
        order (so two calls naming the same new identifier agree: the first
        creates, the second finds it), written in bulk. When every call is a
        returning customer (all identifiers known, one owner) without traits
        nothing more is read and nothing written: the transaction stays
        read-only. A call with nothing to link gets its own ValueError; the
        others go on. A call with traits stores them as sealed observations
        and is scored against earlier records (ADR 0017)."""
        now = self.clock()
        repo = GraphRepository(session)
        refs: dict[int, RecordRef] = {}
        # Each call's record normalised once, for scoring, the chaining guard
        # and the index (it was normalised three times: ADR 0196).
        records: dict[int, NormalisedRecord] = {}
        for n, c in enumerate(commands):
            if c.traits:
                refs[n] = self._record_ref(c)
                if self.index is not None:
                    records[n] = normalise_record(
                        features_of(refs[n].key, dict(c.traits), email_hash=c.email_hash)
                    )
        scored = self._score(refs, records)
        partner_hashes = [m.partner.identifier.hash for ms in scored.values() for m in ms]
        hashes = [i.hash for c in commands for i in c.identifiers] + partner_hashes
        # A batch with traits will write, and needs its customers' counts
        # and (for a sure match) all their identifiers: read in one
        # statement with the view, not three (ADR 0305).
        graph: GraphRepository | CustomersRead = repo
        if refs:
            graph = repo.read_customers(hashes)
            view: GraphView = graph.view(hashes)
        else:
            view = repo.load_view(hashes)
        out: list[LinkOutcome | BaseException | None] = []
        for c in commands:
            cid = None if c.traits else answered_without_writing(c, view.owner_of)
            out.append(None if cid is None else LinkOutcome(customer_id=cid))
        pending = [n for n, o in enumerate(out) if o is None]
        if not pending:
            return [o for o in out if o is not None]
        stake = view.customers_at_stake([i.hash for i in commands[n].identifiers] for n in pending)
        if refs:
            hashes = partner_hashes + [i.hash for n in refs for i in commands[n].identifiers]
            stake |= {view.owner_of[h] for h in hashes if h in view.owner_of}
        graph.load_counts(view, stake)
        write = GraphWrite(repo=repo, outbox=OutboxWriter(session), now=now, traits=self.traits)
        evidence: list[dict[str, object]] = []
        unsure: list[PairScore] = []
        guard = self._guard(graph, view, commands, scored)
        causes: dict[int, str] = {}
        for n in pending:
            c = commands[n]
            outcome = view.link(c.identifiers, now, new_customer_id, self.policy)
            if outcome is None:
                out[n] = ValueError("no identifiers")
                continue
            cause = f"resolve:{uuid.uuid4()}"
            write.apply(
                outcome,
                cause=cause,
                source=c.source,
                rule="resolve-request",
                observed_traits=sorted({t for t, _ in c.traits}),
            )
            out[n] = outcome
            if n in refs:
                causes[n] = cause
                refs[n] = self._anchor(refs[n], c, view, outcome.customer_id)
                if guard is not None and n in records:
                    guard.know(refs[n].identifier.hash, _keyed(records[n], refs[n].key))
                self._link_scored(
                    view, write, refs[n], scored[n], cause, c, now, evidence, unsure, guard
                )
        # Every row from here on is an insert nothing in this transaction
        # reads back: one statement for all of them (ADR 0305).
        inserts = InsertBatch()
        write.flush_graph(into=inserts)
        if refs:
            inserts.add(MatchRow.__table__, evidence)  # type: ignore[attr-defined]
            self._queue(repo, view, unsure, now, inserts)
            self._observe(session, view, commands, refs, now, causes, records, write, inserts)
        inserts.add(OutboxWriter.TABLE, write.outbox.drain())
        inserts.flush(session)
        # A returning customer merged away by another call of the batch
        # answers with the survivor, as it would a moment later; so does a
        # call whose record matched an older customer.
        linked = set(pending)
        for n in refs:
            o = out[n]
            if isinstance(o, LinkOutcome):
                o.customer_id = write.live(o.customer_id)
        return [
            LinkOutcome(customer_id=write.live(o.customer_id))
            if isinstance(o, LinkOutcome) and n not in linked
            else o
            for n, o in enumerate(out)
            if o is not None
        ]

    def new_customers(
        self, commands: Sequence[ResolveCommand]
    ) -> tuple[list[LinkOutcome | BaseException], GraphWrite] | None:
        """Resolve calls none of whose identifiers is known yet (as a read
        just found), linked without a session: the same `GraphView.link` and
        `GraphWrite.apply` as `resolve_many`, on an empty view (calls of the
        batch naming the same new identifier still agree). The rows come back
        staged for one insert-only transaction; a concurrent writer that
        stored one of the identifiers first makes that transaction fail on
        the identifier's key, and the caller then goes the full way. None when
        a call needs more than inserts (a merge of two new customers of the
        batch, a device turning out shared) or has traits."""
        if any(c.traits for c in commands):
            return None
        now = self.clock()
        view = GraphView()
        write = GraphWrite(repo=None, outbox=OutboxWriter(None), now=now)
        out: list[LinkOutcome | BaseException] = []
        for c in commands:
            outcome = view.link(c.identifiers, now, new_customer_id, self.policy)
            if outcome is None:
                out.append(ValueError("no identifiers"))
                continue
            if outcome.merged_customer_ids or outcome.newly_shared:
                return None
            write.apply(
                outcome, cause=f"resolve:{uuid.uuid4()}", source=c.source, rule="resolve-request"
            )
            out.append(outcome)
        return out, write

    # -- traits on Resolve ----------------------------------------------------
    def _record_ref(self, c: ResolveCommand) -> RecordRef:
        """A Resolve call's record is named by its highest-priority identifier."""
        top = min(c.identifiers, key=lambda i: (self.policy.rank(i.id_type), i.hash))
        return RecordRef(c.source, top.hash, top)

    @staticmethod
    def _anchor(ref: RecordRef, c: ResolveCommand, view: GraphView, customer: str) -> RecordRef:
        """Merge protection may have kept the named identifier elsewhere: the
        record is then named by one the customer did get."""
        if view.owner_of.get(ref.identifier.hash) == customer:
            return ref
        for i in c.identifiers:
            if view.owner_of.get(i.hash) == customer:
                return RecordRef(c.source, i.hash, i)
        return ref

    def _score(
        self, refs: Mapping[int, RecordRef], records: Mapping[int, NormalisedRecord]
    ) -> dict[int, list[PairScore]]:
        """Each call's record scored against the index, all the batch's
        records in one comparison (each against its own candidates, none
        against another of the batch, as one at a time)."""
        scored: dict[int, list[PairScore]] = {n: [] for n in refs}
        if self.model is None or self.index is None or not self.index.loaded.is_set():
            return scored
        calls = [n for n in refs if n in records]
        if not calls:
            return scored
        pairs, _ = self.index.score_normalised(
            self.model, [(refs[n], records[n]) for n in calls], min_probability=self.lower
        )
        # A pair names its call's ref object (two calls may name equal refs).
        by_ref = {id(refs[n]): n for n in calls}
        for m in pairs:
            scored[by_ref[id(m.record)]].append(m)
        return scored

    def _link_scored(
        self,
        view: GraphView,
        write: GraphWrite,
        ref: RecordRef,
        pairs: Sequence[PairScore],
        cause: str,
        c: ResolveCommand,
        now: datetime,
        evidence: list[dict[str, object]],
        unsure: list[PairScore],
        guard: ChainGuard | None = None,
    ) -> None:
        """Link the call's customer with earlier records' customers the model
        is sure of (merge protection, cannot-link and the chaining guard
        apply); queue the rest."""
        for k, m in enumerate(sorted(pairs, key=lambda m: -m.probability)):
            m = PairScore(m.partner, ref, m.probability, m.weights)
            a, b = m.partner.identifier.hash, ref.identifier.hash
            if a not in view.owner_of or b not in view.owner_of:
                continue
            if view.owner_of[a] == view.owner_of[b]:
                continue
            if m.probability < self.upper:
                unsure.append(m)
                continue
            if guard is not None and not guard.allows(view.owner_of[a], view.owner_of[b]):
                self.links_refused_chaining += 1
                unsure.append(m)
                continue
            pair_cause = f"{cause}:p{k}"
            outcome = view.link((m.partner.identifier, ref.identifier), now, policy=self.policy)
            if outcome is None:
                continue
            write.apply(outcome, cause=pair_cause, source=c.source, rule="probabilistic")
            if outcome.merged_customer_ids:
                evidence.append(evidence_row(m, pair_cause, now))
            if outcome.blocked and all(x.reason != "cannot-link" for x in outcome.blocked):
                unsure.append(m)  # over a limit: a person may still decide

    def _guard(
        self,
        graph: GraphRepository | CustomersRead,
        view: GraphView,
        commands: Sequence[ResolveCommand],
        scored: Mapping[int, Sequence[PairScore]],
    ) -> ChainGuard | None:
        """The chaining guard over every record of the customers a sure
        match of this batch may merge (their identifiers join the view)."""
        sure = [(n, m) for n, ms in scored.items() for m in ms if m.probability >= self.upper]
        if self.model is None or self.index is None or not sure:
            return None
        guard = ChainGuard(self.model, view)
        stake = {view.owner_of[m.partner.identifier.hash] for _, m in sure}
        stake |= {
            view.owner_of[i.hash]
            for n, _ in sure
            for i in commands[n].identifiers
            if i.hash in view.owner_of
        }
        stake.discard("")
        guard.know_all(self.index.records_by_hash(graph.extend_view(view, stake)))
        return guard

    @staticmethod
    def _queue(
        repo: GraphRepository,
        view: GraphView,
        unsure: Sequence[PairScore],
        now: datetime,
        inserts: InsertBatch,
    ) -> None:
        if not unsure:
            return
        pending = repo.open_review_pairs(
            {m.partner.identifier.hash for m in unsure} | {m.record.identifier.hash for m in unsure}
        )
        inserts.add(
            ReviewItemRow.__table__,  # type: ignore[attr-defined]
            review_item_rows(pending, view, unsure, event_id=f"resolve:{uuid.uuid4()}", now=now),
        )

    def _observe(
        self,
        session: Session,
        view: GraphView,
        commands: Sequence[ResolveCommand],
        refs: Mapping[int, RecordRef],
        now: datetime,
        causes: Mapping[int, str],
        records: Mapping[int, NormalisedRecord],
        write: GraphWrite,
        inserts: InsertBatch,
    ) -> None:
        observations = []
        indexable: list[tuple[RecordRef, NormalisedRecord]] = []
        owners: dict[str, str] = {}
        for n, ref in refs.items():
            c = commands[n]
            customer = view.owner_of.get(ref.identifier.hash)
            if customer is None:
                continue
            observations += [
                NewObservation(
                    customer_id=customer,
                    trait=trait,
                    value=value,
                    source=c.source,
                    observed_at=c.observed_at or now,
                    record_ref=ref.identifier.hash,
                    record_id=ref.record_id,
                )
                for trait, value in c.traits
            ]
            if n in records:
                indexable.append((ref, _keyed(records[n], ref.key)))
            owners[ref.key] = customer
        if self.traits is not None:
            # Sign-ups are mostly new identifiers of new customers: nothing
            # to replace, no key to read (two statements fewer a batch).
            self.traits.observe(
                session,
                observations,
                now,
                new_refs=write.inserted,
                new_customers=write.created_live(),
                into=inserts,
            )
        if self.index is not None:
            # Before the commit: should it roll back, the entry names an
            # identifier the graph does not have, and is never linked to.
            self.index.put_normalised(indexable, owners)
            # Their profile events need no re-read by this process's index
            # sync: the records are in already.
            self.index.note_own_writes(causes[n] for n in refs if n in causes)

    def golden_record(self, session: Session, customer_id: str) -> list[GoldenTrait]:
        if self.traits is None:
            return []
        return golden_record(self.traits.observations(session, customer_id), self.survivorship)

    def get_profile(self, session: Session, customer_id: str) -> ProfileRecord | None:
        record = GraphRepository(session).profile(customer_id)
        if record is not None:
            record.golden = self.golden_record(session, record.customer.customer_id)
        return record
