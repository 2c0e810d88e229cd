"""The analytics service with CXLOOP_ANALYTICS_STORE=clickhouse, on real NATS,
a real database and the ClickHouse engine in-process (chDB through the
``chdb://`` URL: the same SQL a server runs): ingest with consent, a
redelivered event counted once, merges, erasure, a later objection, every
gRPC query answered from ClickHouse, and two replicas sharing the store and
its durables."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
from cxloop.analytics.v1 import analytics_service_pb2 as pb
from cxloop.analytics.v1 import analytics_service_pb2_grpc as pb_grpc
from cxloop.consent.v1 import events_pb2 as consent_pb
from cxloop.identity.v1 import events_pb2 as identity_pb

from analytics.adapters.clickhouse_store import ClickHouseEventStore
from analytics.config import AnalyticsSettings
from analytics.service_layer.clickhouse_journeys import ClickHouseJourneys
from analytics.tests.conftest import Bus, interaction, publish
from analytics.tests.integration.test_analytics_flow import T0, funnel_request, journey
from cxloop_libs.config import ConfigError
from cxloop_libs.messaging import catalog as ev
from cxloop_testing.infra import eventually

pytestmark = pytest.mark.integration
pytest.importorskip("chdb")


def count_of(store: ClickHouseEventStore, customer: str | None = None) -> int:
    if customer is None:
        return store.count()
    rows = store.sql.rows(
        f"SELECT count() FROM {store.db}.events FINAL WHERE customer_id = {{c:String}}",
        {"c": customer},
    )
    return int(rows[0][0])


async def _equals(fn: Callable[[], Any], value: Any) -> bool:
    return fn() == value


def settings_for(tmp_path: Path) -> dict[str, Any]:
    return {"store": "clickhouse", "clickhouse_url": f"chdb://{tmp_path / 'chdb'}"}


async def test_the_service_ingests_into_and_answers_from_clickhouse(
    bus: Bus, analytics_runtimes: Callable[..., Any], tmp_path: Path
) -> None:
    await bus.object_to_analytics("c-objector")
    rt = await analytics_runtimes(**settings_for(tmp_path))
    store = rt.store  # type: ignore[attr-defined]
    assert isinstance(store, ClickHouseEventStore)
    a = journey("c-a", ["view", "cart"])
    b = journey("c-b", ["checkout", "buy"], channel="store", start=T0 + timedelta(hours=2))
    c = journey("c-c", ["view", "cart", "checkout", "buy"], channel="app")
    await bus.resolved(a + b + c + journey("c-objector", ["view", "cart"]))
    # The same interaction again under another stream message id: stored once
    # (collapsed by the ReplacingMergeTree, never counted twice).
    await publish(bus.js, ev.INTERACTION_RESOLVED, c[0], event_id=str(uuid.uuid4()))
    await eventually(lambda: _equals(store.count, 8), timeout=45)
    assert count_of(store, "c-objector") == 0
    # No DuckDB file: the events are in ClickHouse only.
    assert not (tmp_path / "analytics-r0.duckdb").exists()

    async with grpc.aio.insecure_channel(f"127.0.0.1:{rt.grpc_server.port}") as ch:
        stub = pb_grpc.AnalyticsServiceStub(ch)
        req = funnel_request("view", "cart", "checkout", "buy", breakdown="channel")
        r = await stub.Funnel(req, timeout=10)
        assert [s.customers for s in r.steps] == [2, 2, 1, 1]
        assert r.steps[3].median_seconds_to_convert == 1800.0
        assert {x.value: [s.customers for s in x.steps] for x in r.breakdowns} == {
            "web": [1, 1, 0, 0],
            "app": [1, 1, 1, 1],
        }
        strict = funnel_request("view", "checkout", order=pb.STEP_ORDER_STRICT)
        assert [s.customers for s in (await stub.Funnel(strict, timeout=10)).steps] == [2, 0]

        merged = identity_pb.ProfileMerged(surviving_customer_id="c-a", merged_customer_ids=["c-b"])
        await publish(bus.js, ev.PROFILE_MERGED, merged, subject="c-a")

        async def complete() -> bool:
            got = await stub.Funnel(funnel_request("view", "cart", "checkout", "buy"), timeout=10)
            return [s.customers for s in got.steps] == [2, 2, 2, 2]

        await eventually(complete)
        # A late event under the merged id joins the survivor.
        await bus.resolved([interaction("c-b", "review", T0 + timedelta(hours=5))])
        await eventually(lambda: _equals(lambda: count_of(store, "c-a"), 5))

        j = await stub.RecentJourney(pb.RecentJourneyRequest(customer_id="c-a", limit=3))
        assert [e.event for e in j.events] == ["review", "buy", "checkout"]
        assert j.events[0].occurred_at.ToDatetime(tzinfo=UTC) == T0 + timedelta(hours=5)
        assert j.total_events == 5
        assert [(c.channel, c.events) for c in j.channels] == [("web", 3), ("store", 2)]

        period_range = funnel_request("view").range
        paths = await stub.Paths(
            pb.PathsRequest(anchor_event="view", depth=1, range=period_range), timeout=10
        )
        assert paths.anchors == 2
        assert sorted((list(p.events), p.count) for p in paths.paths) == [(["view", "cart"], 2)]
        retention = await stub.Retention(
            pb.RetentionRequest(period=pb.PERIOD_DAY, periods=2, range=period_range), timeout=10
        )
        assert [(c.customers, list(c.retained)) for c in retention.cohorts] == [(2, [2, 0])]
        stages = await stub.Stages(
            pb.StagesRequest(
                stages=[
                    pb.StageMapping(stage="awareness", events=["view"]),
                    pb.StageMapping(stage="purchase", events=["buy"]),
                ],
                period=pb.PERIOD_DAY,
                range=period_range,
            ),
            timeout=10,
        )
        assert [[s.customers for s in p.stages] for p in stages.periods] == [[2, 2]]
        kpi = pb.KpiDefinition(name="conv", kind="rate", event="view", target_event="buy")
        await stub.DefineKpi(pb.DefineKpiRequest(kpi=kpi), timeout=10)
        got = await stub.GetKpi(pb.GetKpiRequest(name="conv", range=period_range), timeout=10)
        assert [(v.value, v.sample) for v in got.values] == [(1.0, 2)]
        # A $segment breakdown needs a table only the DuckDB store has.
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.Funnel(funnel_request("view", "cart", breakdown="$segment"), timeout=10)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert (err.value.details() or "").startswith("breakdown:")

        # Erasure: the survivor's rows (and the merged history) go, and a
        # replay of them is kept out.
        erase = consent_pb.ErasureRequested(request_id=str(uuid.uuid4()), customer_id="c-a")
        await publish(bus.js, ev.ERASURE_REQUESTED, erase, subject="c-a")
        await eventually(lambda: _equals(store.count, 4))
        with pytest.raises(grpc.aio.AioRpcError) as gone:
            await stub.RecentJourney(pb.RecentJourneyRequest(customer_id="c-a"))
        assert gone.value.code() == grpc.StatusCode.NOT_FOUND
        await bus.resolved(a)
        await bus.resolved(journey("c-d", ["view"]))
        await eventually(lambda: _equals(store.count, 5))
        assert count_of(store, "c-a") == 0

        # A later objection erases what was stored before it.
        await bus.object_to_analytics("c-c", version=2)
        await eventually(lambda: _equals(store.count, 1))


async def test_two_replicas_share_the_store_and_its_durables(
    bus: Bus, analytics_runtimes: Callable[..., Any], tmp_path: Path
) -> None:
    one = await analytics_runtimes("r0", **settings_for(tmp_path))
    two = await analytics_runtimes("r1", **settings_for(tmp_path))
    await bus.resolved(journey("c-1", ["view", "cart", "buy"]) + journey("c-2", ["view"]))
    store = one.store  # type: ignore[attr-defined]
    await eventually(lambda: _equals(store.count, 4), timeout=45)
    consumers = {c.name async for c in _consumers(bus)}
    assert "analytics-clickhouse-interactions" in consumers
    assert not any(n.startswith(("analytics-r0-", "analytics-r1-")) for n in consumers)
    # Both answer the same (from the same server).
    for rt in (one, two):
        async with grpc.aio.insecure_channel(f"127.0.0.1:{rt.grpc_server.port}") as ch:
            stub = pb_grpc.AnalyticsServiceStub(ch)
            r = await stub.Funnel(funnel_request("view", "buy"), timeout=10)
            assert [s.customers for s in r.steps] == [2, 1]


async def _consumers(bus: Bus) -> Any:
    for info in await bus.js.consumers_info("IDENTITY"):
        yield info


DEV = {"CXLOOP_ENV": "development"}


def test_the_clickhouse_store_needs_its_url() -> None:
    with pytest.raises(ConfigError, match="CXLOOP_ANALYTICS_CLICKHOUSE_URL"):
        AnalyticsSettings.from_env({**DEV, "CXLOOP_ANALYTICS_STORE": "clickhouse"})
    with pytest.raises(ConfigError, match="CXLOOP_STORE"):
        AnalyticsSettings.from_env({**DEV, "CXLOOP_ANALYTICS_STORE": "mongodb"})
    s = AnalyticsSettings.from_env(
        {
            **DEV,
            "CXLOOP_ANALYTICS_STORE": "clickhouse",
            "CXLOOP_ANALYTICS_CLICKHOUSE_URL": "http://cxloop@clickhouse:8123",
            "CXLOOP_ANALYTICS_CLICKHOUSE_PASSWORD": "s3cret",
        }
    )
    assert s.clickhouse_password == "s3cret" and "s3cret" not in repr(s)
    assert ClickHouseJourneys.__doc__
