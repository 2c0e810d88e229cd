"""surveys, triggers, invitations, responses, reviews, voice notes, cases,
daily KPI aggregates, alerts; subject keys, audit log, outbox and inbox

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from cxloop_libs.audit import create_audit_table, drop_audit_table
from cxloop_libs.messaging.tables import create_messaging_tables, drop_messaging_tables
from cxloop_libs.pii.envelope import create_subject_key_table
from feedback.adapters import tables

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_messaging_tables(op)
    create_subject_key_table(op)
    create_audit_table(op)
    bind = op.get_bind()
    tables.metadata.create_all(bind)


def downgrade() -> None:
    tables.metadata.drop_all(op.get_bind())
    op.drop_table("pii_subject_key")
    drop_audit_table(op)
    drop_messaging_tables(op)
