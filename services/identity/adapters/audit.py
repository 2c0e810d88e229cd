"""Identity's audit entries: which gRPC calls read or change a customer's
profile, through the one component in libs (docs/adr/0020-audit-log.md)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from sqlmodel import Session

from cxloop_libs.audit import Action, AuditLog
from cxloop_libs.db import Database

T = TypeVar("T")
READ, CHANGE = Action.READ, Action.CHANGE
PROFILE = "identity.profile"
GRAPH = "identity.graph"
REVIEW = "identity.review"


def audited(
    audit: AuditLog | None,
    context: Any,
    action: Action,
    resource: str,
    fn: Callable[[Session], T],
    *,
    subject: str | Callable[[T], str],
    operation: str,
) -> Callable[[Session], T]:
    """``fn`` with its audit entry written in the same transaction (as is
    without an audit log, e.g. in unit tests)."""
    if audit is None:
        return fn
    actor = audit.actor(context)
    return audit.audited(actor, action, resource, fn, subject=subject, operation=operation)


async def audited_read(
    audit: AuditLog | None,
    context: Any,
    db: Database,
    resource: str,
    fn: Callable[[Session], T],
    *,
    subject: str | Callable[[T], str],
    operation: str,
) -> T:
    """A read in a read-only transaction, its entry committed together with
    those of concurrent reads (`AuditLog.read`); returns once it is stored."""
    if audit is None:
        return await db.in_transaction(fn)
    return await audit.read(
        audit.actor(context), READ, resource, fn, subject=subject, operation=operation
    )
