"""Configuration from the environment, validated once at start.

Every setting of a service is read from ``CXLOOP_<SERVICE>_<FIELD>`` first and
then from ``CXLOOP_<FIELD>``, so one variable can configure the whole suite and a
service-specific one overrides it (``CXLOOP_IDENTITY_DATABASE_URL`` beats
``CXLOOP_DATABASE_URL``). A bad value stops the process with one line per
problem naming the variable, instead of a stack trace deep inside a driver.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import Any, ClassVar, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

# Ports from DESIGN.md. Metrics ports follow the same order: 9100 + n.
SERVICE_ORDER: tuple[str, ...] = (
    "gateway",
    "identity",
    "consent",
    "personalization",
    "loyalty",
    "feedback",
    "analytics",
)
GRPC_PORTS: dict[str, int] = {
    "identity": 50051,
    "consent": 50052,
    "personalization": 50053,
    "loyalty": 50054,
    "feedback": 50055,
    "analytics": 50056,
}
# Services that own a database today (the others have nothing to store yet).
SERVICES_WITH_DATABASE: frozenset[str] = frozenset({"identity", "consent", "analytics"})
METRICS_PORTS: dict[str, int] = {name: 9100 + n for n, name in enumerate(SERVICE_ORDER)}
GATEWAY_HTTP_PORT = 8080
EMBEDDED_NATS_PORT = 14222
EMBEDDED_NATS_MONITOR_PORT = 18222

# Secrets a service needs in production, by the one name they have everywhere:
# the variable read here, the key in deploy/compose/.env, and the key of the
# Kubernetes Secret `cxloop-secrets` (tests/production checks that code,
# compose, manifests and deploy/README.md agree). "*" = every service. Each
# service's `CXLOOP_<SERVICE>_DATABASE_URL` (it carries a password) is a
# secret too: see database_url_secret.
ALL_SERVICES = "*"
PRODUCTION_SECRETS: dict[str, tuple[str, ...]] = {
    "CXLOOP_PII_HASH_KEY": (ALL_SERVICES,),
    "CXLOOP_GRPC_TOKENS": (ALL_SERVICES,),
    "CXLOOP_GRPC_CLIENT_TOKEN": (ALL_SERVICES,),
    "CXLOOP_GATEWAY_WRITE_KEYS": ("gateway",),
    "CXLOOP_CONSENT_SIGNING_KEY": ("consent",),
    "CXLOOP_MASTER_KEY": ("identity", "consent", "feedback"),
    # NATS password of the `cxloop` user (compose and the prod overlay run
    # NATS with authentication; cxloop_libs.messaging.connection).
    "CXLOOP_NATS_PASSWORD": (ALL_SERVICES,),
}


def database_url_secret(service: str) -> str:
    return f"CXLOOP_{service.upper()}_DATABASE_URL"


def production_secrets_of(service: str) -> set[str]:
    """The secret variables ``service`` gets in production (database URL included)."""
    names = {
        n for n, users in PRODUCTION_SECRETS.items() if ALL_SERVICES in users or service in users
    }
    return names | {database_url_secret(service)}


# Only ever accepted when CXLOOP_ENV=development (docs/adr/0005-dev-mode-secrets.md).
DEV_PII_HASH_KEY = "cxloop-development-only-hash-key"
DEV_GRPC_TOKEN = "dev-token"


class Environment(StrEnum):
    DEVELOPMENT = "development"
    TEST = "test"
    PRODUCTION = "production"


class ConfigError(Exception):
    """Raised when the environment does not describe a valid configuration."""

    def __init__(self, service: str, problems: list[str]) -> None:
        self.service = service
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"invalid configuration for {service}:\n{lines}")


def default_data_dir(environ: Mapping[str, str] | None = None) -> Path:
    environ = os.environ if environ is None else environ
    return Path(environ.get("CXLOOP_DATA_DIR", ".cxloop"))


_CALLER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}")


def parse_grpc_tokens(value: str) -> dict[str, str]:
    """``"crm:s3cret,x9y8"`` -> ``{"s3cret": "crm", "x9y8": "token-<8 hex>"}``.

    A name is what an audit log records about the caller, so a token without
    one still gets a stable, non-secret name (a prefix of its SHA-256).
    """
    names: dict[str, str] = {}
    for entry in (e.strip() for e in value.split(",")):
        if not entry:
            continue
        name, sep, token = entry.partition(":")
        if sep and _CALLER_NAME.fullmatch(name) and token.strip():
            names[token.strip()] = name
        else:
            names[entry] = "token-" + hashlib.sha256(entry.encode()).hexdigest()[:8]
    return names


class ServiceSettings(BaseModel):
    """Settings every cxloop process has. Services subclass it to add their own."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    service_name: ClassVar[str] = "service"

    env: Environment = Environment.PRODUCTION
    nats_url: str = f"nats://127.0.0.1:{EMBEDDED_NATS_PORT}"
    database_url: str = ""
    grpc_host: str = "127.0.0.1"
    grpc_port: int = Field(default=0, ge=0, le=65535)
    metrics_port: int = Field(default=0, ge=0, le=65535)
    # Bearer tokens accepted on gRPC, comma separated. Empty: no auth in
    # development, refused at start otherwise. An entry may name its caller,
    # ``crm:<token>``; the name is what audit logs record (the client sends
    # only the token). Unnamed tokens are logged as ``token-<hash prefix>``.
    grpc_tokens: str = ""
    # Token this process presents when it calls another service.
    grpc_client_token: str = ""
    grpc_deadline_s: float = Field(default=5.0, gt=0)
    # gRPC server TLS, optionally mutual (cxloop_libs.grpcx.tls): PEM files.
    grpc_tls_cert: str = ""
    grpc_tls_key: str = ""
    grpc_tls_client_ca: str = ""
    pii_hash_key: str = ""
    log_level: str = "INFO"
    consumer_batch_size: int = Field(default=500, ge=1, le=10_000)
    consumer_max_deliver: int = Field(default=5, ge=1)
    # Where the sub-ms relay wake-up is not enough (another process wrote the
    # outbox), the relay also polls at this interval.
    outbox_poll_interval_s: float = Field(default=0.05, gt=0)
    # A relay round (fetch, publish, delete) starts at most this often while
    # commits keep waking it: at hundreds of small commits a second, rounds
    # of a few events cost more than the events (ADR 0024). 0: every wake.
    outbox_min_round_interval_s: float = Field(default=0.01, ge=0, le=1)
    # "process": on PostgreSQL the outbox relay runs as a child process, on
    # another core (cxloop_libs.messaging.relay_process, ADR 0023); what the
    # deploy manifests set. "inline" (default; always on SQLite): a task of
    # the service's own event loop.
    outbox_relay: Literal["inline", "process"] = "inline"
    # Scheduled purges of the retention policy (cxloop_libs.privacy.retention):
    # every this many seconds, and at most this many rows per delete
    # transaction (docs/adr/0019-retention-policy.md).
    retention_interval_s: float = Field(default=3600.0, gt=0)
    retention_batch_size: int = Field(default=500, ge=1, le=10_000)

    @field_validator("nats_url")
    @classmethod
    def _nats_scheme(cls, v: str) -> str:
        for url in v.split(","):
            if not url.strip().startswith(("nats://", "tls://", "ws://", "wss://")):
                raise ValueError("must be a nats:// (or tls://) URL, comma separated for a cluster")
        return v

    @field_validator("database_url")
    @classmethod
    def _db_scheme(cls, v: str) -> str:
        if v and not v.startswith(("sqlite", "postgresql", "postgres")):
            raise ValueError("must be a sqlite:/// or postgresql:// URL")
        return v

    @field_validator("log_level")
    @classmethod
    def _level(cls, v: str) -> str:
        v = v.upper()
        if v not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ValueError("must be DEBUG, INFO, WARNING or ERROR")
        return v

    @model_validator(mode="after")
    def _secrets_outside_dev(self) -> Self:
        if self.env is Environment.PRODUCTION:
            if not self.pii_hash_key:
                raise ValueError(
                    "CXLOOP_PII_HASH_KEY is required outside development mode "
                    "(set CXLOOP_ENV=development for local use)"
                )
            if self.pii_hash_key == DEV_PII_HASH_KEY:
                raise ValueError(
                    "CXLOOP_PII_HASH_KEY must not be the development key in production"
                )
        return self

    @property
    def is_development(self) -> bool:
        return self.env is not Environment.PRODUCTION

    @property
    def hash_key(self) -> bytes:
        return (self.pii_hash_key or DEV_PII_HASH_KEY).encode()

    @property
    def accepted_grpc_tokens(self) -> frozenset[str]:
        return frozenset(self.grpc_token_names)

    @property
    def grpc_token_names(self) -> dict[str, str]:
        """Accepted token -> the caller's name (``name:token`` entries)."""
        return parse_grpc_tokens(self.grpc_tokens)

    @classmethod
    def defaults_for(cls, service: str, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
        data_dir = default_data_dir(environ)
        return {
            "database_url": f"sqlite:///{data_dir / (service + '.db')}",
            "grpc_port": GRPC_PORTS.get(service, 0),
            "metrics_port": METRICS_PORTS.get(service, 0),
        }

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Self:
        """Read, validate and return the settings, or raise ConfigError."""
        environ = os.environ if environ is None else environ
        service = cls.service_name
        values: dict[str, Any] = dict(cls.defaults_for(service, environ))
        for name in cls.model_fields:
            generic = f"CXLOOP_{name.upper()}"
            specific = f"CXLOOP_{service.upper()}_{name.upper()}"
            if specific in environ:
                values[name] = environ[specific]
            elif generic in environ:
                values[name] = environ[generic]
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            problems = []
            for err in exc.errors():
                field = ".".join(str(p) for p in err["loc"])
                var = f"CXLOOP_{field.upper()}" if field else "environment"
                msg = str(err["msg"]).removeprefix("Value error, ")
                problems.append(f"{var}: {msg}" if field else msg)
            raise ConfigError(service, problems) from None

    def grpc_target(self, service: str) -> str:
        """Address of another service's gRPC server (CXLOOP_<SERVICE>_GRPC_TARGET wins)."""
        override = os.environ.get(f"CXLOOP_{service.upper()}_GRPC_TARGET")
        if override:
            return override
        host = os.environ.get(f"CXLOOP_{service.upper()}_GRPC_HOST", "127.0.0.1")
        port = os.environ.get(f"CXLOOP_{service.upper()}_GRPC_PORT", str(GRPC_PORTS[service]))
        return f"{host}:{port}"
