"""purposes, notices, consent ledger and its projection; outbox and inbox

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from cxloop_libs.messaging.tables import create_messaging_tables, drop_messaging_tables

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    create_messaging_tables(op)
    op.create_table(
        "consent_purpose",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("legal_basis", sa.String(32), nullable=False),
        sa.Column("mandatory", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("validity_days", sa.Integer, nullable=False, server_default="0"),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_table(
        "consent_notice",
        sa.Column("purpose", sa.String(64), sa.ForeignKey("consent_purpose.key"), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("text_ko", sa.Text, nullable=False),
        sa.Column("text_en", sa.Text, nullable=False),
        sa.Column("substantive", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("published_at", TS, nullable=False),
        sa.Column("tp_recipient", sa.String(200), nullable=True),
        sa.Column("tp_purpose", sa.Text, nullable=True),
        sa.Column("tp_items", sa.Text, nullable=True),
        sa.Column("tp_retention", sa.String(200), nullable=True),
    )
    op.create_table(
        "consent_record",
        sa.Column("record_id", sa.String(36), primary_key=True),
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("purpose", sa.String(64), nullable=False),
        sa.Column("notice_version", sa.Integer, nullable=False),
        sa.Column("decision", sa.String(16), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("decided_at", TS, nullable=False),
        sa.Column("recorded_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=True),
        sa.Column("ip_hash", sa.String(64), nullable=False, server_default=""),
        sa.Column("user_agent_hash", sa.String(64), nullable=False, server_default=""),
        sa.Column("actor", sa.String(100), nullable=False, server_default=""),
        sa.Column("idempotency_key", sa.String(128), nullable=True),
        sa.Column("receipt_jws", sa.Text, nullable=False),
        sa.ForeignKeyConstraint(
            ["purpose", "notice_version"], ["consent_notice.purpose", "consent_notice.version"]
        ),
        sa.UniqueConstraint("customer_id", "idempotency_key", name="uq_consent_record_idem"),
    )
    op.create_index("ix_consent_record_customer_id", "consent_record", ["customer_id"])
    op.create_table(
        "consent_state",
        sa.Column("customer_id", sa.String(64), primary_key=True),
        sa.Column("purpose", sa.String(64), primary_key=True),
        sa.Column("decision", sa.String(16), nullable=False),
        sa.Column("notice_version", sa.Integer, nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("decided_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=True),
        sa.Column("record_id", sa.String(36), nullable=False),
    )
    op.create_table(
        "consent_subject",
        sa.Column("customer_id", sa.String(64), primary_key=True),
        sa.Column("version", sa.Integer, nullable=False, server_default="0"),
        sa.Column("updated_at", TS, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("consent_subject")
    op.drop_table("consent_state")
    op.drop_table("consent_record")
    op.drop_table("consent_notice")
    op.drop_table("consent_purpose")
    drop_messaging_tables(op)
