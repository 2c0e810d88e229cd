"""customer intelligence: room on each page of pers_intel_state for an
updated row version (fillfactor 80), so the consumer's state updates are
HOT updates (ADR 0285)

Revision ID: 0285
Revises: 0095
"""

from alembic import op

revision = "0285"
down_revision = "0095"
branch_labels = None
depends_on = None

# A state row is ~1-2 kB: 20 % of an 8 kB page holds one more version of a
# row of that page, so an update stays on its page and adds no index entry.
FILLFACTOR = 80


def upgrade() -> None:
    # PostgreSQL only (SQLite has no fillfactor). Applies to pages written
    # from now on; existing pages get the room at their next rewrite
    # (VACUUM FULL, or as updates move rows off full pages).
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"ALTER TABLE pers_intel_state SET (fillfactor = {FILLFACTOR})")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE pers_intel_state RESET (fillfactor)")
