"""Scoring one new record as it arrives, against the records already known.

The batch path and this one share the model parameters and the blocking
rules, so a record scored here gets the probability a backfill would have
given it; only the candidates differ (those the index finds for this record).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from identity.domain.matching.blocking import PREDICTION_RULES, BlockingIndex, BlockingRule
from identity.domain.matching.comparisons import RecordColumns, compare
from identity.domain.matching.linker import ScoredPair
from identity.domain.matching.model import LOWER_THRESHOLD, MatchModel
from identity.domain.matching.record import CustomerRecord, NormalisedRecord, normalise_record


class RealtimeMatcher:
    """Known records in a blocking index, scored on demand against a new one."""

    def __init__(
        self,
        model: MatchModel,
        records: Iterable[CustomerRecord | NormalisedRecord] = (),
        rules: tuple[BlockingRule, ...] = PREDICTION_RULES,
    ) -> None:
        self.model = model
        self._records: list[NormalisedRecord] = []
        self._index = BlockingIndex((), rules)
        for r in records:
            self.add(r)

    def __len__(self) -> int:
        return len(self._records)

    def add(self, record: CustomerRecord | NormalisedRecord) -> NormalisedRecord:
        normalised = normalise_record(record) if isinstance(record, CustomerRecord) else record
        self._index.add(normalised)
        self._records.append(normalised)
        return normalised

    def match(
        self,
        record: CustomerRecord | NormalisedRecord,
        min_probability: float = LOWER_THRESHOLD,
    ) -> list[ScoredPair]:
        """Known records that may be the same person, most likely first."""
        new = normalise_record(record) if isinstance(record, CustomerRecord) else record
        positions = [
            p
            for p in self._index.candidate_positions(new)
            if self._records[p].record_id != new.record_id
        ]
        if not positions:
            return []
        known = RecordColumns.of([self._records[p] for p in positions])
        one = RecordColumns.of([new])
        li = np.zeros(len(positions), dtype=np.int64)
        ri = np.arange(len(positions), dtype=np.int64)
        _, probability = self.model.probabilities(compare(one, li, known, ri))
        found = [
            ScoredPair(new.record_id, known.record_ids[k], float(probability[k]))
            for k in np.flatnonzero(probability >= min_probability)
        ]
        return sorted(found, key=lambda s: -s.probability)
