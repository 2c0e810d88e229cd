"""review queue and match evidence of probabilistic links

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
        "identity_review_item",
        sa.Column("item_id", sa.String(64), primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("probability", sa.Float, nullable=False),
        sa.Column("weights", sa.Text, nullable=False),
        sa.Column("source_a", sa.String(32), nullable=False),
        sa.Column("record_id_a", sa.String(200), nullable=False),
        sa.Column("hash_a", sa.String(64), nullable=False),
        sa.Column("source_b", sa.String(32), nullable=False),
        sa.Column("record_id_b", sa.String(200), nullable=False),
        sa.Column("hash_b", sa.String(64), nullable=False),
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("decided_at", TS, nullable=True),
        sa.Column("decided_by", sa.String(100), nullable=False, server_default=""),
        sa.Column("reason", sa.String(200), nullable=False, server_default=""),
    )
    op.create_index("ix_identity_review_item_status", "identity_review_item", ["status"])
    op.create_table(
        "identity_match",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.Column("hash_a", sa.String(64), nullable=False),
        sa.Column("hash_b", sa.String(64), nullable=False),
        sa.Column("probability", sa.Float, nullable=False),
        sa.Column("weights", sa.Text, nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_index("ix_identity_match_event_id", "identity_match", ["event_id"])


def downgrade() -> None:
    op.drop_table("identity_match")
    op.drop_table("identity_review_item")
