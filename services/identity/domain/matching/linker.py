"""Batch linkage: block, compare, score, cluster.

``link_batch`` is what an import or backfill runs: it trains the model on the
data itself by EM when none is given (no labels needed), scores every blocked
candidate pair and returns the pairs worth keeping. ``cluster`` turns accepted
links into people.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from identity.domain.matching.blocking import (
    PREDICTION_RULES,
    TRAINING_RULES,
    BlockingIndex,
    BlockingRule,
    rule_pairs,
)
from identity.domain.matching.comparisons import RecordColumns, compare
from identity.domain.matching.model import (
    LOWER_THRESHOLD,
    UPPER_THRESHOLD,
    MatchModel,
    TermFrequencies,
)
from identity.domain.matching.record import CustomerRecord, NormalisedRecord, normalise_record

_Int = npt.NDArray[np.int64]
RANDOM_PAIRS = 1_000_000
# Share of records with Korean names from which a trained model applies the
# household rules to every pair (HouseholdRules.scope "all").
KOREAN_BASE_SHARE = 0.3
_TF_FIELDS = {
    "given_name": "given",
    "family_name": "family",
    "city": "city",
    "postcode": "postcode",
}


class ScoredPair(NamedTuple):
    id1: str
    id2: str
    probability: float


@dataclass(frozen=True, slots=True)
class BatchLinkage:
    pairs: list[ScoredPair]  # candidate pairs at or above the kept probability
    comparisons: int  # candidate pairs scored after blocking
    model: MatchModel


def _normalised(records: Iterable[CustomerRecord | NormalisedRecord]) -> list[NormalisedRecord]:
    return [normalise_record(r) if isinstance(r, CustomerRecord) else r for r in records]


def _random_pairs(n_left: int, n_right: int | None, count: int, seed: int) -> tuple[_Int, _Int]:
    """Random distinct pairs: across the two sets, or within one set."""
    rng = np.random.default_rng(seed)
    if n_right is None:
        i = rng.integers(0, n_left, count)
        j = rng.integers(0, n_left, count)
        keep = i != j
        return i[keep], j[keep]
    return rng.integers(0, n_left, count), rng.integers(0, n_right, count)


def term_frequencies(records: Sequence[NormalisedRecord]) -> dict[str, TermFrequencies]:
    return {
        name: TermFrequencies.of(getattr(r, attr) for r in records)
        for name, attr in _TF_FIELDS.items()
    }


def train_model(
    records_a: Sequence[CustomerRecord | NormalisedRecord],
    records_b: Sequence[CustomerRecord | NormalisedRecord] | None = None,
    *,
    training_rules: Sequence[BlockingRule] = TRAINING_RULES,
    prediction_rules: Sequence[BlockingRule] = PREDICTION_RULES,
    random_pairs: int = RANDOM_PAIRS,
    seed: int = 0,
) -> MatchModel:
    """Train a model on unlabelled data, as Splink does: u from random pairs,
    m and the prior by EM over each training rule's blocked pairs."""
    left = _normalised(records_a)
    right = _normalised(records_b) if records_b is not None else None
    lc = RecordColumns.of(left)
    rc = RecordColumns.of(right) if right is not None else lc
    ri_, rj_ = _random_pairs(
        len(left), len(right) if right is not None else None, random_pairs, seed
    )
    random_levels = compare(lc, ri_, rc, rj_).levels
    sessions = []
    for rule in training_rules:
        li, ri = rule_pairs(rule, left, right)
        sessions.append((compare(lc, li, rc, ri).levels, rule.fields))
    index = BlockingIndex(right if right is not None else left, prediction_rules)
    li, ri = index.pairs_with(left if right is not None else None)
    n = len(left)
    all_pairs = n * len(right) if right is not None else n * (n - 1) // 2
    everyone = left + (right or [])
    model = MatchModel.train(
        random_levels,
        sessions,
        term_frequencies(everyone),
        candidates=(compare(lc, li, rc, ri).levels, all_pairs),
    )
    # A Korean customer base: the household rules hold for every pair, also
    # between records whose family names alone do not look Korean (Song, Ryu).
    korean = sum(r.korean_name for r in everyone) / max(len(everyone), 1)
    if korean >= KOREAN_BASE_SHARE:
        model.household = replace(model.household, scope="all")
    return model


def run_linkage(
    records_a: Sequence[CustomerRecord | NormalisedRecord],
    records_b: Sequence[CustomerRecord | NormalisedRecord] | None = None,
    model: MatchModel | None = None,
    *,
    min_probability: float = LOWER_THRESHOLD,
    rules: Sequence[BlockingRule] = PREDICTION_RULES,
) -> BatchLinkage:
    """Link two sets (``records_b`` given) or deduplicate one."""
    left = _normalised(records_a)
    right = _normalised(records_b) if records_b is not None else None
    if model is None:
        model = train_model(left, right)
    index = BlockingIndex(right if right is not None else left, rules)
    li, ri = index.pairs_with(left if right is not None else None)
    lc = RecordColumns.of(left)
    rc = RecordColumns.of(right) if right is not None else lc
    _, probability = model.probabilities(compare(lc, li, rc, ri))
    keep = np.flatnonzero(probability >= min_probability)
    pairs = [
        ScoredPair(lc.record_ids[li[k]], rc.record_ids[ri[k]], float(probability[k])) for k in keep
    ]
    return BatchLinkage(pairs, len(li), model)


def link_batch(
    records_a: Sequence[CustomerRecord | NormalisedRecord],
    records_b: Sequence[CustomerRecord | NormalisedRecord] | None = None,
    model: MatchModel | None = None,
    *,
    min_probability: float = LOWER_THRESHOLD,
) -> list[ScoredPair]:
    """Scored candidate pairs at or above ``min_probability`` (default: every
    pair worth at least a review)."""
    return run_linkage(records_a, records_b, model, min_probability=min_probability).pairs


def cluster(pairs: Iterable[ScoredPair], threshold: float = UPPER_THRESHOLD) -> list[set[str]]:
    """Groups of record ids joined by links at or above ``threshold``
    (union-find, so A~B and B~C put A and C together). Records without an
    accepted link are not listed."""
    parent: dict[str, str] = {}

    def root(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]  # path halving keeps trees shallow
            x = parent[x]
        return x

    for a, b, p in pairs:
        if p >= threshold:
            ra, rb = root(a), root(b)
            if ra != rb:
                parent[max(ra, rb)] = min(ra, rb)
    groups: dict[str, set[str]] = {}
    for x in parent:
        groups.setdefault(root(x), set()).add(x)
    return list(groups.values())
