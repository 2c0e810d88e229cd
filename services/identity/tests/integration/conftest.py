"""Fixtures shared by identity's integration tests: the service running
in-process on real NATS and a real database (SQLite and PostgreSQL), a
frontend-like publisher of interactions, and a gRPC stub."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest
from cxloop.identity.v1 import identity_service_pb2_grpc as pb_grpc

from cxloop_libs.messaging import EventPublisher, NatsBus, stream_for
from cxloop_libs.runtime import ServiceRuntime
from identity.bootstrap import bootstrap
from identity.config import IdentitySettings


@pytest.fixture
async def identity(clean_nats: str, database_url: str) -> AsyncIterator[ServiceRuntime]:
    settings = IdentitySettings(
        env="test",
        nats_url=clean_nats,
        database_url=database_url,
        grpc_port=0,
        metrics_port=0,
        consumer_max_deliver=2,
    )
    runtime = await bootstrap(settings)
    await runtime.start()
    await runtime.db_ready.wait()
    yield runtime
    await runtime.stop()


@pytest.fixture
async def gateway_publisher(clean_nats: str) -> AsyncIterator[EventPublisher]:
    bus = NatsBus(clean_nats, name="test-gateway", streams=[stream_for("gateway")])
    await bus.connect(timeout=10)
    yield EventPublisher(bus, source="/cxloop/gateway")
    await bus.close()


@pytest.fixture
async def stub(identity: ServiceRuntime) -> AsyncIterator[pb_grpc.IdentityServiceStub]:
    assert identity.grpc_server is not None
    async with grpc.aio.insecure_channel(f"127.0.0.1:{identity.grpc_server.port}") as ch:
        yield pb_grpc.IdentityServiceStub(ch)
