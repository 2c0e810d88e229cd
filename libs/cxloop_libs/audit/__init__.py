"""The audit log every service keeps: who read or changed consent or
personal data, when and why (docs/adr/0020-audit-log.md)."""

from cxloop_libs.audit.actor import (
    ACTOR_HEADER,
    ANONYMOUS,
    PRIVACY_REQUEST,
    REASON_HEADER,
    Actor,
    actor_from_grpc,
    actor_from_metadata,
)
from cxloop_libs.audit.log import (
    Action,
    AuditEntry,
    AuditLog,
    AuditQuery,
    Outcome,
    audit_log_for,
    page_token,
    parse_page_token,
)
from cxloop_libs.audit.tables import AuditEventRow, create_audit_table, drop_audit_table

__all__ = [
    "ACTOR_HEADER",
    "ANONYMOUS",
    "PRIVACY_REQUEST",
    "REASON_HEADER",
    "Action",
    "Actor",
    "AuditEntry",
    "AuditEventRow",
    "AuditLog",
    "AuditQuery",
    "Outcome",
    "actor_from_grpc",
    "actor_from_metadata",
    "audit_log_for",
    "create_audit_table",
    "drop_audit_table",
    "page_token",
    "parse_page_token",
]
