"""GrpcServer and client helpers against a real asyncio server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator
from typing import Any

import grpc
import grpc.aio
import pytest
from cxloop.identity.v1 import identity_service_pb2, identity_service_pb2_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from cxloop_libs.config import ConfigError, Environment, ServiceSettings
from cxloop_libs.errors import InvalidArgument, NotFound
from cxloop_libs.grpcx import GrpcServer, client_channel, grpc_server_from_settings, health_check
from cxloop_testing.infra import eventually

TOKEN = "s3cret-token"
IDENTITY = "cxloop.identity.v1.IdentityService"
ECHO = "cxloop.test.Echo"


class FakeIdentity(identity_service_pb2_grpc.IdentityServiceServicer):  # type: ignore[misc]
    async def Resolve(
        self, request: identity_service_pb2.ResolveRequest, context: Any
    ) -> identity_service_pb2.ResolveResponse:
        if not request.identifiers:
            raise InvalidArgument("identifiers[0].value", "must not be empty")
        if request.source == "boom":
            raise RuntimeError("secret detail")
        if request.source == "gone":
            raise NotFound("customer merged away")
        return identity_service_pb2.ResolveResponse(customer_id="c1")


async def _chat(requests: AsyncIterator[bytes], context: Any) -> AsyncIterator[bytes]:
    async for message in requests:
        if message == b"boom":
            raise RuntimeError("secret detail")
        yield message.upper()


async def _split(request: bytes, context: Any) -> AsyncIterator[bytes]:
    for part in request.split(b","):
        if part == b"boom":
            raise RuntimeError("secret detail")
        yield part


async def _join(requests: AsyncIterator[bytes], context: Any) -> bytes:
    parts = [message async for message in requests]
    if b"boom" in parts:
        raise RuntimeError("secret detail")
    return b",".join(parts)


def _add_echo(_servicer: object, server: grpc.aio.Server) -> None:
    # Raw bytes, no proto: one method per streaming shape the wrappers handle.
    handler = grpc.method_handlers_generic_handler(
        ECHO,
        {
            "Chat": grpc.stream_stream_rpc_method_handler(_chat),
            "Split": grpc.unary_stream_rpc_method_handler(_split),
            "Join": grpc.stream_unary_rpc_method_handler(_join),
        },
    )
    server.add_generic_rpc_handlers((handler,))


async def _echo_all(channel: grpc.aio.Channel, payload: list[bytes], **kwargs: Any) -> list[Any]:
    """Calls Chat, Split and Join with ``payload``; returns their results in order."""
    chat = channel.stream_stream(f"/{ECHO}/Chat")
    split = channel.unary_stream(f"/{ECHO}/Split")
    join = channel.stream_unary(f"/{ECHO}/Join")
    return [
        [r async for r in chat(iter(payload), timeout=2, **kwargs)],
        [r async for r in split(b",".join(payload), timeout=2, **kwargs)],
        await join(iter(payload), timeout=2, **kwargs),
    ]


def _resolve_request(source: str = "web", *, empty: bool = False) -> Any:
    identifiers = [] if empty else [{"type": "IDENTIFIER_TYPE_EMAIL", "value": "a@example.com"}]
    return identity_service_pb2.ResolveRequest(identifiers=identifiers, source=source)


def _auth(token: str = TOKEN) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


@pytest.fixture
async def server() -> AsyncIterator[GrpcServer]:
    srv = GrpcServer(
        service_name="identity",
        host="127.0.0.1",
        port=0,
        accepted_tokens=frozenset({TOKEN, "other-token"}),
        require_auth=True,
        servicers=[
            (identity_service_pb2_grpc.add_IdentityServiceServicer_to_server, FakeIdentity()),
            (_add_echo, object()),
        ],
        service_full_names=[IDENTITY, ECHO],
    )
    await srv.start()
    yield srv
    await srv.stop(grace=0)


@pytest.fixture
async def channel(server: GrpcServer) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as ch:
        yield ch


async def _status(channel: grpc.aio.Channel, service: str = "") -> Any:
    stub = health_pb2_grpc.HealthStub(channel)
    reply = await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=2)
    return reply.status


async def test_start_binds_ephemeral_port_and_reports_serving_without_token(
    server: GrpcServer, channel: grpc.aio.Channel
) -> None:
    assert server.port > 0
    for name in ("", IDENTITY, ECHO):
        assert await _status(channel, name) == health_pb2.HealthCheckResponse.SERVING


async def test_set_serving_flips_every_status(
    server: GrpcServer, channel: grpc.aio.Channel
) -> None:
    server.set_serving(False)
    assert await _status(channel) == health_pb2.HealthCheckResponse.NOT_SERVING
    assert await _status(channel, IDENTITY) == health_pb2.HealthCheckResponse.NOT_SERVING
    server.set_serving(True)
    assert await _status(channel, IDENTITY) == health_pb2.HealthCheckResponse.SERVING


async def test_stop_reports_not_serving_before_draining(
    server: GrpcServer, channel: grpc.aio.Channel
) -> None:
    watch = health_pb2_grpc.HealthStub(channel).Watch(
        health_pb2.HealthCheckRequest(service=IDENTITY), timeout=5
    )
    first = await watch.read()
    assert first.status == health_pb2.HealthCheckResponse.SERVING
    stopping = asyncio.create_task(server.stop(grace=1.0))
    second = await asyncio.wait_for(watch.read(), timeout=2)
    assert second.status == health_pb2.HealthCheckResponse.NOT_SERVING
    assert not stopping.done(), "NOT_SERVING must be visible while in-flight calls drain"
    await stopping


async def test_reflection_lists_services_without_token(channel: grpc.aio.Channel) -> None:
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    call = stub.ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=2
    )
    names: set[str] = set()
    async for reply in call:
        names |= {s.name for s in reply.list_services_response.service}
    assert {IDENTITY, "grpc.health.v1.Health"} <= names


@pytest.mark.parametrize("metadata", [None, _auth("wrong-token"), (("authorization", TOKEN),)])
async def test_call_without_accepted_token_is_unauthenticated(
    channel: grpc.aio.Channel, metadata: Any
) -> None:
    stub = identity_service_pb2_grpc.IdentityServiceStub(channel)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.Resolve(_resolve_request(), metadata=metadata, timeout=2)
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert err.value.details() == "missing or invalid bearer token"


@pytest.mark.parametrize("method", ["Chat", "Split", "Join"])
async def test_streaming_call_without_token_is_unauthenticated(
    channel: grpc.aio.Channel, method: str
) -> None:
    # Client streams send no message: one written after the server refused
    # the call fails inside gRPC core as INTERNAL ("Failed execute_batch"),
    # a race with the refusal this test is not about (once in make test).
    calls = {
        "Chat": lambda: channel.stream_stream(f"/{ECHO}/Chat")(iter([]), timeout=2),
        "Split": lambda: channel.unary_stream(f"/{ECHO}/Split")(b"hi", timeout=2),
    }
    with pytest.raises(grpc.aio.AioRpcError) as err:
        if method == "Join":
            await channel.stream_unary(f"/{ECHO}/Join")(iter([]), timeout=2)
        else:
            async for _ in calls[method]():
                pass
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_call_with_token_succeeds(channel: grpc.aio.Channel) -> None:
    stub = identity_service_pb2_grpc.IdentityServiceStub(channel)
    reply = await stub.Resolve(_resolve_request(), metadata=_auth("other-token"), timeout=2)
    assert reply.customer_id == "c1"


async def test_invalid_argument_names_the_field(channel: grpc.aio.Channel) -> None:
    stub = identity_service_pb2_grpc.IdentityServiceStub(channel)
    call = stub.Resolve(_resolve_request(empty=True), metadata=_auth(), timeout=2)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.value.details() == "identifiers[0].value: must not be empty"
    assert ("cx-field", "identifiers[0].value") in tuple(err.value.trailing_metadata())


async def test_domain_error_maps_to_its_code(channel: grpc.aio.Channel) -> None:
    stub = identity_service_pb2_grpc.IdentityServiceStub(channel)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.Resolve(_resolve_request("gone"), metadata=_auth(), timeout=2)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


async def test_unexpected_error_is_internal_and_hides_the_message(
    channel: grpc.aio.Channel, caplog: pytest.LogCaptureFixture
) -> None:
    stub = identity_service_pb2_grpc.IdentityServiceStub(channel)
    with caplog.at_level(logging.DEBUG, logger="cxloop.grpc"):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.Resolve(_resolve_request("boom"), metadata=_auth(), timeout=2)
    assert err.value.code() == grpc.StatusCode.INTERNAL
    details = err.value.details() or ""
    assert "secret detail" not in details
    assert details.startswith("internal error (trace ")
    trace_ref = details.removeprefix("internal error (trace ").rstrip(")")
    # The operator finds the traceback by the id the caller was given.
    logged = [r for r in caplog.records if r.exc_info and trace_ref in r.getMessage()]
    assert logged and "secret detail" in str(logged[0].exc_info[1])  # type: ignore[index]

    # The server writes its call line after the status reached the client.
    def internal_lines() -> list[logging.LogRecord]:
        return [r for r in caplog.records if getattr(r, "code", None) == "INTERNAL"]

    with caplog.at_level(logging.DEBUG, logger="cxloop.grpc"):
        call_lines = await eventually(internal_lines, timeout=5, interval=0.01)
    assert call_lines[0].levelno == logging.WARNING
    assert call_lines[0].method == f"/{IDENTITY}/Resolve"  # type: ignore[attr-defined]
    assert call_lines[0].duration_ms >= 0  # type: ignore[attr-defined]


async def test_ok_call_logs_at_debug(
    channel: grpc.aio.Channel, caplog: pytest.LogCaptureFixture
) -> None:
    stub = identity_service_pb2_grpc.IdentityServiceStub(channel)
    with caplog.at_level(logging.DEBUG, logger="cxloop.grpc"):
        await stub.Resolve(_resolve_request(), metadata=_auth(), timeout=2)
    lines = [r for r in caplog.records if getattr(r, "method", None) == f"/{IDENTITY}/Resolve"]
    assert [(r.levelno, r.code) for r in lines] == [(logging.DEBUG, "OK")]  # type: ignore[attr-defined]


async def test_streaming_errors_are_mapped_after_responses(
    channel: grpc.aio.Channel,
) -> None:
    chat = channel.stream_stream(f"/{ECHO}/Chat")
    replies: list[bytes] = []
    with pytest.raises(grpc.aio.AioRpcError) as err:
        async for reply in chat(iter([b"hi", b"boom"]), metadata=_auth(), timeout=2):
            replies.append(reply)
    assert replies == [b"HI"]
    assert err.value.code() == grpc.StatusCode.INTERNAL
    assert "secret detail" not in (err.value.details() or "")

    split = channel.unary_stream(f"/{ECHO}/Split")
    parts: list[bytes] = []
    with pytest.raises(grpc.aio.AioRpcError) as err:
        async for part in split(b"a,boom", metadata=_auth(), timeout=2):
            parts.append(part)
    assert parts == [b"a"]
    assert err.value.code() == grpc.StatusCode.INTERNAL

    join = channel.stream_unary(f"/{ECHO}/Join")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await join(iter([b"a", b"boom"]), metadata=_auth(), timeout=2)
    assert err.value.code() == grpc.StatusCode.INTERNAL
    assert "secret detail" not in (err.value.details() or "")


async def test_health_check_helper(server: GrpcServer) -> None:
    assert await health_check(f"127.0.0.1:{server.port}")
    assert await health_check(f"127.0.0.1:{server.port}", service=IDENTITY)
    assert not await health_check(f"127.0.0.1:{server.port}", service="no.such.Service")
    server.set_serving(False)
    assert not await health_check(f"127.0.0.1:{server.port}")


async def test_health_check_false_for_closed_port() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    assert not await health_check(f"127.0.0.1:{port}", timeout=0.5)


async def test_client_channel_attaches_token(server: GrpcServer) -> None:
    target = f"127.0.0.1:{server.port}"
    async with client_channel(target, token=TOKEN) as ch:
        stub = identity_service_pb2_grpc.IdentityServiceStub(ch)
        reply = await stub.Resolve(_resolve_request(), timeout=2)
        assert reply.customer_id == "c1"
        # grpc.aio routes each call shape through its own interceptor list.
        assert await _echo_all(ch, [b"a", b"b"]) == [[b"A", b"B"], [b"a", b"b"], b"a,b"]
    async with client_channel(target) as ch:
        stub = identity_service_pb2_grpc.IdentityServiceStub(ch)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.Resolve(_resolve_request(), timeout=2)
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED


class _CountingIdentity(FakeIdentity):
    def __init__(self) -> None:
        self.calls = 0

    async def Resolve(self, request: Any, context: Any) -> Any:
        self.calls += 1
        return await super().Resolve(request, context)


async def test_client_channel_spreads_calls_over_every_replica() -> None:
    # A target naming two replicas (as a headless Service's DNS name does):
    # round robin, not every call to the first address (pick_first).
    replicas = [_CountingIdentity(), _CountingIdentity()]
    servers = [
        GrpcServer(
            service_name="identity",
            host="127.0.0.1",
            port=0,
            accepted_tokens=frozenset({TOKEN}),
            require_auth=True,
            servicers=[(identity_service_pb2_grpc.add_IdentityServiceServicer_to_server, r)],
            service_full_names=[IDENTITY],
        )
        for r in replicas
    ]
    for srv in servers:
        await srv.start()
    try:
        target = "ipv4:" + ",".join(f"127.0.0.1:{srv.port}" for srv in servers)
        async with client_channel(target, token=TOKEN) as ch:
            stub = identity_service_pb2_grpc.IdentityServiceStub(ch)
            await ch.channel_ready()
            for _ in range(20):
                await stub.Resolve(_resolve_request(), timeout=2)
        assert sum(r.calls for r in replicas) == 20
        assert all(r.calls >= 5 for r in replicas), [r.calls for r in replicas]
    finally:
        for srv in servers:
            await srv.stop(grace=0)


async def test_second_server_on_same_port_fails(server: GrpcServer) -> None:
    other = GrpcServer(
        service_name="identity",
        host="127.0.0.1",
        port=server.port,
        accepted_tokens=frozenset(),
        require_auth=False,
        servicers=[],
        service_full_names=[],
    )
    with pytest.raises(OSError):
        await other.start()


def _settings(env: Environment, tokens: str = "") -> ServiceSettings:
    return ServiceSettings(env=env, pii_hash_key="k" * 32, grpc_tokens=tokens)


def test_from_settings_requires_tokens_in_production() -> None:
    with pytest.raises(ConfigError, match="CXLOOP_GRPC_TOKENS"):
        grpc_server_from_settings(_settings(Environment.PRODUCTION), [], [])
    with pytest.raises(ConfigError, match="development token"):
        grpc_server_from_settings(_settings(Environment.PRODUCTION, "dev-token"), [], [])


async def test_from_settings_without_tokens_in_development_is_open() -> None:
    srv = grpc_server_from_settings(
        _settings(Environment.DEVELOPMENT).model_copy(update={"grpc_port": 0}),
        [(identity_service_pb2_grpc.add_IdentityServiceServicer_to_server, FakeIdentity())],
        [IDENTITY],
    )
    port = await srv.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
            stub = identity_service_pb2_grpc.IdentityServiceStub(ch)
            assert (await stub.Resolve(_resolve_request(), timeout=2)).customer_id == "c1"
    finally:
        await srv.stop(grace=0)


async def test_calls_answer_unavailable_until_ready_while_health_and_reflection_answer() -> None:
    """A service listens before its database is migrated: its calls are
    refused as UNAVAILABLE (clients retry that) until ready, never run
    against tables not created yet (that failed as INTERNAL)."""
    ready = False
    srv = GrpcServer(
        service_name="identity",
        host="127.0.0.1",
        port=0,
        accepted_tokens=frozenset({TOKEN}),
        require_auth=True,
        servicers=[
            (identity_service_pb2_grpc.add_IdentityServiceServicer_to_server, FakeIdentity()),
            (_add_echo, object()),
        ],
        service_full_names=[IDENTITY, ECHO],
        ready=lambda: ready,
    )
    await srv.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{srv.port}") as ch:
            stub = identity_service_pb2_grpc.IdentityServiceStub(ch)
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await stub.Resolve(_resolve_request(), metadata=_auth(), timeout=2)
            assert err.value.code() == grpc.StatusCode.UNAVAILABLE
            assert "not ready" in (err.value.details() or "")
            with pytest.raises(grpc.aio.AioRpcError) as streamed:
                async for _ in ch.unary_stream(f"/{ECHO}/Split")(b"a,b", metadata=_auth()):
                    pass
            assert streamed.value.code() == grpc.StatusCode.UNAVAILABLE
            # Still authenticated first: a caller without a token learns nothing.
            with pytest.raises(grpc.aio.AioRpcError) as anon:
                await stub.Resolve(_resolve_request(), timeout=2)
            assert anon.value.code() == grpc.StatusCode.UNAUTHENTICATED
            assert await _status(ch) == health_pb2.HealthCheckResponse.SERVING
            refl = reflection_pb2_grpc.ServerReflectionStub(ch)
            call = refl.ServerReflectionInfo(
                iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=2
            )
            assert [r async for r in call]
            ready = True
            reply = await stub.Resolve(_resolve_request(), metadata=_auth(), timeout=2)
            assert reply.customer_id == "c1"
            assert await _echo_all(ch, [b"a", b"b"], metadata=_auth()) == [
                [b"A", b"B"],
                [b"a", b"b"],
                b"a,b",
            ]
    finally:
        await srv.stop(grace=0)
