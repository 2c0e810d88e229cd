"""loyalty: index on a member's redemptions of a reward (per-member reward limits)

Revision ID: 0004
Revises: 0003
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A database created by 0001 from today's tables.py has it already.
    op.create_index(
        "ix_loyalty_redemption_member",
        "loyalty_redemption",
        ["customer_id", "reward_id"],
        if_not_exists=True,
    )


def downgrade() -> None:
    op.drop_index(
        "ix_loyalty_redemption_member", table_name="loyalty_redemption", if_exists=True
    )
