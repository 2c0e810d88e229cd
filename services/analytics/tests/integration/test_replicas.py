"""Two analytics replicas: each owns its DuckDB file and reads the whole
stream through durables of its own (docs/adr/0061); they share the
relational database (KPI definitions, alerts). Both answer the same funnel,
an erasure reaches both files, a KPI defined on one is known to the other,
and an anomaly both find is one alert."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from cxloop.analytics.v1 import analytics_service_pb2 as pb
from cxloop.analytics.v1 import analytics_service_pb2_grpc as pb_grpc
from cxloop.consent.v1 import events_pb2 as consent_pb

from analytics.tests.conftest import Bus, publish
from analytics.tests.integration.test_analytics_flow import _equals, funnel_request, journey
from analytics.tests.integration.test_kpi_alerts import conversion_history
from cxloop_libs.messaging import catalog as ev
from cxloop_testing.infra import eventually

pytestmark = pytest.mark.integration


async def test_two_replicas_agree_and_both_forget(
    bus: Bus, analytics_runtimes: Callable[..., Any]
) -> None:
    r0 = await analytics_runtimes("r0", alert_interval_s=3600)
    r1 = await analytics_runtimes("r1", alert_interval_s=3600)
    assert r0.store.path != r1.store.path  # type: ignore[attr-defined]
    await bus.resolved(
        journey("c-a", ["view", "cart", "buy"]) + journey("c-b", ["view", "buy"], channel="app")
    )
    for rt in (r0, r1):
        await eventually(lambda rt=rt: _equals(rt.store.count, 5))
    answers = []
    for rt in (r0, r1):
        async with grpc.aio.insecure_channel(f"127.0.0.1:{rt.grpc_server.port}") as ch:
            stub = pb_grpc.AnalyticsServiceStub(ch)
            r = await stub.Funnel(funnel_request("view", "buy"), timeout=10)
            answers.append([s.customers for s in r.steps])
    assert answers == [[2, 2], [2, 2]]

    erase = consent_pb.ErasureRequested(request_id=str(uuid.uuid4()), customer_id="c-a")
    await publish(bus.js, ev.ERASURE_REQUESTED, erase, subject="c-a")
    for rt in (r0, r1):
        await eventually(lambda rt=rt: _equals(rt.store.count, 2))

    # A KPI defined on r0 is computed by r1; an anomaly found by both is one alert.
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    history = conversion_history(today, drop_yesterday=True)
    for rt in (r0, r1):
        rt.store.ingest(history)  # type: ignore[attr-defined]
    async with grpc.aio.insecure_channel(f"127.0.0.1:{r0.grpc_server.port}") as ch:
        kpi = pb.KpiDefinition(
            name="conversion_rate", kind="rate", event="view", target_event="buy", alerting=True
        )
        await pb_grpc.AnalyticsServiceStub(ch).DefineKpi(pb.DefineKpiRequest(kpi=kpi), timeout=10)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{r1.grpc_server.port}") as ch:
        got = await pb_grpc.AnalyticsServiceStub(ch).GetKpi(
            pb.GetKpiRequest(name="conversion_rate"), timeout=10
        )
        # The default range: the last 30 days (one point per day with events).
        assert len(got.values) >= 28
    first = await r0.watch_kpis_once()  # type: ignore[attr-defined]
    second = await r1.watch_kpis_once()  # type: ignore[attr-defined]
    assert len(first) == 1 and second == []
    assert first[0].window_start.ToDatetime(tzinfo=UTC) == today - timedelta(days=1)
