"""Feedback's and loyalty's events as journey steps (docs/adr/0280) on real
NATS, a real database and a real DuckDB file: a purchase followed by points
earned and a support case is one path; a funnel crosses services; the
customer 360's journey shows them; consent holds; a poison touchpoint is
dead-lettered while its batch's good events are kept."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import grpc
import pytest
from cxloop.analytics.v1 import analytics_service_pb2 as pb
from cxloop.analytics.v1 import analytics_service_pb2_grpc as pb_grpc
from cxloop.feedback.v1 import events_pb2 as fb
from cxloop.loyalty.v1 import events_pb2 as loy

from analytics.tests.conftest import Bus, dead_lettered, interaction, publish, utc
from cxloop_libs.messaging import catalog as ev
from cxloop_libs.messaging import ensure_stream, stream_for
from cxloop_libs.messaging.cloudevents import ce_headers
from cxloop_testing.infra import eventually

pytestmark = pytest.mark.integration
T0 = utc(2026, 3, 2, 9)


async def points(bus: Bus, cid: str, at: datetime, n: int = 120) -> None:
    msg = loy.PointsEarned(entry_id=f"e-{cid}-{n}", customer_id=cid, points=n, balance_after=n)
    msg.earned_at.FromDatetime(at)
    await publish(bus.js, ev.POINTS_EARNED, msg, subject=cid)


async def case(bus: Bus, cid: str, at: datetime) -> None:
    msg = fb.CaseOpened(case_id=f"case-{cid}", customer_id=cid, source_kind="review")
    msg.opened_at.FromDatetime(at)
    await publish(bus.js, ev.CASE_OPENED, msg, subject=cid)


async def review(bus: Bus, cid: str, at: datetime, rating: int) -> None:
    msg = fb.ReviewSubmitted(
        review_id=f"r-{cid}", customer_id=cid, product_id="sku-1", rating=rating, text_length=80
    )
    msg.submitted_at.FromDatetime(at)
    await publish(bus.js, ev.REVIEW_SUBMITTED, msg, subject=cid)


async def test_feedback_and_loyalty_events_are_journey_steps(
    bus: Bus, analytics_runtimes: Callable[..., Any]
) -> None:
    for domain in ("feedback", "loyalty"):
        await ensure_stream(bus.js, stream_for(domain))
    await bus.object_to_analytics("c-objector")
    rt = await analytics_runtimes()
    store = rt.store  # type: ignore[attr-defined]
    h = timedelta(hours=1)
    await bus.resolved(
        [
            interaction("c-a", "Order Completed", T0),
            interaction("c-b", "Order Completed", T0),
            interaction("c-c", "Order Completed", T0),
        ]
    )
    await points(bus, "c-a", T0 + h)
    await points(bus, "c-b", T0 + h)
    await review(bus, "c-b", T0 + 2 * h, rating=1)
    await case(bus, "c-b", T0 + 3 * h)
    await points(bus, "c-objector", T0 + h)
    # Not about one customer's journey: skipped, not an error.
    alert = fb.AlertRaised(alert_id="a1", observed_value=1.0)
    alert.raised_at.FromDatetime(T0)
    await publish(bus.js, ev.FEEDBACK_ALERT_RAISED, alert)
    await eventually(lambda: store.count() == 7, timeout=45)
    await eventually(lambda: rt.ingest.refused >= 1, timeout=20)  # type: ignore[attr-defined]
    props = store.sql("SELECT properties FROM events WHERE event = 'Review Submitted'")
    assert props == [('{"product_id":"sku-1","rating":1}',)]  # ids and scores, no text

    async with grpc.aio.insecure_channel(f"127.0.0.1:{rt.grpc_server.port}") as ch:
        stub = pb_grpc.AnalyticsServiceStub(ch)
        paths = pb.PathsRequest(anchor_event="Order Completed", depth=3, top_n=5)
        paths.range.start.FromDatetime(T0 - timedelta(days=1))
        paths.range.end.FromDatetime(T0 + timedelta(days=2))
        got = await stub.Paths(paths, timeout=10)
        assert {tuple(p.events): p.count for p in got.paths} == {
            ("Order Completed", "Points Earned", "Review Submitted", "Support Case Opened"): 1,
            ("Order Completed", "Points Earned", "(end)", "(end)"): 1,
            ("Order Completed", "(end)", "(end)", "(end)"): 1,
        }

        funnel = pb.FunnelRequest(
            steps=[pb.FunnelStep(event=e) for e in ("Order Completed", "Support Case Opened")],
            conversion_window_seconds=86_400,
            breakdown="channel",
        )
        funnel.range.start.FromDatetime(T0 - timedelta(days=1))
        funnel.range.end.FromDatetime(T0 + timedelta(days=2))
        f = await stub.Funnel(funnel, timeout=10)
        assert [s.customers for s in f.steps] == [3, 1]

        j = await stub.RecentJourney(pb.RecentJourneyRequest(customer_id="c-b", limit=10))
        assert [(e.event, e.channel) for e in j.events] == [
            ("Support Case Opened", "feedback"),
            ("Review Submitted", "feedback"),
            ("Points Earned", "loyalty"),
            ("Order Completed", "web"),
        ]


async def test_a_poison_touchpoint_is_dead_lettered_and_good_ones_kept(
    bus: Bus, analytics_runtimes: Callable[..., Any]
) -> None:
    await ensure_stream(bus.js, stream_for("loyalty"))
    rt = await analytics_runtimes(consumer_max_deliver=2)
    store = rt.store  # type: ignore[attr-defined]
    # Points earned with no time: nobody can place it in a journey.
    await bus.js.publish(
        ev.POINTS_EARNED.subject,
        loy.PointsEarned(entry_id="x", customer_id="c-1", points=5).SerializeToString(),
        headers=ce_headers(ev.POINTS_EARNED, event_id="poison-points", source="/test"),
    )
    await points(bus, "c-1", T0)
    await points(bus, "c-2", T0)
    await eventually(lambda: store.count() == 2, timeout=45)

    await eventually(lambda: dead_lettered(bus.js), timeout=30)
