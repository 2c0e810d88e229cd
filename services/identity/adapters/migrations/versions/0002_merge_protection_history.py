"""merge protection (shared devices), append-only history, counters

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.add_column("identifier", sa.Column("shared_at", TS, nullable=True))
    op.create_table(
        "identity_history",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", TS, nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("related_customer_ids", sa.Text, nullable=False, server_default=""),
        sa.Column("identifier_hashes", sa.Text, nullable=False, server_default=""),
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.Column("source", sa.String(100), nullable=False, server_default=""),
        sa.Column("reason", sa.String(200), nullable=False, server_default=""),
        sa.Column("actor", sa.String(100), nullable=False, server_default=""),
    )
    op.create_index("ix_identity_history_action", "identity_history", ["action"])
    op.create_index("ix_identity_history_customer_id", "identity_history", ["customer_id"])
    counter = op.create_table(
        "identity_counter",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.BigInteger, nullable=False, server_default="0"),
    )
    # Seeded so writers only ever UPDATE: concurrent consumers cannot race
    # to insert the first row.
    op.bulk_insert(counter, [{"name": "events_without_identifiers", "value": 0}])


def downgrade() -> None:
    op.drop_table("identity_counter")
    op.drop_table("identity_history")
    with op.batch_alter_table("identifier") as batch:
        batch.drop_column("shared_at")
