"""Readiness: the gateway is ready when it can do its job, accepting events,
which means JetStream answers *now* (not merely a TCP connection that is up:
a stalled server keeps the socket open while every publish times out).

Services the gateway calls only for some routes (identity and consent for
privacy requests, identity for loading objectors' identifiers, the domain
services behind their own routes) do not make the whole gateway unready:
those routes answer 503 with ``Retry-After`` while their service is down.
They are still probed and reported under ``dependencies`` for operators
(docs/adr/0036-ingest-readiness-and-degradation.md).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Protocol

from cxloop_libs.grpcx import health_check

HealthCheck = Callable[[str], Awaitable[bool]]
PROBE_TIMEOUT_S = 0.5


class Readiness(Protocol):
    async def checks(self) -> dict[str, bool]:
        """What must hold for the gateway to accept traffic."""
        ...

    async def dependencies(self) -> dict[str, bool]:
        """Services some routes need; reported, not gating."""
        ...


async def _grpc_serving(target: str) -> bool:
    return bool(await health_check(target, timeout=PROBE_TIMEOUT_S))


async def _answers(probe: Callable[[], Awaitable[bool]]) -> bool:
    try:
        return bool(await asyncio.wait_for(probe(), timeout=PROBE_TIMEOUT_S))
    except Exception:
        return False


class SuiteReadiness:
    """``nats`` (connected), ``jetstream`` (answers a stream request within
    0.5 s) and the ``local`` in-process conditions gate readiness; each
    service in ``targets`` (name -> gRPC target) is a reported dependency."""

    def __init__(
        self,
        bus_connected: Callable[[], bool],
        targets: Mapping[str, str],
        *,
        check: HealthCheck = _grpc_serving,
        local: Mapping[str, Callable[[], bool]] | None = None,
        jetstream: Callable[[], Awaitable[bool]] | None = None,
    ) -> None:
        self._bus_connected = bus_connected
        self._targets = dict(targets)
        self._check = check
        # In-process conditions, e.g. "consent_state": consent's state is
        # loaded from NATS (docs/adr/0021).
        self._local = dict(local or {})
        self._jetstream = jetstream

    async def checks(self) -> dict[str, bool]:
        connected = self._bus_connected()
        checks = {"nats": connected}
        if self._jetstream is not None:
            checks["jetstream"] = connected and await _answers(self._jetstream)
        for name, ready in self._local.items():
            checks[name] = bool(ready())
        return checks

    async def dependencies(self) -> dict[str, bool]:
        names = list(self._targets)
        results = await asyncio.gather(
            *(self._check(self._targets[n]) for n in names), return_exceptions=True
        )
        return {name: ok is True for name, ok in zip(names, results, strict=True)}
