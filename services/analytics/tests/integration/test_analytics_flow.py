"""The analytics service on real NATS, a real database (SQLite and
PostgreSQL) and a real DuckDB file: ingest with consent, de-duplication,
merges, erasure, dead letters, and the gRPC queries with bad input."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, timedelta
from typing import Any

import grpc
import pytest
from cxloop.analytics.v1 import analytics_service_pb2 as pb
from cxloop.analytics.v1 import analytics_service_pb2_grpc as pb_grpc
from cxloop.consent.v1 import events_pb2 as consent_pb
from cxloop.gateway.v1 import events_pb2 as gw
from cxloop.identity.v1 import events_pb2 as identity_pb

from analytics.tests.conftest import Bus, dead_lettered, interaction, publish, utc
from cxloop_libs.messaging import catalog as ev
from cxloop_libs.messaging.cloudevents import ce_headers
from cxloop_testing.infra import eventually

pytestmark = pytest.mark.integration
T0 = utc(2026, 3, 2, 9)


def journey(cid: str, events: list[str], *, channel: str = "web", start: Any = T0) -> list[Any]:
    return [
        interaction(cid, e, start + timedelta(minutes=10 * i), channel=channel)
        for i, e in enumerate(events)
    ]


def funnel_request(*steps: str, **kw: Any) -> pb.FunnelRequest:
    req = pb.FunnelRequest(
        steps=[pb.FunnelStep(event=s) for s in steps],
        conversion_window_seconds=kw.pop("window", 86_400),
        **kw,
    )
    req.range.start.FromDatetime(T0 - timedelta(days=1))
    req.range.end.FromDatetime(T0 + timedelta(days=7))
    return req


async def test_ingest_consent_merge_erasure_and_funnel(
    bus: Bus, analytics_runtimes: Callable[..., Any]
) -> None:
    await bus.object_to_analytics("c-objector")
    rt = await analytics_runtimes()
    store = rt.store  # type: ignore[attr-defined]
    a = journey("c-a", ["view", "cart"])
    b = journey("c-b", ["checkout", "buy"], channel="store", start=T0 + timedelta(hours=2))
    c = journey("c-c", ["view", "cart", "checkout", "buy"], channel="app")
    objector = journey("c-objector", ["view", "cart", "checkout", "buy"])
    await bus.resolved(a + b + c + objector)
    # The same interaction again (a redelivery after a restart, another
    # stream message id): stored once.
    await publish(bus.js, ev.INTERACTION_RESOLVED, c[0], event_id=str(uuid.uuid4()))
    # Not behaviour: identify calls are not stored.
    await bus.resolved([interaction("c-a", "", T0, kind=gw.INTERACTION_KIND_IDENTIFY)])
    await eventually(lambda: _equals(store.count, 8), timeout=45)
    # The objector's four may come in a later fetch than the eight stored.
    await eventually(lambda: rt.ingest.refused >= 4, timeout=45)  # type: ignore[attr-defined]
    assert store.sql("SELECT count(*) FROM events WHERE customer_id = 'c-objector'")[0][0] == 0
    assert rt.ingest.refused == 4  # type: ignore[attr-defined]

    async with grpc.aio.insecure_channel(f"127.0.0.1:{rt.grpc_server.port}") as ch:
        stub = pb_grpc.AnalyticsServiceStub(ch)
        req = funnel_request("view", "cart", "checkout", "buy", breakdown="channel")
        r = await stub.Funnel(req, timeout=10)
        assert [s.customers for s in r.steps] == [2, 2, 1, 1]
        assert r.steps[1].dropped == 0 and r.steps[2].dropped == 1
        assert r.steps[3].median_seconds_to_convert == 1800.0
        assert {x.value: [s.customers for s in x.steps] for x in r.breakdowns} == {
            "web": [1, 1, 0, 0],
            "app": [1, 1, 1, 1],
        }

        # identity finds c-b is c-a: one journey across web and store.
        merged = identity_pb.ProfileMerged(surviving_customer_id="c-a", merged_customer_ids=["c-b"])
        await publish(bus.js, ev.PROFILE_MERGED, merged, subject="c-a")

        async def complete() -> bool:
            got = await stub.Funnel(funnel_request("view", "cart", "checkout", "buy"), timeout=10)
            return [s.customers for s in got.steps] == [2, 2, 2, 2]

        await eventually(complete)
        # A late event under the merged id joins the survivor.
        await bus.resolved([interaction("c-b", "review", T0 + timedelta(hours=5))])
        await eventually(
            lambda: _equals(
                lambda: store.sql("SELECT count(*) FROM events WHERE customer_id='c-a'")[0][0], 5
            )
        )

        # The customer 360's journey: web and store as one, newest first,
        # without the events' properties.
        j = await stub.RecentJourney(pb.RecentJourneyRequest(customer_id="c-a", limit=3))
        assert [e.event for e in j.events] == ["review", "buy", "checkout"]
        assert [e.channel for e in j.events] == ["web", "store", "store"]
        assert j.events[0].occurred_at.ToDatetime(tzinfo=UTC) == T0 + timedelta(hours=5)
        assert j.total_events == 5
        assert j.first_seen.ToDatetime(tzinfo=UTC) == T0
        assert [(c.channel, c.events) for c in j.channels] == [("web", 3), ("store", 2)]
        assert "properties" not in pb.JourneyEvent.DESCRIPTOR.fields_by_name

        # Erasure: the survivor's rows (including the merged history) go.
        erase = consent_pb.ErasureRequested(request_id=str(uuid.uuid4()), customer_id="c-a")
        await publish(bus.js, ev.ERASURE_REQUESTED, erase, subject="c-a")
        await eventually(lambda: _equals(store.count, 4))
        with pytest.raises(grpc.aio.AioRpcError) as gone:
            await stub.RecentJourney(pb.RecentJourneyRequest(customer_id="c-a"))
        assert gone.value.code() == grpc.StatusCode.NOT_FOUND
        got = await stub.Funnel(funnel_request("view", "cart"), timeout=10)
        assert [s.customers for s in got.steps] == [1, 1]

        async def answered() -> Any:
            try:
                return await bus.js.get_last_msg(
                    "ANALYTICS", ev.PRIVACY_REQUEST_ANSWERED["analytics"].subject
                )
            except Exception:  # the outbox relay publishes it just after the commit
                return None

        answer = await eventually(answered)
        assert answer.headers is not None and answer.headers["ce-subject"] == "c-a"

        # A later objection erases what was stored before it.
        await bus.object_to_analytics("c-c", version=2)
        await eventually(lambda: _equals(store.count, 0))


async def test_bad_input_is_invalid_argument_naming_the_field(
    bus: Bus, analytics_runtimes: Callable[..., Any]
) -> None:
    rt = await analytics_runtimes()
    await bus.resolved(journey("c-1", ["view", "cart"]))
    await eventually(lambda: _equals(rt.store.count, 2))  # type: ignore[attr-defined]
    cases: list[tuple[str, Any, str]] = [
        ("Funnel", funnel_request("view"), "steps"),
        ("Funnel", funnel_request("view", "teleport"), "steps[1].event"),
        (
            "Funnel",
            funnel_request("view", "cart", window=100 * 86_400),
            "conversion_window_seconds",
        ),
        ("Funnel", funnel_request("view", "cart", breakdown="a'b"), "breakdown"),
        ("Funnel", funnel_request("view", "cart", breakdown_limit=500), "breakdown_limit"),
        ("Paths", pb.PathsRequest(anchor_event="nope"), "anchor_event"),
        ("Paths", pb.PathsRequest(anchor_event="view", depth=50), "depth"),
        ("Retention", pb.RetentionRequest(periods=99), "periods"),
        (
            "DefineKpi",
            pb.DefineKpiRequest(kpi=pb.KpiDefinition(name="x", kind="magic", event="view")),
            "kpi.kind",
        ),
        (
            "DefineKpi",
            pb.DefineKpiRequest(kpi=pb.KpiDefinition(name="Bad Name", kind="rate", event="view")),
            "kpi.name",
        ),
        ("ListAlerts", pb.ListAlertsRequest(limit=100_000), "limit"),
        ("RecentJourney", pb.RecentJourneyRequest(), "customer_id"),
        ("RecentJourney", pb.RecentJourneyRequest(customer_id="c-1", limit=201), "limit"),
        (
            "Stages",
            pb.StagesRequest(stages=[pb.StageMapping(stage="a", events=["view"])]),
            "stages",
        ),
        (
            "Stages",
            pb.StagesRequest(
                stages=[
                    pb.StageMapping(stage="a", events=["view"]),
                    pb.StageMapping(stage="b", events=["view"]),
                ]
            ),
            "stages[1].events[0]",
        ),
    ]
    wide = funnel_request("view", "cart")
    wide.range.end.FromDatetime(T0 + timedelta(days=900))
    cases.append(("Funnel", wide, "range"))
    async with grpc.aio.insecure_channel(f"127.0.0.1:{rt.grpc_server.port}") as ch:
        stub = pb_grpc.AnalyticsServiceStub(ch)
        for method, request, field in cases:
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await getattr(stub, method)(request, timeout=10)
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, method
            assert (err.value.details() or "").startswith(field + ":"), (
                method,
                err.value.details(),
            )
        stages = await stub.Stages(
            pb.StagesRequest(
                stages=[
                    pb.StageMapping(stage="awareness", events=["view"]),
                    pb.StageMapping(stage="consideration", events=["cart"]),
                ],
                period=pb.PERIOD_DAY,
                range=funnel_request("view", "cart").range,
            ),
            timeout=10,
        )
        assert [[(s.stage, s.customers) for s in p.stages] for p in stages.periods] == [
            [("awareness", 1), ("consideration", 1)]
        ]
        # GetKpi of an unknown KPI: NOT_FOUND.
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.GetKpi(pb.GetKpiRequest(name="nothing"), timeout=10)
        assert err.value.code() == grpc.StatusCode.NOT_FOUND


async def test_poison_event_is_dead_lettered_and_the_batch_keeps_its_good_events(
    bus: Bus, analytics_runtimes: Callable[..., Any]
) -> None:
    rt = await analytics_runtimes(consumer_max_deliver=2)
    await bus.js.publish(
        ev.INTERACTION_RESOLVED.subject,
        b"\xff\xff not a protobuf",
        headers=ce_headers(ev.INTERACTION_RESOLVED, event_id="poison-1", source="/test"),
    )
    await bus.resolved(journey("c-1", ["view", "cart"]))
    await eventually(lambda: _equals(rt.store.count, 2))  # type: ignore[attr-defined]

    await eventually(lambda: dead_lettered(bus.js), timeout=30)


async def _equals(fn, value) -> bool:  # type: ignore[no-untyped-def]
    return fn() == value
