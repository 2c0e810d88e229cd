"""Households: family members share a street, a landline, a family name and
(twins) a birth date. A clear given-name difference must keep them apart
however much else agrees; the same person written in two scripts must still
link (model.HouseholdRules, names.fold / names.romanises_as)."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from identity.domain.matching import (
    LOWER_THRESHOLD,
    UPPER_THRESHOLD,
    CustomerRecord,
    LinkDecision,
    MatchModel,
    decide,
    normalise_record,
)
from identity.domain.matching.model import HouseholdRules
from identity.domain.matching.names import fold, given_key, romanises_as
from identity.tests.unit.test_matching_korean_names import typical_model

HOME = dict(
    street="서울 마포구 월드컵북로 12길 34",
    city="서울",
    postcode="03971",
    phone="+8223334444",  # the family's landline
)


def person(rid: str, name: str, dob: str, **kw: str) -> CustomerRecord:
    fields: dict[str, str] = {**HOME, **kw}
    return CustomerRecord(rid, full_name=name, date_of_birth=dob, **fields)


@pytest.fixture(scope="module")
def model() -> MatchModel:
    return typical_model()


@pytest.mark.parametrize(
    ("a", "b"),
    [
        # siblings sharing the generation syllable
        (person("a", "김민준", "1990-05-17"), person("b", "김민지", "1993-02-01")),
        (person("a", "Kim Minjun", "1990-05-17"), person("b", "Kim Jiwoo", "1993-02-01")),
        # parent and child
        (person("a", "박영희", "1965-03-07"), person("b", "박영수", "1995-11-20")),
        (person("a", "PARK YOUNG-HEE", "1965-03-07"), person("b", "박지훈", "1995-11-20")),
        # twins: same birth date too
        (person("a", "이서연", "2001-08-09"), person("b", "이서윤", "2001-08-09")),
        (person("a", "Lee Jimin", "2001-08-09"), person("b", "Lee Jihun", "2001-08-09")),
        (person("a", "이서연", "2001-08-09"), person("b", "Seoyoon Lee", "2001-08-09")),
    ],
    ids=[
        "siblings",
        "siblings-latin",
        "parent-child",
        "parent-child-scripts",
        "twins",
        "twins-latin",
        "twins-scripts",
    ],
)
def test_family_members_are_never_linked(
    model: MatchModel, a: CustomerRecord, b: CustomerRecord
) -> None:
    score = model.score(a, b)
    assert score.per_field["family_name"][0] == "exact"
    assert score.per_field["street"][0] == "exact"
    assert decide(score.probability) is not LinkDecision.AUTO_LINK
    assert score.per_field["household"][0] in (
        "contradiction",
        "same_household_given_name_not_exact",
    )
    # Without the household rules the same evidence would have merged them
    # (the reason the rules exist).
    off = replace(model, household=HouseholdRules(given_conflict_cap=1.0, household_cap=1.0))
    assert off.score(a, b).probability > score.probability


def test_a_clear_given_name_difference_outweighs_everything_else(model: MatchModel) -> None:
    a = person("a", "이서연", "2001-08-09", email_hash="e" * 64)
    b = person("b", "이지호", "2001-08-09")
    score = model.score(a, b)
    assert score.per_field["household"][0] == "contradiction"
    assert score.per_field["household"][1] < -30  # street, birth date, landline …
    assert score.probability < 0.011 < LOWER_THRESHOLD  # not even a review


def test_siblings_with_similar_latin_names_go_to_review_not_merge(model: MatchModel) -> None:
    score = model.score(
        # 영숙 and 영수, one letter apart in Latin letters: could be a typo,
        # but born on another day in the same home it is a sister.
        person("a", "Kim Yeongsuk", "1994-02-11"),
        person("b", "Kim Yeongsu", "1994-07-11"),
    )
    assert score.per_field["household"][0] == "same_household_given_name_not_exact"
    assert score.probability <= 0.9 < UPPER_THRESHOLD


SPELLINGS_OF_JO_YOONSEO = [
    "조 윤서",
    "조윤서",
    "Jo Yoon Seo",
    "JO YOON-SEO",
    "Yoonseo Cho",
    "Yun Seo Jo",
    "Cho Yunseo",
    "Yoon-Seo Jo",
]


@pytest.mark.parametrize("name", SPELLINGS_OF_JO_YOONSEO)
def test_one_person_at_home_links_in_every_script(model: MatchModel, name: str) -> None:
    hangul = person("a", "조윤서", "1992-04-03")
    other = person("b", name, "920403")
    score = model.score(hangul, other)
    assert score.per_field["given_name"][0] == "exact"
    assert score.per_field["family_name"][0] == "exact"
    assert "household" not in score.per_field
    assert decide(score.probability) is LinkDecision.AUTO_LINK


def test_a_typo_in_a_latin_given_name_still_links_with_the_birth_date(model: MatchModel) -> None:
    score = model.score(
        person("a", "Kim Minjun", "1990-05-17"), person("b", "Kim Minjnu", "1990-05-17")
    )
    assert decide(score.probability) is LinkDecision.AUTO_LINK


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Yoon", "Yun"),
        ("Jung", "Jeong"),
        ("Jung", "Chung"),
        ("Joon", "Jun"),
        ("Hyun-woo", "Hyeonu"),
        ("Younghee", "Yeonghui"),
        ("Kyungsoo", "Gyeongsu"),
        ("Chihun", "Jihoon"),
        ("Sŏyŏn", "Seoyeon"),
        ("Sung Min", "Seongmin"),
        ("Kang", "Gang"),
        ("Kwon", "Gwon"),
    ],
)
def test_spelling_variants_share_a_phonetic_key(a: str, b: str) -> None:
    assert fold(a.lower().replace(" ", "").replace("-", "")) == fold(
        b.lower().replace(" ", "").replace("-", "")
    )


@pytest.mark.parametrize(
    ("a", "b"), [("Minjun", "Minji"), ("Seoyeon", "Seoyoon"), ("Jihun", "Jiho")]
)
def test_different_names_keep_different_keys(a: str, b: str) -> None:
    assert given_key(a) != given_key(b)


@pytest.mark.parametrize(
    ("hangul", "latin", "expected"),
    [
        ("서연", "Seo-yeon", True),
        ("서연", "SOYON", True),
        ("서연", "Sŏyŏn", True),
        ("서연", "Suh Yeon", True),
        ("서연", "Seoyoon", False),
        ("윤서", "Yoonseo", True),
        ("윤서", "Yun Seo", True),
        ("현우", "Hyunwoo", True),
        ("영희", "Younghee", True),
        ("경수", "Kyungsoo", True),
        ("지훈", "Chihun", True),
        ("민준", "Minji", False),
        ("민준", "Minjun", True),
    ],
)
def test_a_latin_spelling_is_checked_against_the_hangul_name(
    hangul: str, latin: str, expected: bool
) -> None:
    assert romanises_as(hangul, latin) is expected


def test_landlines_are_weak_evidence_and_mobiles_keep_their_weight(model: MatchModel) -> None:
    a = CustomerRecord("a", full_name="최지우", phone="+8223334444")
    b = CustomerRecord("b", full_name="Choi Jiwoo", phone="02-333-4444")
    landline = model.score(a, b).per_field["phone"]
    assert landline[0] == "exact" and landline[1] <= 2.0
    assert not normalise_record(a).phone_personal
    mobile = model.score(replace(a, phone="+821059991234"), replace(b, phone="010-5999-1234"))
    assert mobile.per_field["phone"][0] == "exact"
    assert mobile.per_field["phone"][1] > 10
    internet = normalise_record(CustomerRecord("c", phone="070-1234-5678"))
    assert not internet.phone_personal


def test_household_rules_round_trip_and_reject_an_unknown_scope(model: MatchModel) -> None:
    tuned = replace(model, household=HouseholdRules(0.001, 0.8, 1.0, "all"))
    loaded = MatchModel.from_dict(json.loads(json.dumps(tuned.to_dict())))
    assert loaded.household == tuned.household
    old = model.to_dict()
    del old["household"]  # a model file written before the rules: defaults
    assert MatchModel.from_dict(old).household == HouseholdRules()
    old["household"] = {"scope": "everyone"}
    with pytest.raises(ValueError, match="scope"):
        MatchModel.from_dict(old)


def test_scope_all_applies_the_rules_to_any_name(model: MatchModel) -> None:
    a = CustomerRecord(
        "a", given_name="anna", family_name="smith", street="1 high st", date_of_birth="1980-01-01"
    )
    b = CustomerRecord(
        "b",
        given_name="george",
        family_name="smith",
        street="1 high st",
        date_of_birth="1980-01-01",
    )
    assert "household" not in model.score(a, b).per_field
    everyone = replace(model, household=HouseholdRules(scope="all"))
    assert everyone.score(a, b).per_field["household"][0] == "contradiction"


# As typed in full-width mode on a Korean keyboard.
FULL_WIDTH_DATE = "".join(chr(ord(c) + 0xFEE0) for c in "1990-03-07")


@pytest.mark.parametrize(
    "written",
    [
        "1990-03-07",
        "19900307",
        "1990.03.07",
        "1990/03/07",
        "90/03/07",
        "900307",
        "1990-3-7",
        FULL_WIDTH_DATE,
    ],
)
def test_birth_date_formats(written: str) -> None:
    assert normalise_record(CustomerRecord("x", date_of_birth=written)).dob == "19900307"


def test_two_digit_years_are_never_in_the_future() -> None:
    from datetime import date

    from identity.domain.matching.record import _dob

    today = date(2026, 12, 6)
    assert _dob("07/03/07", today) == "20070307"
    assert _dob("260101", today) == "20260101"
    assert _dob("270101", today) == "19270101"
    assert _dob("14/03", today) == ""
    assert _dob("03/07/1990", today) == ""  # day first: ambiguous, not guessed
