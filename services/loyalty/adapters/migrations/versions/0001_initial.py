"""loyalty ledger, lots, orders, redemptions, coupons, rules; outbox, inbox, audit

Revision ID: 0001
Revises:
"""

from alembic import op

from cxloop_libs.audit import create_audit_table, drop_audit_table
from cxloop_libs.messaging.tables import create_messaging_tables, drop_messaging_tables
from loyalty.adapters import tables

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_messaging_tables(op)
    create_audit_table(op)
    # The first revision creates the schema as tables.py declares it; later
    # revisions change it with explicit operations.
    tables.METADATA.create_all(op.get_bind(), tables=list(tables.ALL))


def downgrade() -> None:
    bind = op.get_bind()
    for t in reversed(tables.ALL):
        t.drop(bind, checkfirst=True)
    drop_audit_table(op)
    drop_messaging_tables(op)
