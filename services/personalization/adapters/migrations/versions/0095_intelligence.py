"""customer intelligence (issue #15): traits state, segments and members,
triggers, waiting and fired actions, predictions and model versions

Revision ID: 0095
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0095"
down_revision = "0001"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "pers_intel_state",
        sa.Column("customer_id", sa.String(64), primary_key=True),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("traits", sa.Text, nullable=False),
        sa.Column("lifecycle", sa.String(16), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_table(
        "pers_segment",
        sa.Column("segment_id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("rule", sa.Text, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_table(
        "pers_segment_member",
        sa.Column("segment_id", sa.String(64), primary_key=True),
        sa.Column("customer_id", sa.String(64), primary_key=True, index=True),
        sa.Column("entered_at", TS, nullable=False),
        sa.Column("cause_event_id", sa.String(160), nullable=False),
    )
    op.create_table(
        "pers_trigger",
        sa.Column("trigger_id", sa.String(64), primary_key=True),
        sa.Column("data", sa.Text, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_table(
        "pers_action_pending",
        sa.Column("trigger_id", sa.String(64), primary_key=True),
        sa.Column("customer_id", sa.String(64), primary_key=True, index=True),
        sa.Column("cause_event_id", sa.String(160), nullable=False),
        sa.Column("due_at", TS, nullable=False, index=True),
        sa.Column("data", sa.Text, nullable=False),
    )
    op.create_table(
        "pers_action",
        sa.Column("action_id", sa.String(64), primary_key=True),
        sa.Column("trigger_id", sa.String(64), nullable=False),
        sa.Column("customer_id", sa.String(64), nullable=False, index=True),
        sa.Column("cause_event_id", sa.String(160), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("at", TS, nullable=False),
    )
    op.create_table(
        "pers_prediction",
        sa.Column("customer_id", sa.String(64), primary_key=True),
        sa.Column("data", sa.Text, nullable=False),
        sa.Column("computed_at", TS, nullable=False),
    )
    op.create_table(
        "pers_model_version",
        sa.Column("version", sa.String(64), primary_key=True),
        sa.Column("model", sa.String(16), nullable=False),
        sa.Column("metrics", sa.Text, nullable=False),
        sa.Column("trained_at", TS, nullable=False),
    )


def downgrade() -> None:
    for t in (
        "pers_model_version",
        "pers_prediction",
        "pers_action",
        "pers_action_pending",
        "pers_trigger",
        "pers_segment_member",
        "pers_segment",
        "pers_intel_state",
    ):
        op.drop_table(t)
