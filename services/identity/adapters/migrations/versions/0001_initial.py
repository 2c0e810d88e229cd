"""identity graph, customers, provenance; outbox and inbox

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
        "customer",
        sa.Column("customer_id", sa.String(64), primary_key=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("last_seen_at", TS, nullable=True),
        sa.Column("interaction_count", sa.Integer, nullable=False, server_default="0"),
        sa.Column("merged_into", sa.String(64), nullable=True),
    )
    op.create_index("ix_customer_merged_into", "customer", ["merged_into"])
    op.create_table(
        "identifier",
        sa.Column("hash", sa.String(64), primary_key=True),
        sa.Column("id_type", sa.String(32), nullable=False),
        sa.Column("namespace", sa.String(32), nullable=False, server_default=""),
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("first_seen_at", TS, nullable=False),
    )
    op.create_index("ix_identifier_customer_id", "identifier", ["customer_id"])
    op.create_table(
        "identity_link",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.Column("source", sa.String(100), nullable=False, server_default=""),
        sa.Column("rule", sa.String(64), nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_index("ix_identity_link_hash", "identity_link", ["hash"])


def downgrade() -> None:
    op.drop_table("identity_link")
    op.drop_table("identifier")
    op.drop_table("customer")
    drop_messaging_tables(op)
