from __future__ import annotations

import json
from typing import ClassVar, Self

from pydantic import Field, field_validator, model_validator

from cxloop_libs.config import ServiceSettings
from cxloop_libs.pii import IdentifierHasher, IdType, normalize_identifier
from identity.domain.policy import DEFAULT_PRIORITY, MergePolicy
from identity.domain.survivorship import SurvivorshipPolicy


def _parse_survivorship(text: str) -> SurvivorshipPolicy:
    if not text.strip():
        return SurvivorshipPolicy()
    try:
        doc = json.loads(text)
    except ValueError:
        raise ValueError("not JSON") from None
    if not isinstance(doc, dict) or set(doc) - {"rules", "source_trust"}:
        raise ValueError('a JSON object with "rules" and/or "source_trust"')
    rules, trust = doc.get("rules", {}), doc.get("source_trust", [])
    if not isinstance(rules, dict) or not all(
        isinstance(v, list) and all(isinstance(x, str) for x in v) for v in rules.values()
    ):
        raise ValueError('"rules" maps a trait to a list of rule names')
    if not isinstance(trust, list) or not all(isinstance(x, str) for x in trust):
        raise ValueError('"source_trust" is a list of source names, most trusted first')
    return SurvivorshipPolicy.from_config(rules, trust)


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
    # Values that must never link anyone, beyond the built-in placeholders:
    # comma-separated `type:value` (`phone:02-555-0100,email:front@shop.kr`;
    # external ids as `external:<namespace>:<value>`).
    blocked_identifiers: str = ""
    # Probabilistic matching (ADR 0010, 0015): a model file written by
    # `MatchModel.to_dict()`; empty means ImportRecords trains one by EM on
    # each import (of at least 1,000 records).
    match_model: str = ""
    # docs/adr/0021: refuse new emails/phones of a customer who refused that channel.
    link_requires_marketing_consent: bool = False
    # Golden record (ADR 0017): JSON `{"source_trust": ["crm", "pos", "web"],
    # "rules": {"given_name": ["most_trusted_source", "most_recent"], ...}}`;
    # traits not named keep their defaults (domain/survivorship.py).
    survivorship: str = ""
    # Real-time scoring against earlier records: a blocking key shared by
    # more earlier records than this gives no candidates (bounds the work
    # per new record).
    realtime_max_block_size: int = Field(default=1000, ge=10)
    # ... and one new record is compared with at most this many earlier
    # records: its blocks smallest first while they fit (ADR 0085).
    realtime_max_candidates: int = Field(default=200, ge=10)
    # Resolve remembers which customer an identifier belongs to (PostgreSQL
    # path; service_layer/owner_cache.py, ADR 0024): at most this many
    # identifiers (0: off), each for at most this long when no event says
    # it moved.
    owner_cache_size: int = Field(default=200_000, ge=0)
    owner_cache_ttl_s: float = Field(default=30.0, gt=0)

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

    @model_validator(mode="after")
    def _blocked_parse(self) -> Self:
        self.blocked_values()  # raises ValueError naming the bad entry
        return self

    @field_validator("survivorship")
    @classmethod
    def _survivorship_parses(cls, v: str) -> str:
        _parse_survivorship(v)  # raises ValueError naming the bad entry
        return v

    def survivorship_policy(self) -> SurvivorshipPolicy:
        return _parse_survivorship(self.survivorship)

    def blocked_values(self) -> list[tuple[IdType, str, str]]:
        """`blocked_identifiers` normalised: (type, value, namespace)."""
        out = []
        for n, entry in enumerate(e.strip() for e in self.blocked_identifiers.split(",")):
            if not entry:
                continue
            type_name, _, rest = entry.partition(":")
            try:
                id_type = IdType(type_name.strip())
            except ValueError:
                raise ValueError(f"entry {n}: unknown identifier type {type_name!r}") from None
            namespace = ""
            if id_type is IdType.EXTERNAL:
                namespace, _, rest = rest.partition(":")
            try:
                value, ns = normalize_identifier(
                    id_type, rest, namespace, default_region=self.default_phone_region
                )
            except ValueError:
                raise ValueError(f"entry {n}: not a valid {id_type.value}") from None
            out.append((id_type, value, ns))
        return out

    def merge_policy(self, hasher: IdentifierHasher | None = None) -> MergePolicy:
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
            ignored_hashes=frozenset(
                hasher.hash_normalized(t, v, ns) for t, v, ns in self.blocked_values()
            )
            if hasher
            else frozenset(),
        )
