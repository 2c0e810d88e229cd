"""Channels for calling other cxloop services, and a health probe.

Deadlines: every stub call must pass ``timeout=`` — the caller's
``settings.grpc_deadline_s`` (``DEFAULT_DEADLINE_S`` where no settings are at
hand). A call without a deadline waits forever on a hung peer, and the retry
policy below only bounds attempts, not time. Example::

    channel = client_channel(settings.grpc_target("consent"), token=settings.grpc_client_token)
    stub = ConsentServiceStub(channel)
    reply = await stub.Check(request, timeout=settings.grpc_deadline_s)

Channels are plaintext unless ``CXLOOP_GRPC_TLS_CA`` is set; then TLS, and
mutual TLS with ``CXLOOP_GRPC_TLS_CLIENT_CERT``/``_KEY`` (cxloop_libs.grpcx.tls).
Callers only pass a target and a token either way.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterable, Callable, Sequence
from typing import Any

import grpc
import grpc.aio
from grpc_health.v1 import health_pb2, health_pb2_grpc

from cxloop_libs.grpcx.tls import ClientTls

DEFAULT_DEADLINE_S = 5.0

# Retries only UNAVAILABLE: the request never reached a handler (or the server
# was shutting down), so repeating it cannot apply a command twice. Bounded and
# exponentially backed off; gRPC adds the jitter.
# Round robin over every address the target resolves to: a target naming
# several replicas (a headless Kubernetes Service, `ipv4:a,b`) spreads calls
# over all of them instead of pinning the channel to the first (gRPC's
# default, pick_first). A target with one address behaves as before.
_SERVICE_CONFIG = json.dumps(
    {
        "loadBalancingConfig": [{"round_robin": {}}],
        "methodConfig": [
            {
                "name": [{}],
                "retryPolicy": {
                    "maxAttempts": 3,
                    "initialBackoff": "0.1s",
                    "maxBackoff": "1s",
                    "backoffMultiplier": 2,
                    "retryableStatusCodes": ["UNAVAILABLE"],
                },
            }
        ],
    }
)

# Keepalive finds dead peers (a killed pod, a dropped NAT entry) on long-lived
# channels within ~40 s instead of the kernel's hours. The server side permits
# pings this frequent (see server.SERVER_OPTIONS), otherwise it would answer
# with GOAWAY "too_many_pings".
CHANNEL_OPTIONS: tuple[tuple[str, Any], ...] = (
    ("grpc.service_config", _SERVICE_CONFIG),
    ("grpc.enable_retries", 1),
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
)


class _BearerToken:
    def __init__(self, token: str) -> None:
        self._value = f"Bearer {token}"

    def _with_token(self, details: Any) -> Any:
        metadata = grpc.aio.Metadata(*(details.metadata or ()))
        # A per-call authorization (acting for someone else) wins over the channel's.
        if "authorization" not in metadata:
            metadata.add("authorization", self._value)
        return grpc.aio.ClientCallDetails(
            method=details.method,
            timeout=details.timeout,
            metadata=metadata,
            credentials=details.credentials,
            wait_for_ready=details.wait_for_ready,
        )


# One class per call shape: grpc.aio files each interceptor under the first
# interface it implements (an if/elif chain), so a single class implementing
# all four would only ever see unary-unary calls.
class _UnaryUnaryBearerToken(_BearerToken, grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[misc]
    async def intercept_unary_unary(
        self, continuation: Callable[[Any, Any], Any], client_call_details: Any, request: Any
    ) -> Any:
        return await continuation(self._with_token(client_call_details), request)


class _UnaryStreamBearerToken(_BearerToken, grpc.aio.UnaryStreamClientInterceptor):  # type: ignore[misc]
    async def intercept_unary_stream(
        self, continuation: Callable[[Any, Any], Any], client_call_details: Any, request: Any
    ) -> Any:
        return await continuation(self._with_token(client_call_details), request)


class _StreamUnaryBearerToken(_BearerToken, grpc.aio.StreamUnaryClientInterceptor):  # type: ignore[misc]
    async def intercept_stream_unary(
        self,
        continuation: Callable[[Any, Any], Any],
        client_call_details: Any,
        request_iterator: AsyncIterable[Any],
    ) -> Any:
        return await continuation(self._with_token(client_call_details), request_iterator)


class _StreamStreamBearerToken(_BearerToken, grpc.aio.StreamStreamClientInterceptor):  # type: ignore[misc]
    async def intercept_stream_stream(
        self,
        continuation: Callable[[Any, Any], Any],
        client_call_details: Any,
        request_iterator: AsyncIterable[Any],
    ) -> Any:
        return await continuation(self._with_token(client_call_details), request_iterator)


def bearer_token_interceptors(token: str) -> list[grpc.aio.ClientInterceptor]:
    """Interceptors adding ``authorization: Bearer <token>`` to every call shape,
    unless the call already carries an authorization entry."""
    return [
        _UnaryUnaryBearerToken(token),
        _UnaryStreamBearerToken(token),
        _StreamUnaryBearerToken(token),
        _StreamStreamBearerToken(token),
    ]


def client_channel(
    target: str,
    *,
    token: str = "",
    interceptors_extra: Sequence[grpc.aio.ClientInterceptor] = (),
) -> grpc.aio.Channel:
    """A channel to another service: traced, authenticated when ``token`` is set,
    retrying UNAVAILABLE. Create one per target and reuse it; close it on shutdown."""
    from cxloop_libs.telemetry import grpc_client_interceptors

    interceptors: list[Any] = list(grpc_client_interceptors())
    if token:
        interceptors.extend(bearer_token_interceptors(token))
    interceptors.extend(interceptors_extra)
    tls = ClientTls.from_env()
    if tls is not None:
        return grpc.aio.secure_channel(
            target,
            tls.credentials(),
            options=CHANNEL_OPTIONS + tls.options(),
            interceptors=interceptors,
        )
    return grpc.aio.insecure_channel(target, options=CHANNEL_OPTIONS, interceptors=interceptors)


def plain_channel(target: str, options: tuple[tuple[str, Any], ...] = ()) -> grpc.aio.Channel:
    """A bare channel (no tracing, retries or token), TLS per CXLOOP_GRPC_TLS_*."""
    tls = ClientTls.from_env()
    if tls is not None:
        return grpc.aio.secure_channel(target, tls.credentials(), options=options + tls.options())
    return grpc.aio.insecure_channel(target, options=options)


# The timeout is the RPC deadline handed to gRPC, not an asyncio timeout (ASYNC109).
async def health_check(target: str, *, timeout: float = 1.0, service: str = "") -> bool:
    """True iff ``target`` reports SERVING for ``service`` ("" = the whole server).

    Any failure — refused connection, deadline, NOT_FOUND — means "not healthy"
    to a probe, so it returns False instead of raising. No tracing, no retries:
    a probe should measure the server, not the client's patience.
    """
    try:
        async with plain_channel(target) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            response = await stub.Check(
                health_pb2.HealthCheckRequest(service=service), timeout=timeout
            )
    except Exception:
        return False
    return bool(response.status == health_pb2.HealthCheckResponse.SERVING)
