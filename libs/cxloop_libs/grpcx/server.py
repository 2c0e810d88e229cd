"""The gRPC server every cxloop service runs: tracing, logging, bearer-token
auth, domain-error mapping, the standard health service and reflection."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Any

import grpc
import grpc.aio
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from cxloop_libs.config import DEV_GRPC_TOKEN, ConfigError, ServiceSettings
from cxloop_libs.grpcx.interceptors import CxServerInterceptor
from cxloop_libs.grpcx.tls import ServerTls, server_tls_problems

# Probes and tooling (grpc_health_probe, kubelet, grpcurl) call these without a
# token; they reveal liveness and the API shape, nothing about customers.
DEFAULT_UNAUTHENTICATED_METHODS: frozenset[str] = frozenset(
    {
        "/grpc.health.v1.Health/Check",
        "/grpc.health.v1.Health/Watch",
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
        "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
    }
)

SERVER_OPTIONS: tuple[tuple[str, Any], ...] = (
    # gRPC sets SO_REUSEPORT by default, which lets a second process (a stale
    # copy of the same service) bind the same port and silently take half the
    # calls. Fail loudly instead.
    ("grpc.so_reuseport", 0),
    # Accept the client keepalive of client.CHANNEL_OPTIONS (30 s, also when
    # idle) rather than closing those connections for "too many pings".
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_ping_interval_without_data_ms", 20_000),
    ("grpc.keepalive_time_ms", 60_000),
    ("grpc.keepalive_timeout_ms", 20_000),
)

Registrar = Callable[[Any, grpc.aio.Server], None]

_log = logging.getLogger("cxloop.grpc")


def _address(host: str, port: int) -> str:
    if ":" in host and not host.startswith("["):
        return f"[{host}]:{port}"
    return f"{host}:{port}"


class GrpcServer:
    """Lifecycle of one asyncio gRPC server.

    Health reports SERVING for "" and every name in ``service_full_names`` once
    started; ``stop`` flips all of them to NOT_SERVING before it drains calls,
    so load balancers stop routing here while in-flight calls finish.
    """

    def __init__(
        self,
        *,
        service_name: str,
        host: str,
        port: int,
        accepted_tokens: frozenset[str],
        require_auth: bool,
        servicers: Sequence[tuple[Registrar, object]],
        service_full_names: Sequence[str],
        unauthenticated_methods: frozenset[str] = DEFAULT_UNAUTHENTICATED_METHODS,
        tls: ServerTls | None = None,
        ready: Callable[[], bool] | None = None,
    ) -> None:
        if require_auth and not accepted_tokens:
            raise ValueError(f"{service_name}: require_auth needs at least one accepted token")
        self._service_name = service_name
        self._host = host
        self._requested_port = port
        self._accepted_tokens = accepted_tokens
        self._require_auth = require_auth
        self._servicers = tuple(servicers)
        self._service_full_names = tuple(service_full_names)
        self._unauthenticated_methods = unauthenticated_methods
        self._tls = tls
        # Calls (but health and reflection) answer UNAVAILABLE until this is
        # true; ServiceRuntime sets it to "database migrated" before start().
        self.ready = ready
        self._health_names = ("", *self._service_full_names)
        self._health: Any = None
        self._server: Any = None
        self._port = 0
        # set_serving is sync (callable from callbacks); its updates run as a
        # chain of tasks so they apply in call order and stop() can await them.
        self._pending_health: asyncio.Task[None] | None = None

    @property
    def port(self) -> int:
        """The bound port; 0 until ``start`` returns."""
        return self._port

    def _interceptors(self) -> list[Any]:
        return [
            CxServerInterceptor(
                accepted_tokens=self._accepted_tokens,
                require_auth=self._require_auth,
                unauthenticated_methods=self._unauthenticated_methods,
                ready=self.ready,
            )
        ]

    async def start(self) -> int:
        if self._server is not None:
            raise RuntimeError(f"{self._service_name}: gRPC server already started")
        server = grpc.aio.server(interceptors=self._interceptors(), options=SERVER_OPTIONS)
        for register, servicer in self._servicers:
            register(servicer, server)
        # The asyncio servicer: the sync one would block the event loop on Watch.
        self._health = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self._health, server)
        reflection.enable_server_reflection(
            (*self._service_full_names, health.SERVICE_NAME, reflection.SERVICE_NAME), server
        )
        address = _address(self._host, self._requested_port)
        try:
            port: int = (
                server.add_secure_port(address, self._tls.credentials())
                if self._tls is not None
                else server.add_insecure_port(address)
            )
        except RuntimeError as exc:
            raise OSError(f"{self._service_name}: cannot bind gRPC on {address}: {exc}") from exc
        if port == 0:
            raise OSError(f"{self._service_name}: cannot bind gRPC on {address}")
        await server.start()
        self._server = server
        self._port = port
        for name in self._health_names:
            await self._health.set(name, health_pb2.HealthCheckResponse.SERVING)
        _log.info(
            "%s gRPC listening on %s",
            self._service_name,
            _address(self._host, port),
            extra={
                "grpc_port": port,
                "auth_required": self._require_auth,
                "tls": "mutual" if self._tls and self._tls.mutual else bool(self._tls),
            },
        )
        return port

    def set_serving(self, serving: bool) -> None:
        """Report every service as SERVING or NOT_SERVING; visible to health
        checks from the next await on. Must run on the server's event loop."""
        if self._server is None:
            raise RuntimeError(f"{self._service_name}: set_serving before start()")
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if serving
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        self._pending_health = asyncio.get_running_loop().create_task(
            self._apply_health(self._pending_health, status)
        )

    async def _apply_health(self, previous: asyncio.Task[None] | None, status: Any) -> None:
        if previous is not None:
            await previous
        for name in self._health_names:
            await self._health.set(name, status)

    async def stop(self, grace: float = 5.0) -> None:
        """NOT_SERVING everywhere, then refuse new calls and give in-flight
        ones ``grace`` seconds before cancelling them."""
        server = self._server
        if server is None:
            return
        if self._pending_health is not None:
            await self._pending_health
        # Permanent: later set_serving(True) calls cannot revive a stopping server.
        await self._health.enter_graceful_shutdown()
        await server.stop(grace)
        self._server = None
        _log.info("%s gRPC stopped", self._service_name)


def grpc_server_from_settings(
    settings: ServiceSettings,
    servicers: Sequence[tuple[Registrar, object]],
    service_full_names: Sequence[str],
) -> GrpcServer:
    """The server for a service, bound to ``settings.grpc_host:grpc_port``.

    Auth is on outside development, and in development as soon as tokens are
    configured, so a dev setup can rehearse production auth.
    """
    tokens = settings.accepted_grpc_tokens
    require_auth = not settings.is_development or bool(tokens)
    if require_auth and not tokens:
        raise ConfigError(
            settings.service_name, ["CXLOOP_GRPC_TOKENS: required outside development mode"]
        )
    if not settings.is_development and DEV_GRPC_TOKEN in tokens:
        raise ConfigError(
            settings.service_name,
            ["CXLOOP_GRPC_TOKENS: must not contain the development token in production"],
        )
    tls_problems = server_tls_problems(
        settings.grpc_tls_cert, settings.grpc_tls_key, settings.grpc_tls_client_ca
    )
    if tls_problems:
        raise ConfigError(settings.service_name, tls_problems)
    tls = (
        ServerTls(settings.grpc_tls_cert, settings.grpc_tls_key, settings.grpc_tls_client_ca)
        if settings.grpc_tls_cert
        else None
    )
    return GrpcServer(
        tls=tls,
        service_name=settings.service_name,
        host=settings.grpc_host,
        port=settings.grpc_port,
        accepted_tokens=tokens,
        require_auth=require_auth,
        servicers=servicers,
        service_full_names=service_full_names,
    )
