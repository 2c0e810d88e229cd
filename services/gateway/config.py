from __future__ import annotations

from typing import ClassVar, Self

from pydantic import Field, field_validator, model_validator

from cxloop_libs.config import GATEWAY_HTTP_PORT, GRPC_PORTS, ServiceSettings
from gateway.domain.write_keys import DEV_SOURCE, WriteKeys, parse_write_keys

# Segment's limits: 32 KB per call and per event, 500 KB per batch.
MAX_EVENT_BYTES = 32 * 1024


class GatewaySettings(ServiceSettings):
    service_name: ClassVar[str] = "gateway"

    http_host: str = "127.0.0.1"
    http_port: int = Field(default=GATEWAY_HTTP_PORT, ge=0, le=65535)
    # Comma-separated `key=source_name` pairs; a bare `key` is source "default".
    write_keys: str = ""
    # CXLOOP_DEV_WRITE_KEY: accepted only in development mode, as source "dev".
    dev_write_key: str = "dev"
    max_batch_events: int = Field(default=500, ge=1, le=10_000)
    max_batch_bytes: int = Field(default=500 * 1024, ge=MAX_EVENT_BYTES, le=16 * 1024 * 1024)
    # Services whose gRPC health must be SERVING for /readyz to answer 200.
    readiness_services: str = "identity,consent,personalization,loyalty,feedback"
    # Consent enforcement (docs/adr/0021): track/page/screen calls of a
    # customer who objected to analytics are answered 200 but not published.
    enforce_analytics: bool = True
    # Most identifiers of objecting customers held in memory (~200 B each).
    enforce_max_identifiers: int = Field(default=1_000_000, ge=1)
    # Bearer tokens of the privacy-request API (/v1/privacy), comma separated.
    # Not write keys: those ship inside web pages.
    privacy_tokens: str = ""
    # CXLOOP_DEV_PRIVACY_TOKEN: accepted only in development mode.
    dev_privacy_token: str = "dev-privacy"
    # Bearer tokens of the loyalty API (/v1/loyalty), comma separated; and
    # CXLOOP_DEV_LOYALTY_TOKEN, accepted only in development mode.
    loyalty_tokens: str = ""
    dev_loyalty_token: str = "dev-loyalty"
    # Property keys whose values are not scanned for PII in free text
    # (comma separated, any depth, case-insensitive): e.g. orderNumber,sku.
    pii_scan_allow: str = ""
    # How long a call waits for JetStream's PubAck before answering 503.
    publish_timeout_s: float = Field(default=5.0, gt=0, le=60)
    # Origins allowed to call /v1/feedback (comma separated; empty: any).
    feedback_origins: str = ""
    # Each service's part of the customer 360 waits at most this long; a
    # slower one is reported missing (CXLOOP_GATEWAY_CUSTOMER360_DEADLINE_S).
    customer360_deadline_s: float = Field(default=1.0, gt=0, le=30)
    # Console sessions (docs/adr/0110): the cookie is Secure unless this is
    # off (only for plain-HTTP hosts other than localhost, never in production).
    console_cookie_secure: bool = True
    # A session ends after this long without a request, and after max_s anyway.
    console_session_idle_s: float = Field(default=1800.0, ge=10, le=86_400)
    console_session_max_s: float = Field(default=43_200.0, ge=60, le=7 * 86_400)

    @field_validator("write_keys")
    @classmethod
    def _write_keys_parse(cls, v: str) -> str:
        parse_write_keys(v)
        return v

    @field_validator("readiness_services")
    @classmethod
    def _known_services(cls, v: str) -> str:
        unknown = [s for s in _split(v) if s not in GRPC_PORTS]
        if unknown:
            known = ", ".join(GRPC_PORTS)
            raise ValueError(f"unknown service(s) {', '.join(unknown)}; known: {known}")
        return v

    @model_validator(mode="after")
    def _keys_outside_dev(self) -> Self:
        if not self.is_development and not parse_write_keys(self.write_keys):
            raise ValueError(
                "CXLOOP_GATEWAY_WRITE_KEYS is required outside development mode "
                "(comma-separated key=source pairs; set CXLOOP_ENV=development for local use)"
            )
        return self

    @property
    def dev_key_active(self) -> bool:
        return self.is_development and bool(self.dev_write_key)

    def accepted_write_keys(self) -> WriteKeys:
        sources = parse_write_keys(self.write_keys)
        if self.dev_key_active:
            sources.setdefault(self.dev_write_key, DEV_SOURCE)
        return WriteKeys(sources)

    def accepted_privacy_tokens(self) -> frozenset[str]:
        tokens = set(_split(self.privacy_tokens))
        if self.is_development and self.dev_privacy_token:
            tokens.add(self.dev_privacy_token)
        return frozenset(tokens)

    def accepted_loyalty_tokens(self) -> frozenset[str]:
        tokens = set(_split(self.loyalty_tokens))
        if self.is_development and self.dev_loyalty_token:
            tokens.add(self.dev_loyalty_token)
        return frozenset(tokens)

    @property
    def pii_scan_allow_keys(self) -> list[str]:
        return _split(self.pii_scan_allow)

    @property
    def readiness_targets(self) -> list[str]:
        return _split(self.readiness_services)


def _split(v: str) -> list[str]:
    return [s.strip() for s in v.split(",") if s.strip()]
