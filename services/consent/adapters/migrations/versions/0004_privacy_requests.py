"""privacy (data-subject) requests and each participant's answer

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "privacy_request",
        sa.Column("request_id", sa.String(36), primary_key=True),
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("jurisdiction", sa.String(8), nullable=False),
        sa.Column("status", sa.String(24), nullable=False),
        sa.Column("verification", sa.String(16), nullable=False),
        sa.Column("verification_method", sa.String(64), nullable=False, server_default=""),
        sa.Column("actor", sa.String(100), nullable=False, server_default=""),
        sa.Column("opened_at", TS, nullable=False),
        sa.Column("due_at", TS, nullable=False),
        sa.Column("sent_at", TS, nullable=True),
        sa.Column("closed_at", TS, nullable=True),
        sa.Column("extended", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("extension_reason", sa.Text, nullable=False, server_default=""),
        sa.Column("escalation", sa.String(32), nullable=True),
        sa.Column("escalated_at", TS, nullable=True),
        sa.Column("overdue_at", TS, nullable=True),
        sa.Column("bundle_json", sa.Text, nullable=True),
    )
    op.create_index("ix_privacy_request_customer_id", "privacy_request", ["customer_id"])
    op.create_index("ix_privacy_request_status", "privacy_request", ["status"])
    op.create_table(
        "privacy_answer",
        sa.Column(
            "request_id",
            sa.String(36),
            sa.ForeignKey("privacy_request.request_id"),
            primary_key=True,
        ),
        sa.Column("participant", sa.String(64), primary_key=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("answered_at", TS, nullable=True),
        sa.Column("categories", sa.Text, nullable=False, server_default="[]"),
        sa.Column("row_counts", sa.Text, nullable=False, server_default="{}"),
        sa.Column("detail", sa.Text, nullable=False, server_default=""),
        sa.Column("export_json", sa.Text, nullable=True),
    )


def downgrade() -> None:
    op.drop_table("privacy_answer")
    op.drop_table("privacy_request")
