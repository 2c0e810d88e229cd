"""The privacy request saga's rules without I/O: deadlines per jurisdiction,
extension, verification, answers, completion, escalation and overdue."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from consent.domain.privacy import (
    Answer,
    AnswerState,
    Jurisdiction,
    RequestStatus,
    Verification,
    add_months,
    due_date,
    open_request,
)
from cxloop_libs.errors import FailedPrecondition, InvalidArgument
from cxloop_libs.privacy import RequestKind

NOW = datetime(2026, 1, 31, 9, 0, tzinfo=UTC)


def request(**kw: object):  # type: ignore[no-untyped-def]
    base: dict[str, object] = dict(
        customer_id="c1",
        kind=RequestKind.ERASURE,
        jurisdiction=Jurisdiction.GDPR,
        verification=Verification.VERIFIED,
        verification_method="session",
        actor="",
        participants=["consent", "identity", "gateway"],
        now=NOW,
    )
    base.update(kw)
    return open_request(**base)  # type: ignore[arg-type]


def test_due_dates_per_jurisdiction() -> None:
    assert due_date(Jurisdiction.GDPR, NOW) == datetime(2026, 2, 28, 9, 0, tzinfo=UTC)
    assert due_date(Jurisdiction.PIPA, NOW) == NOW + timedelta(days=10)
    assert due_date(Jurisdiction.CCPA, NOW) == NOW + timedelta(days=45)
    assert add_months(datetime(2026, 11, 30, tzinfo=UTC), 3) == datetime(2027, 2, 28, tzinfo=UTC)


def test_extension_once_where_the_law_allows() -> None:
    r = request()
    longer = r.extend("a complex request across many systems", NOW)
    assert longer.due_at == add_months(r.due_at, 2) and longer.extended
    with pytest.raises(FailedPrecondition):
        longer.extend("again", NOW)
    with pytest.raises(InvalidArgument):
        r.extend("  ", NOW)
    with pytest.raises(FailedPrecondition):
        request(jurisdiction=Jurisdiction.PIPA).extend("volume", NOW)
    ccpa = request(jurisdiction=Jurisdiction.CCPA)
    assert ccpa.extend("volume", NOW).due_at == ccpa.due_at + timedelta(days=45)


def test_verification_gates_the_request() -> None:
    pending = request(verification=Verification.PENDING)
    assert pending.status is RequestStatus.AWAITING_VERIFICATION and pending.sent_at is None
    assert pending.verified("email_otp", NOW).status is RequestStatus.IN_PROGRESS
    rejected = pending.rejected("email_otp", NOW)
    assert rejected.status is RequestStatus.REJECTED and rejected.closed_at == NOW
    with pytest.raises(FailedPrecondition):
        rejected.verified("x", NOW)
    assert request(verification=Verification.FAILED).status is RequestStatus.REJECTED


def test_completes_only_when_every_participant_answered_once() -> None:
    r = request(kind=RequestKind.ACCESS)
    r = r.answered(
        Answer(
            "consent",
            AnswerState.DONE,
            NOW,
            ("consent_records",),
            {"consent_records": 2},
            export_json='{"a": 1}',
        )
    )
    r = r.answered(Answer("gateway", AnswerState.NOT_APPLICABLE, NOW, ("none",)))
    assert not r.completes() and r.missing == ["identity"]
    # A second answer of the same participant changes nothing.
    assert (
        r.answered(Answer("consent", AnswerState.FAILED, NOW)).answers["consent"].state
        is AnswerState.DONE
    )
    r = r.answered(Answer("identity", AnswerState.DONE, NOW, ("identifiers",), {"identifiers": 3}))
    assert r.completes()
    done = r.completed(NOW)
    bundle = json.loads(done.bundle_json)
    assert bundle["format"] == "cxloop.access-bundle.v1"
    assert [s["service"] for s in bundle["services"]] == ["consent", "gateway", "identity"]
    assert bundle["services"][0]["data"] == {"a": 1}


def test_silence_and_overdue() -> None:
    r = request()
    assert not r.silent_too_long(NOW + timedelta(minutes=59), timedelta(hours=1))
    assert r.silent_too_long(NOW + timedelta(hours=1), timedelta(hours=1))
    assert not r.newly_overdue(r.due_at - timedelta(seconds=1))
    assert r.newly_overdue(r.due_at)


@pytest.mark.parametrize(
    ("field", "kw"),
    [
        ("customer_id", {"customer_id": ""}),
        ("customer_id", {"customer_id": "x" * 65}),
        ("kind", {"kind": None}),
        ("jurisdiction", {"jurisdiction": None}),
        ("actor", {"actor": "a" * 101}),
    ],
)
def test_bad_requests_name_the_field(field: str, kw: dict[str, object]) -> None:
    with pytest.raises(InvalidArgument) as err:
        request(**kw)
    assert err.value.field == field
