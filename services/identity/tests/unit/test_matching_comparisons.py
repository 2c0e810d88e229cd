"""Comparison levels: which level a pair of values lands in."""

from __future__ import annotations

import numpy as np
import pytest

from identity.domain.matching import CustomerRecord, normalise_record
from identity.domain.matching.comparisons import FIELD_INDEX, FIELDS, RecordColumns, compare


def level(field: str, a: CustomerRecord, b: CustomerRecord) -> str:
    left = RecordColumns.of([normalise_record(a)])
    right = RecordColumns.of([normalise_record(b)])
    i = np.zeros(1, dtype=np.int64)
    value = int(compare(left, i, right, i).levels[0, FIELD_INDEX[field]])
    return "null" if value == -1 else FIELDS[FIELD_INDEX[field]].levels[value]


def rec(**kw: str) -> CustomerRecord:
    return CustomerRecord("r", **kw)


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("martha", "martha", "exact"),
        ("martha", "marhta", "jaro_winkler>=0.92"),  # JW 0.961
        ("dwayne", "duane", "jaro_winkler>=0.7"),  # JW 0.84
        ("jones", "johnson", "jaro_winkler>=0.7"),  # JW 0.832
        ("minjun", "minji", "jaro_winkler>=0.88"),  # JW 0.893
        ("alice", "robert", "else"),
        ("alice", "", "null"),
    ],
)
def test_given_name_levels(a: str, b: str, expected: str) -> None:
    assert (
        level("given_name", rec(given_name=a, family_name="x"), rec(given_name=b, family_name="x"))
        == expected
    )


def test_names_in_swapped_boxes_compare_crossed() -> None:
    a = rec(given_name="john", family_name="smith")
    b = rec(given_name="smith", family_name="john")
    assert level("given_name", a, b) == "exact"
    assert level("family_name", a, b) == "exact"


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("1985-03-14", "19850314", "exact"),
        ("1985-03-14", "1985-03-15", "one_component_differs_or_day_month_swapped"),
        ("1985-03-14", "1995-03-14", "one_component_differs_or_day_month_swapped"),
        ("1985-03-04", "1985-04-03", "one_component_differs_or_day_month_swapped"),
        ("1985-03-14", "1986-07-01", "year_within_1"),
        ("1985-03-14", "1990-07-01", "else"),
        ("1985-03-14", "", "null"),
        ("1985-03-14", "14/03", "null"),  # not a whole date: missing, not different
    ],
)
def test_date_of_birth_levels(a: str, b: str, expected: str) -> None:
    assert level("date_of_birth", rec(date_of_birth=a), rec(date_of_birth=b)) == expected


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("06236", "06236", "exact"),
        ("06236", "06299", "first_3_chars"),
        ("06236", "06237", "one_edit"),
        ("3169", "3196", "one_edit"),  # transposed digits are one typo
        ("06236", "48058", "else"),
        ("", "48058", "null"),
    ],
)
def test_postcode_levels(a: str, b: str, expected: str) -> None:
    assert level("postcode", rec(postcode=a), rec(postcode=b)) == expected


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("+821012345678", "+821012345678", "exact"),
        ("+821012345678", "01012345678", "exact"),  # national form read as KR
        ("+821012345678", "+8201012345678", "last_8_digits"),
        ("+821012345678", "+821012345679", "else"),
    ],
)
def test_phone_levels(a: str, b: str, expected: str) -> None:
    assert level("phone", rec(phone=a), rec(phone=b)) == expected


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("1234567", "1234567", "exact"),
        ("1234567", "1234667", "one_edit"),
        ("1234567", "7654321", "else"),
    ],
)
def test_national_id_levels(a: str, b: str, expected: str) -> None:
    assert level("national_id", rec(national_id=a), rec(national_id=b)) == expected


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("12 Stanley St.", "12 stanley st", "exact"),
        ("12 stanley street", "12 stanley stret", "jaro_winkler>=0.9"),
        ("12 stanley street", "112 stanley court", "jaro_winkler>=0.7"),  # JW 0.836
        ("12 stanley street", "4 kent place", "else"),
    ],
)
def test_street_levels(a: str, b: str, expected: str) -> None:
    assert level("street", rec(street=a), rec(street=b)) == expected
