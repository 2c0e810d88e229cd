"""trait observations (golden record), sealed per customer; subject keys

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

from cxloop_libs.pii.envelope import create_subject_key_table

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "identity_trait_observation",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("trait", sa.String(32), nullable=False),
        sa.Column("sealed", sa.LargeBinary, nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("observed_at", TS, nullable=False),
        sa.Column("received_at", TS, nullable=False),
        sa.Column("record_ref", sa.String(64), nullable=False),
        sa.Column("record_id", sa.String(200), nullable=False, server_default=""),
        sa.UniqueConstraint("record_ref", "source", "trait", name="uq_trait_observation_record"),
    )
    op.create_index(
        "ix_identity_trait_observation_customer_id", "identity_trait_observation", ["customer_id"]
    )
    create_subject_key_table(op)


def downgrade() -> None:
    op.drop_table("pii_subject_key")
    op.drop_table("identity_trait_observation")
