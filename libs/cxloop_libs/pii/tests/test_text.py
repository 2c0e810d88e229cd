"""PII in free text (issue 10 item 5): emails (also URL-encoded), phone
numbers in Korean and international formats, Korean RRNs; numbers that are
not phones (order numbers, prices, SKUs) are left alone."""

from __future__ import annotations

import pytest

from cxloop_libs.pii.text import Redactions, redact_text


@pytest.mark.parametrize(
    ("text", "expected", "kind"),
    [
        ("call me at kim@example.com", "call me at [redacted email]", "email"),
        (
            "https://s.kr/p?email=kim%40example.co.kr&a=1",
            "https://s.kr/p?email=[redacted email]&a=1",
            "email",
        ),
        ("010-1234-5678 please", "[redacted phone] please", "phone"),
        ("연락처 01012345678 입니다", "연락처 [redacted phone] 입니다", "phone"),
        ("+82 10 1234 5678", "[redacted phone]", "phone"),
        ("02-312-3456", "[redacted phone]", "phone"),
        ("call +1 415-555-2671 now", "call [redacted phone] now", "phone"),
        ("+44 20 7946 0958", "[redacted phone]", "phone"),
        ("rrn 900101-1234567.", "rrn [redacted rrn].", "rrn"),
        ("9001012234567", "[redacted rrn]", "rrn"),
    ],
)
def test_redacts(text: str, expected: str, kind: str) -> None:
    found = Redactions()
    assert redact_text(text, found=found) == expected
    assert found.counts == {kind: 1}


@pytest.mark.parametrize(
    "text",
    [
        "order 2024050112345 total 30000",
        "SKU 12345678",
        "price 1,234,567 won",
        "991399-1234567",  # month 13: not an RRN
        "version 1.2.3",
        "no at sign here",
        "",
    ],
)
def test_leaves_other_text_alone(text: str) -> None:
    found = Redactions()
    assert redact_text(text, found=found) == text
    assert not found


def test_dates_and_short_numbers_skip_the_phone_matcher() -> None:
    from cxloop_libs.pii.text import _phone_possible

    assert not _phone_possible("2024-05-01T10:00:00Z")
    assert not _phone_possible("total 30000 won, 12 items")
    assert _phone_possible("call 010-1234-5678")
    assert _phone_possible("at 2024-05-01 call 02 312 3456")
