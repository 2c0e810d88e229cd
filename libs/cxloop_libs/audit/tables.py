"""The ``audit_event`` table every service with a database keeps (schema
written once, here; created by each service's own migration, as the outbox
and the subject keyring are)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel


class AuditEventRow(SQLModel, table=True):
    __tablename__ = "audit_event"

    # Insertion order: what export pages follow.
    id: int | None = Field(default=None, primary_key=True)
    audit_id: str = Field(max_length=36, unique=True)
    occurred_at: datetime = Field(sa_column=sa.Column(sa.DateTime(timezone=True), nullable=False))
    actor: str = Field(max_length=100)
    on_behalf_of: str = Field(default="", max_length=100)
    action: str = Field(max_length=16)
    resource: str = Field(max_length=64)
    subject: str = Field(default="", max_length=64)
    subject_count: int = 0
    reason: str = Field(default="", max_length=500)
    outcome: str = Field(max_length=16)
    trace_id: str = Field(default="", max_length=32)
    operation: str = Field(default="", max_length=64)
    # JSON list of field names (never values).
    fields: str = Field(default="[]", sa_column=sa.Column(sa.Text, nullable=False))


AUDIT_TABLE: sa.Table = AuditEventRow.__table__  # type: ignore[attr-defined]

_NO_UPDATE_SQLITE = """
CREATE TRIGGER audit_event_append_only BEFORE UPDATE ON audit_event
BEGIN SELECT RAISE(ABORT, 'audit_event is append-only'); END
"""
_NO_UPDATE_PG_FUNCTION = """
CREATE OR REPLACE FUNCTION audit_event_append_only() RETURNS trigger AS $$
BEGIN RAISE EXCEPTION 'audit_event is append-only'; END
$$ LANGUAGE plpgsql
"""
_NO_UPDATE_PG_TRIGGER = """
CREATE TRIGGER audit_event_append_only BEFORE UPDATE ON audit_event
FOR EACH ROW EXECUTE FUNCTION audit_event_append_only()
"""


def create_audit_table(op: Any) -> None:
    """For a service's Alembic revision. Rows can be added and (by the
    retention purge) deleted, never changed: a trigger refuses UPDATE."""
    op.create_table(
        "audit_event",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("audit_id", sa.String(36), nullable=False, unique=True),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(100), nullable=False),
        sa.Column("on_behalf_of", sa.String(100), nullable=False, server_default=""),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("resource", sa.String(64), nullable=False),
        sa.Column("subject", sa.String(64), nullable=False, server_default=""),
        sa.Column("subject_count", sa.Integer, nullable=False, server_default="0"),
        sa.Column("reason", sa.String(500), nullable=False, server_default=""),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("trace_id", sa.String(32), nullable=False, server_default=""),
        sa.Column("operation", sa.String(64), nullable=False, server_default=""),
        sa.Column("fields", sa.Text, nullable=False, server_default="[]"),
    )
    op.create_index("ix_audit_event_subject", "audit_event", ["subject", "id"])
    op.create_index("ix_audit_event_occurred_at", "audit_event", ["occurred_at"])
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        op.execute(_NO_UPDATE_SQLITE)
    elif dialect == "postgresql":
        op.execute(_NO_UPDATE_PG_FUNCTION)
        op.execute(_NO_UPDATE_PG_TRIGGER)


def drop_audit_table(op: Any) -> None:
    dialect = op.get_bind().dialect.name
    op.drop_table("audit_event")
    if dialect == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS audit_event_append_only()")
