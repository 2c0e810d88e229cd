"""audit log (cxloop_libs.audit) and receipt signing keys kept for rotation,
subjects announced by identity

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

from cxloop_libs.audit import create_audit_table, drop_audit_table

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_audit_table(op)
    # Every key that ever signed a receipt: the public half stays published
    # after rotation so old receipts keep verifying. A generated key's private
    # half is sealed under the master key; the configured one stays in config.
    op.create_table(
        "consent_receipt_key",
        sa.Column("kid", sa.String(64), primary_key=True),
        sa.Column("alg", sa.String(16), nullable=False),
        sa.Column("public_jwk", sa.Text, nullable=False),
        sa.Column("private_sealed", sa.LargeBinary, nullable=True),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True),
    )
    # Customer ids identity announced, so a privacy request for an id no
    # service has ever known is refused instead of run.
    op.create_table(
        "consent_known_subject",
        sa.Column("customer_id", sa.String(64), primary_key=True),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("consent_known_subject")
    op.drop_table("consent_receipt_key")
    drop_audit_table(op)
