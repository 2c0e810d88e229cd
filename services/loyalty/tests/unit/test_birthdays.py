from __future__ import annotations

from datetime import date

import pytest

from cxloop_libs.errors import InvalidArgument
from loyalty.domain.birthdays import birthday_of, birthdays_on


def test_birthday_is_month_and_day_or_a_clear_error() -> None:
    assert birthday_of(3, 14) == "03-14"
    assert birthday_of(2, 29) == "02-29"
    assert birthday_of(0, 0) == ""
    for month, day, field in ((0, 5, "month"), (13, 1, "month"), (2, 30, "day"), (6, 0, "day")):
        with pytest.raises(InvalidArgument) as err:
            birthday_of(month, day)
        assert err.value.field == field


def test_leap_day_birthdays_are_celebrated_on_28_february_otherwise() -> None:
    assert birthdays_on(date(2027, 2, 28)) == ["02-28", "02-29"]
    assert birthdays_on(date(2028, 2, 28)) == ["02-28"]
    assert birthdays_on(date(2028, 2, 29)) == ["02-29"]
    assert birthdays_on(date(2027, 3, 1)) == ["03-01"]
