"""Members' birthdays as loyalty keeps them: "MM-DD", no year (the reward
needs only the day), celebrated once a year in the programme's time zone."""

from __future__ import annotations

import calendar
from datetime import date

from cxloop_libs.errors import InvalidArgument


def birthday_of(month: int, day: int) -> str:
    """ "MM-DD", or "" for month and day 0 (forget it); InvalidArgument naming
    the field for a day that no year has."""
    if month == 0 and day == 0:
        return ""
    if not 1 <= month <= 12:
        raise InvalidArgument("month", "must be from 1 to 12 (0 with day 0 to forget)")
    # 2000 was a leap year: 29 February is a birthday.
    last = calendar.monthrange(2000, month)[1]
    if not 1 <= day <= last:
        raise InvalidArgument("day", f"must be from 1 to {last} in month {month}")
    return f"{month:02d}-{day:02d}"


def birthdays_on(today: date) -> list[str]:
    """The birthdays celebrated on ``today``: its own, and 29 February on
    28 February of a year without one."""
    days = [f"{today.month:02d}-{today.day:02d}"]
    if (today.month, today.day) == (2, 28) and not calendar.isleap(today.year):
        days.append("02-29")
    return days
