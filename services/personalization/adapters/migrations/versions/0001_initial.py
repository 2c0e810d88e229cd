"""catalogue items, learned interactions, experiments, exposures; outbox and inbox

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
        "pers_item",
        sa.Column("item_id", sa.String(128), primary_key=True),
        # The Item message, serialized (protobuf).
        sa.Column("data", sa.LargeBinary, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_table(
        "pers_interaction",
        sa.Column("event_id", sa.String(160), primary_key=True),
        sa.Column("customer_id", sa.String(64), nullable=False, index=True),
        sa.Column("item_id", sa.String(128), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("weight", sa.Float, nullable=False),
        sa.Column("occurred_at", TS, nullable=False, index=True),
        sa.Column("channel", sa.String(32), nullable=False, server_default=""),
        sa.Column("store", sa.String(64), nullable=False, server_default=""),
        sa.Column("revenue", sa.Float, nullable=False, server_default="0"),
        sa.Column("hour", sa.Integer, nullable=False, server_default="-1"),
    )
    op.create_table(
        "pers_experiment",
        sa.Column("experiment_id", sa.String(64), primary_key=True),
        # The Experiment message, serialized (protobuf).
        sa.Column("data", sa.LargeBinary, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_table(
        "pers_exposure",
        sa.Column("experiment_id", sa.String(64), primary_key=True),
        sa.Column("customer_id", sa.String(64), primary_key=True, index=True),
        sa.Column("variant_id", sa.String(64), nullable=False),
        sa.Column("recommendation_id", sa.String(64), nullable=False),
        sa.Column("first_served_at", TS, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("pers_exposure")
    op.drop_table("pers_experiment")
    op.drop_table("pers_interaction")
    op.drop_table("pers_item")
    drop_messaging_tables(op)
