"""The gateway follows the retention policy on real NATS: it keeps no tables,
so its part is the GATEWAY stream, whose max age is the interactions period
(it was the fixed 30 days of ADR 0006)."""

from __future__ import annotations

import pytest
from cxloop.consent.v1 import events_pb2 as epb

from cxloop_libs.messaging.streams import DAY_S, ensure_stream
from cxloop_libs.privacy.retention import (
    DEFAULT_CATEGORY_DAYS,
    PolicyBucketSpec,
    RetentionPolicy,
    RetentionSchedule,
    policy_subject,
)
from gateway.bootstrap import bootstrap
from gateway.config import GatewaySettings

pytestmark = pytest.mark.integration


async def test_the_gateway_stream_keeps_interactions_for_the_policy_period(
    clean_nats: str,
) -> None:
    runtime = await bootstrap(
        GatewaySettings(env="test", nats_url=clean_nats, http_port=0, metrics_port=0)
    )
    await runtime.start()
    try:
        await runtime.bus.ready()
        js = runtime.bus.js
        await ensure_stream(js, PolicyBucketSpec())

        async def days() -> float:
            info = await js.stream_info("GATEWAY")
            assert info.config.max_age is not None
            return info.config.max_age / DAY_S

        assert await days() == pytest.approx(30)
        retention: RetentionSchedule = runtime.retention  # type: ignore[attr-defined]
        for version, period in ((1, 14), (2, 400)):
            policy = RetentionPolicy(version, {**DEFAULT_CATEGORY_DAYS, "interactions": period})
            body = epb.RetentionPolicyChanged(policy=policy.to_proto())
            await js.publish(policy_subject(), body.SerializeToString())
            report = await retention.wait_rounds(version, timeout=30)
            assert report.policy_version == version and report.rows == {}
            assert await days() == pytest.approx(period)
    finally:
        await runtime.stop()
