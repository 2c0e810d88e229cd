"""Scoring new records against earlier ones, in real time, in-process
(ADR 0017).

Every imported record, and every `Resolve` call with traits, leaves its
trait observations sealed per customer (`adapters/trait_store.py`). At start
the service opens them into a `CandidateIndex`: the match features of every
earlier record, in memory, under the blocking rules of the batch matcher
(domain/matching/blocking.py). A new record is compared only with the
records sharing a blocking key with it, with the same `MatchModel` and
thresholds as a batch import; a key shared by more than `max_block_size`
records says nothing about identity and is skipped (the batch rule too),
which also bounds the comparisons per record.

The index is updated after every write that commits records, and erasure
takes the erased customer's records out. It holds raw values in process
memory only; it is never written anywhere.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections import OrderedDict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from sqlmodel import Session

from cxloop_libs.pii import IdentifierHasher, IdType
from identity.adapters.trait_store import TraitStore
from identity.domain.matching import (
    CustomerRecord,
    MatchModel,
    NormalisedRecord,
    clusters_contradict,
    normalise_record,
)
from identity.domain.matching.blocking import PREDICTION_RULES, BlockingIndex, BlockingRule
from identity.domain.matching.comparisons import ColumnStore, RecordColumns, compare
from identity.domain.model import GraphView, HashedId

# Records sharing one blocking key beyond which the key is not used for
# real-time candidates (a city's most common postcode, a shop's phone).
REALTIME_MAX_BLOCK = 1000
# Candidates one new record is compared with at most: its blocks smallest
# first while they fit (BlockingIndex.candidate_positions). On the Korean
# households bench every pair scored at or above the review threshold is in
# a block of 27 records or fewer, while a family name in a city brings
# hundreds of strangers; 200 keeps all of them and scores 69 candidates per
# sign-up on average instead of 171 (ADR 0085).
REALTIME_MAX_CANDIDATES = 200
# Where a write that stored trait observations (a `Resolve` with traits, an
# import) tells every replica's index sync to read them (ADR 0197): a
# subject of identity's own stream that no other service listens to, so the
# replicas do not receive every `profile created/updated` (the consumer's
# and trait-less `Resolve`'s too) only to find no observed traits in it.
INDEX_RECORDS_SUBJECT = "cx.identity.index.records"
# Causes of this process's own index writes remembered for its index sync
# (a rolled-back write's cause is never announced; the oldest go first).
_OWN_WRITES_KEPT = 100_000


@dataclass(frozen=True, slots=True)
class RecordRef:
    """A record as the graph and the review queue know it: its source, its
    id there (pseudonymous; for a Resolve call the identifier hash), and
    its identifier in the graph (external id `source:record_id`, or the
    Resolve call's highest-priority identifier)."""

    source: str
    record_id: str
    identifier: HashedId

    @property
    def key(self) -> str:
        return f"{self.source}|{self.identifier.hash}"


@dataclass(frozen=True, slots=True)
class PairScore:
    """A new record (`record`) scored against a partner found earlier (in
    the same import or in the index)."""

    partner: RecordRef
    record: RecordRef
    probability: float
    weights: dict[str, tuple[str, float]]  # field -> (level, weight in bits)

    def weights_json(self) -> str:
        return json.dumps(
            {k: [lvl, round(w, 4)] for k, (lvl, w) in self.weights.items()},
            separators=(",", ":"),
        )


def features_of(
    key: str,
    traits: Mapping[str, str],
    *,
    hasher: IdentifierHasher | None = None,
    email_hash: str = "",
    national_id: str = "",
) -> CustomerRecord:
    """The matcher's view of a record from its traits (phone already E.164).
    The email is compared by its identifier hash."""
    if not email_hash and hasher is not None and traits.get("email", "").strip():
        try:
            email_hash = hasher.hash(IdType.EMAIL, traits["email"])
        except ValueError:
            email_hash = ""
    return CustomerRecord(
        record_id=key,
        given_name=traits.get("given_name", ""),
        family_name=traits.get("family_name", ""),
        full_name=traits.get("full_name", ""),
        date_of_birth=traits.get("date_of_birth", ""),
        street=traits.get("street", ""),
        city=traits.get("city", ""),
        postcode=traits.get("postcode", ""),
        state=traits.get("state", ""),
        phone=traits.get("phone", ""),
        email_hash=email_hash,
        national_id=national_id,
    )


class CandidateIndex:
    """Earlier records' match features under the blocking rules. Thread-safe:
    imports, Resolve batches and erasures run in worker threads."""

    def __init__(
        self,
        rules: tuple[BlockingRule, ...] = PREDICTION_RULES,
        max_block_size: int = REALTIME_MAX_BLOCK,
        max_candidates: int | None = REALTIME_MAX_CANDIDATES,
    ) -> None:
        self.rules = rules
        self.max_block_size = max_block_size
        self.max_candidates = max_candidates
        self._lock = threading.Lock()
        self._blocks = BlockingIndex((), rules, max_block_size)
        # The same records column by column, for scoring without converting
        # candidates again on every call.
        self._columns = ColumnStore()
        self._records: list[NormalisedRecord | None] = []
        self._refs: list[RecordRef | None] = []
        self._position: dict[str, int] = {}  # record key -> position
        self._by_hash: dict[str, set[str]] = {}  # identifier hash -> record keys
        # Whose each record is, as far as this process knows, so an erasure
        # announced by event (another replica erased) empties this memory too.
        self._customer: dict[str, str] = {}  # record key -> customer id
        self._merged_into: dict[str, str] = {}  # merged customer id -> survivor
        self._dead = 0
        # Causes (`resolve:<uuid>`, `import:<id>`) of writes this process
        # indexed itself: the profile events they announce need no re-read
        # here (ADR 0085). Other replicas do not know them and re-read.
        self._own_writes: OrderedDict[str, None] = OrderedDict()
        # Set once the records stored before this process started are in.
        self.loaded = threading.Event()

    def __len__(self) -> int:
        with self._lock:
            return len(self._position)

    def put(
        self,
        items: Iterable[tuple[RecordRef, CustomerRecord]],
        customers: Mapping[str, str] | None = None,
    ) -> int:
        """Add records; a record already indexed (same key) is replaced.
        ``customers`` (record key -> customer id) says whose they are."""
        return self.put_normalised(
            [(ref, normalise_record(features)) for ref, features in items], customers
        )

    def put_normalised(
        self,
        prepared: Sequence[tuple[RecordRef, NormalisedRecord]],
        customers: Mapping[str, str] | None = None,
    ) -> int:
        """`put` for records normalised already (a `Resolve` call's record,
        normalised once for scoring, the chaining guard and the index)."""
        n = 0
        with self._lock:
            for ref, record in prepared:
                self._drop(ref.key)
                if customers and ref.key in customers:
                    self._customer[ref.key] = customers[ref.key]
                pos = self._blocks.add(record)
                assert pos == len(self._records) == self._columns.append(record)
                self._records.append(record)
                self._refs.append(ref)
                self._position[ref.key] = pos
                self._by_hash.setdefault(ref.identifier.hash, set()).add(ref.key)
                n += 1
            self._compact_if_sparse()
        return n

    def note_own_writes(self, causes: Iterable[str]) -> None:
        """Writes this process indexed itself, by the cause their profile
        events carry (`resolve:<uuid>` of a call, `import:<id>` of all of
        an import's records)."""
        with self._lock:
            for cause in causes:
                self._own_writes[cause] = None
            while len(self._own_writes) > _OWN_WRITES_KEPT:
                self._own_writes.popitem(last=False)

    def indexed_here(self, cause: str) -> bool:
        """Did this process index the records announced with ``cause``
        itself? Events name the call's or the import's cause, or a link
        made for it (``<cause>:p<k>``, ``import:<id>:<n>``)."""
        kind, _, rest = cause.partition(":")
        if kind not in ("resolve", "import"):
            return False
        key = f"{kind}:{rest.split(':', 1)[0]}"
        with self._lock:
            return key in self._own_writes

    def remove(self, hashes: Iterable[str]) -> int:
        """Take out the records of these identifiers (erasure)."""
        n = 0
        with self._lock:
            for h in hashes:
                for key in self._by_hash.pop(h, set()):
                    n += self._drop(key)
            self._compact_if_sparse()
        return n

    def _root(self, customer: str) -> str:
        seen = 0
        while customer in self._merged_into and seen < 1000:
            customer, seen = self._merged_into[customer], seen + 1
        return customer

    def merged(self, survivor: str, losers: Iterable[str]) -> None:
        """Another process merged customers: their records are the survivor's."""
        with self._lock:
            for loser in losers:
                if loser != survivor:
                    self._merged_into[loser] = survivor

    def remove_customers(self, customer_ids: Iterable[str]) -> int:
        """Take out every record of these customers (and of customers merged
        into them): an erasure, wherever it ran."""
        n = 0
        with self._lock:
            roots = {self._root(c) for c in customer_ids}
            doomed = [k for k, c in self._customer.items() if self._root(c) in roots]
            for key in doomed:
                n += self._drop(key)
            self._compact_if_sparse()
        return n

    def customer_of(self, key: str) -> str | None:
        with self._lock:
            c = self._customer.get(key)
            return self._root(c) if c is not None and key in self._position else None

    def _drop(self, key: str) -> int:
        self._customer.pop(key, None)
        pos = self._position.pop(key, None)
        if pos is None:
            return 0
        ref = self._refs[pos]
        if ref is not None:
            keys = self._by_hash.get(ref.identifier.hash)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._by_hash[ref.identifier.hash]
        self._records[pos] = None
        self._refs[pos] = None
        self._columns.clear(pos)
        self._dead += 1
        return 1

    def _compact_if_sparse(self) -> None:
        # Dead positions still sit in the blocks; rebuild once they are many.
        if self._dead < 1000 or self._dead < len(self._position):
            return
        live = [
            (ref, rec)
            for ref, rec in zip(self._refs, self._records, strict=True)
            if ref is not None and rec is not None
        ]
        self._blocks = BlockingIndex((), self.rules, self.max_block_size)
        self._columns = ColumnStore(max(1024, 2 * len(live)))
        self._records, self._refs, self._position, self._dead = [], [], {}, 0
        for ref, rec in live:
            self._position[ref.key] = self._blocks.add(rec)
            self._columns.append(rec)
            self._records.append(rec)
            self._refs.append(ref)

    def records_by_hash(self, hashes: Iterable[str]) -> dict[str, list[NormalisedRecord]]:
        """The indexed records named by these identifier hashes."""
        out: dict[str, list[NormalisedRecord]] = {}
        with self._lock:
            for h in hashes:
                for key in self._by_hash.get(h, ()):
                    pos = self._position.get(key)
                    record = self._records[pos] if pos is not None else None
                    if record is not None:
                        out.setdefault(h, []).append(record)
        return out

    def score(
        self,
        model: MatchModel,
        new: Sequence[tuple[RecordRef, CustomerRecord]],
        *,
        min_probability: float,
    ) -> tuple[list[PairScore], int]:
        """Each new record against its candidates among the indexed records
        (not itself: a record imported again is not its own match). Returns
        the pairs at or above `min_probability` and the comparisons made."""
        return self.score_normalised(
            model,
            [(ref, normalise_record(f)) for ref, f in new],
            min_probability=min_probability,
        )

    def score_normalised(
        self,
        model: MatchModel,
        new: Sequence[tuple[RecordRef, NormalisedRecord]],
        *,
        min_probability: float,
    ) -> tuple[list[PairScore], int]:
        """`score` for records normalised already."""
        if not new:
            return [], 0
        normalised = [r for _, r in new]
        li: list[int] = []
        found: list[int] = []
        with self._lock:
            for i, ((ref, _), record) in enumerate(zip(new, normalised, strict=True)):
                own = self._position.get(ref.key)
                for p in self._blocks.candidate_positions(record, self.max_candidates):
                    # Dead positions (erased, replaced) are not in _position's
                    # values; their refs are None.
                    if p != own and self._refs[p] is not None:
                        li.append(i)
                        found.append(p)
            if not li:
                return [], 0
            positions = np.asarray(found, dtype=np.int64)
            right = self._columns.take(positions)
            # The list as it is now: an erasure while scoring sets an entry
            # to None (that pair is then dropped); compaction makes a new list.
            refs = self._refs
        left = RecordColumns.of(normalised)
        lidx = np.asarray(li, dtype=np.int64)
        ridx = np.arange(len(found), dtype=np.int64)
        pairs = compare(left, lidx, right, ridx)
        weights = model.weigh(pairs)
        out = []
        for k in np.flatnonzero(weights.probability >= min_probability):
            partner = refs[found[k]]
            if partner is None:
                continue
            out.append(
                PairScore(
                    partner,
                    new[li[k]][0],
                    float(weights.probability[k]),
                    model.details(pairs, weights, int(k)),
                )
            )
        return out, len(li)


class ChainGuard:
    """The records of the customers a batch may merge probabilistically, as
    match features by identifier hash, and the check before such a merge
    (domain/matching/chaining.py). Customers' members come from the view,
    so merges made earlier in the batch are followed."""

    def __init__(self, model: MatchModel, view: GraphView) -> None:
        self.model = model
        self.view = view
        self._records: dict[str, list[NormalisedRecord]] = {}
        self.refused = 0

    def know(self, identifier_hash: str, record: NormalisedRecord) -> None:
        self._records.setdefault(identifier_hash, []).append(record)

    def know_all(self, records: Mapping[str, Sequence[NormalisedRecord]]) -> None:
        for h, recs in records.items():
            for r in recs:
                self.know(h, r)

    def own(self, identifier_hash: str) -> list[NormalisedRecord]:
        return list(self._records.get(identifier_hash, ()))

    def members(self, customer: str) -> list[NormalisedRecord]:
        seen: set[str] = set()
        out: list[NormalisedRecord] = []
        for h in self.view.members.get(customer, ()):
            for r in self._records.get(h, ()):
                if r.record_id not in seen:
                    seen.add(r.record_id)
                    out.append(r)
        return out

    def allows(self, a: str, b: str, extra: Sequence[NormalisedRecord] = ()) -> bool:
        """May customers ``a`` and ``b`` (the second joined by ``extra``
        records not in the graph yet) become one? Counts a refusal."""
        if a == b:
            return True
        left = self.members(a)
        right = [*self.members(b), *extra] if b else list(extra)
        if clusters_contradict(self.model, left, right):
            self.refused += 1
            return False
        return True


def review_item_rows(
    open_pairs: set[frozenset[str]],
    view: GraphView,
    unsure: Sequence[PairScore],
    *,
    event_id: str,
    now: datetime,
) -> list[dict[str, object]]:
    """Unsure pairs still apart, not split or rejected apart, and not already
    waiting for a decision (`open_pairs`): one review item per pair of
    customers, asked with the strongest evidence."""
    items: list[dict[str, object]] = []
    asked: set[frozenset[str]] = set()
    for m in sorted(unsure, key=lambda m: (-m.probability, m.partner.key, m.record.key)):
        ra, rb = m.partner, m.record
        ca, cb = view.owner_of.get(ra.identifier.hash), view.owner_of.get(rb.identifier.hash)
        if ca is None or cb is None or ca == cb:
            continue
        if cb in view.cannot_link.get(ca, set()):
            continue
        pair = frozenset((ra.identifier.hash, rb.identifier.hash))
        customers = frozenset((ca, cb))
        if pair in open_pairs or customers in asked:
            continue
        open_pairs.add(pair)
        asked.add(customers)
        items.append(
            {
                "item_id": str(uuid.uuid4()),
                "status": "open",
                "probability": m.probability,
                "weights": m.weights_json(),
                "source_a": ra.source[:32],
                "record_id_a": ra.record_id[:200],
                "hash_a": ra.identifier.hash,
                "source_b": rb.source[:32],
                "record_id_b": rb.record_id[:200],
                "hash_b": rb.identifier.hash,
                "event_id": event_id[:64],
                "created_at": now,
                "decided_at": None,
                "decided_by": "",
                "reason": "",
            }
        )
    return items


def evidence_row(m: PairScore, cause: str, now: datetime) -> dict[str, object]:
    return {
        "event_id": cause[:64],
        "hash_a": m.partner.identifier.hash,
        "hash_b": m.record.identifier.hash,
        "probability": m.probability,
        "weights": m.weights_json(),
        "created_at": now,
    }


def index_stored_records(
    session: Session,
    store: TraitStore,
    index: CandidateIndex,
    hasher: IdentifierHasher,
    customers: Collection[str] | None = None,
) -> int:
    """At start: every stored record's traits, opened with its customer's
    key, become candidates again; with ``customers``, only theirs (another
    replica wrote them). Returns how many records were indexed."""
    n = 0
    batch: list[tuple[RecordRef, CustomerRecord]] = []
    owners: dict[str, str] = {}
    for r in store.records(session, customers=customers):
        ref = RecordRef(r.source, r.record_id, HashedId(r.id_type, r.record_ref, r.namespace))
        batch.append((ref, features_of(ref.key, r.traits, hasher=hasher)))
        owners[ref.key] = r.customer_id
        if len(batch) >= 5000:
            n += index.put(batch, owners)
            batch, owners = [], {}
    n += index.put(batch, owners)
    return n
