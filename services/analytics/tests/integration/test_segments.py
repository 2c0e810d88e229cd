"""Segment membership in analytics (docs/adr/0275) on real NATS, a real
database and a real DuckDB file: personalization's segment entered / exited
events feed a funnel broken down by `$segment` and a retention of one
segment's members; the later change wins whatever the arrival order;
consent, merges, erasure and access requests cover memberships; a poison
membership event is dead-lettered while its batch's good events are kept."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import grpc
import pytest
from cxloop.analytics.v1 import analytics_service_pb2 as pb
from cxloop.analytics.v1 import analytics_service_pb2_grpc as pb_grpc
from cxloop.consent.v1 import events_pb2 as consent_pb
from cxloop.identity.v1 import events_pb2 as identity_pb
from cxloop.personalization.v1 import events_pb2 as perso_pb

from analytics.tests.conftest import Bus, dead_lettered, interaction, publish, utc
from cxloop_libs.messaging import catalog as ev
from cxloop_libs.messaging import ensure_stream, stream_for
from cxloop_libs.messaging.cloudevents import ce_headers
from cxloop_testing.infra import eventually

pytestmark = pytest.mark.integration
T0 = utc(2026, 3, 2, 9)


def journey(cid: str, events: list[str], start: datetime = T0) -> list[Any]:
    return [interaction(cid, e, start + timedelta(minutes=10 * i)) for i, e in enumerate(events)]


async def entered(bus: Bus, cid: str, segment: str, at: datetime) -> None:
    msg = perso_pb.SegmentEntered(customer_id=cid, segment_id=segment)
    msg.entered_at.FromDatetime(at)
    await publish(bus.js, ev.SEGMENT_ENTERED, msg, subject=cid)


async def exited(bus: Bus, cid: str, segment: str, at: datetime) -> None:
    msg = perso_pb.SegmentExited(customer_id=cid, segment_id=segment)
    msg.exited_at.FromDatetime(at)
    await publish(bus.js, ev.SEGMENT_EXITED, msg, subject=cid)


def funnel_by_segment(*steps: str) -> pb.FunnelRequest:
    req = pb.FunnelRequest(
        steps=[pb.FunnelStep(event=s) for s in steps],
        conversion_window_seconds=86_400,
        breakdown="$segment",
    )
    req.range.start.FromDatetime(T0 - timedelta(days=1))
    req.range.end.FromDatetime(T0 + timedelta(days=30))
    return req


def retention(segment: str = "") -> pb.RetentionRequest:
    req = pb.RetentionRequest(period=pb.PERIOD_WEEK, periods=4, cohort_segment=segment)
    req.range.start.FromDatetime(T0 - timedelta(days=1))
    req.range.end.FromDatetime(T0 + timedelta(days=28))
    return req


def by_value(r: pb.FunnelResponse) -> dict[str, list[int]]:
    return {b.value: [s.customers for s in b.steps] for b in r.breakdowns}


async def test_funnel_by_segment_and_cohort_of_a_segment(
    bus: Bus, analytics_runtimes: Callable[..., Any]
) -> None:
    await ensure_stream(bus.js, stream_for("personalization"))
    await bus.object_to_analytics("c-objector")
    rt = await analytics_runtimes()
    store = rt.store  # type: ignore[attr-defined]
    await bus.resolved(
        journey("c-a", ["view", "cart", "checkout", "buy"])
        + journey("c-b", ["view", "cart"])
        + journey("c-c", ["view"])
        # c-b comes back two weeks later: retained in period 2.
        + journey("c-b", ["view"], start=T0 + timedelta(days=14))
    )
    await entered(bus, "c-a", "vip", T0 + timedelta(hours=1))
    await entered(bus, "c-b", "vip", T0 + timedelta(hours=1))
    await entered(bus, "c-b", "new", T0 + timedelta(hours=1))
    # A customer who objected to analytics: no membership is stored.
    await entered(bus, "c-objector", "vip", T0)
    await eventually(lambda: store.count() == 8, timeout=45)
    await eventually(lambda: rt.ingest.refused >= 1, timeout=20)  # type: ignore[attr-defined]

    async with grpc.aio.insecure_channel(f"127.0.0.1:{rt.grpc_server.port}") as ch:
        stub = pb_grpc.AnalyticsServiceStub(ch)

        async def split_as_expected() -> bool:
            r = await stub.Funnel(funnel_by_segment("view", "cart", "checkout", "buy"), timeout=10)
            return by_value(r) == {
                "vip": [2, 2, 1, 1],
                "new": [1, 1, 0, 0],
                "(none)": [1, 0, 0, 0],
            }

        await eventually(split_as_expected, timeout=30)
        # An older exit arriving after the entry was stored (a redelivery, a
        # slow replica of personalization) does not undo it; the probe that
        # follows it on the stream tells when it was processed.
        await exited(bus, "c-a", "vip", T0)
        await entered(bus, "c-probe", "probe", T0)
        await eventually(lambda: store.export_segments("c-probe") != [], timeout=30)
        assert await split_as_expected()
        r = await stub.Funnel(funnel_by_segment("view", "cart", "checkout", "buy"), timeout=10)
        assert [s.customers for s in r.steps] == [3, 2, 1, 1]  # the whole funnel is unchanged
        assert r.breakdown_values_total == 3 and not r.breakdown_capped
        assert store.export_segments("c-objector") == []

        # Retention of one segment's members: only c-b forms a cohort.
        everyone = await stub.Retention(retention(), timeout=10)
        assert sum(c.customers for c in everyone.cohorts) == 3
        new = await stub.Retention(retention("new"), timeout=10)
        assert [(c.customers, list(c.retained)) for c in new.cohorts] == [(1, [1, 0, 1, 0])]
        none = await stub.Retention(retention("nobody-here"), timeout=10)
        assert list(none.cohorts) == []

        # A newer exit removes c-b from vip.
        await exited(bus, "c-b", "vip", T0 + timedelta(days=1))

        async def vip_is_c_a() -> bool:
            got = await stub.Funnel(funnel_by_segment("view", "cart"), timeout=10)
            return by_value(got).get("vip") == [1, 1]

        await eventually(vip_is_c_a, timeout=30)

        # identity merges c-d into c-c: c-d's membership follows the person.
        await entered(bus, "c-d", "new", T0 + timedelta(hours=2))
        await eventually(lambda: store.export_segments("c-d") != [], timeout=30)
        merged = identity_pb.ProfileMerged(surviving_customer_id="c-c", merged_customer_ids=["c-d"])
        await publish(bus.js, ev.PROFILE_MERGED, merged, subject="c-c")
        await eventually(
            lambda: [m["segment_id"] for m in store.export_segments("c-c")] == ["new"], timeout=30
        )
        assert store.export_segments("c-d") == []
        got = await stub.Retention(retention("new"), timeout=10)
        assert sum(c.customers for c in got.cohorts) == 2

        # Erasure removes the customer's memberships with their events.
        erase = consent_pb.ErasureRequested(request_id=str(uuid.uuid4()), customer_id="c-a")
        await publish(bus.js, ev.ERASURE_REQUESTED, erase, subject="c-a")
        await eventually(lambda: store.export_segments("c-a") == [], timeout=30)
        got = await stub.Funnel(funnel_by_segment("view", "cart"), timeout=10)
        assert "vip" not in by_value(got)

        # Bad input names the field.
        bad = retention("vip\x00")
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.Retention(bad, timeout=10)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert (err.value.details() or "").startswith("cohort_segment")


async def test_poison_membership_event_is_dead_lettered_and_good_ones_kept(
    bus: Bus, analytics_runtimes: Callable[..., Any]
) -> None:
    await ensure_stream(bus.js, stream_for("personalization"))
    rt = await analytics_runtimes(consumer_max_deliver=2)
    store = rt.store  # type: ignore[attr-defined]
    # No segment id: not a membership change anyone can apply.
    await bus.js.publish(
        ev.SEGMENT_ENTERED.subject,
        perso_pb.SegmentEntered(customer_id="c-1").SerializeToString(),
        headers=ce_headers(ev.SEGMENT_ENTERED, event_id="poison-seg", source="/test"),
    )
    await entered(bus, "c-1", "vip", T0)
    await entered(bus, "c-2", "vip", T0)
    await eventually(
        lambda: [store.export_segments(c) != [] for c in ("c-1", "c-2")] == [True, True],
        timeout=45,
    )

    await eventually(lambda: dead_lettered(bus.js), timeout=30)
