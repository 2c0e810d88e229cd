"""Tables every service has in its own database: the outbox of events to
publish and the inbox of events already processed."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


class OutboxEvent(SQLModel, table=True):
    __tablename__ = "outbox_event"

    id: int | None = Field(default=None, primary_key=True)
    event_id: str = Field(max_length=128)
    ce_type: str = Field(max_length=200)
    nats_subject: str = Field(max_length=200)
    ce_subject: str = Field(default="", max_length=200)
    data: bytes = Field(sa_column=sa.Column(sa.LargeBinary, nullable=False))
    traceparent: str = Field(default="", max_length=128)
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=sa.Column(sa.DateTime(timezone=True), nullable=False)
    )


class InboxEvent(SQLModel, table=True):
    __tablename__ = "inbox_event"

    consumer: str = Field(primary_key=True, max_length=100)
    event_id: str = Field(primary_key=True, max_length=128)
    processed_at: datetime = Field(
        default_factory=utcnow, sa_column=sa.Column(sa.DateTime(timezone=True), nullable=False)
    )


def create_messaging_tables(op: object) -> None:
    """Called from each service's first Alembic revision so the outbox and
    inbox schema is written once."""
    o = op  # alembic.op proxy
    o.create_table(  # type: ignore[attr-defined]
        "outbox_event",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(128), nullable=False),
        sa.Column("ce_type", sa.String(200), nullable=False),
        sa.Column("nats_subject", sa.String(200), nullable=False),
        sa.Column("ce_subject", sa.String(200), nullable=False, server_default=""),
        sa.Column("data", sa.LargeBinary, nullable=False),
        sa.Column("traceparent", sa.String(64), nullable=False, server_default=""),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    o.create_table(  # type: ignore[attr-defined]
        "inbox_event",
        sa.Column("consumer", sa.String(100), primary_key=True),
        sa.Column("event_id", sa.String(128), primary_key=True),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=False),
    )


def drop_messaging_tables(op: object) -> None:
    o = op
    o.drop_table("inbox_event")  # type: ignore[attr-defined]
    o.drop_table("outbox_event")  # type: ignore[attr-defined]
