"""The chaining guard: one link must not join two people through a third.

Clustering by links is transitive: A~B and B~C put A and C together even
when A and C contradict each other. A single wrong probabilistic link between
a 3-record and a 4-record customer makes one 7-record customer. So before a
probabilistic link merges two customers, every record of one is compared with
every record of the other, and the merge is refused when any pair of them
contradicts (``model.household_patterns``: a clearly different given or
family name, birth date, two different mobiles, a Latin name that is no
romanisation of the Hangul one). The pair itself passed; the guard looks at
the company it brings along.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from identity.domain.matching.comparisons import RecordColumns, compare
from identity.domain.matching.model import MatchModel, household_patterns
from identity.domain.matching.record import NormalisedRecord

# Beyond this many cross pairs the guard compares a sample of the largest
# customer's records (a customer of hundreds of records is a data problem
# the review queue should see anyway).
MAX_CROSS_PAIRS = 20_000


def clusters_contradict(
    model: MatchModel,
    left: Sequence[NormalisedRecord],
    right: Sequence[NormalisedRecord],
) -> bool:
    """Does any record of ``left`` contradict any record of ``right``?"""
    if not left or not right:
        return False
    a, b = list(left), list(right)
    while len(a) * len(b) > MAX_CROSS_PAIRS:
        if len(a) >= len(b):
            a = a[: max(1, len(a) // 2)]
        else:
            b = b[: max(1, len(b) // 2)]
    lc, rc = RecordColumns.of(a), RecordColumns.of(b)
    li = np.repeat(np.arange(len(a), dtype=np.int64), len(b))
    ri = np.tile(np.arange(len(b), dtype=np.int64), len(a))
    conflict, _ = household_patterns(compare(lc, li, rc, ri), model.household.scope)
    return bool(conflict.any())
