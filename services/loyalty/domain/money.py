"""Money as it arrives (decimal amounts in a currency) and as loyalty keeps
it (int minor units). KRW has no minor unit: 35,000 won is 35000."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from cxloop_libs.errors import InvalidArgument

# ISO 4217 minor-unit exponents of the currencies the programme accepts.
EXPONENTS: dict[str, int] = {
    "KRW": 0,
    "JPY": 0,
    "USD": 2,
    "EUR": 2,
    "GBP": 2,
    "CNY": 2,
    "SGD": 2,
}
# Above this a single amount is refused as absurd (10^13 minor units:
# 10 trillion won, 100 billion dollars).
MAX_MINOR_UNITS = 10**13


def currency(code: str, field: str = "currency_code") -> str:
    c = (code or "").strip().upper()
    if not c:
        raise InvalidArgument(field, "is required")
    if c not in EXPONENTS:
        raise InvalidArgument(field, f"unknown currency; accepted: {', '.join(sorted(EXPONENTS))}")
    return c


def to_minor_units(amount: object, code: str, field: str) -> int:
    """A decimal amount (as JSON carries it) in minor units, exactly: a value
    finer than the currency's minor unit is refused, not rounded."""
    if isinstance(amount, bool) or amount is None:
        raise InvalidArgument(field, "must be a number")
    try:
        # str() of a float is its shortest round-trip form: 12.34 -> "12.34".
        d = Decimal(str(amount))
    except (InvalidOperation, ValueError):
        raise InvalidArgument(field, "must be a number") from None
    if not d.is_finite():
        raise InvalidArgument(field, "must be a finite number")
    scaled = d.scaleb(EXPONENTS[code])
    if scaled != scaled.to_integral_value():
        raise InvalidArgument(field, f"has more decimals than {code} allows")
    return checked_minor_units(int(scaled), field)


def checked_minor_units(value: int, field: str, *, allow_zero: bool = True) -> int:
    if value < 0:
        raise InvalidArgument(field, "must not be negative")
    if value == 0 and not allow_zero:
        raise InvalidArgument(field, "must be positive")
    if value > MAX_MINOR_UNITS:
        raise InvalidArgument(field, "is implausibly large")
    return value
