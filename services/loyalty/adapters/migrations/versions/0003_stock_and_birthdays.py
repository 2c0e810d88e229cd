"""loyalty: limited reward stock; members' birthdays and the scheduled grants

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

from loyalty.adapters import tables

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def _columns(table: str) -> set[str]:
    return {c["name"] for c in sa.inspect(op.get_bind()).get_columns(table)}


def upgrade() -> None:
    # A database created by 0001 from today's tables.py has all of it already.
    bind = op.get_bind()
    tables.reward_stock.create(bind, checkfirst=True)
    tables.birthday_grant.create(bind, checkfirst=True)
    if "stock_taken" not in _columns("loyalty_redemption"):
        op.add_column(
            "loyalty_redemption",
            sa.Column("stock_taken", sa.Boolean, nullable=False, server_default=sa.false()),
        )
    if "birthday" not in _columns("loyalty_account"):
        op.add_column(
            "loyalty_account",
            sa.Column("birthday", sa.String(5), nullable=False, server_default=""),
        )
    op.create_index(
        "ix_loyalty_account_birthday",
        "loyalty_account",
        ["birthday"],
        postgresql_where=sa.text("birthday <> ''"),
        sqlite_where=sa.text("birthday <> ''"),
        if_not_exists=True,
    )


def downgrade() -> None:
    op.drop_index("ix_loyalty_account_birthday", table_name="loyalty_account", if_exists=True)
    op.drop_column("loyalty_account", "birthday")
    op.drop_column("loyalty_redemption", "stock_taken")
    tables.birthday_grant.drop(op.get_bind(), checkfirst=True)
    tables.reward_stock.drop(op.get_bind(), checkfirst=True)
