"""Consent's own tables. Only this service reads or writes them.

``consent_record`` is the ledger: rows are inserted, never updated.
``consent_state`` and ``consent_subject`` are its projection (latest decision
per purpose, version per customer), written in the same transaction as the
record they reflect.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

TS = sa.DateTime(timezone=True)


class PurposeRow(SQLModel, table=True):
    __tablename__ = "consent_purpose"

    key: str = Field(primary_key=True, max_length=64)
    legal_basis: str = Field(max_length=32)
    mandatory: bool = False
    validity_days: int = 0
    created_at: datetime = Field(sa_column=sa.Column(TS, nullable=False))


class NoticeRow(SQLModel, table=True):
    __tablename__ = "consent_notice"

    purpose: str = Field(primary_key=True, max_length=64)
    version: int = Field(primary_key=True)
    text_ko: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    text_en: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    substantive: bool = True
    published_at: datetime = Field(sa_column=sa.Column(TS, nullable=False))
    # Third-party provision (PIPA Art. 17(2)); items as a JSON list.
    tp_recipient: str | None = Field(default=None, max_length=200)
    tp_purpose: str | None = Field(default=None, sa_column=sa.Column(sa.Text, nullable=True))
    tp_items: str | None = Field(default=None, sa_column=sa.Column(sa.Text, nullable=True))
    tp_retention: str | None = Field(default=None, max_length=200)


class RecordRow(SQLModel, table=True):
    __tablename__ = "consent_record"
    __table_args__ = (
        sa.UniqueConstraint("customer_id", "idempotency_key", name="uq_consent_record_idem"),
    )

    record_id: str = Field(primary_key=True, max_length=36)
    customer_id: str = Field(max_length=64, index=True)
    purpose: str = Field(max_length=64)
    notice_version: int
    decision: str = Field(max_length=16)
    channel: str = Field(max_length=16)
    decided_at: datetime = Field(sa_column=sa.Column(TS, nullable=False))
    recorded_at: datetime = Field(sa_column=sa.Column(TS, nullable=False))
    expires_at: datetime | None = Field(default=None, sa_column=sa.Column(TS, nullable=True))
    ip_hash: str = Field(default="", max_length=64)
    user_agent_hash: str = Field(default="", max_length=64)
    actor: str = Field(default="", max_length=100)
    idempotency_key: str | None = Field(default=None, max_length=128)
    receipt_jws: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    # A grant given while a GPC signal is on record for the customer.
    gpc_conflict: bool = False
    # "merge:<id>" / "split:<id>": written by consent following identity, not
    # by the customer's own action.
    derived_from: str = Field(default="", max_length=80)


class StateRow(SQLModel, table=True):
    __tablename__ = "consent_state"

    customer_id: str = Field(primary_key=True, max_length=64)
    purpose: str = Field(primary_key=True, max_length=64)
    decision: str = Field(max_length=16)
    notice_version: int
    channel: str = Field(max_length=16)
    decided_at: datetime = Field(sa_column=sa.Column(TS, nullable=False))
    expires_at: datetime | None = Field(default=None, sa_column=sa.Column(TS, nullable=True))
    record_id: str = Field(max_length=36)
    gpc_conflict: bool = False


class SubjectRow(SQLModel, table=True):
    __tablename__ = "consent_subject"

    customer_id: str = Field(primary_key=True, max_length=64)
    version: int = 0
    updated_at: datetime = Field(sa_column=sa.Column(TS, nullable=False))


class GpcSignalRow(SQLModel, table=True):
    """A customer whose browser sent Global Privacy Control (``Sec-GPC: 1``)."""

    __tablename__ = "consent_gpc_signal"

    customer_id: str = Field(primary_key=True, max_length=64)
    first_seen_at: datetime = Field(sa_column=sa.Column(TS, nullable=False))
    last_seen_at: datetime = Field(sa_column=sa.Column(TS, nullable=False))
    event_id: str = Field(max_length=128)


class PrivacyRequestRow(SQLModel, table=True):
    """A data-subject request. Kept after the subject is erased, as the
    controller's proof that the request was honoured (GDPR Art. 5(2)); it
    holds the customer id and counts, never the subject's data (an access
    bundle is dropped when the subject is later erased)."""

    __tablename__ = "privacy_request"

    request_id: str = Field(primary_key=True, max_length=36)
    customer_id: str = Field(max_length=64, index=True)
    kind: str = Field(max_length=16)
    jurisdiction: str = Field(max_length=8)
    status: str = Field(max_length=24, index=True)
    verification: str = Field(max_length=16)
    verification_method: str = Field(default="", max_length=64)
    actor: str = Field(default="", max_length=100)
    opened_at: datetime = Field(sa_column=sa.Column(TS, nullable=False))
    due_at: datetime = Field(sa_column=sa.Column(TS, nullable=False))
    sent_at: datetime | None = Field(default=None, sa_column=sa.Column(TS, nullable=True))
    closed_at: datetime | None = Field(default=None, sa_column=sa.Column(TS, nullable=True))
    extended: bool = False
    extension_reason: str = Field(default="", sa_column=sa.Column(sa.Text, nullable=False))
    escalation: str | None = Field(default=None, max_length=32)
    escalated_at: datetime | None = Field(default=None, sa_column=sa.Column(TS, nullable=True))
    overdue_at: datetime | None = Field(default=None, sa_column=sa.Column(TS, nullable=True))
    bundle_json: str | None = Field(default=None, sa_column=sa.Column(sa.Text, nullable=True))


class PrivacyAnswerRow(SQLModel, table=True):
    __tablename__ = "privacy_answer"

    request_id: str = Field(primary_key=True, max_length=36)
    participant: str = Field(primary_key=True, max_length=64)
    state: str = Field(max_length=16)
    answered_at: datetime | None = Field(default=None, sa_column=sa.Column(TS, nullable=True))
    categories: str = Field(default="[]", sa_column=sa.Column(sa.Text, nullable=False))
    row_counts: str = Field(default="{}", sa_column=sa.Column(sa.Text, nullable=False))
    detail: str = Field(default="", sa_column=sa.Column(sa.Text, nullable=False))
    export_json: str | None = Field(default=None, sa_column=sa.Column(sa.Text, nullable=True))
