"""per-subject data keys (crypto-shredding)

Revision ID: 0005
Revises: 0004
"""

from alembic import op

from cxloop_libs.pii.envelope import create_subject_key_table

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_subject_key_table(op)


def downgrade() -> None:
    op.drop_table("pii_subject_key")
