from __future__ import annotations

from typing import ClassVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator

from cxloop_libs.config import ServiceSettings


class LoyaltySettings(ServiceSettings):
    service_name: ClassVar[str] = "loyalty"

    # The first rule set (JSON) when the database has none:
    # CXLOOP_LOYALTY_RULES; empty for the built-in default (README).
    rules: str = ""
    # Currency of a purchase event that names none.
    default_currency: str = "KRW"
    # How long an unconfirmed redemption holds the points.
    redemption_hold_s: int = Field(default=900, ge=1, le=86_400)
    # Points a detractor gets as goodwill (where marketing consent allows); 0: none.
    goodwill_points: int = Field(default=500, ge=0, le=1_000_000)
    # Largest bonus a personalization action may award.
    offer_max_points: int = Field(default=100_000, ge=1, le=10_000_000)
    coupon_valid_days: int = Field(default=30, ge=1, le=3650)
    # Consent purposes of which one must be granted for an offer (goodwill,
    # action triggered without a purpose): comma separated.
    offer_purposes: str = "marketing_app,marketing_email,marketing_sms,marketing_push"
    # Expiring-soon notices go out this many days ahead.
    expiring_notice_days: int = Field(default=30, ge=1, le=365)
    # Scheduled work (activation, expiry, reservations, tiers) runs this often.
    schedule_interval_s: float = Field(default=5.0, gt=0)
    # Partner Idempotency-Key answers are kept this long (>= 24 h).
    idempotency_ttl_h: int = Field(default=72, ge=24)
    # Callers allowed to Adjust, PutRuleSet and SetTierFloor (token names);
    # empty: nobody, unless gRPC auth is off (development without tokens).
    admin_callers: str = ""
    # Birthday rewards are granted on the member's day in this time zone (IANA).
    birthday_timezone: str = "Asia/Seoul"

    @field_validator("birthday_timezone")
    @classmethod
    def _known_zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {v!r} (an IANA name, e.g. Asia/Seoul)") from None
        return v

    @property
    def offer_purpose_list(self) -> tuple[str, ...]:
        return tuple(p.strip() for p in self.offer_purposes.split(",") if p.strip())

    @property
    def admin_caller_set(self) -> frozenset[str]:
        return frozenset(n.strip() for n in self.admin_callers.split(",") if n.strip())
