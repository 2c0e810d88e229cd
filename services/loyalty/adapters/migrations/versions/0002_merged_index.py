"""loyalty: partial index on merged accounts (the tier score looks them up per batch)

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A database created by 0001 from today's tables.py has it already.
    op.create_index(
        "ix_loyalty_account_merged",
        "loyalty_account",
        ["merged_into"],
        postgresql_where=sa.text("merged_into <> ''"),
        sqlite_where=sa.text("merged_into <> ''"),
        if_not_exists=True,
    )


def downgrade() -> None:
    op.drop_index("ix_loyalty_account_merged", table_name="loyalty_account", if_exists=True)
