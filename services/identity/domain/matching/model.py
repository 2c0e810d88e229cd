"""The Fellegi-Sunter match model: how much each comparison level says about
two records being one person, and what to do with the answer.

For every field and level the model holds m (the share of true matches in that
level) and u (the share of non-matches). Their ratio is the level's Bayes
factor; log2 of it is the match weight. Summed over fields with the prior
odds λ/(1-λ), the weights give the match probability. A missing value weighs 0.

Exact agreement on a name, city or postcode is worth more when the value is
rare: two records both "Kim" are weak evidence, both "Namgung" strong. So for
those fields an exact match uses u = frequency of the agreed value instead of
the field's average u (term-frequency adjustment).

The same parameters score a whole batch and one new record in real time, and
serialise to plain JSON so the service loads what the batch trained.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np
import numpy.typing as npt

from identity.domain.matching.comparisons import (
    FIELD_INDEX,
    FIELDS,
    NULL_LEVEL,
    ComparedPairs,
    FieldComparison,
    Levels,
    RecordColumns,
    compare,
)
from identity.domain.matching.em import initial_m, run_session
from identity.domain.matching.record import CustomerRecord, NormalisedRecord, normalise_record

_Float = npt.NDArray[np.float64]

# Auto-link when a pair is at least 95% likely to be one person. A wrong merge
# shows one customer's history, points and consent to another and spreads to
# every downstream service before anyone notices; a missed link only delays a
# merge the review queue or a later record can still make. Weighing a wrong
# merge as 19 missed links gives the break-even probability 19/20 = 0.95.
UPPER_THRESHOLD = 0.95
# Below this a pair is more likely two people than one by 4:1; a queue that
# is mostly such pairs teaches reviewers to reject without reading.
LOWER_THRESHOLD = 0.2

MODEL_VERSION = 1
# Values seen fewer times than this are not stored in the serialised
# frequency tables: they would put rare (identifying) names into the model
# file, and "seen once" is what the fallback frequency assumes anyway.
_TF_MIN_COUNT = 2


@dataclass(frozen=True, slots=True)
class HouseholdRules:
    """What Fellegi-Sunter's independent fields get wrong about families.

    Parents, children, siblings and twins share a street, a landline and a
    family name, twins a birth date too. Each of those agreements is rare
    among random pairs, so the model weighs them as strong evidence and adds
    them up: a brother and sister at one address score like one person. But
    within a household the given name is the field that tells people apart,
    so it is not independent of the others. Three explicit rules:

    * ``given_conflict_cap``: a clear given-name disagreement (Jaro-Winkler
      below 0.88 on the phonetic keys, or two different Hangul names) caps
      the match probability here, whatever else agrees: different given
      names in one family are different people. (A person known by two
      names is linked by an exact email or mobile, or by a reviewer.)
    * ``household_cap``: when the pair is in one household (same family name
      and street, or same family name and a shared landline) and the given
      names are similar but not the same name, the probability is capped
      here, below the auto-link threshold, when the birth dates differ
      (siblings, parents) or the names are in two scripts and the Latin one
      is not a romanisation of the Hangul one (twins 이서연 / "Seoyoon Lee"):
      they go to review, never merge by themselves. A typo with the same
      birth date in one script still links.
    * ``shared_phone_max_weight``: an agreement on a landline or internet
      phone (02-, 031-, 070-) is worth at most this many bits; a mobile keeps
      the weight the model learned.
    """

    given_conflict_cap: float = 0.01
    household_cap: float = 0.9
    shared_phone_max_weight: float = 2.0
    # Which pairs the two name rules apply to: "korean" (either record
    # carries a Korean name: Hangul, or a distinctly Korean family name) or
    # "all".
    scope: str = "korean"

    def to_dict(self) -> dict[str, float | str]:
        return {
            "scope": self.scope,
            "given_conflict_cap": self.given_conflict_cap,
            "household_cap": self.household_cap,
            "shared_phone_max_weight": self.shared_phone_max_weight,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> HouseholdRules:
        base = cls()
        return cls(
            given_conflict_cap=float(data.get("given_conflict_cap", base.given_conflict_cap)),
            household_cap=float(data.get("household_cap", base.household_cap)),
            shared_phone_max_weight=float(
                data.get("shared_phone_max_weight", base.shared_phone_max_weight)
            ),
            scope=_scope(str(data.get("scope", base.scope))),
        )


def _scope(value: str) -> str:
    if value not in ("korean", "all"):
        raise ValueError(f"household scope must be 'korean' or 'all', not {value!r}")
    return value


def _logit2(p: float) -> float:
    p = min(max(p, 1e-12), 1 - 1e-12)
    return math.log2(p / (1 - p))


# Levels of the name comparisons (comparisons._NAME_LEVELS).
# Korean given names are two syllables: one syllable apart (상훈 / 상철) is
# a different name, while a typo keeps Jaro-Winkler at 0.92 or more.
_GIVEN_CLEARLY_DIFFERENT_BELOW = 3  # JW < 0.92 on the phonetic keys
_FAMILY_CLEARLY_DIFFERENT_BELOW = 1  # "else": JW < 0.7
# "else" and "year_within_1": two components or more differ (a typo is one).
_DOB_CLEARLY_DIFFERENT_TO = 1
_STREET_SAME_FROM = 2  # "jaro_winkler>=0.9"


class HouseholdPattern(StrEnum):
    NONE = "none"
    CONTRADICTION = "contradiction"
    SAME_HOUSEHOLD = "same_household_given_name_not_exact"


def household_patterns(
    pairs: ComparedPairs, scope: str = "korean"
) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    """(clear given-name conflict, same household without an exact given
    name) for every pair in ``scope`` (see ``HouseholdRules``)."""
    lv = pairs.levels
    given = lv[:, FIELD_INDEX["given_name"]]
    family = lv[:, FIELD_INDEX["family_name"]]
    street = lv[:, FIELD_INDEX["street"]]
    phone = lv[:, FIELD_INDEX["phone"]]
    given_exact = FIELDS[FIELD_INDEX["given_name"]].exact_level
    family_exact = FIELDS[FIELD_INDEX["family_name"]].exact_level
    in_scope = pairs.korean if scope == "korean" else np.ones(len(lv), dtype=np.bool_)
    present = (given != NULL_LEVEL) & in_scope
    dob = lv[:, FIELD_INDEX["date_of_birth"]]
    straight = ~pairs.names_crossed  # the written forms compare box by box
    # The strict given-name tests (two syllables, one apart, are two names)
    # hold for Korean given names: in a Korean base, or where one record
    # writes the name in Hangul. A Latin-only pair that is in scope by its
    # family name alone (James Kang) gets the milder threshold.
    strict = np.ones(len(lv), dtype=np.bool_) if scope == "all" else np.asarray(pairs.any_hangul)
    below = np.where(strict, _GIVEN_CLEARLY_DIFFERENT_BELOW, _GIVEN_CLEARLY_DIFFERENT_BELOW - 1)
    conflict = (
        present & ((given < below) | (pairs.hangul_given_differs & straight))
        # A family name or birth date that clearly differs says the same:
        # Korean family names are few and fold to one key per name.
        | (in_scope & (family != NULL_LEVEL) & (family < _FAMILY_CLEARLY_DIFFERENT_BELOW))
        # A typo leaves the first letter: 영수 and 경수 are two names.
        | (present & strict & pairs.given_initial_differs & straight)
        | (in_scope & (dob >= 0) & (dob <= _DOB_CLEARLY_DIFFERENT_TO))
        # Two different mobiles: two people (a mobile is personal, and a
        # person's second number is linked by its own exact identifier).
        | (in_scope & pairs.mobiles_differ)
        # A Latin name more than a typo away from the Hangul one.
        | (present & pairs.script_mismatch & straight)
    )
    phone_exact = FIELDS[FIELD_INDEX["phone"]].exact_level
    together = (family == family_exact) & (
        (street >= _STREET_SAME_FROM) | ((phone == phone_exact) & pairs.phone_shared)
    )
    # A typo in a given name happens to the same person too; the birth date
    # tells them apart from a sibling or parent (twins differ in the name).
    dob_exact = FIELDS[FIELD_INDEX["date_of_birth"]].exact_level
    household = (
        together
        & present
        & (given != given_exact)
        & ~conflict
        & ((dob != dob_exact) | (pairs.script_mismatch & straight))
    )
    return np.asarray(conflict), np.asarray(household)


class LinkDecision(StrEnum):
    AUTO_LINK = "auto_link"
    REVIEW = "review"
    NO_LINK = "no_link"


def decide(
    probability: float, upper: float = UPPER_THRESHOLD, lower: float = LOWER_THRESHOLD
) -> LinkDecision:
    if probability >= upper:
        return LinkDecision.AUTO_LINK
    if probability >= lower:
        return LinkDecision.REVIEW
    return LinkDecision.NO_LINK


def probability_of(weight: float) -> float:
    # Clamped: a 2000-bit disagreement must not overflow, only round to 0.
    return 1.0 / (1.0 + math.exp2(-max(min(weight, 1000.0), -1000.0)))


@dataclass(frozen=True, slots=True)
class MatchScore:
    weight: float  # total match weight in bits, prior included
    probability: float
    per_field: dict[str, tuple[str, float]]  # field -> (level label, weight in bits)


@dataclass(frozen=True, slots=True)
class PairWeights:
    """``MatchModel.weigh``'s answer for a column of pairs."""

    fields: _Float  # (n_pairs, n_fields) weight in bits
    raw: _Float  # prior + field weights, before the household rules
    weight: _Float  # after the household caps
    probability: _Float
    conflict: npt.NDArray[np.bool_]
    household: npt.NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class TermFrequencies:
    """How common each value of a field is; u for an exact match on it."""

    counts: Mapping[str, int]
    total: int

    @classmethod
    def of(cls, values: Iterable[str]) -> TermFrequencies:
        c = Counter(v for v in values if v)
        return cls(dict(c), sum(c.values()))

    def frequency(self, values: npt.NDArray[np.object_]) -> _Float:
        # An unseen value is at least as rare as one seen once.
        total = max(self.total, 1)
        return np.asarray(
            [self.counts.get(v, 1) / total for v in values.tolist()], dtype=np.float64
        )


def _expected_match_rate(
    m: Mapping[str, _Float],
    u: Mapping[str, _Float],
    levels: Levels,
    total_pairs: int,
    start: float,
) -> float:
    """Fixed point of prior = sum of candidate posteriors / all pairs."""
    if len(levels) == 0 or total_pairs <= 0:
        return start
    patterns, counts = np.unique(levels, axis=0, return_counts=True)
    log_bf = np.zeros(len(patterns))
    for f, spec in enumerate(FIELDS):
        col = patterns[:, f]
        present = col != NULL_LEVEL
        log_bf[present] += np.log(m[spec.name][col[present]] / u[spec.name][col[present]])
    prior = start
    for _ in range(100):
        log_odds = math.log(prior / (1 - prior)) + log_bf
        posterior = 1.0 / (1.0 + np.exp(-np.clip(log_odds, -700, 700)))
        new = float(np.clip((posterior * counts).sum() / total_pairs, 1e-12, 0.5))
        if abs(new - prior) <= 1e-4 * prior:
            return new
        prior = new
    return prior


def _as_normalised(r: CustomerRecord | NormalisedRecord) -> NormalisedRecord:
    return normalise_record(r) if isinstance(r, CustomerRecord) else r


@dataclass(slots=True)
class MatchModel:
    m: dict[str, _Float]
    u: dict[str, _Float]
    prior: float  # λ: probability that two random records are one person
    term_frequencies: dict[str, TermFrequencies] = field(default_factory=dict)
    fields: tuple[FieldComparison, ...] = FIELDS
    household: HouseholdRules = field(default_factory=HouseholdRules)
    # (ids of the m and u arrays, their level weights): see `_level_table`.
    _table: tuple[tuple[int, ...], _Float] | None = field(
        default=None, init=False, repr=False, compare=False
    )

    # -- training ---------------------------------------------------------

    @staticmethod
    def _level_counts(levels: Levels) -> dict[str, _Float]:
        counts: dict[str, _Float] = {}
        for f, spec in enumerate(FIELDS):
            col = levels[:, f]
            present = col[col != NULL_LEVEL]
            counts[spec.name] = np.bincount(present, minlength=len(spec.levels)).astype(float)
        return counts

    @staticmethod
    def _u_from_counts(
        counts: Mapping[str, _Float], m: Mapping[str, _Float] | None = None, prior: float = 0.0
    ) -> dict[str, _Float]:
        """u per level from random-pair counts. Random pairs are nearly all
        non-matches, but "nearly" matters where u is tiny: with one match per
        person among N x N pairs the matches' exact agreements outnumber the
        chance ones on a date of birth. Given m and the prior the expected
        matches are taken back out: u = (observed - prior * m) / (1 - prior)."""
        u: dict[str, _Float] = {}
        for name, c in counts.items():
            total = max(float(c.sum()), 1.0)
            share = c / total
            if m is not None:
                share = (share - prior * m[name]) / (1 - prior)
            # A level (almost) never seen among random pairs is counted once:
            # the sample says it is rare, not impossible.
            share = np.maximum(share, 1.0 / total)
            u[name] = share / share.sum()
        return u

    @classmethod
    def u_from_random_pairs(cls, levels: Levels) -> dict[str, _Float]:
        """u per level from comparisons of random pairs (nearly all non-matches)."""
        return cls._u_from_counts(cls._level_counts(levels))

    @classmethod
    def train(
        cls,
        random_levels: Levels,
        sessions: Sequence[tuple[Levels, Sequence[str]]],
        term_frequencies: Mapping[str, TermFrequencies] | None = None,
        *,
        candidates: tuple[Levels, int] | None = None,
        rounds: int = 3,
    ) -> MatchModel:
        """u from ``random_levels``; m and λ by EM over each blocked session
        ``(levels, fields the blocking rule forced to agree)``; then u is
        corrected for the matches among the random pairs and EM re-run, a
        few ``rounds`` (it settles in two or three).

        m of a field is the mean over the sessions that could estimate it. A
        session's match rate is inflated by its blocking rule (pairs were
        chosen for agreeing), so it becomes the prior by taking the rule's
        agreement back out: prior odds = session odds / Bayes factor of exact
        agreement on the rule's fields. The prior is the median of those.

        That conversion divides by u of an exact match, which for a precise
        field (date of birth) is tiny and the noisiest number in the model.
        So when the prediction ``candidates`` are given as ``(levels, number
        of all possible pairs)``, the prior is instead the expected number of
        matches among them over all pairs: blocking misses almost no matches,
        and the posteriors of candidate pairs are nearly 0 or 1, so this
        count is robust."""
        counts = cls._level_counts(random_levels)
        u = cls._u_from_counts(counts)
        m: dict[str, _Float] = {}
        prior = 1e-4
        for _ in range(rounds):
            m, prior = cls._em(u, sessions)
            if candidates is not None:
                prior = _expected_match_rate(m, u, candidates[0], candidates[1], prior)
            u = cls._u_from_counts(counts, m, prior)
        return cls(m=m, u=u, prior=prior, term_frequencies=dict(term_frequencies or {}))

    @staticmethod
    def _em(
        u: Mapping[str, _Float], sessions: Sequence[tuple[Levels, Sequence[str]]]
    ) -> tuple[dict[str, _Float], float]:
        u_list = [u[s.name] for s in FIELDS]
        estimates: dict[str, list[_Float]] = {s.name: [] for s in FIELDS}
        results = []
        for levels, blocked in sessions:
            active = [i for i, s in enumerate(FIELDS) if s.name not in blocked]
            result = run_session(levels, u_list, active)
            results.append((result, blocked))
            for f, m_f in result.m.items():
                estimates[FIELDS[f].name].append(m_f)
        m = {
            s.name: (
                np.mean(estimates[s.name], axis=0)
                if estimates[s.name]
                else initial_m(len(s.levels))
            )
            for s in FIELDS
        }
        log_odds = []
        for result, blocked in results:
            if not 0 < result.match_rate < 1:
                continue
            odds = math.log(result.match_rate / (1 - result.match_rate))
            for name in blocked:
                top = FIELDS[FIELD_INDEX[name]].exact_level
                odds -= math.log(m[name][top] / u[name][top])
            log_odds.append(odds)
        prior = 1 / (1 + math.exp(-float(np.median(log_odds)))) if log_odds else 1e-4
        return m, prior

    # -- scoring ------------------------------------------------------------

    def level_weights(self, name: str) -> _Float:
        return np.asarray(np.log2(self.m[name] / self.u[name]), dtype=np.float64)

    def _level_table(self) -> _Float:
        """Every field's level weights in one table, shape (n_fields, 1 +
        most levels): column 0 is the null level (weight 0), column 1 + l
        level l. Built once per m and u (they are replaced, never changed in
        place), so a call's field weights are one gather instead of a masked
        assignment per field (the real-time path scores a few dozen pairs a
        call, where each numpy step's fixed cost is what counts)."""
        key = tuple(id(d[s.name]) for d in (self.m, self.u) for s in self.fields)
        if self._table is None or self._table[0] != key:
            table = np.zeros((len(self.fields), 1 + max(len(s.levels) for s in self.fields)))
            for f, spec in enumerate(self.fields):
                weights = self.level_weights(spec.name)
                table[f, 1 : 1 + len(weights)] = weights
            self._table = (key, table)
        return self._table[1]

    def field_weights(self, pairs: ComparedPairs) -> _Float:
        """Match weight of every field of every pair, shape (n_pairs, n_fields)."""
        levels = pairs.levels
        # NULL_LEVEL (-1) lands on the table's column 0: weight 0.
        out = self._level_table()[np.arange(len(self.fields)), levels.astype(np.intp) + 1]
        for f, spec in enumerate(self.fields):
            col = levels[:, f]
            tf = self.term_frequencies.get(spec.name)
            if spec.term_frequency and tf is not None:
                exact = np.flatnonzero(col == spec.exact_level)
                if len(exact):
                    values = pairs.agreed_values(spec.name)[exact]
                    freq = tf.frequency(values)
                    if spec.name == "given_name" and "family_name" in self.term_frequencies:
                        crossed = pairs.names_crossed[exact]
                        if crossed.any():
                            fam = self.term_frequencies["family_name"]
                            freq[crossed] = fam.frequency(values[crossed])
                    out[exact, f] = np.log2(self.m[spec.name][spec.exact_level] / freq)
        phone = FIELD_INDEX["phone"]
        shared = np.flatnonzero(pairs.phone_shared)
        if len(shared):
            out[shared, phone] = np.minimum(
                out[shared, phone], self.household.shared_phone_max_weight
            )
        return out

    def household_cap(self, pairs: ComparedPairs) -> _Float:
        """Cap on the total weight of every pair from the household rules
        (``HouseholdRules``); +inf where they do not apply."""
        return self._cap(*household_patterns(pairs, self.household.scope))

    def _cap(self, conflict: npt.NDArray[np.bool_], household: npt.NDArray[np.bool_]) -> _Float:
        cap = np.full(len(conflict), np.inf)
        cap[household] = _logit2(self.household.household_cap)
        cap[conflict] = _logit2(self.household.given_conflict_cap)
        return cap

    @property
    def prior_weight(self) -> float:
        return math.log2(self.prior / (1 - self.prior))

    def weigh(self, pairs: ComparedPairs) -> PairWeights:
        """Every pair's field weights, total weight and probability, with
        what ``details`` needs to explain any of them."""
        fields = self.field_weights(pairs)
        raw = self.prior_weight + fields.sum(axis=1)
        conflict, household = household_patterns(pairs, self.household.scope)
        weight = np.minimum(raw, self._cap(conflict, household))
        return PairWeights(fields, raw, weight, 1.0 / (1.0 + np.exp2(-weight)), conflict, household)

    def probabilities(self, pairs: ComparedPairs) -> tuple[_Float, _Float]:
        """(total match weight, match probability) of every pair."""
        w = self.weigh(pairs)
        return w.weight, w.probability

    def details(
        self, pairs: ComparedPairs, weights: PairWeights, k: int
    ) -> dict[str, tuple[str, float]]:
        """Pair ``k``'s per-field breakdown (``Explain``): field -> (level
        label, weight in bits), and the household pattern when one applies."""
        per_field: dict[str, tuple[str, float]] = {}
        row = weights.fields[k]
        for f, spec in enumerate(self.fields):
            level = int(pairs.levels[k, f])
            label = "null" if level == NULL_LEVEL else spec.levels[level]
            per_field[spec.name] = (label, float(row[f]))
        total, raw = float(weights.weight[k]), float(weights.raw[k])
        # The pattern is named even when the cap did not bite (weight 0).
        if weights.conflict[k]:
            per_field["household"] = (HouseholdPattern.CONTRADICTION.value, total - raw)
        elif weights.household[k]:
            per_field["household"] = (HouseholdPattern.SAME_HOUSEHOLD.value, total - raw)
        return per_field

    def score(
        self, a: CustomerRecord | NormalisedRecord, b: CustomerRecord | NormalisedRecord
    ) -> MatchScore:
        """Score one pair, with the per-field breakdown ``Explain`` returns."""
        left = RecordColumns.of([_as_normalised(a)])
        right = RecordColumns.of([_as_normalised(b)])
        index = np.zeros(1, dtype=np.int64)
        pairs = compare(left, index, right, index)
        weights = self.weigh(pairs)
        total = float(weights.weight[0])
        return MatchScore(total, probability_of(total), self.details(pairs, weights, 0))

    # -- persistence ----------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": MODEL_VERSION,
            "prior": self.prior,
            "household": self.household.to_dict(),
            "fields": {
                spec.name: {
                    "levels": list(spec.levels),
                    "m": [float(x) for x in self.m[spec.name]],
                    "u": [float(x) for x in self.u[spec.name]],
                }
                for spec in self.fields
            },
            "term_frequencies": {
                name: {
                    "total": tf.total,
                    "counts": {v: c for v, c in sorted(tf.counts.items()) if c >= _TF_MIN_COUNT},
                }
                for name, tf in sorted(self.term_frequencies.items())
            },
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MatchModel:
        if data.get("version") != MODEL_VERSION:
            raise ValueError(f"unsupported match model version {data.get('version')!r}")
        m: dict[str, _Float] = {}
        u: dict[str, _Float] = {}
        for spec in FIELDS:
            stored = data["fields"][spec.name]
            if tuple(stored["levels"]) != spec.levels:
                # Weights are per level; a model trained on other levels
                # would silently weigh the wrong thing.
                raise ValueError(f"model levels for {spec.name} differ from this code's")
            m[spec.name] = np.asarray(stored["m"], dtype=np.float64)
            u[spec.name] = np.asarray(stored["u"], dtype=np.float64)
        tfs = {
            name: TermFrequencies(dict(tf["counts"]), int(tf["total"]))
            for name, tf in data.get("term_frequencies", {}).items()
        }
        return cls(
            m=m,
            u=u,
            prior=float(data["prior"]),
            term_frequencies=tfs,
            household=HouseholdRules.from_dict(data.get("household", {})),
        )
