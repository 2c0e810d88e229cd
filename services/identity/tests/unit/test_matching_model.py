"""Training, term frequencies, blocking, persistence and batch linkage, on
synthetic people whose true m/u are known because the test made them."""

from __future__ import annotations

import json
import string
from dataclasses import replace
from datetime import date, timedelta

import numpy as np
import pytest

from identity.domain.matching import (
    UPPER_THRESHOLD,
    BlockingIndex,
    CustomerRecord,
    MatchModel,
    RealtimeMatcher,
    ScoredPair,
    cluster,
    normalise_record,
    run_linkage,
    train_model,
)
from identity.domain.matching.comparisons import RecordColumns, compare
from identity.domain.matching.model import TermFrequencies

N = 2000
DOB_EXACT = 0.9  # share of true matches whose date of birth is copied exactly
GIVEN_EXACT = 0.8
_SYLLABLES = [c + v for c in "bdgjklmnprstvwz" for v in "aeiou"]


def _word(rng: np.random.Generator, syllables: int) -> str:
    return "".join(rng.choice(_SYLLABLES, syllables))


def _typo(rng: np.random.Generator, text: str) -> str:
    i = int(rng.integers(1, len(text) - 1))
    replacement = rng.choice([c for c in string.ascii_lowercase if c != text[i]])
    return text[:i] + str(replacement) + text[i + 1 :]


def _zipf_pool(rng: np.random.Generator, size: int, syllables: int) -> tuple[list[str], np.ndarray]:
    pool = list({_word(rng, syllables) for _ in range(size * 2)})[:size]
    weights = 1.0 / np.arange(1, len(pool) + 1)
    return pool, weights / weights.sum()


def synthetic_people(
    n: int = N, seed: int = 7
) -> tuple[list[CustomerRecord], list[CustomerRecord]]:
    """Set A: one clean record per person. Set B: the same people, re-typed
    with known error rates (record i of A matches record i of B)."""
    rng = np.random.default_rng(seed)
    given_pool, given_p = _zipf_pool(rng, 600, 3)
    family_pool, family_p = _zipf_pool(rng, 400, 2)
    cities = [_word(rng, 3) for _ in range(150)]
    postcodes = [f"{x:05d}" for x in rng.choice(100_000, 500, replace=False)]
    a: list[CustomerRecord] = []
    b: list[CustomerRecord] = []
    for i in range(n):
        dob = date(1940, 1, 1) + timedelta(days=int(rng.integers(0, 65 * 365)))
        person = CustomerRecord(
            record_id=f"a{i}",
            given_name=str(rng.choice(given_pool, p=given_p)),
            family_name=str(rng.choice(family_pool, p=family_p)),
            date_of_birth=dob.isoformat(),
            street=f"{rng.integers(1, 300)} {_word(rng, 3)} street",
            city=str(rng.choice(cities)),
            postcode=str(rng.choice(postcodes)),
        )
        a.append(person)
        given = person.given_name if rng.random() < GIVEN_EXACT else _typo(rng, person.given_name)
        family = person.family_name if rng.random() < 0.85 else _typo(rng, person.family_name)
        retyped_dob = dob if rng.random() < DOB_EXACT else dob.replace(day=dob.day % 28 + 1)
        b.append(
            replace(
                person,
                record_id=f"b{i}",
                given_name=given,
                family_name=family,
                date_of_birth=retyped_dob.isoformat(),
                street=person.street if rng.random() < 0.7 else _typo(rng, person.street),
                postcode=person.postcode if rng.random() < 0.9 else str(rng.choice(postcodes)),
                city=person.city if rng.random() < 0.85 else "",
            )
        )
    return a, b


@pytest.fixture(scope="module")
def people() -> tuple[list[CustomerRecord], list[CustomerRecord]]:
    return synthetic_people()


@pytest.fixture(scope="module")
def model(people: tuple[list[CustomerRecord], list[CustomerRecord]]) -> MatchModel:
    a, b = people
    return train_model(a, b, random_pairs=300_000)


def test_em_recovers_the_m_probabilities_it_was_given(model: MatchModel) -> None:
    assert model.m["date_of_birth"][-1] == pytest.approx(DOB_EXACT, abs=0.03)
    assert model.m["given_name"][-1] == pytest.approx(GIVEN_EXACT, abs=0.04)
    # Non-matches almost never share a date of birth (one in ~24,000 days).
    assert model.u["date_of_birth"][-1] < 3e-4


def test_em_recovers_the_match_rate(model: MatchModel) -> None:
    # One match per person among N x N pairs.
    assert 0.5 / N < model.prior < 2.0 / N


def test_rare_family_name_match_weighs_more_than_common_one(model: MatchModel) -> None:
    tf = model.term_frequencies["family_name"]
    common = max(tf.counts, key=lambda v: tf.counts[v])
    rare = min(tf.counts, key=lambda v: tf.counts[v])
    assert tf.counts[common] > 20 * tf.counts[rare]

    def family_weight(m: MatchModel, family: str) -> float:
        x = CustomerRecord("x", given_name="ana", family_name=family)
        return m.score(x, replace(x, record_id="y")).per_field["family_name"][1]

    assert family_weight(model, rare) > family_weight(model, common) + 3
    # Without frequencies both are the field's average exact-match weight.
    flat = replace(model, term_frequencies={})
    assert family_weight(flat, rare) == pytest.approx(family_weight(flat, common))


def test_an_unseen_value_counts_as_seen_once() -> None:
    tf = TermFrequencies({"kim": 50}, 100)
    assert tf.frequency(np.asarray(["kim", "namgung"], dtype=object)).tolist() == [0.5, 0.01]


def test_blocking_index_finds_the_true_candidate(
    people: tuple[list[CustomerRecord], list[CustomerRecord]],
) -> None:
    a, b = people
    index = BlockingIndex([normalise_record(r) for r in b])
    found = sum(f"b{i}" in index.candidates(normalise_record(r)) for i, r in enumerate(a))
    assert found / len(a) > 0.99
    # A record with a typo in both names and a new postcode is still found
    # through its date of birth.
    moved = replace(b[0], record_id="new", given_name="zzz", family_name="qqq", postcode="99999")
    assert "b0" in index.candidates(normalise_record(moved))


def test_blocking_pairs_are_unique_across_rules() -> None:
    same = CustomerRecord("1", "ana", "lee", date_of_birth="1990-01-01", postcode="12345")
    index = BlockingIndex([normalise_record(same), normalise_record(replace(same, record_id="2"))])
    left, right = index.pairs_with(None)
    # Several rules put the two in one block; the pair is compared once.
    assert list(zip(left.tolist(), right.tolist(), strict=True)) == [(0, 1)]


def test_model_round_trips_through_json_with_identical_scores(
    model: MatchModel, people: tuple[list[CustomerRecord], list[CustomerRecord]]
) -> None:
    a, b = people
    loaded = MatchModel.from_dict(json.loads(json.dumps(model.to_dict())))
    left = RecordColumns.of([normalise_record(r) for r in a[:300]])
    right = RecordColumns.of([normalise_record(r) for r in b[:300]])
    rng = np.random.default_rng(1)
    li = np.concatenate([np.arange(300), rng.integers(0, 300, 300)])
    ri = np.concatenate([np.arange(300), rng.integers(0, 300, 300)])
    pairs = compare(left, li, right, ri)
    assert np.array_equal(model.probabilities(pairs)[0], loaded.probabilities(pairs)[0])
    assert model.score(a[0], b[0]) == loaded.score(a[0], b[0])


def test_a_model_for_other_levels_is_refused(model: MatchModel) -> None:
    data = model.to_dict()
    data["fields"]["postcode"]["levels"] = ["else", "exact"]
    with pytest.raises(ValueError, match="postcode"):
        MatchModel.from_dict(data)


def test_batch_linkage_finds_the_people(
    people: tuple[list[CustomerRecord], list[CustomerRecord]],
) -> None:
    a, b = people
    linkage = run_linkage(a, b)
    linked = {(p.id1, p.id2) for p in linkage.pairs if p.probability >= UPPER_THRESHOLD}
    truth = {(f"a{i}", f"b{i}") for i in range(len(a))}
    assert len(linked & truth) / len(linked) > 0.99
    assert len(linked & truth) / len(truth) > 0.97
    assert linkage.comparisons < len(a) * len(b) / 20


def test_realtime_scores_match_the_batch(
    model: MatchModel, people: tuple[list[CustomerRecord], list[CustomerRecord]]
) -> None:
    a, b = people
    matcher = RealtimeMatcher(model, b[:500])
    found = matcher.match(a[3])
    assert found[0].id2 == "b3"
    assert found[0].probability == pytest.approx(model.score(a[3], b[3]).probability)


def test_clusters_join_links_transitively_above_the_threshold() -> None:
    groups = cluster(
        [
            ScoredPair("a", "b", 0.99),
            ScoredPair("b", "c", 0.97),
            ScoredPair("d", "e", 0.5),  # a review item, not a link
            ScoredPair("f", "g", 0.96),
        ]
    )
    assert sorted(sorted(g) for g in groups) == [["a", "b", "c"], ["f", "g"]]
