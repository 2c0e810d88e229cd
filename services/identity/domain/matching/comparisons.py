"""Comparison levels: how alike two records are, field by field.

Each field is compared into a small number of ordered levels, from 0 ("else",
nothing alike) up to the most similar ("exact"), as Splink does. The model
learns how much each level is worth; this module only decides which level a
pair is in. A value missing on either side is the "null" level (-1), which
carries no weight: absence of data is not evidence either way.

Everything works on columns of many pairs at once (numpy and rapidfuzz's
``cpdist``), because a batch link compares hundreds of thousands of pairs and
a per-pair Python loop would dominate the runtime. Scoring one new record is
the same code with short columns.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from rapidfuzz import process
from rapidfuzz.distance import OSA, JaroWinkler

from identity.domain.matching.names import has_hangul, romanisation_distance
from identity.domain.matching.record import NormalisedRecord

NULL_LEVEL = -1
Levels = npt.NDArray[np.int8]
# Object arrays of str: gathering and handing them to rapidfuzz is several
# times faster than numpy fixed-width unicode, which converts on every access.
_Str = npt.NDArray[np.object_]
_Bool = npt.NDArray[np.bool_]
_Float = npt.NDArray[np.float64]
_Int = npt.NDArray[np.int64]

# rapidfuzz spreads long columns over all cores; for a handful of pairs (the
# real-time path) starting threads costs more than it saves.
_PARALLEL_FROM = 20_000


@dataclass(frozen=True, slots=True)
class FieldComparison:
    name: str
    levels: tuple[str, ...]  # labels, index = level; 0 is "else", last is "exact"
    term_frequency: bool = False  # exact matches weigh by how rare the value is

    @property
    def exact_level(self) -> int:
        return len(self.levels) - 1


_NAME_LEVELS = ("else", "jaro_winkler>=0.7", "jaro_winkler>=0.88", "jaro_winkler>=0.92", "exact")
_PLACE_LEVELS = ("else", "jaro_winkler>=0.7", "jaro_winkler>=0.9", "exact")

FIELDS: tuple[FieldComparison, ...] = (
    FieldComparison("given_name", _NAME_LEVELS, term_frequency=True),
    FieldComparison("family_name", _NAME_LEVELS, term_frequency=True),
    FieldComparison(
        "date_of_birth",
        ("else", "year_within_1", "one_component_differs_or_day_month_swapped", "exact"),
    ),
    FieldComparison("street", _PLACE_LEVELS),
    FieldComparison("city", _PLACE_LEVELS, term_frequency=True),
    FieldComparison(
        "postcode", ("else", "first_3_chars", "one_edit", "exact"), term_frequency=True
    ),
    FieldComparison("state", ("else", "exact")),
    FieldComparison("phone", ("else", "last_8_digits", "exact")),
    FieldComparison("email_hash", ("else", "exact")),
    FieldComparison("national_id", ("else", "one_edit", "exact")),
)
FIELD_INDEX: dict[str, int] = {f.name: i for i, f in enumerate(FIELDS)}


def _col(values: Iterable[str]) -> _Str:
    return np.asarray(list(values), dtype=object)


@dataclass(frozen=True, slots=True)
class RecordColumns:
    """Normalised records stored column by column, so comparisons can gather
    the values of many pairs with one fancy-indexing step."""

    record_ids: list[str]
    given: _Str
    family: _Str
    given_as_family: _Str
    dob: _Str
    dob_ymd: _Int  # (n, 3) year, month, day; -1 where missing
    street: _Str
    city: _Str
    postcode: _Str
    state: _Str
    phone: _Str
    email_hash: _Str
    national_id: _Str
    given_written: _Str
    given_hangul: _Bool  # given_written is Hangul
    phone_personal: _Bool
    korean_name: _Bool
    # Derived once per record, not once per pair (`derived_keys`): the
    # phone's last eight digits, the postcode's first three characters, the
    # given name's first letter.
    phone_tail: _Str
    postcode_3: _Str
    given_initial: _Str

    @classmethod
    def of(cls, records: Sequence[NormalisedRecord]) -> RecordColumns:
        ymd = np.full((len(records), 3), -1, dtype=np.int64)
        for i, r in enumerate(records):
            if r.dob:
                ymd[i] = _ymd(r.dob)
        return cls(
            record_ids=[r.record_id for r in records],
            given=_col(r.given for r in records),
            family=_col(r.family for r in records),
            given_as_family=_col(r.given_as_family for r in records),
            dob=_col(r.dob for r in records),
            dob_ymd=ymd,
            street=_col(r.street for r in records),
            city=_col(r.city for r in records),
            postcode=_col(r.postcode for r in records),
            state=_col(r.state for r in records),
            phone=_col(r.phone for r in records),
            email_hash=_col(r.email_hash for r in records),
            national_id=_col(r.national_id for r in records),
            given_written=_col(r.given_written for r in records),
            given_hangul=np.asarray([has_hangul(r.given_written) for r in records], dtype=np.bool_),
            phone_personal=np.asarray([r.phone_personal for r in records], dtype=np.bool_),
            korean_name=np.asarray([r.korean_name for r in records], dtype=np.bool_),
            **{
                name: _col(keys[k] for keys in map(derived_keys, records))
                for k, name in enumerate(_DERIVED_COLUMNS)
            },
        )

    def __len__(self) -> int:
        return len(self.record_ids)


def _ymd(dob: str) -> tuple[int, int, int]:
    return int(dob[:4]), int(dob[4:6]), int(dob[6:8])


# RecordColumns' columns derived from a record's values (`derived_keys`).
_DERIVED_COLUMNS: tuple[str, ...] = ("phone_tail", "postcode_3", "given_initial")


def derived_keys(record: NormalisedRecord) -> tuple[str, str, str]:
    """What the comparisons read of a record beyond its values, in
    `_DERIVED_COLUMNS` order: computed when the record is stored, so scoring
    it against a hundred candidates does not slice its strings a hundred
    times."""
    return record.phone[-8:], record.postcode[:3], record.given[:1]


# RecordColumns' string columns (NormalisedRecord attributes of the same name).
_STRING_COLUMNS: tuple[str, ...] = (
    "given",
    "family",
    "given_as_family",
    "dob",
    "street",
    "city",
    "postcode",
    "state",
    "phone",
    "email_hash",
    "national_id",
    "given_written",
)


class ColumnStore:
    """Records kept column by column as they arrive, one position each (the
    real-time candidate index). Scoring a new record gathers its candidates'
    values by position with one fancy-indexing step (all string columns are
    one 2-D array; a candidate's row is one gather, its columns views of
    it), instead of converting each candidate's record again on every call.
    A cleared position holds empty values: an erased record's raw values
    are gone from memory, not just unreachable."""

    # Columns of the string array: the record id, its values, derived keys.
    _COLUMNS: tuple[str, ...] = ("record_id", *_STRING_COLUMNS, *_DERIVED_COLUMNS)

    def __init__(self, capacity: int = 1024) -> None:
        self._n = 0
        self._capacity = 0
        self._strings: _Str = np.zeros((0, len(self._COLUMNS)), dtype=object)
        self._ymd: _Int = np.zeros((0, 3), dtype=np.int64)
        self._given_hangul: _Bool = np.zeros(0, dtype=np.bool_)
        self._phone_personal: _Bool = np.zeros(0, dtype=np.bool_)
        self._korean_name: _Bool = np.zeros(0, dtype=np.bool_)
        self._grow(capacity)

    def __len__(self) -> int:
        return self._n

    def _grow(self, capacity: int) -> None:
        n = self._n

        def grown(old: npt.NDArray[Any], fill: Any, shape: tuple[int, ...] = ()) -> Any:
            new = np.full((capacity, *shape), fill, dtype=old.dtype)
            new[:n] = old[:n]
            return new

        self._strings = grown(self._strings, "", (len(self._COLUMNS),))
        self._ymd = grown(self._ymd, -1, (3,))
        self._given_hangul = grown(self._given_hangul, False)
        self._phone_personal = grown(self._phone_personal, False)
        self._korean_name = grown(self._korean_name, False)
        self._capacity = capacity

    def append(self, record: NormalisedRecord) -> int:
        """Store a record; returns its position."""
        if self._n == self._capacity:
            self._grow(max(2 * self._capacity, 1024))
        pos = self._n
        row = self._strings[pos]
        row[0] = record.record_id
        for j, name in enumerate(_STRING_COLUMNS, start=1):
            row[j] = getattr(record, name)
        for j, value in enumerate(derived_keys(record), start=1 + len(_STRING_COLUMNS)):
            row[j] = value
        if record.dob:
            self._ymd[pos] = _ymd(record.dob)
        self._given_hangul[pos] = has_hangul(record.given_written)
        self._phone_personal[pos] = record.phone_personal
        self._korean_name[pos] = record.korean_name
        self._n += 1
        return pos

    def clear(self, position: int) -> None:
        """Forget a record's values (erasure); the position stays taken."""
        self._strings[position] = ""
        self._ymd[position] = -1
        self._given_hangul[position] = False
        self._phone_personal[position] = False
        self._korean_name[position] = False

    def take(self, positions: _Int) -> RecordColumns:
        """The records at ``positions`` as columns (copies)."""
        block = self._strings[positions]
        return RecordColumns(
            record_ids=block[:, 0].tolist(),
            **{name: block[:, j] for j, name in enumerate(self._COLUMNS) if j},
            dob_ymd=self._ymd[positions],
            given_hangul=self._given_hangul[positions],
            phone_personal=self._phone_personal[positions],
            korean_name=self._korean_name[positions],
        )


def _pairwise(scorer: Any, a: _Str, b: _Str, **kwargs: Any) -> _Float:
    if len(a) == 0:
        return np.zeros(0)
    workers = -1 if len(a) >= _PARALLEL_FROM else 1
    out = process.cpdist(a.tolist(), b.tolist(), scorer=scorer, workers=workers, **kwargs)
    return np.asarray(out, dtype=np.float64)


def jaro_winkler(a: _Str, b: _Str) -> _Float:
    return _pairwise(JaroWinkler.normalized_similarity, a, b)


def edits(a: _Str, b: _Str) -> _Float:
    """Edit distance counting a swap of two neighbours as one edit: typed
    digits are as often transposed (3169 for 3196) as mistyped."""
    return _pairwise(OSA.distance, a, b)


def _null(a: _Str, b: _Str) -> _Bool:
    return np.asarray((a == "") | (b == ""))


def _by_similarity(exact: _Bool, sim: _Float, thresholds: Sequence[float], null: _Bool) -> Levels:
    """Level from the highest threshold reached; thresholds descend."""
    levels = np.zeros(len(sim), dtype=np.int8)
    top = len(thresholds) + 1
    for rank, t in enumerate(sorted(thresholds)):
        levels[sim >= t] = rank + 1
    levels[exact] = top
    levels[null] = NULL_LEVEL
    return levels


def string_levels(a: _Str, b: _Str, thresholds: Sequence[float]) -> Levels:
    return _by_similarity(a == b, jaro_winkler(a, b), thresholds, _null(a, b))


def name_levels(
    left: RecordColumns,
    li: _Int,
    right: RecordColumns,
    ri: _Int,
    distance: npt.NDArray[np.int8] | None = None,
) -> tuple[Levels, _Bool]:
    """Given- and family-name levels, shape (n, 2), and where the crossed
    order was used.

    Both orders are tried: a source that filled the boxes the other way round
    ("Kim" as given name) still agrees. The crossed order is compared on
    family-name keys, so "Gim" in the wrong box still meets "Kim"."""
    ga, gb = left.given[li], right.given[ri]
    fa, fb = left.family[li], right.family[ri]
    xa, xb = left.given_as_family[li], right.given_as_family[ri]
    thresholds = (0.92, 0.88, 0.7)
    g_straight, f_straight = jaro_winkler(ga, gb), jaro_winkler(fa, fb)
    g_cross, f_cross = jaro_winkler(xa, fb), jaro_winkler(fa, xb)
    # Swap only when clearly better, so noise in two different people's names
    # never picks the kinder order.
    swap = (g_cross + f_cross) > (g_straight + f_straight) + 0.1
    given = _by_similarity(ga == gb, g_straight, thresholds, _null(ga, gb))
    family = _by_similarity(fa == fb, f_straight, thresholds, _null(fa, fb))
    if swap.any():  # rare: the crossed levels only where they are used
        s = np.flatnonzero(swap)
        given[s] = _by_similarity(xa[s] == fb[s], g_cross[s], thresholds, _null(xa[s], fb[s]))
        family[s] = _by_similarity(fa[s] == xb[s], f_cross[s], thresholds, _null(fa[s], xb[s]))
    # Across scripts the Hangul decides: a usual romanisation of it agrees
    # exactly, any other spelling does not, even when the phonetic keys
    # coincide.
    exact = len(_NAME_LEVELS) - 1
    if distance is None:
        distance = romanisation_distances(left, li, right, ri)
    cross = ~swap & (distance >= 0)
    given = np.where(cross & (distance == 0), exact, given)
    given = np.where(cross & (distance > 0) & (given == exact), exact - 1, given)
    return np.stack([given, family], axis=1).astype(np.int8), np.asarray(swap)


def _cross_script(left: RecordColumns, li: _Int, right: RecordColumns, ri: _Int) -> _Bool:
    """One given name in Hangul, the other in Latin letters."""
    wa, wb = left.given_written[li], right.given_written[ri]
    return np.asarray((left.given_hangul[li] != right.given_hangul[ri]) & (wa != "") & (wb != ""))


def romanisation_distances(
    left: RecordColumns, li: _Int, right: RecordColumns, ri: _Int
) -> npt.NDArray[np.int8]:
    """Per pair, edits from the Latin given name to a romanisation of the
    Hangul one (0, 1, or 2 for more); -1 where the pair is not one of each
    script. Each distinct pair of names is checked once."""
    out = np.full(len(li), -1, dtype=np.int8)
    where = np.flatnonzero(_cross_script(left, li, right, ri))
    if not len(where):
        return out
    a_hangul = left.given_hangul[li[where]]
    wa = left.given_written[li[where]]
    wb = right.given_written[ri[where]]
    hangul = np.where(a_hangul, wa, wb).tolist()
    latin = np.where(a_hangul, wb, wa).tolist()
    seen: dict[tuple[str, str], int] = {}
    values = []
    for pair in zip(hangul, latin, strict=True):
        d = seen.get(pair)
        if d is None:
            d = seen[pair] = romanisation_distance(*pair)
        values.append(d)
    out[where] = values
    return out


def script_differences(
    left: RecordColumns,
    li: _Int,
    right: RecordColumns,
    ri: _Int,
    distance: npt.NDArray[np.int8] | None = None,
) -> tuple[_Bool, _Bool]:
    """(both given names in Hangul and different, one in Hangul and the
    other in Latin letters more than one typo away from a usual romanisation
    of it). In one script a different syllable is a different name (민준 /
    민지), not a typo; across scripts the check is
    ``names.romanisation_distance``."""
    wa, wb = left.given_written[li], right.given_written[ri]
    both = np.asarray(left.given_hangul[li] & right.given_hangul[ri] & (wa != wb))
    if distance is None:
        distance = romanisation_distances(left, li, right, ri)
    return both, np.asarray(distance > 1)


def dob_levels(a: _Int, b: _Int) -> Levels:
    """Dates of birth as (n, 3) year/month/day arrays."""
    same = a == b
    n_same = same.sum(axis=1)
    swapped = same[:, 0] & (a[:, 1] == b[:, 2]) & (a[:, 2] == b[:, 1])
    levels = np.zeros(len(a), dtype=np.int8)
    levels[np.abs(a[:, 0] - b[:, 0]) <= 1] = 1
    levels[(n_same == 2) | swapped] = 2
    levels[n_same == 3] = 3
    levels[(a[:, 0] < 0) | (b[:, 0] < 0)] = NULL_LEVEL
    return levels


def postcode_levels(
    a: _Str, b: _Str, prefix_a: _Str | None = None, prefix_b: _Str | None = None
) -> Levels:
    """``prefix_a``/``prefix_b``: the first three characters, when known
    already (RecordColumns.postcode_3)."""
    levels = np.zeros(len(a), dtype=np.int8)
    if prefix_a is None or prefix_b is None:
        prefix_a, prefix_b = a.astype("U3"), b.astype("U3")
    levels[prefix_a == prefix_b] = 1
    levels[edits(a, b) <= 1] = 2
    levels[a == b] = 3
    levels[_null(a, b)] = NULL_LEVEL
    return levels


def exact_levels(a: _Str, b: _Str) -> Levels:
    levels = np.asarray(a == b, dtype=np.int8)
    levels[_null(a, b)] = NULL_LEVEL
    return levels


def phone_levels(
    a: _Str, b: _Str, tail_a: _Str | None = None, tail_b: _Str | None = None
) -> Levels:
    """``tail_a``/``tail_b``: the last eight digits, when known already
    (RecordColumns.phone_tail)."""
    # The last eight digits survive every prefix convention (+82 10…, 010…).
    levels = np.zeros(len(a), dtype=np.int8)
    if tail_a is None or tail_b is None:
        tail_a = np.asarray([s[-8:] for s in a.tolist()], dtype=np.str_)
        tail_b = np.asarray([s[-8:] for s in b.tolist()], dtype=np.str_)
    levels[tail_a == tail_b] = 1
    levels[a == b] = 2
    levels[_null(a, b)] = NULL_LEVEL
    return levels


def national_id_levels(a: _Str, b: _Str) -> Levels:
    levels = np.zeros(len(a), dtype=np.int8)
    levels[edits(a, b) <= 1] = 1
    levels[a == b] = 2
    levels[_null(a, b)] = NULL_LEVEL
    return levels


@dataclass(frozen=True, slots=True)
class ComparedPairs:
    """Comparison levels of the pairs ``(left[li[k]], right[ri[k]])``."""

    left: RecordColumns
    li: _Int
    right: RecordColumns
    ri: _Int
    levels: Levels  # (n_pairs, len(FIELDS)), columns in FIELDS order
    names_crossed: _Bool
    # Both given names in Hangul and different; one in Hangul and the other
    # not a romanisation of it (see ``script_differences``).
    hangul_given_differs: _Bool
    script_mismatch: _Bool
    # The phone agreement (exact or last eight digits) is on a number at
    # least one record holds as a landline / shared number.
    phone_shared: _Bool
    # Either record carries a Korean name (the household rules' scope).
    korean: _Bool
    # Both records hold a mobile (personal) number, and not the same one.
    mobiles_differ: _Bool
    # The given names' phonetic keys start differently (영수 / 경수 in Latin).
    given_initial_differs: _Bool
    # Either record has its given name in Hangul.
    any_hangul: _Bool

    def agreed_values(self, field: str) -> _Str:
        """The value each pair agreed on, for exact matches on a
        term-frequency field."""
        if field == "given_name":
            # A crossed agreement is on a value the right record holds as its
            # family name (see ``crossed_given``).
            crossed = self.right.family[self.ri]
            return np.where(self.names_crossed, crossed, self.left.given[self.li])
        if field == "family_name":
            return self.left.family[self.li]
        if field == "city":
            return self.left.city[self.li]
        if field == "postcode":
            return self.left.postcode[self.li]
        raise KeyError(field)


def compare(left: RecordColumns, li: _Int, right: RecordColumns, ri: _Int) -> ComparedPairs:
    out = np.empty((len(li), len(FIELDS)), dtype=np.int8)
    # Across scripts, once per pair: both the name levels and the household
    # rules read it.
    distance = romanisation_distances(left, li, right, ri)
    names, crossed = name_levels(left, li, right, ri, distance)
    out[:, FIELD_INDEX["given_name"]] = names[:, 0]
    out[:, FIELD_INDEX["family_name"]] = names[:, 1]
    out[:, FIELD_INDEX["date_of_birth"]] = dob_levels(left.dob_ymd[li], right.dob_ymd[ri])
    out[:, FIELD_INDEX["street"]] = string_levels(left.street[li], right.street[ri], (0.9, 0.7))
    out[:, FIELD_INDEX["city"]] = string_levels(left.city[li], right.city[ri], (0.9, 0.7))
    out[:, FIELD_INDEX["postcode"]] = postcode_levels(
        left.postcode[li], right.postcode[ri], left.postcode_3[li], right.postcode_3[ri]
    )
    out[:, FIELD_INDEX["state"]] = exact_levels(left.state[li], right.state[ri])
    out[:, FIELD_INDEX["phone"]] = phone_levels(
        left.phone[li], right.phone[ri], left.phone_tail[li], right.phone_tail[ri]
    )
    out[:, FIELD_INDEX["email_hash"]] = exact_levels(left.email_hash[li], right.email_hash[ri])
    out[:, FIELD_INDEX["national_id"]] = national_id_levels(
        left.national_id[li], right.national_id[ri]
    )
    shared = ~(left.phone_personal[li] & right.phone_personal[ri])
    return ComparedPairs(
        left,
        li,
        right,
        ri,
        out,
        crossed,
        *script_differences(left, li, right, ri, distance),
        np.asarray(shared & (out[:, FIELD_INDEX["phone"]] > 0)),
        np.asarray(left.korean_name[li] | right.korean_name[ri]),
        np.asarray(
            left.phone_personal[li] & right.phone_personal[ri] & (out[:, FIELD_INDEX["phone"]] == 0)
        ),
        # Across scripts the romanisation distance decides instead.
        _initial_differs(left.given_initial[li], right.given_initial[ri], initials=True)
        & ~_cross_script(left, li, right, ri),
        np.asarray(left.given_hangul[li] | right.given_hangul[ri]),
    )


def _initial_differs(a: _Str, b: _Str, *, initials: bool = False) -> _Bool:
    """With ``initials`` the columns hold first letters already."""
    if initials:
        first_a, first_b = a, b
    else:
        first_a = np.asarray([s[:1] for s in a.tolist()], dtype=object)
        first_b = np.asarray([s[:1] for s in b.tolist()], dtype=object)
    return np.asarray((first_a != first_b) & (first_a != "") & (first_b != ""))
