"""Which processes make up the suite, on which ports, with which environment.

Ports and database URLs follow the same precedence as the services' own config
(``CXLOOP_<SERVICE>_<FIELD>`` beats ``CXLOOP_<FIELD>`` beats the DESIGN.md default),
read from an injectable mapping, so the table `cxloop up` prints is what runs and
tests can move the whole suite to free ports.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from cxloop_cli.probes import grpc_ready, http_ready
from cxloop_cli.supervisor import ProcessSpec
from cxloop_libs.config import GATEWAY_HTTP_PORT, GRPC_PORTS, METRICS_PORTS, SERVICE_ORDER

GATEWAY = "gateway"
HOST = "127.0.0.1"
DEFAULT_WRITE_KEY = "dev"

# Dependencies first: the gateway calls every other service, so it starts last.
START_ORDER: tuple[str, ...] = (*(s for s in SERVICE_ORDER if s != GATEWAY), GATEWAY)
# Services that answer privacy requests (join a privacy participant in their
# bootstrap); consent waits for those of them that `cxloop up` starts. Keep in
# step with CXLOOP_CONSENT_PRIVACY_PARTICIPANTS in deploy/ (deploy/README.md).
PRIVACY_PARTICIPANTS: tuple[str, ...] = (
    "consent",
    "identity",
    "gateway",
    "loyalty",
    "analytics",
    "personalization",
    "feedback",
)


@dataclass(frozen=True)
class ServicePlan:
    name: str
    port: int
    metrics_port: int
    database_url: str
    host: str = HOST

    @property
    def is_gateway(self) -> bool:
        return self.name == GATEWAY

    @property
    def address(self) -> str:
        return f"http://{self.host}:{self.port}" if self.is_gateway else f"{self.host}:{self.port}"

    @property
    def address_label(self) -> str:
        return self.address if self.is_gateway else f"grpc {self.address}"


def setting(environ: Mapping[str, str], service: str, field: str) -> str | None:
    specific = f"CXLOOP_{service.upper()}_{field.upper()}"
    generic = f"CXLOOP_{field.upper()}"
    if specific in environ:
        return environ[specific]
    return environ.get(generic)


def parse_only(only: str | None) -> list[str]:
    """``identity,gateway`` -> services in start order; unknown names are an error."""
    if not only:
        return list(START_ORDER)
    wanted = {n.strip() for n in only.split(",") if n.strip()}
    unknown = sorted(wanted - set(START_ORDER))
    if unknown:
        raise ValueError(
            f"unknown service(s): {', '.join(unknown)}; choose from {', '.join(START_ORDER)}"
        )
    return [s for s in START_ORDER if s in wanted]


def plan_service(name: str, data_dir: Path, environ: Mapping[str, str]) -> ServicePlan:
    if name == GATEWAY:
        port = int(environ.get("CXLOOP_GATEWAY_HTTP_PORT", GATEWAY_HTTP_PORT))
        host = environ.get("CXLOOP_GATEWAY_HTTP_HOST", HOST)
    else:
        port = int(setting(environ, name, "grpc_port") or GRPC_PORTS[name])
        host = environ.get(f"CXLOOP_{name.upper()}_GRPC_HOST", HOST)
    # A 0.0.0.0 bind is still reached on loopback.
    host = HOST if host in ("0.0.0.0", "") else host
    metrics_port = int(
        environ.get(f"CXLOOP_{name.upper()}_METRICS_PORT", METRICS_PORTS.get(name, 0))
    )
    # Relative like the data dir: children share our working directory.
    database_url = (
        setting(environ, name, "database_url") or f"sqlite:///{data_dir / (name + '.db')}"
    )
    return ServicePlan(name, port, metrics_port, database_url, host)


def plan_suite(
    data_dir: Path, services: Iterable[str] = START_ORDER, environ: Mapping[str, str] | None = None
) -> list[ServicePlan]:
    env = os.environ if environ is None else environ
    return [plan_service(name, data_dir, env) for name in services]


def service_env(
    plan: ServicePlan,
    data_dir: Path,
    nats_url: str,
    write_key: str = DEFAULT_WRITE_KEY,
    peers: Iterable[ServicePlan] = (),
) -> dict[str, str]:
    """The variables `cxloop up` sets for one service; the rest is inherited.

    Every peer's port is passed too, so a client (the gateway) finds a service
    that was moved to another port without reading the parent's environment.
    """
    env = {
        "CXLOOP_ENV": "development",
        "CXLOOP_NATS_URL": nats_url,
        "CXLOOP_DATA_DIR": str(data_dir),
        "CXLOOP_DEV_WRITE_KEY": write_key,
        "OTEL_SERVICE_NAME": plan.name,
    }
    for p in (*peers, plan):
        prefix = f"CXLOOP_{p.name.upper()}_"
        if p.is_gateway:
            env["CXLOOP_GATEWAY_HTTP_PORT"] = str(p.port)
        else:
            env[prefix + "GRPC_PORT"] = str(p.port)
    if plan.is_gateway:
        # With --only, /readyz must not wait for services that were never started.
        started = [p.name for p in peers if not p.is_gateway]
        env["CXLOOP_GATEWAY_READINESS_SERVICES"] = ",".join(started)
    if plan.name == "consent" and "CXLOOP_CONSENT_PRIVACY_PARTICIPANTS" not in os.environ:
        # An erasure waits for every participant that runs, and only for those
        # (with --only, one never started would leave every request open).
        running = {p.name for p in (*peers, plan)}
        env["CXLOOP_CONSENT_PRIVACY_PARTICIPANTS"] = ",".join(
            s for s in PRIVACY_PARTICIPANTS if s in running
        )
    prefix = f"CXLOOP_{plan.name.upper()}_"
    env[prefix + "DATABASE_URL"] = plan.database_url
    env[prefix + "METRICS_PORT"] = str(plan.metrics_port)
    return env


def service_spec(
    plan: ServicePlan,
    data_dir: Path,
    nats_url: str,
    write_key: str = DEFAULT_WRITE_KEY,
    peers: Iterable[ServicePlan] = (),
    extra_env: Mapping[str, str] | None = None,
) -> ProcessSpec:
    env = service_env(plan, data_dir, nats_url, write_key, peers)
    env.update(extra_env or {})
    check = http_ready(f"{plan.address}/readyz") if plan.is_gateway else grpc_ready(plan.address)
    return ProcessSpec(
        name=plan.name, argv=[sys.executable, "-m", plan.name], env=env, ready_check=check
    )


def suite_specs(
    plans: Iterable[ServicePlan],
    data_dir: Path,
    nats_url: str,
    write_key: str = DEFAULT_WRITE_KEY,
    extra_env: Mapping[str, str] | None = None,
) -> list[ProcessSpec]:
    """One spec per planned service, in the order given (use START_ORDER)."""
    plans = list(plans)
    return [service_spec(p, data_dir, nats_url, write_key, plans, extra_env) for p in plans]
