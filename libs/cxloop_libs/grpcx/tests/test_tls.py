"""gRPC over TLS and mutual TLS: certificates made at test time; a client
without the certificate (or with one of another CA, or in plaintext) is
refused; one with it is served, and bearer tokens still apply on top."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from cxloop_libs.config import ConfigError, ServiceSettings
from cxloop_libs.grpcx import client_channel, grpc_server_from_settings, health_check
from cxloop_libs.grpcx.server import GrpcServer
from cxloop_libs.grpcx.tls import ClientTls
from cxloop_testing.certs import Issued, TestCA

pytestmark = pytest.mark.integration

TOKEN = "tls-test-token"


class Certs:
    def __init__(self, root: Path) -> None:
        self.ca = TestCA(root / "ca")
        self.server = self.ca.issue("identity", hosts=("127.0.0.1", "localhost", "identity"))
        self.client = self.ca.issue("gateway", client=True)
        self.stranger = TestCA(root / "other", name="other CA").issue("intruder", client=True)


@pytest.fixture
def certs(tmp_path: Path) -> Certs:
    return Certs(tmp_path)


async def _server(certs: Certs, *, mutual: bool) -> GrpcServer:
    settings = ServiceSettings(
        env="test",
        grpc_port=0,
        grpc_tokens=TOKEN,
        grpc_tls_cert=str(certs.server.cert),
        grpc_tls_key=str(certs.server.key),
        grpc_tls_client_ca=str(certs.ca.cert) if mutual else "",
    )
    server = grpc_server_from_settings(settings, [], [])
    await server.start()
    return server


@pytest.fixture
async def mtls_server(certs: Certs) -> AsyncIterator[GrpcServer]:
    server = await _server(certs, mutual=True)
    yield server
    await server.stop(0)


async def _check(channel: grpc.aio.Channel) -> int:
    reply = await health_pb2_grpc.HealthStub(channel).Check(
        health_pb2.HealthCheckRequest(service=""), timeout=5
    )
    return int(reply.status)


def _tls_channel(port: int, ca: Path, client: Issued | None) -> grpc.aio.Channel:
    tls = ClientTls(
        ca_file=str(ca),
        cert_file=str(client.cert) if client else "",
        key_file=str(client.key) if client else "",
    )
    return grpc.aio.secure_channel(f"127.0.0.1:{port}", tls.credentials())


async def test_mutual_tls_serves_a_client_with_the_certificate(
    mtls_server: GrpcServer, certs: Certs
) -> None:
    async with _tls_channel(mtls_server.port, certs.ca.cert, certs.client) as ch:
        assert await _check(ch) == health_pb2.HealthCheckResponse.SERVING


@pytest.mark.parametrize("who", ["no certificate", "another CA", "plaintext"])
async def test_mutual_tls_refuses_a_client_without_the_certificate(
    mtls_server: GrpcServer, certs: Certs, who: str
) -> None:
    if who == "plaintext":
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{mtls_server.port}")
    else:
        client = None if who == "no certificate" else certs.stranger
        channel = _tls_channel(mtls_server.port, certs.ca.cert, client)
    async with channel:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await _check(channel)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_client_channel_and_probe_use_tls_from_the_environment(
    mtls_server: GrpcServer, certs: Certs, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = f"127.0.0.1:{mtls_server.port}"
    assert not await health_check(target)  # plaintext probe: refused
    monkeypatch.setenv("CXLOOP_GRPC_TLS_CA", str(certs.ca.cert))
    monkeypatch.setenv("CXLOOP_GRPC_TLS_CLIENT_CERT", str(certs.client.cert))
    monkeypatch.setenv("CXLOOP_GRPC_TLS_CLIENT_KEY", str(certs.client.key))
    assert await health_check(target)
    # The name in the certificate rather than the address dialled.
    monkeypatch.setenv("CXLOOP_GRPC_TLS_SERVER_NAME", "identity")
    async with client_channel(target, token=TOKEN) as ch:
        assert await _check(ch) == health_pb2.HealthCheckResponse.SERVING
    from cxloop_cli.probes import grpc_health

    # Sync probe: off the event loop the server runs on.
    assert (await asyncio.to_thread(grpc_health, target, 5)).up


async def test_server_tls_without_client_ca_serves_any_tls_client(certs: Certs) -> None:
    server = await _server(certs, mutual=False)
    try:
        async with _tls_channel(server.port, certs.ca.cert, None) as ch:
            assert await _check(ch) == health_pb2.HealthCheckResponse.SERVING
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as plain:
            with pytest.raises(grpc.aio.AioRpcError):
                await _check(plain)
    finally:
        await server.stop(0)


def test_bad_tls_settings_name_the_variable(tmp_path: Path) -> None:
    settings = ServiceSettings(
        env="test",
        grpc_tokens=TOKEN,
        grpc_tls_cert=str(tmp_path / "missing.crt"),
        grpc_tls_client_ca=str(tmp_path / "ca.crt"),
    )
    with pytest.raises(ConfigError) as e:
        grpc_server_from_settings(settings, [], [])
    text = str(e.value)
    assert "CXLOOP_GRPC_TLS_CERT and CXLOOP_GRPC_TLS_KEY: set both" in text
    assert "CXLOOP_GRPC_TLS_CERT: no such file" in text
    assert "CXLOOP_GRPC_TLS_CLIENT_CA: no such file" in text
