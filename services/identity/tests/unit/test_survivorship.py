"""Survivorship rules of the golden record, one by one, with their tie-breaks."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from identity.domain.survivorship import (
    LATEST_RECEIVED,
    UNANIMOUS,
    Rule,
    SurvivorshipPolicy,
    TraitObservation,
    choose,
    golden_record,
    value_key,
)


def at(day: int) -> datetime:
    return datetime(2026, 1, day, tzinfo=UTC)


def obs(trait: str, value: str, source: str, day: int, seq: int) -> TraitObservation:
    return TraitObservation(trait, value, source, at(day), seq)


def policy(
    trait: str, *rules: Rule, trust: tuple[str, ...] = ("crm", "pos", "web")
) -> SurvivorshipPolicy:
    return SurvivorshipPolicy.from_config({trait: [r.value for r in rules]}, trust)


def test_most_recent_takes_the_latest_observation_time_not_the_latest_arrival() -> None:
    p = policy("email", Rule.MOST_RECENT)
    got = choose(
        "email",
        [obs("email", "new@x.kr", "web", 9, 1), obs("email", "old@x.kr", "crm", 2, 2)],
        p,
    )
    assert got is not None
    assert (got.value, got.rule, got.source, got.observations) == (
        "new@x.kr",
        "most_recent",
        "web",
        2,
    )
    assert got.observed_at == at(9)


def test_most_trusted_source_follows_the_trust_list_and_unlisted_sources_rank_last() -> None:
    p = policy("given_name", Rule.MOST_TRUSTED_SOURCE, trust=("crm", "pos"))
    seen = [
        obs("given_name", "Olivia", "crm", 1, 1),
        obs("given_name", "Olivai", "pos", 5, 2),
        obs("given_name", "Liv", "kiosk", 9, 3),
    ]
    got = choose("given_name", seen, p)
    assert got is not None and (got.value, got.rule, got.source) == (
        "Olivia",
        "most_trusted_source",
        "crm",
    )
    # Without the CRM, the listed POS beats the unlisted kiosk.
    got = choose("given_name", seen[1:], p)
    assert got is not None and got.value == "Olivai"


def test_most_frequent_outvotes_a_typo_and_compares_dates_by_digits() -> None:
    p = policy("date_of_birth", Rule.MOST_FREQUENT)
    got = choose(
        "date_of_birth",
        [
            obs("date_of_birth", "1984-03-09", "crm", 1, 1),
            obs("date_of_birth", "19840309", "pos", 2, 2),
            obs("date_of_birth", "1984-09-03", "web", 3, 3),
        ],
        p,
    )
    assert got is not None
    # Two agree (written differently); the newer of the two answers.
    assert (got.value, got.rule, got.source, got.observations) == (
        "19840309",
        "most_frequent",
        "pos",
        3,
    )


def test_a_tie_passes_to_the_next_rule_which_is_reported() -> None:
    p = policy("given_name", Rule.MOST_TRUSTED_SOURCE, Rule.MOST_RECENT)
    got = choose(
        "given_name",
        [
            obs("given_name", "Minjun", "crm", 1, 1),
            obs("given_name", "Min-jun", "crm", 4, 2),
            obs("given_name", "MJ", "web", 9, 3),
        ],
        p,
    )
    # Both CRM values tie on trust; the more recent CRM one wins.
    assert got is not None and (got.value, got.rule) == ("Min-jun", "most_recent")


def test_a_tie_through_the_whole_chain_goes_to_the_last_received() -> None:
    p = policy("phone", Rule.MOST_RECENT)
    got = choose(
        "phone",
        [obs("phone", "+821011112222", "pos", 3, 7), obs("phone", "+821033334444", "web", 3, 8)],
        p,
    )
    assert got is not None and (got.value, got.rule) == ("+821033334444", LATEST_RECEIVED)
    # Row order does not matter: the same answer reversed.
    again = choose(
        "phone",
        [obs("phone", "+821033334444", "web", 3, 8), obs("phone", "+821011112222", "pos", 3, 7)],
        p,
    )
    assert again == got


def test_agreeing_sources_are_unanimous_whatever_the_spelling() -> None:
    got = choose(
        "family_name",
        [obs("family_name", "Kim", "crm", 1, 1), obs("family_name", " KIM ", "pos", 2, 2)],
        SurvivorshipPolicy(),
    )
    assert got is not None and (got.rule, got.value, got.observations) == (UNANIMOUS, " KIM ", 2)


def test_golden_record_lists_each_observed_trait_once_in_a_stable_order() -> None:
    record = golden_record(
        [
            obs("postcode", "2040", "pos", 2, 3),
            obs("given_name", "Olivia", "crm", 1, 1),
            obs("given_name", "Olivia", "pos", 2, 2),
            obs("email", "  ", "web", 3, 4),  # blank says nothing
        ],
        SurvivorshipPolicy(),
    )
    assert [(g.trait, g.value) for g in record] == [("given_name", "Olivia"), ("postcode", "2040")]


def test_defaults_name_by_trust_then_recency_birth_date_by_frequency() -> None:
    p = SurvivorshipPolicy()
    assert p.rules_for("given_name") == (Rule.MOST_TRUSTED_SOURCE, Rule.MOST_RECENT)
    assert p.rules_for("date_of_birth")[0] is Rule.MOST_FREQUENT
    assert p.rules_for("email") == (Rule.MOST_RECENT,)


@pytest.mark.parametrize(
    ("rules", "trust", "message"),
    [
        ({"shoe_size": ["most_recent"]}, (), "rules.shoe_size: unknown trait"),
        ({"email": ["loudest"]}, (), "rules.email: unknown rule 'loudest'"),
        ({"email": []}, (), "rules.email: name at least one rule"),
        ({"email": ["most_recent", "most_recent"]}, (), "listed twice"),
        ({}, ("crm", "CRM"), "source_trust: a source is listed twice"),
    ],
)
def test_bad_configuration_names_the_entry(
    rules: dict[str, list[str]], trust: tuple[str, ...], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        SurvivorshipPolicy.from_config(rules, trust)


def test_value_keys() -> None:
    assert value_key("phone", "+82 10-1111-2222") == value_key("phone", "+821011112222")
    full_width = "\uff2f\uff4c\uff49\uff56\uff49\uff41"
    assert value_key("given_name", full_width) == value_key("given_name", "olivia")
