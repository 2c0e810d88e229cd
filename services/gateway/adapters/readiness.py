"""Readiness: the gateway is ready when it can store events and the services
behind it answer, so a load balancer only sends traffic a full suite can use."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Protocol

from cxloop_libs.grpcx import health_check

HealthCheck = Callable[[str], Awaitable[bool]]
PROBE_TIMEOUT_S = 0.5


class Readiness(Protocol):
    async def checks(self) -> dict[str, bool]: ...


async def _grpc_serving(target: str) -> bool:
    return bool(await health_check(target, timeout=PROBE_TIMEOUT_S))


class SuiteReadiness:
    """``nats`` plus one entry per service in ``targets`` (name -> gRPC target)."""

    def __init__(
        self,
        bus_connected: Callable[[], bool],
        targets: Mapping[str, str],
        *,
        check: HealthCheck = _grpc_serving,
        local: Mapping[str, Callable[[], bool]] | None = None,
    ) -> None:
        self._bus_connected = bus_connected
        self._targets = dict(targets)
        self._check = check
        # In-process conditions, e.g. "consent_view": the consent state and
        # the objectors' identifiers are loaded (docs/adr/0021).
        self._local = dict(local or {})

    async def checks(self) -> dict[str, bool]:
        names = list(self._targets)
        results = await asyncio.gather(
            *(self._check(self._targets[n]) for n in names), return_exceptions=True
        )
        checks = {"nats": self._bus_connected()}
        for name, ok in zip(names, results, strict=True):
            checks[name] = ok is True
        for name, ready in self._local.items():
            checks[name] = bool(ready())
        return checks
