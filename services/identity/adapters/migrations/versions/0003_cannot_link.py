"""cannot-link constraints left by a split

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "identity_cannot_link",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("other_customer_id", sa.String(64), nullable=False),
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_index("ix_identity_cannot_link_customer_id", "identity_cannot_link", ["customer_id"])
    op.create_index(
        "ix_identity_cannot_link_other_customer_id", "identity_cannot_link", ["other_customer_id"]
    )


def downgrade() -> None:
    op.drop_table("identity_cannot_link")
