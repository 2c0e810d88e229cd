"""The consent service boots on real NATS: health SERVING, its stream and state
bucket provisioned, every RPC implemented (an empty privacy request is
refused, not UNIMPLEMENTED), and NOT_SERVING once stopping."""

from __future__ import annotations

from pathlib import Path

import grpc
import nats
import pytest
from cxloop.consent.v1 import consent_service_pb2 as pb
from grpc_health.v1 import health_pb2, health_pb2_grpc

from consent.bootstrap import bootstrap
from consent.config import ConsentSettings
from cxloop_libs.consent import STATE_BUCKET
from cxloop_testing.infra import eventually

pytestmark = pytest.mark.integration


async def test_boots_serves_health_and_provisions_stream(
    clean_consent_nats: str, tmp_path: Path
) -> None:
    clean_nats = clean_consent_nats
    runtime = await bootstrap(
        ConsentSettings(
            env="test",
            nats_url=clean_nats,
            grpc_port=0,
            database_url=f"sqlite:///{tmp_path / 'consent.db'}",
        )
    )
    await runtime.start()
    try:
        assert runtime.grpc_server is not None
        target = f"127.0.0.1:{runtime.grpc_server.port}"
        async with grpc.aio.insecure_channel(target) as ch:
            health = health_pb2_grpc.HealthStub(ch)
            name = pb.DESCRIPTOR.services_by_name["ConsentService"].full_name
            r = await health.Check(health_pb2.HealthCheckRequest(service=name), timeout=5)
            assert r.status == health_pb2.HealthCheckResponse.SERVING
            await runtime.db_ready.wait()
            for method in (
                "OpenPrivacyRequest",
                "GetPrivacyRequestStatus",
                "VerifyPrivacyRequest",
                "ExtendPrivacyRequest",
            ):
                call = ch.unary_unary(f"/{name}/{method}")

                async def refused(call: grpc.aio.UnaryUnaryMultiCallable = call) -> bool:
                    with pytest.raises(grpc.aio.AioRpcError) as err:
                        await call(b"", timeout=5)
                    assert err.value.code() != grpc.StatusCode.UNIMPLEMENTED
                    return err.value.code() == grpc.StatusCode.INVALID_ARGUMENT

                await eventually(refused, timeout=5)
            await runtime.bus.ready()
            nc = await nats.connect(clean_nats)
            try:
                info = await nc.jetstream().stream_info("CONSENT")
                assert info.config.subjects == ["cx.consent.>"]
                kv = await nc.jetstream().key_value(STATE_BUCKET)
                assert (await kv.status()).history == 1
            finally:
                await nc.close()
            runtime.grpc_server.set_serving(False)

            async def not_serving() -> bool:
                r = await health.Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
                return r.status == health_pb2.HealthCheckResponse.NOT_SERVING

            await eventually(not_serving, timeout=5)
    finally:
        await runtime.stop()
