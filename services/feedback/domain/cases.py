"""Follow-up cases: the closed loop. A detractor, a CSAT of 1-2 or a
strongly negative review opens one; it has an owner, a status, an SLA
(due time by priority), escalates when overdue, collects notes and ends
with a resolution the customer can be told."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum


class CaseStatus(StrEnum):
    OPEN = "open"
    IN_PROGRESS = "in_progress"
    WAITING_ON_CUSTOMER = "waiting_on_customer"
    RESOLVED = "resolved"
    CLOSED = "closed"


class CasePriority(StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"


SLA: dict[CasePriority, timedelta] = {
    CasePriority.URGENT: timedelta(hours=4),
    CasePriority.HIGH: timedelta(hours=24),
    CasePriority.NORMAL: timedelta(hours=72),
    CasePriority.LOW: timedelta(days=7),
}
_ESCALATE = {
    CasePriority.LOW: CasePriority.NORMAL,
    CasePriority.NORMAL: CasePriority.HIGH,
    CasePriority.HIGH: CasePriority.URGENT,
    CasePriority.URGENT: CasePriority.URGENT,
}
OPEN_STATES = frozenset({CaseStatus.OPEN, CaseStatus.IN_PROGRESS, CaseStatus.WAITING_ON_CUSTOMER})
# Allowed moves; RESOLVED may reopen (the customer answered the follow-up badly).
TRANSITIONS: dict[CaseStatus, frozenset[CaseStatus]] = {
    CaseStatus.OPEN: frozenset(
        {
            CaseStatus.IN_PROGRESS,
            CaseStatus.WAITING_ON_CUSTOMER,
            CaseStatus.RESOLVED,
            CaseStatus.CLOSED,
        }
    ),
    CaseStatus.IN_PROGRESS: frozenset(
        {CaseStatus.WAITING_ON_CUSTOMER, CaseStatus.RESOLVED, CaseStatus.CLOSED}
    ),
    CaseStatus.WAITING_ON_CUSTOMER: frozenset(
        {CaseStatus.IN_PROGRESS, CaseStatus.RESOLVED, CaseStatus.CLOSED}
    ),
    CaseStatus.RESOLVED: frozenset({CaseStatus.CLOSED, CaseStatus.IN_PROGRESS}),
    CaseStatus.CLOSED: frozenset(),
}


def priority_for(metric: str, score: int, strongly_negative_text: bool) -> CasePriority:
    """The worse the score (and an angry comment), the sooner."""
    if metric == "nps":
        p = CasePriority.HIGH if score <= 3 else CasePriority.NORMAL
    elif metric in ("csat", "review"):
        p = CasePriority.HIGH if score <= 1 else CasePriority.NORMAL
    else:
        p = CasePriority.NORMAL
    if strongly_negative_text and p is not CasePriority.URGENT:
        p = _ESCALATE[p]
    return p


def due_at(priority: CasePriority, opened_at: datetime) -> datetime:
    return opened_at + SLA[priority]


@dataclass(frozen=True, slots=True)
class Escalation:
    priority: CasePriority
    due_at: datetime
    level: int


def escalation(
    status: CaseStatus, priority: CasePriority, due: datetime, level: int, now: datetime
) -> Escalation | None:
    """An open case past its due time goes up one priority with a fresh
    (shorter) SLA; None when it is on time or finished."""
    if status not in OPEN_STATES or now < due:
        return None
    p = _ESCALATE[priority]
    return Escalation(p, now + SLA[p], level + 1)


def check_transition(current: CaseStatus, new: CaseStatus) -> str | None:
    if new == current:
        return None
    if new not in TRANSITIONS[current]:
        return f"cannot go from {current.value} to {new.value}"
    return None
