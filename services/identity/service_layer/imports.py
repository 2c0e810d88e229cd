"""Batch import of customer records (CRM, POS, store sign-ups): exact
identifiers link deterministically, records that share none are scored by
the probabilistic matcher (ADR 0010) and linked, queued for review or left
apart (ADR 0015).

Raw names, addresses, birth dates and national ids live only in the
`ImportRecord.features` of one import, in memory, for scoring; the graph
stores the records' identifiers hashed, and a link or review item stores the
per-field comparison levels and weights, never the values compared.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlmodel import Session

from cxloop_libs.messaging import OutboxWriter
from identity.adapters.repository import GraphRepository
from identity.domain.matching import (
    LOWER_THRESHOLD,
    UPPER_THRESHOLD,
    CustomerRecord,
    MatchModel,
    run_linkage,
)
from identity.domain.model import GraphView, HashedId, LinkOutcome, new_customer_id
from identity.domain.policy import DEFAULT_POLICY, MergePolicy
from identity.service_layer.handlers import GraphWrite, utcnow

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

    @property
    def key(self) -> str:
        return f"{self.source}:{self.record_id}"


@dataclass(frozen=True, slots=True)
class ScoredMatch:
    a: int  # positions in the import, a < b
    b: int
    probability: float
    weights: dict[str, tuple[str, float]]  # field -> (level, weight in bits)

    def weights_json(self) -> str:
        return json.dumps(
            {k: [lvl, round(w, 4)] for k, (lvl, w) in self.weights.items()},
            separators=(",", ":"),
        )


@dataclass(slots=True)
class Scoring:
    matches: list[ScoredMatch]  # pairs at or above the lower threshold
    comparisons: int
    model: str  # configured, trained, none


@dataclass(slots=True)
class ImportSummary:
    records: int = 0
    customers_created: int = 0
    linked_exact: int = 0
    linked_probabilistic: int = 0
    review_items: int = 0
    links_refused: int = 0
    comparisons: int = 0
    model: str = "none"
    review_item_ids: list[str] = field(default_factory=list)


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
    ) -> None:
        self.model = model
        self.policy = policy
        self.clock = clock
        self.upper = upper
        self.lower = lower
        self.min_training_records = min_training_records

    # -- scoring (CPU only, outside any transaction) ---------------------------
    def score(self, records: Sequence[ImportRecord]) -> Scoring:
        """Candidate pairs of the import scored with the configured model, or
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
            matches.append(ScoredMatch(a, b, pair.probability, detail.per_field))
        matches.sort(key=lambda m: (m.b, -m.probability, m.a))
        return Scoring(matches, linkage.comparisons, kind)

    # -- linking (one transaction) ----------------------------------------------
    def apply(
        self, session: Session, records: Sequence[ImportRecord], scoring: Scoring
    ) -> ImportSummary:
        now = self.clock()
        import_id = uuid.uuid4().hex[:12]
        repo = GraphRepository(session)
        view: GraphView = repo.load_view(i.hash for r in records for i in r.identifiers)
        # Every customer the import touches is at stake: limits and
        # cannot-link constraints must hold for probabilistic links too.
        repo.load_counts(view, set(view.owner_of.values()))
        write = GraphWrite(repo=repo, outbox=OutboxWriter(session), now=now)
        out = ImportSummary(
            records=len(records), comparisons=scoring.comparisons, model=scoring.model
        )
        auto: dict[int, list[ScoredMatch]] = {}
        unsure: list[ScoredMatch] = []
        for m in scoring.matches:
            if m.probability >= self.upper:
                auto.setdefault(m.b, []).append(m)
            else:
                unsure.append(m)
        evidence: list[dict[str, object]] = []

        def link(ids: Sequence[HashedId], cause: str, source: str, rule: str) -> LinkOutcome:
            outcome = view.link(ids, now, new_customer_id, self.policy)
            assert outcome is not None  # every record has its external id
            write.apply(outcome, cause=cause, source=source, rule=rule)
            return outcome

        def note(m: ScoredMatch, cause: str) -> None:
            evidence.append(
                {
                    "event_id": cause,
                    "hash_a": records[m.a].external.hash,
                    "hash_b": records[m.b].external.hash,
                    "probability": m.probability,
                    "weights": m.weights_json(),
                    "created_at": now,
                }
            )

        for n, r in enumerate(records):
            partners = auto.get(n, [])
            cause = f"import:{import_id}:{n}"
            known = any(i.hash in view.owner_of for i in r.identifiers)
            if partners and not known:
                # A new record matched to an earlier one joins its customer
                # directly: its identifiers are linked by the match.
                first, partners = partners[0], partners[1:]
                target = view.owner_of[records[first.a].external.hash]
                outcome = link(
                    (*r.identifiers, records[first.a].external), cause, r.source, "probabilistic"
                )
                if outcome.customer_id == target and r.external.hash in view.owner_of:
                    out.linked_probabilistic += 1
                    note(first, cause)
                else:
                    out.links_refused += 1
                    unsure.append(first)
                out.customers_created += int(outcome.created)
                out.links_refused += len(outcome.blocked)
            else:
                outcome = link(r.identifiers, cause, r.source, "import")
                out.customers_created += int(outcome.created)
                out.linked_exact += int(not outcome.created)
                out.links_refused += len(outcome.blocked)
            for k, m in enumerate(partners):
                a, b = records[m.a].external.hash, r.external.hash
                if a not in view.owner_of or b not in view.owner_of:
                    continue  # a refused identifier links nothing
                if view.owner_of[a] == view.owner_of[b]:
                    continue
                pair_cause = f"{cause}:p{k}"
                outcome = link(
                    (records[m.a].external, r.external), pair_cause, r.source, "probabilistic"
                )
                if outcome.merged_customer_ids:
                    out.linked_probabilistic += 1
                    note(m, pair_cause)
                if outcome.blocked:
                    out.links_refused += 1
                    if all(x.reason != "cannot-link" for x in outcome.blocked):
                        unsure.append(m)  # over a limit: a person may still decide
        write.flush_graph()
        repo.insert_matches(evidence)
        items = self._review_items(repo, view, records, unsure, import_id, now)
        repo.insert_review_items(items)
        out.review_items = len(items)
        out.review_item_ids = [str(i["item_id"]) for i in items]
        write.outbox.flush()
        return out

    def _review_items(
        self,
        repo: GraphRepository,
        view: GraphView,
        records: Sequence[ImportRecord],
        unsure: Sequence[ScoredMatch],
        import_id: str,
        now: datetime,
    ) -> list[dict[str, object]]:
        """Unsure pairs still apart, not split or rejected apart, and not
        already waiting for a decision; one per pair of customers."""
        pending = repo.open_review_pairs(
            {records[m.a].external.hash for m in unsure}
            | {records[m.b].external.hash for m in unsure}
        )
        items: list[dict[str, object]] = []
        # One question per pair of customers, asked with the strongest evidence.
        asked: set[frozenset[str]] = set()
        for m in sorted(unsure, key=lambda m: (-m.probability, m.a, m.b)):
            ra, rb = records[m.a], records[m.b]
            ca, cb = view.owner_of.get(ra.external.hash), view.owner_of.get(rb.external.hash)
            if ca is None or cb is None or ca == cb:
                continue
            if cb in view.cannot_link.get(ca, set()):
                continue
            pair = frozenset((ra.external.hash, rb.external.hash))
            customers = frozenset((ca, cb))
            if pair in pending or customers in asked:
                continue
            pending.add(pair)
            asked.add(customers)
            items.append(
                {
                    "item_id": str(uuid.uuid4()),
                    "status": "open",
                    "probability": m.probability,
                    "weights": m.weights_json(),
                    "source_a": ra.source,
                    "record_id_a": ra.record_id[:200],
                    "hash_a": ra.external.hash,
                    "source_b": rb.source,
                    "record_id_b": rb.record_id[:200],
                    "hash_b": rb.external.hash,
                    "event_id": f"import:{import_id}",
                    "created_at": now,
                    "decided_at": None,
                    "decided_by": "",
                    "reason": "",
                }
            )
        return items
