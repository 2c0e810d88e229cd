"""Privacy (data-subject) requests: the saga's state without I/O.

A request is opened with the requester's verification status; once verified
it goes to every registered participant, each of which answers once. It
completes when all have answered; it escalates when one stays silent past
the answer timeout or fails, and is flagged overdue when its legal due date
passes first. Deadlines per jurisdiction:

* GDPR Art. 12(3): one month from receipt, extendable once by two further
  months with notice to the data subject.
* PIPA: 10 days (Enforcement Decree Art. 41(4) for access, Art. 43(3) for
  correction and deletion). Assumption, to be confirmed by counsel: cxloop
  offers no extension under PIPA (postponement needs a reason notified to the
  subject and is handled outside the system).
* CCPA (Cal. Civ. Code 1798.130(a)(2)): 45 days, extendable once by 45 more
  with notice.
"""

from __future__ import annotations

import calendar
import json
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from cxloop_libs.consent.state_bucket import KEY_TOKEN
from cxloop_libs.errors import FailedPrecondition, InvalidArgument
from cxloop_libs.privacy import RequestKind

MAX_REASON = 500
MAX_METHOD = 64
MAX_ACTOR = 100


class Jurisdiction(StrEnum):
    GDPR = "gdpr"
    PIPA = "pipa"
    CCPA = "ccpa"


class Verification(StrEnum):
    PENDING = "pending"
    VERIFIED = "verified"
    FAILED = "failed"


class RequestStatus(StrEnum):
    AWAITING_VERIFICATION = "awaiting_verification"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    REJECTED = "rejected"
    ESCALATED = "escalated"

    @property
    def is_open(self) -> bool:
        return self in (
            RequestStatus.AWAITING_VERIFICATION,
            RequestStatus.IN_PROGRESS,
            RequestStatus.ESCALATED,
        )


class AnswerState(StrEnum):
    PENDING = "pending"
    DONE = "done"
    FAILED = "failed"
    NOT_APPLICABLE = "not_applicable"

    @property
    def answered(self) -> bool:
        return self in (AnswerState.DONE, AnswerState.NOT_APPLICABLE)


class Escalation(StrEnum):
    PARTICIPANTS_SILENT = "participants_silent"
    OVERDUE = "overdue"
    PARTICIPANT_FAILED = "participant_failed"


# Jurisdiction of a request that names none, from the controller's.
DEFAULT_JURISDICTION = {"KR": Jurisdiction.PIPA, "US": Jurisdiction.CCPA}


def add_months(at: datetime, months: int) -> datetime:
    """Same day ``months`` later, or the month's last day (31 Jan + 1 = 28/29 Feb)."""
    month0 = at.month - 1 + months
    year, month = at.year + month0 // 12, month0 % 12 + 1
    day = min(at.day, calendar.monthrange(year, month)[1])
    return at.replace(year=year, month=month, day=day)


def due_date(jurisdiction: Jurisdiction, opened_at: datetime) -> datetime:
    if jurisdiction is Jurisdiction.GDPR:
        return add_months(opened_at, 1)
    if jurisdiction is Jurisdiction.PIPA:
        return opened_at + timedelta(days=10)
    return opened_at + timedelta(days=45)


def extended_due_date(jurisdiction: Jurisdiction, due_at: datetime) -> datetime:
    if jurisdiction is Jurisdiction.GDPR:
        return add_months(due_at, 2)
    if jurisdiction is Jurisdiction.CCPA:
        return due_at + timedelta(days=45)
    raise FailedPrecondition("PIPA requests cannot be extended here (see docs/adr/0014)")


@dataclass(frozen=True, slots=True)
class Answer:
    participant: str
    state: AnswerState = AnswerState.PENDING
    answered_at: datetime | None = None
    categories: tuple[str, ...] = ()
    row_counts: dict[str, int] = field(default_factory=dict)
    detail: str = ""
    export_json: str = ""

    @property
    def records_affected(self) -> int:
        return sum(self.row_counts.values())


@dataclass(frozen=True, slots=True)
class PrivacyRequest:
    request_id: str
    customer_id: str
    kind: RequestKind
    jurisdiction: Jurisdiction
    status: RequestStatus
    verification: Verification
    verification_method: str
    actor: str
    opened_at: datetime
    due_at: datetime
    answers: dict[str, Answer]
    sent_at: datetime | None = None
    closed_at: datetime | None = None
    extended: bool = False
    extension_reason: str = ""
    escalation: Escalation | None = None
    escalated_at: datetime | None = None
    overdue_at: datetime | None = None
    bundle_json: str = ""

    @property
    def missing(self) -> list[str]:
        return sorted(p for p, a in self.answers.items() if not a.state.answered)

    def verified(self, method: str, now: datetime) -> PrivacyRequest:
        if self.status is not RequestStatus.AWAITING_VERIFICATION:
            raise FailedPrecondition(f"request is {self.status.value}, not awaiting verification")
        return replace(
            self,
            verification=Verification.VERIFIED,
            verification_method=method or self.verification_method,
            status=RequestStatus.IN_PROGRESS,
            sent_at=now,
        )

    def rejected(self, method: str, now: datetime) -> PrivacyRequest:
        if self.status is not RequestStatus.AWAITING_VERIFICATION:
            raise FailedPrecondition(f"request is {self.status.value}, not awaiting verification")
        return replace(
            self,
            verification=Verification.FAILED,
            verification_method=method or self.verification_method,
            status=RequestStatus.REJECTED,
            closed_at=now,
        )

    def extend(self, reason: str, now: datetime) -> PrivacyRequest:
        reason = reason.strip()
        if not reason:
            raise InvalidArgument("reason", "the customer must be told why")
        if len(reason) > MAX_REASON:
            raise InvalidArgument("reason", f"at most {MAX_REASON} characters")
        if not self.status.is_open:
            raise FailedPrecondition(f"request is {self.status.value}")
        if self.extended:
            raise FailedPrecondition("the deadline was already extended once")
        due = extended_due_date(self.jurisdiction, self.due_at)
        return replace(
            self,
            due_at=due,
            extended=True,
            extension_reason=reason,
            overdue_at=self.overdue_at if due <= now else None,
        )

    def answered(self, answer: Answer) -> PrivacyRequest:
        """With one participant's answer (a participant answers once)."""
        held = self.answers.get(answer.participant)
        if held is not None and held.state is not AnswerState.PENDING:
            return self
        return replace(self, answers={**self.answers, answer.participant: answer})

    def completes(self) -> bool:
        return (
            self.status in (RequestStatus.IN_PROGRESS, RequestStatus.ESCALATED) and not self.missing
        )

    def completed(self, now: datetime) -> PrivacyRequest:
        bundle = access_bundle(self, now) if self.kind is RequestKind.ACCESS else ""
        return replace(self, status=RequestStatus.COMPLETED, closed_at=now, bundle_json=bundle)

    def escalated(self, why: Escalation, now: datetime) -> PrivacyRequest:
        return replace(self, status=RequestStatus.ESCALATED, escalation=why, escalated_at=now)

    def silent_too_long(self, now: datetime, timeout: timedelta) -> bool:
        return (
            self.status is RequestStatus.IN_PROGRESS
            and self.sent_at is not None
            and self.sent_at + timeout <= now
            and bool(self.missing)
        )

    def newly_overdue(self, now: datetime) -> bool:
        return self.status.is_open and self.overdue_at is None and self.due_at <= now


def open_request(
    *,
    customer_id: str,
    kind: RequestKind | None,
    jurisdiction: Jurisdiction | None,
    verification: Verification,
    verification_method: str,
    actor: str,
    participants: list[str],
    now: datetime,
) -> PrivacyRequest:
    if not customer_id:
        raise InvalidArgument("customer_id", "must not be empty")
    if not KEY_TOKEN.match(customer_id):
        raise InvalidArgument("customer_id", "must be 1-64 characters of A-Z a-z 0-9 _ = -")
    if kind is None:
        raise InvalidArgument("kind", "must be access, erasure, rectification or restriction")
    if jurisdiction is None:
        raise InvalidArgument("jurisdiction", "must be GDPR, PIPA or CCPA")
    if len(verification_method) > MAX_METHOD:
        raise InvalidArgument("verification_method", f"at most {MAX_METHOD} characters")
    if len(actor) > MAX_ACTOR:
        raise InvalidArgument("actor", f"at most {MAX_ACTOR} characters")
    if not participants:
        raise FailedPrecondition("no privacy participants are configured")
    status = {
        Verification.PENDING: RequestStatus.AWAITING_VERIFICATION,
        Verification.VERIFIED: RequestStatus.IN_PROGRESS,
        Verification.FAILED: RequestStatus.REJECTED,
    }[verification]
    return PrivacyRequest(
        request_id=str(uuid.uuid4()),
        customer_id=customer_id,
        kind=kind,
        jurisdiction=jurisdiction,
        status=status,
        verification=verification,
        verification_method=verification_method,
        actor=actor or "customer",
        opened_at=now,
        due_at=due_date(jurisdiction, now),
        answers={p: Answer(p) for p in sorted(set(participants))},
        sent_at=now if status is RequestStatus.IN_PROGRESS else None,
        closed_at=now if status is RequestStatus.REJECTED else None,
    )


def access_bundle(request: PrivacyRequest, now: datetime) -> str:
    """One machine-readable JSON document (GDPR Art. 20 portability)."""
    services: list[dict[str, Any]] = []
    for name, a in sorted(request.answers.items()):
        try:
            data = json.loads(a.export_json) if a.export_json else None
        except ValueError:
            data = {"unreadable_export": True}
        services.append(
            {
                "service": name,
                "categories": list(a.categories),
                "row_counts": dict(a.row_counts),
                "data": data,
            }
        )
    return json.dumps(
        {
            "format": "cxloop.access-bundle.v1",
            "request_id": request.request_id,
            "customer_id": request.customer_id,
            "jurisdiction": request.jurisdiction.value,
            "opened_at": request.opened_at.isoformat(),
            "generated_at": now.isoformat(),
            "services": services,
        },
        sort_keys=True,
        ensure_ascii=False,
    )
