"""GPC signals, and where a record came from (a merge or split of profiles)

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("consent_record") as t:
        t.add_column(sa.Column("gpc_conflict", sa.Boolean, nullable=False, server_default=sa.false()))
        t.add_column(sa.Column("derived_from", sa.String(80), nullable=False, server_default=""))
    with op.batch_alter_table("consent_state") as t:
        t.add_column(sa.Column("gpc_conflict", sa.Boolean, nullable=False, server_default=sa.false()))
    op.create_table(
        "consent_gpc_signal",
        sa.Column("customer_id", sa.String(64), primary_key=True),
        sa.Column("first_seen_at", TS, nullable=False),
        sa.Column("last_seen_at", TS, nullable=False),
        sa.Column("event_id", sa.String(128), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("consent_gpc_signal")
    with op.batch_alter_table("consent_state") as t:
        t.drop_column("gpc_conflict")
    with op.batch_alter_table("consent_record") as t:
        t.drop_column("derived_from")
        t.drop_column("gpc_conflict")
