"""Blocking: which pairs are worth comparing at all.

Comparing every record with every other is quadratic; a true match almost
always agrees exactly on at least one cheap key (postcode, date of birth, the
two names, a phone tail …). Each rule is such a key. A pair is a candidate
when any rule puts both records in one block, so recall is the union of the
rules while the cost is the sum of their block sizes.

The same index serves the batch path (all candidate pairs of two sets) and the
real-time path (the candidates of one new record).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from identity.domain.matching.names import fold
from identity.domain.matching.record import NormalisedRecord

_Int = npt.NDArray[np.int64]
KeyOf = Callable[[NormalisedRecord], str]


@dataclass(frozen=True, slots=True)
class BlockingRule:
    name: str
    key: KeyOf  # "" means the record has no key for this rule
    # Comparison fields the rule forces to agree exactly. EM trained on this
    # rule's pairs cannot learn those fields' m (every pair agrees), and the
    # agreement they force is what turns the rule's match rate into the prior.
    fields: tuple[str, ...] = ()


def _both(a: str, b: str) -> str:
    return f"{a}|{b}" if a and b else ""


def _names(r: NormalisedRecord) -> str:
    # Sorted, so records with the names in swapped boxes share the block;
    # Korean names by phonetic keys, so 지훈 and "Jihoon" share it too.
    if r.korean_name:
        a, b = sorted((fold(r.given_as_family), fold(r.family)))
    else:
        a, b = sorted((r.given_as_family, r.family))
    return _both(a, b)


BY_POSTCODE = BlockingRule("postcode", lambda r: r.postcode, ("postcode",))
BY_DOB = BlockingRule("date_of_birth", lambda r: r.dob, ("date_of_birth",))
BY_NAMES = BlockingRule("names", _names, ("given_name", "family_name"))
BY_PHONE_TAIL = BlockingRule("phone_last_8", lambda r: r.phone[-8:])
BY_EMAIL = BlockingRule("email_hash", lambda r: r.email_hash, ("email_hash",))
BY_NATIONAL_ID = BlockingRule("national_id", lambda r: r.national_id, ("national_id",))
BY_FAMILY_PREFIX_BIRTH_YEAR = BlockingRule(
    "family_3_birth_year", lambda r: _both(r.family[:3], r.dob[:4])
)
BY_STREET = BlockingRule("street", lambda r: r.street, ("street",))
BY_GIVEN_CITY = BlockingRule("given_city", lambda r: _both(r.given, r.city))
BY_FAMILY_CITY = BlockingRule("family_city", lambda r: _both(r.family, r.city))


def _house(r: NormalisedRecord) -> str:
    # House number and street name, whatever follows: the second address
    # line is the part sources drop or reorder most.
    words = r.street.split()
    return " ".join(words[:2]) if len(words) >= 2 else ""


BY_HOUSE = BlockingRule("house", _house)

PREDICTION_RULES: tuple[BlockingRule, ...] = (
    BY_POSTCODE,
    BY_DOB,
    BY_NAMES,
    BY_PHONE_TAIL,
    BY_EMAIL,
    BY_NATIONAL_ID,
    BY_FAMILY_PREFIX_BIRTH_YEAR,
    BY_STREET,
    BY_HOUSE,
    BY_GIVEN_CITY,
    BY_FAMILY_CITY,
)
# EM needs blocks where matches are a sizeable share of the pairs, and
# together the rules must leave every field unblocked in some session.
TRAINING_RULES: tuple[BlockingRule, ...] = (BY_DOB, BY_POSTCODE, BY_NAMES)

# A key shared by thousands of records ("00000" postcodes, a shop's phone)
# says nothing about identity and would make one block cost millions of pairs.
MAX_BLOCK_SIZE = 2_000


class BlockingIndex:
    """Records indexed by every rule's key."""

    def __init__(
        self,
        records: Sequence[NormalisedRecord],
        rules: Sequence[BlockingRule] = PREDICTION_RULES,
        max_block_size: int = MAX_BLOCK_SIZE,
    ) -> None:
        self.rules = tuple(rules)
        self.max_block_size = max_block_size
        self._ids: list[str] = []
        self._blocks: dict[str, dict[str, list[int]]] = {r.name: defaultdict(list) for r in rules}
        self.add_all(records)

    def __len__(self) -> int:
        return len(self._ids)

    def add_all(self, records: Iterable[NormalisedRecord]) -> None:
        for r in records:
            self.add(r)

    def add(self, record: NormalisedRecord) -> int:
        """Index a record; returns its position."""
        pos = len(self._ids)
        self._ids.append(record.record_id)
        for rule in self.rules:
            key = rule.key(record)
            if key:
                self._blocks[rule.name][key].append(pos)
        return pos

    def record_id(self, position: int) -> str:
        return self._ids[position]

    def candidate_positions(self, record: NormalisedRecord, budget: int | None = None) -> list[int]:
        """Positions of indexed records sharing a block with ``record``.

        With a ``budget``, the record's blocks are taken smallest first while
        they fit in it: a small block (a date of birth, a postcode, the two
        names) is selective, a large one (a family name in a city) mostly
        brings strangers. The budget bounds the comparisons of one real-time
        call however the base grows; the records a block beyond it would
        have brought in are those a smaller block did not already find."""
        blocks = []
        for rule in self.rules:
            key = rule.key(record)
            if not key:
                continue
            block = self._blocks[rule.name].get(key)
            if block and len(block) <= self.max_block_size:
                blocks.append(block)
        found: set[int] = set()
        if budget is None:
            for block in blocks:
                found.update(block)
        else:
            for block in sorted(blocks, key=len):
                if len(found) + len(block) > budget:
                    break
                found.update(block)
        return sorted(found)

    def candidates(self, record: NormalisedRecord) -> list[str]:
        """Record ids of the candidates for one new record (real-time path)."""
        return [
            self._ids[p]
            for p in self.candidate_positions(record)
            if self._ids[p] != record.record_id
        ]

    def pairs_with(self, others: Sequence[NormalisedRecord] | None = None) -> tuple[_Int, _Int]:
        """Candidate pairs ``(positions in others, positions in this index)``,
        each pair once however many rules found it. With ``others`` None the
        index is deduplicated against itself: pairs ``i < j`` of its records."""
        dedupe = others is None
        n_right = len(self._ids)
        codes: list[_Int] = []
        for rule in self.rules:
            blocks = self._blocks[rule.name]
            if dedupe:
                for members in blocks.values():
                    if 1 < len(members) <= self.max_block_size:
                        m = np.asarray(members, dtype=np.int64)
                        i, j = np.triu_indices(len(m), k=1)
                        codes.append(m[i] * n_right + m[j])
                continue
            left_blocks: dict[str, list[int]] = defaultdict(list)
            for pos, r in enumerate(others or ()):
                key = rule.key(r)
                if key and key in blocks:
                    left_blocks[key].append(pos)
            for key, left in left_blocks.items():
                right = blocks[key]
                if len(left) * len(right) > self.max_block_size**2 // 4:
                    continue
                lm = np.asarray(left, dtype=np.int64)
                rm = np.asarray(right, dtype=np.int64)
                codes.append((lm[:, None] * n_right + rm[None, :]).ravel())
        if not codes:
            empty = np.zeros(0, dtype=np.int64)
            return empty, empty
        unique = np.unique(np.concatenate(codes))
        return unique // n_right, unique % n_right


def rule_pairs(
    rule: BlockingRule,
    left: Sequence[NormalisedRecord],
    right: Sequence[NormalisedRecord] | None,
    max_block_size: int = MAX_BLOCK_SIZE,
) -> tuple[_Int, _Int]:
    """Candidate pairs of one rule alone (EM training sessions)."""
    index = BlockingIndex(right if right is not None else left, (rule,), max_block_size)
    return index.pairs_with(left if right is not None else None)
