from __future__ import annotations

from datetime import UTC, datetime

import pytest

from cxloop_libs.audit import (
    ANONYMOUS,
    Action,
    AuditEntry,
    Outcome,
    actor_from_metadata,
    page_token,
    parse_page_token,
)
from cxloop_libs.errors import InvalidArgument

NAMES = {"s3cret": "crm", "abc": "callcentre"}


def test_the_caller_is_the_name_of_its_token() -> None:
    a = actor_from_metadata([("authorization", "Bearer abc")], NAMES)
    assert (a.name, a.on_behalf_of, a.reason) == ("callcentre", "", "")


def test_agent_and_reason_headers_say_for_whom_and_why() -> None:
    a = actor_from_metadata(
        [
            ("authorization", "Bearer abc"),
            ("x-cxloop-actor", "agent-0042"),
            # Non-ASCII reasons travel percent-encoded.
            ("x-cxloop-reason", "ticket%20T-7%20%EA%B3%A0%EA%B0%9D%20%EB%AC%B8%EC%9D%98"),
        ],
        NAMES,
    )
    assert a.name == "callcentre"
    assert a.on_behalf_of == "agent-0042"
    assert a.reason == "ticket T-7 고객 문의"


def test_without_auth_the_caller_is_anonymous() -> None:
    assert actor_from_metadata([], NAMES).name == ANONYMOUS
    assert actor_from_metadata(None, {}).name == ANONYMOUS


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("x-cxloop-reason", "x" * 501),
        ("x-cxloop-reason", "%FF%FE"),
        ("x-cxloop-reason", "a%0Ab"),
        ("x-cxloop-actor", "Jane Doe"),
        ("x-cxloop-actor", "a" * 101),
    ],
)
def test_malformed_headers_are_refused_naming_the_header(header: str, value: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        actor_from_metadata([(header, value)], NAMES)
    assert err.value.field == header


def test_an_entry_survives_the_event_body() -> None:
    e = AuditEntry(
        audit_id="a1",
        service="consent",
        occurred_at=datetime(2026, 11, 25, 12, 0, tzinfo=UTC),
        actor="crm",
        action=Action.CHANGE,
        resource="consent.preferences",
        subject="c-1",
        reason="why",
        outcome=Outcome.NOT_FOUND,
        fields=("purpose:analytics",),
        operation="RecordConsent",
        subject_count=1,
    )
    assert AuditEntry.from_proto(e.to_proto()) == e
    assert e.to_json()["action"] == "change"


def test_page_tokens_round_trip_and_garbage_is_refused() -> None:
    assert parse_page_token(page_token(42)) == 42
    assert parse_page_token("") == 0
    with pytest.raises(InvalidArgument) as err:
        parse_page_token("42; drop table")
    assert err.value.field == "page_token"
