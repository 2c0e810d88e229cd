from __future__ import annotations

from typing import ClassVar

from pydantic import Field, field_validator

from cxloop_libs.config import ServiceSettings
from cxloop_libs.pii import IdType
from identity.domain.policy import DEFAULT_PRIORITY, MergePolicy


class IdentitySettings(ServiceSettings):
    service_name: ClassVar[str] = "identity"

    # Region assumed for phone numbers written without a country code.
    default_phone_region: str = "KR"

    # Merge protection (docs/adr/0012-merge-protection.md). Most identifiers
    # of one type a customer may hold; 0 means no limit.
    max_user_ids_per_customer: int = Field(default=1, ge=0)
    max_emails_per_customer: int = Field(default=5, ge=0)
    max_phones_per_customer: int = Field(default=5, ge=0)
    max_loyalty_cards_per_customer: int = Field(default=0, ge=0)
    max_external_ids_per_customer: int = Field(default=0, ge=0)
    max_anonymous_ids_per_customer: int = Field(default=0, ge=0)
    # An anonymous id seen with more distinct user ids than this is a shared
    # device and stops linking; 0 turns detection off.
    shared_device_max_user_ids: int = Field(default=1, ge=0)
    # Which side of a conflicting link wins, highest first (comma separated).
    identifier_priority: str = ",".join(DEFAULT_PRIORITY)

    @field_validator("identifier_priority")
    @classmethod
    def _known_types(cls, v: str) -> str:
        names = [n.strip() for n in v.split(",") if n.strip()]
        known = {t.value for t in IdType}
        unknown = [n for n in names if n not in known]
        if unknown:
            raise ValueError(f"unknown identifier types {unknown}; use {sorted(known)}")
        if len(set(names)) != len(names):
            raise ValueError("a type is listed twice")
        return ",".join(names)

    def merge_policy(self) -> MergePolicy:
        limits = {
            IdType.USER_ID.value: self.max_user_ids_per_customer,
            IdType.EMAIL.value: self.max_emails_per_customer,
            IdType.PHONE.value: self.max_phones_per_customer,
            IdType.LOYALTY_CARD.value: self.max_loyalty_cards_per_customer,
            IdType.EXTERNAL.value: self.max_external_ids_per_customer,
            IdType.ANONYMOUS_ID.value: self.max_anonymous_ids_per_customer,
        }
        return MergePolicy(
            limits={t: n for t, n in limits.items() if n > 0},
            shared_device_max_user_ids=self.shared_device_max_user_ids or None,
            priority=tuple(self.identifier_priority.split(",")),
        )
