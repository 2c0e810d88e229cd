"""seed the survey_contact purpose: feedback invites only customers who agreed

Feedback (issue 13) checks `survey_contact` before sending a survey
invitation; without the purpose in the catalogue nobody could agree to it and
no survey would ever be sent. Asked separately from advertising: a survey is
not an offer.

Revision ID: 0008
Revises: 0007
"""

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

SEEDED_AT = datetime(2026, 12, 7, tzinfo=UTC)
KEY = "survey_contact"
TEXT_KO = (
    "[선택] 설문 및 의견 요청: 구매·배송·상담 후 만족도 설문과 후기 요청을 보내드립니다. "
    "동의하지 않아도 서비스 이용에 제한이 없습니다."
)
TEXT_EN = (
    "[Optional] Surveys and feedback requests after a purchase, a delivery or a support "
    "contact. You can use the service without agreeing."
)

purpose_t = sa.table(
    "consent_purpose",
    sa.column("key", sa.String),
    sa.column("legal_basis", sa.String),
    sa.column("mandatory", sa.Boolean),
    sa.column("validity_days", sa.Integer),
    sa.column("created_at", sa.DateTime(timezone=True)),
)
notice_t = sa.table(
    "consent_notice",
    sa.column("purpose", sa.String),
    sa.column("version", sa.Integer),
    sa.column("text_ko", sa.Text),
    sa.column("text_en", sa.Text),
    sa.column("substantive", sa.Boolean),
    sa.column("published_at", sa.DateTime(timezone=True)),
)


def upgrade() -> None:
    op.bulk_insert(
        purpose_t,
        [
            {
                "key": KEY,
                "legal_basis": "consent",
                "mandatory": False,
                "validity_days": 0,
                "created_at": SEEDED_AT,
            }
        ],
    )
    op.bulk_insert(
        notice_t,
        [
            {
                "purpose": KEY,
                "version": 1,
                "text_ko": TEXT_KO,
                "text_en": TEXT_EN,
                "substantive": True,
                "published_at": SEEDED_AT,
            }
        ],
    )


def downgrade() -> None:
    op.execute(notice_t.delete().where(notice_t.c.purpose == KEY))
    op.execute(purpose_t.delete().where(purpose_t.c.key == KEY))
