"""Korean names: script, order, spelling and spacing must not split a person."""

from __future__ import annotations

import numpy as np
import pytest

from identity.domain.matching import (
    UPPER_THRESHOLD,
    CustomerRecord,
    LinkDecision,
    MatchModel,
    decide,
    normalise_record,
)
from identity.domain.matching.comparisons import FIELDS


def typical_model() -> MatchModel:
    """Parameters of the size EM learns on customer data (FEBRL4-like),
    written out so the name tests do not depend on a training run."""
    m: dict[str, list[float]] = {
        "given_name": [0.09, 0.01, 0.02, 0.13, 0.75],
        "family_name": [0.06, 0.01, 0.01, 0.17, 0.75],
        "date_of_birth": [0.05, 0.01, 0.02, 0.92],
        "street": [0.04, 0.15, 0.55, 0.26],
        "city": [0.05, 0.01, 0.19, 0.75],
        "postcode": [0.1, 0.01, 0.05, 0.84],
        "state": [0.04, 0.96],
        "phone": [0.05, 0.05, 0.9],
        "email_hash": [0.1, 0.9],
        "national_id": [0.02, 0.08, 0.9],
    }
    u: dict[str, list[float]] = {
        "given_name": [0.966, 0.0275, 0.0012, 0.0015, 0.0036],
        "family_name": [0.974, 0.0203, 0.0006, 0.0012, 0.0038],
        "date_of_birth": [0.9675, 0.0285, 0.0037, 0.0003],
        "street": [0.988, 0.0119, 0.0001, 0.0001],
        "city": [0.987, 0.0111, 0.0005, 0.0014],
        "postcode": [0.986, 0.0001, 0.012, 0.0019],
        "state": [0.775, 0.225],
        "phone": [0.9999, 0.00005, 0.00005],
        "email_hash": [0.99999, 0.00001],
        "national_id": [0.9999, 0.00009, 0.00001],
    }
    assert set(m) == {f.name for f in FIELDS}
    return MatchModel(
        m={k: np.asarray(v) for k, v in m.items()},
        u={k: np.asarray(v) for k, v in u.items()},
        prior=1e-4,
    )


SPELLINGS = [
    dict(full_name="김민준"),
    dict(given_name="민준", family_name="김"),
    dict(given_name="Minjun", family_name="Kim"),
    dict(full_name="Kim Minjun"),
    dict(full_name="Minjun Kim"),
    dict(full_name="Gim Min-jun"),
    dict(given_name="Min Jun", family_name="KIM"),
    dict(given_name="Kim", family_name="Minjun"),  # boxes filled in Korean order
]


@pytest.mark.parametrize("name", SPELLINGS, ids=lambda n: " / ".join(n.values()))
def test_every_spelling_of_kim_minjun_agrees_exactly_on_both_names(name: dict[str, str]) -> None:
    model = typical_model()
    hangul = CustomerRecord("a", full_name="김민준", date_of_birth="1990-05-17")
    other = CustomerRecord("b", date_of_birth="1990-05-17", **name)
    score = model.score(hangul, other)
    assert score.per_field["given_name"][0] == "exact"
    assert score.per_field["family_name"][0] == "exact"
    assert score.probability >= UPPER_THRESHOLD
    assert decide(score.probability) is LinkDecision.AUTO_LINK


@pytest.mark.parametrize(
    "full_name", ["김민준", "Kim Minjun", "Minjun Kim", "Gim Min-jun", "Min Jun Kim"]
)
def test_normalised_name_keys(full_name: str) -> None:
    r = normalise_record(CustomerRecord("x", full_name=full_name))
    assert (r.given, r.family) == ("minjun", "kim")


def test_minjun_and_minji_are_not_linked_on_name_alone() -> None:
    model = typical_model()
    score = model.score(
        CustomerRecord("a", full_name="김민준"), CustomerRecord("b", full_name="김민지")
    )
    assert score.per_field["family_name"][0] == "exact"
    assert score.per_field["given_name"][0] != "exact"
    # Same surname, similar given name: more likely two people than one,
    # and never merged without a human.
    assert score.probability < 0.5
    assert decide(score.probability) is not LinkDecision.AUTO_LINK
    same = model.score(
        CustomerRecord("a", full_name="김민준"), CustomerRecord("c", full_name="Kim Minjun")
    )
    assert same.weight > score.weight + 3


def test_two_syllable_family_name_is_split_off_whole() -> None:
    r = normalise_record(CustomerRecord("x", full_name="남궁민"))
    assert (r.given, r.family) == ("min", "namgung")
    romanised = normalise_record(CustomerRecord("y", full_name="Namgung Min"))
    assert (romanised.given, romanised.family) == ("min", "namgung")
    # Two syllables on their own are family + given, not a two-syllable surname.
    assert normalise_record(CustomerRecord("z", full_name="남민")).family == "nam"


@pytest.mark.parametrize(
    ("variants", "key"),
    [
        (["Lee", "Yi", "Rhee", "I", "이"], "lee"),
        (["Park", "Pak", "Bak", "박"], "park"),
        (["Choi", "Choe", "최"], "choi"),
        (["Jung", "Jeong", "Chung", "정"], "jung"),
        (["Lim", "Im", "Rim", "임"], "lim"),
        (["Noh", "Roh", "No", "노"], "noh"),
        (["Yoo", "Yu", "Ryu", "유", "류"], "yoo"),
    ],
)
def test_romanised_family_name_variants_share_one_key(variants: list[str], key: str) -> None:
    keys = {
        normalise_record(CustomerRecord("x", given_name="A", family_name=v)).family
        for v in variants
    }
    assert keys == {key}


# As typed on a Korean keyboard in full-width mode.
FULL_WIDTH_SEOYEON = "".join(chr(ord(c) + 0xFEE0) for c in "Seoyeon")


def test_given_name_spacing_and_hyphens_do_not_matter() -> None:
    keys = {
        normalise_record(CustomerRecord("x", given_name=g, family_name="Kim")).given
        for g in ["Seo-yeon", "Seo Yeon", "SEOYEON", "서연", FULL_WIDTH_SEOYEON]
    }
    assert keys == {"seoyeon"}
