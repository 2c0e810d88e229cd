"""KPI definitions and alerts; outbox and inbox

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
        "analytics_kpi",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("definition", sa.Text, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_table(
        "analytics_alert",
        sa.Column("alert_id", sa.String(36), primary_key=True),
        sa.Column("kpi", sa.String(64), nullable=False),
        sa.Column("window_start", TS, nullable=False),
        sa.Column("raised_at", TS, nullable=False),
        sa.Column("body", sa.LargeBinary, nullable=False),
        sa.Column("notified_at", TS, nullable=True),
    )
    op.create_index("ix_analytics_alert_raised", "analytics_alert", ["raised_at"])


def downgrade() -> None:
    op.drop_table("analytics_alert")
    op.drop_table("analytics_kpi")
    drop_messaging_tables(op)
