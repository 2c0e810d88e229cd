"""Batch import of customer records (CRM, POS, store sign-ups): exact
identifiers link deterministically, records that share none are scored by
the probabilistic matcher (ADR 0010) against the import's other records and
against earlier records (the real-time index, ADR 0017) and linked, queued
for review or left apart (ADR 0016).

The graph stores the records' identifiers hashed; each record's traits
(names, birth date, address, phone, email) are kept as observations sealed
with the customer's key (the golden record, `adapters/trait_store.py`); a
link or review item stores the per-field comparison levels and weights.
National ids are compared within the import only and never stored.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from sqlmodel import Session

from cxloop_libs.messaging import OutboxWriter
from identity.adapters.repository import GraphRepository
from identity.adapters.trait_store import NewObservation, TraitStore
from identity.domain.matching import (
    LOWER_THRESHOLD,
    UPPER_THRESHOLD,
    CustomerRecord,
    MatchModel,
    normalise_record,
    run_linkage,
)
from identity.domain.model import GraphView, HashedId, LinkOutcome, new_customer_id
from identity.domain.policy import DEFAULT_POLICY, MergePolicy
from identity.service_layer.handlers import GraphWrite, utcnow
from identity.service_layer.realtime import (
    CandidateIndex,
    ChainGuard,
    PairScore,
    RecordRef,
    evidence_row,
    review_item_rows,
)

# EM needs a few thousand records to learn m and u; below this an import
# without a configured model links on exact identifiers only.
MIN_TRAINING_RECORDS = 1000


@dataclass(frozen=True, slots=True)
class ImportRecord:
    record_id: str
    source: str
    external: HashedId  # `source:record_id`
    identifiers: tuple[HashedId, ...]  # external first, then email, phone
    # Raw values for scoring, in memory only; `features.record_id` is `key`.
    features: CustomerRecord
    # What the record says, for the golden record: (trait, value as given;
    # the phone in E.164).
    traits: tuple[tuple[str, str], ...] = ()
    observed_at: datetime | None = None  # the record's own time, if it has one

    @property
    def key(self) -> str:
        return f"{self.source}:{self.record_id}"

    @property
    def ref(self) -> RecordRef:
        return RecordRef(self.source, self.record_id, self.external)


@dataclass(slots=True)
class Scoring:
    matches: list[PairScore]  # pairs at or above the lower threshold
    comparisons: int
    model: str  # configured, trained, none
    comparisons_with_earlier: int = 0
    match_model: MatchModel | None = None  # what scored the pairs


@dataclass(slots=True)
class ImportSummary:
    records: int = 0
    customers_created: int = 0
    linked_exact: int = 0
    linked_probabilistic: int = 0
    review_items: int = 0
    links_refused: int = 0
    # Probabilistic merges refused because the two customers' records
    # contradict each other (the chaining guard); counted in links_refused too.
    links_refused_chaining: int = 0
    comparisons: int = 0
    comparisons_with_earlier: int = 0
    model: str = "none"
    observations: int = 0
    review_item_ids: list[str] = field(default_factory=list)
    # Records now in the graph, for the real-time index once committed.
    indexable: list[tuple[RecordRef, CustomerRecord]] = field(default_factory=list)
    indexable_customers: dict[str, str] = field(default_factory=dict)  # record key -> customer
    # The import's causes are `import:<id>:<n>`: this prefix names them all.
    cause_prefix: str = ""


class RecordImporter:
    def __init__(
        self,
        *,
        model: MatchModel | None = None,
        policy: MergePolicy = DEFAULT_POLICY,
        clock: Callable[[], datetime] = utcnow,
        upper: float = UPPER_THRESHOLD,
        lower: float = LOWER_THRESHOLD,
        min_training_records: int = MIN_TRAINING_RECORDS,
        traits: TraitStore | None = None,
        index: CandidateIndex | None = None,
    ) -> None:
        self.model = model
        self.policy = policy
        self.clock = clock
        self.upper = upper
        self.lower = lower
        self.min_training_records = min_training_records
        self.traits = traits
        self.index = index

    # -- scoring (CPU only, outside any transaction) ---------------------------
    def score(self, records: Sequence[ImportRecord]) -> Scoring:
        """Candidate pairs of the import, and of each record with earlier
        records (the real-time index), scored with the configured model, or
        one trained by EM on the import itself when none is configured."""
        model, kind = self.model, "configured"
        if model is None:
            if len(records) < self.min_training_records:
                return Scoring([], 0, "none")
            kind = "trained"
        features = [r.features for r in records]
        linkage = run_linkage(features, None, model, min_probability=self.lower)
        position = {r.key: n for n, r in enumerate(records)}
        matches = []
        for pair in linkage.pairs:
            a, b = sorted((position[pair.id1], position[pair.id2]))
            detail = linkage.model.score(features[a], features[b])
            matches.append(
                PairScore(records[a].ref, records[b].ref, pair.probability, detail.per_field)
            )
        earlier_comparisons = 0
        if self.index is not None and len(self.index):
            # National ids are never stored, so earlier records have none:
            # compare like with like.
            earlier, earlier_comparisons = self.index.score(
                linkage.model,
                [(r.ref, _without_national_id(r.features)) for r in records],
                min_probability=self.lower,
            )
            in_import = {r.ref.key for r in records}
            # A record of this import found in the index (imported again)
            # is scored within the import already.
            matches += [m for m in earlier if m.partner.key not in in_import]
        pos = {r.ref.key: n for n, r in enumerate(records)}
        matches.sort(key=lambda m: (pos[m.record.key], -m.probability, pos.get(m.partner.key, -1)))
        return Scoring(matches, linkage.comparisons, kind, earlier_comparisons, linkage.model)

    # -- linking (one transaction) ----------------------------------------------
    def apply(
        self, session: Session, records: Sequence[ImportRecord], scoring: Scoring
    ) -> ImportSummary:
        now = self.clock()
        import_id = uuid.uuid4().hex[:12]
        repo = GraphRepository(session)
        position = {r.ref.key: n for n, r in enumerate(records)}
        view: GraphView = repo.load_view(
            [i.hash for r in records for i in r.identifiers]
            + [m.partner.identifier.hash for m in scoring.matches]
        )
        # Every customer the import touches is at stake: limits and
        # cannot-link constraints must hold for probabilistic links too.
        repo.load_counts(view, set(view.owner_of.values()))
        write = GraphWrite(repo=repo, outbox=OutboxWriter(session), now=now, traits=self.traits)
        out = ImportSummary(
            records=len(records),
            comparisons=scoring.comparisons,
            comparisons_with_earlier=scoring.comparisons_with_earlier,
            model=scoring.model,
            cause_prefix=f"import:{import_id}",
        )
        if self.index is not None:
            # Indexed by `index_committed`; the events need no re-read here.
            self.index.note_own_writes([out.cause_prefix])
        auto: dict[int, list[PairScore]] = {}
        unsure: list[PairScore] = []
        for m in scoring.matches:
            if m.probability >= self.upper:
                auto.setdefault(position[m.record.key], []).append(m)
            else:
                unsure.append(m)
        evidence: list[dict[str, object]] = []
        guard = self._guard(repo, view, records, scoring, auto)

        def link(
            ids: Sequence[HashedId], cause: str, source: str, rule: str, observed: Sequence[str]
        ) -> LinkOutcome:
            outcome = view.link(ids, now, new_customer_id, self.policy)
            assert outcome is not None  # every record has its external id
            write.apply(outcome, cause=cause, source=source, rule=rule, observed_traits=observed)
            return outcome

        for n, r in enumerate(records):
            # A partner whose identifier is not in the graph (refused, or
            # erased since it was indexed) links nothing.
            partners = [m for m in auto.get(n, []) if m.partner.identifier.hash in view.owner_of]
            cause = f"import:{import_id}:{n}"
            observed = sorted({t for t, _ in r.traits})
            known = any(i.hash in view.owner_of for i in r.identifiers)
            while partners and not known and guard is not None:
                # The first partner's customer must not contradict the record.
                target = view.owner_of[partners[0].partner.identifier.hash]
                if guard.allows(target, "", guard.own(r.external.hash)):
                    break
                out.links_refused += 1
                out.links_refused_chaining += 1
                unsure.append(partners[0])
                partners = partners[1:]
            if partners and not known:
                # A new record matched to an earlier one joins its customer
                # directly: its identifiers are linked by the match.
                first, partners = partners[0], partners[1:]
                target = view.owner_of[first.partner.identifier.hash]
                outcome = link(
                    (*r.identifiers, first.partner.identifier),
                    cause,
                    r.source,
                    "probabilistic",
                    observed,
                )
                if outcome.customer_id == target and r.external.hash in view.owner_of:
                    out.linked_probabilistic += 1
                    evidence.append(evidence_row(first, cause, now))
                else:
                    out.links_refused += 1
                    unsure.append(first)
                out.customers_created += int(outcome.created)
                out.links_refused += len(outcome.blocked)
            else:
                outcome = link(r.identifiers, cause, r.source, "import", observed)
                out.customers_created += int(outcome.created)
                out.linked_exact += int(not outcome.created)
                out.links_refused += len(outcome.blocked)
            for k, m in enumerate(partners):
                a, b = m.partner.identifier.hash, r.external.hash
                if a not in view.owner_of or b not in view.owner_of:
                    continue  # a refused identifier links nothing
                if view.owner_of[a] == view.owner_of[b]:
                    continue
                if guard is not None and not guard.allows(view.owner_of[a], view.owner_of[b]):
                    out.links_refused += 1
                    out.links_refused_chaining += 1
                    unsure.append(m)
                    continue
                pair_cause = f"{cause}:p{k}"
                outcome = link(
                    (m.partner.identifier, r.external), pair_cause, r.source, "probabilistic", ()
                )
                if outcome.merged_customer_ids:
                    out.linked_probabilistic += 1
                    evidence.append(evidence_row(m, pair_cause, now))
                if outcome.blocked:
                    out.links_refused += 1
                    if all(x.reason != "cannot-link" for x in outcome.blocked):
                        unsure.append(m)  # over a limit: a person may still decide
        write.flush_graph()
        repo.insert_matches(evidence)
        pending = repo.open_review_pairs(
            {m.partner.identifier.hash for m in unsure} | {m.record.identifier.hash for m in unsure}
        )
        items = review_item_rows(pending, view, unsure, event_id=f"import:{import_id}", now=now)
        repo.insert_review_items(items)
        out.review_items = len(items)
        out.review_item_ids = [str(i["item_id"]) for i in items]
        out.observations = self._observe(session, view, records, now)
        out.indexable = [
            (r.ref, _without_national_id(r.features))
            for r in records
            if r.external.hash in view.owner_of
        ]
        out.indexable_customers = {
            r.ref.key: view.owner_of[r.external.hash]
            for r in records
            if r.external.hash in view.owner_of
        }
        write.outbox.flush()
        return out

    def _guard(
        self,
        repo: GraphRepository,
        view: GraphView,
        records: Sequence[ImportRecord],
        scoring: Scoring,
        auto: dict[int, list[PairScore]],
    ) -> ChainGuard | None:
        """The chaining guard over the import's records and every record of
        the earlier customers a sure match may merge."""
        if scoring.match_model is None or not auto:
            return None
        guard = ChainGuard(scoring.match_model, view)
        for r in records:
            guard.know(r.external.hash, normalise_record(_without_national_id(r.features)))
        stake = {
            view.owner_of[m.partner.identifier.hash]
            for ms in auto.values()
            for m in ms
            if m.partner.identifier.hash in view.owner_of
        }
        if stake and self.index is not None:
            guard.know_all(self.index.records_by_hash(repo.extend_view(view, stake)))
        return guard

    def _observe(
        self, session: Session, view: GraphView, records: Sequence[ImportRecord], now: datetime
    ) -> int:
        """The records' traits as sealed observations of the customer each
        record ended in (after every merge of the import)."""
        if self.traits is None:
            return 0
        observations = [
            NewObservation(
                customer_id=view.owner_of[r.external.hash],
                trait=trait,
                value=value,
                source=r.source,
                observed_at=r.observed_at or now,
                record_ref=r.external.hash,
                record_id=r.record_id,
            )
            for r in records
            if r.external.hash in view.owner_of
            for trait, value in r.traits
        ]
        return self.traits.observe(session, observations, now)

    def index_committed(self, summary: ImportSummary) -> None:
        """After the commit: the import's records become candidates for
        later records."""
        if self.index is not None:
            self.index.put(summary.indexable, summary.indexable_customers)


def _without_national_id(features: CustomerRecord) -> CustomerRecord:
    return replace(features, national_id="") if features.national_id else features
