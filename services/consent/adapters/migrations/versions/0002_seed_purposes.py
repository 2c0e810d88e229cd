"""seed the purpose catalogue with version 1 of every notice (Korean and English)

Operators change a notice by publishing a new version (a later migration or
the service's publish_notice handler), never by editing these rows: a grant
points at the exact text the customer saw.

Revision ID: 0002
Revises: 0001
"""

import json
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

SEEDED_AT = datetime(2026, 1, 1, tzinfo=UTC)
MARKETING_VALIDITY_DAYS = 730  # consent to advertising is reconfirmed every two years in Korea

# key, legal basis, mandatory, validity days, Korean text, English text
PURPOSES = [
    (
        "essential_service",
        "contract",
        True,
        0,
        "[필수] 회원 가입 및 서비스 제공: 주문·결제·배송, 고객 상담, 본인 확인에 필요한 정보를 처리합니다. "
        "보유 기간: 회원 탈퇴 시까지(관계 법령에 따른 보존 기간 예외).",
        "[Required] Providing the service: orders, payment, delivery, customer support and identity "
        "checks. Kept until you close your account (except where a law requires longer).",
    ),
    (
        "analytics",
        "legitimate_interest",
        False,
        0,
        "[선택] 서비스 이용 통계: 방문·이용 기록을 가명 처리하여 서비스 개선에 활용합니다. "
        "언제든지 거부할 수 있으며, 거부해도 서비스 이용에 제한이 없습니다.",
        "[Optional] Usage statistics: pseudonymised visit and usage records to improve the service. "
        "You may object at any time; objecting never limits the service.",
    ),
    (
        "personalization",
        "consent",
        False,
        0,
        "[선택] 맞춤형 추천: 구매·조회 이력을 바탕으로 상품과 콘텐츠를 추천합니다. "
        "동의하지 않아도 서비스를 이용할 수 있습니다.",
        "[Optional] Personalised recommendations based on your purchases and views. "
        "You can use the service without agreeing.",
    ),
    (
        "marketing_email",
        "consent",
        False,
        MARKETING_VALIDITY_DAYS,
        "[선택] 이메일 광고성 정보 수신: 할인·이벤트 소식을 이메일로 보내드립니다.",
        "[Optional] Advertising by email: offers and events sent to your email address.",
    ),
    (
        "marketing_sms",
        "consent",
        False,
        MARKETING_VALIDITY_DAYS,
        "[선택] 문자(SMS/MMS) 광고성 정보 수신: 할인·이벤트 소식을 문자로 보내드립니다.",
        "[Optional] Advertising by text message (SMS/MMS): offers and events.",
    ),
    (
        "marketing_push",
        "consent",
        False,
        MARKETING_VALIDITY_DAYS,
        "[선택] 앱 푸시 광고성 정보 수신: 할인·이벤트 소식을 앱 알림으로 보내드립니다.",
        "[Optional] Advertising by app push notification: offers and events.",
    ),
    (
        "marketing_app",
        "consent",
        False,
        MARKETING_VALIDITY_DAYS,
        "[선택] 앱 내 광고성 메시지 수신: 앱 안의 메시지함과 배너로 맞춤 혜택을 안내합니다.",
        "[Optional] Advertising inside the app: offers in the in-app inbox and banners.",
    ),
    (
        "third_party_provision",
        "consent",
        False,
        0,
        "[선택] 개인정보 제3자 제공: 아래 제공받는 자에게 아래 항목을 제공합니다. "
        "동의를 거부할 수 있으며, 거부해도 서비스 이용에 제한이 없습니다.",
        "[Optional] Providing personal data to a third party, as listed below. "
        "You may refuse; refusing never limits the service.",
    ),
    (
        "profiling",
        "consent",
        False,
        0,
        "[선택] 프로파일링 및 자동화된 결정: 이용 이력을 분석하여 등급·혜택을 자동으로 정합니다. "
        "설명을 요구하거나 거부할 수 있습니다.",
        "[Optional] Profiling and automated decisions: your history is analysed to set tiers and "
        "benefits automatically. You may ask for an explanation or refuse.",
    ),
]

THIRD_PARTY = {
    "tp_recipient": "제휴 멤버십 운영사 (Partner membership operator)",
    "tp_purpose": "제휴 포인트 적립 및 혜택 제공 (earning partner points and benefits)",
    "tp_items": json.dumps(["name", "mobile_phone", "membership_number"]),
    "tp_retention": "제휴 종료 또는 동의 철회 시까지 (until the partnership ends or consent is withdrawn)",
}

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
    sa.column("tp_recipient", sa.String),
    sa.column("tp_purpose", sa.Text),
    sa.column("tp_items", sa.Text),
    sa.column("tp_retention", sa.String),
)


def upgrade() -> None:
    op.bulk_insert(
        purpose_t,
        [
            {
                "key": key,
                "legal_basis": basis,
                "mandatory": mandatory,
                "validity_days": days,
                "created_at": SEEDED_AT,
            }
            for key, basis, mandatory, days, _, _ in PURPOSES
        ],
    )
    op.bulk_insert(
        notice_t,
        [
            {
                "purpose": key,
                "version": 1,
                "text_ko": ko,
                "text_en": en,
                "substantive": True,
                "published_at": SEEDED_AT,
                **(
                    THIRD_PARTY
                    if key == "third_party_provision"
                    else dict.fromkeys(THIRD_PARTY)
                ),
            }
            for key, _, _, _, ko, en in PURPOSES
        ],
    )


def downgrade() -> None:
    keys = [p[0] for p in PURPOSES]
    op.execute(notice_t.delete().where(notice_t.c.purpose.in_(keys)))
    op.execute(purpose_t.delete().where(purpose_t.c.key.in_(keys)))
