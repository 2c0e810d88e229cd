"""retention policy: days per data category and per purpose, seeded defaults

Revision ID: 0007
Revises: 0006
"""

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

# The defaults of docs/adr/0019-retention-policy.md, frozen here as they were
# when this revision was written (later changes go through SetRetentionPolicy).
CATEGORY_DAYS = {
    "interactions": 30,
    "identity_graph": 1095,
    "consent_ledger": 1825,
    "privacy_requests": 1095,
    "audit_log": 730,
}
PURPOSE_DAYS = {
    "analytics": 395,
    "personalization": 730,
    "profiling": 730,
    "marketing_email": 730,
    "marketing_sms": 730,
    "marketing_push": 730,
    "marketing_app": 730,
}
SEEDED_BY = "migration:0007"


def upgrade() -> None:
    ts = sa.DateTime(timezone=True)
    policy = op.create_table(
        "retention_policy",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("version", sa.BigInteger, nullable=False),
        sa.Column("changed_at", ts, nullable=False),
        sa.Column("changed_by", sa.String(100), nullable=False),
    )
    period = op.create_table(
        "retention_period",
        sa.Column("scope", sa.String(16), primary_key=True),
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("days", sa.Integer, nullable=False),
    )
    now = datetime.now(UTC)
    op.bulk_insert(policy, [{"id": 1, "version": 1, "changed_at": now, "changed_by": SEEDED_BY}])
    op.bulk_insert(
        period,
        [{"scope": "category", "key": k, "days": d} for k, d in CATEGORY_DAYS.items()]
        + [{"scope": "purpose", "key": k, "days": d} for k, d in PURPOSE_DAYS.items()],
    )
    # Scheduled purges look rows up by these times.
    op.create_index("ix_consent_record_recorded_at", "consent_record", ["recorded_at"])
    op.create_index("ix_privacy_request_closed_at", "privacy_request", ["closed_at"])


def downgrade() -> None:
    op.drop_index("ix_privacy_request_closed_at", "privacy_request")
    op.drop_index("ix_consent_record_recorded_at", "consent_record")
    op.drop_table("retention_period")
    op.drop_table("retention_policy")
