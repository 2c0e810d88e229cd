"""Services whose capabilities come later (no issue yet) must still be honest
processes: they boot on real NATS, serve health and reflection, provision
their stream, answer UNIMPLEMENTED for every RPC of their contract, and turn
NOT_SERVING when stopping."""

from __future__ import annotations

import importlib
from pathlib import Path

import grpc
import nats
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from cxloop_testing.infra import eventually

pytestmark = pytest.mark.integration

SKELETONS = ["personalization"]  # loyalty, feedback: built (issues 11, 13)
# Services partly built: only these RPCs are still UNIMPLEMENTED (the rest
# are tested with the service), and the database they need.
PARTLY_BUILT = {"personalization": {"ListSegments", "GetPrediction"}}


@pytest.mark.parametrize("service", SKELETONS)
async def test_skeleton_boots_serves_health_and_provisions_stream(
    service: str, clean_nats: str, tmp_path: Path
) -> None:
    bootstrap = importlib.import_module(f"{service}.bootstrap").bootstrap
    settings_cls = importlib.import_module(f"{service}.config").__dict__[
        f"{service.capitalize()}Settings"
    ]
    pb = importlib.import_module(f"cxloop.{service}.v1.{service}_service_pb2")
    descriptor = pb.DESCRIPTOR.services_by_name[f"{service.capitalize()}Service"]

    extra = (
        {"database_url": f"sqlite:///{tmp_path / 'db.sqlite'}"} if service in PARTLY_BUILT else {}
    )
    runtime = await bootstrap(settings_cls(env="test", nats_url=clean_nats, grpc_port=0, **extra))
    await runtime.start()
    try:
        assert runtime.grpc_server is not None
        # Calls answer UNAVAILABLE until the database is migrated (ADR 0300).
        await runtime.db_ready.wait()
        async with grpc.aio.insecure_channel(f"127.0.0.1:{runtime.grpc_server.port}") as ch:
            health = health_pb2_grpc.HealthStub(ch)
            r = await health.Check(
                health_pb2.HealthCheckRequest(service=descriptor.full_name), timeout=5
            )
            assert r.status == health_pb2.HealthCheckResponse.SERVING
            for method in descriptor.methods:
                if method.name not in PARTLY_BUILT.get(service, {method.name}):
                    continue
                call = ch.unary_unary(f"/{descriptor.full_name}/{method.name}")
                with pytest.raises(grpc.aio.AioRpcError) as err:
                    await call(b"", timeout=5)
                assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED, method.name
            await runtime.bus.ready()
            nc = await nats.connect(clean_nats)
            try:
                info = await nc.jetstream().stream_info(service.upper())
                assert info.config.subjects == [f"cx.{service}.>"]
            finally:
                await nc.close()
            runtime.grpc_server.set_serving(False)

            async def not_serving() -> bool:
                r = await health.Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
                return r.status == health_pb2.HealthCheckResponse.NOT_SERVING

            await eventually(not_serving, timeout=5)
    finally:
        await runtime.stop()
