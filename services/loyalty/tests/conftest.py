"""Fixtures for loyalty's integration tests: the service in-process on real
NATS and a real database (SQLite and PostgreSQL), publishers standing in for
identity, feedback and personalization, consent state, and a gRPC stub."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import grpc
import nats
import pytest
from cxloop.consent.v1 import events_pb2 as cpb
from cxloop.gateway.v1 import events_pb2 as gw
from cxloop.identity.v1 import events_pb2 as ipb
from cxloop.loyalty.v1 import loyalty_service_pb2_grpc as pb_grpc
from nats.js.errors import NotFoundError

from cxloop_libs.consent.state_bucket import STATE_BUCKET, STATE_STREAM, StateBucketSpec
from cxloop_libs.messaging import EventPublisher, NatsBus, PendingEvent, ensure_stream, stream_for
from cxloop_libs.messaging import catalog as ev
from cxloop_libs.runtime import ServiceRuntime
from loyalty.bootstrap import bootstrap
from loyalty.config import LoyaltySettings


@pytest.fixture
async def loyalty_nats(clean_nats: str) -> str:
    nc = await nats.connect(clean_nats)
    try:
        with contextlib.suppress(NotFoundError):
            await nc.jetstream().delete_stream(STATE_STREAM)
        await ensure_stream(nc.jetstream(), StateBucketSpec())
    finally:
        await nc.close()
    return clean_nats


async def start_loyalty(nats_url: str, database_url: str, **overrides: Any) -> ServiceRuntime:
    settings = LoyaltySettings(
        env="test",
        nats_url=nats_url,
        database_url=database_url,
        grpc_port=0,
        metrics_port=0,
        consumer_max_deliver=2,
        schedule_interval_s=3600,  # tests run the schedule themselves
        **overrides,
    )
    runtime = await bootstrap(settings)
    await runtime.start()
    await runtime.db_ready.wait()
    from cxloop_testing.infra import eventually

    await eventually(lambda: runtime.rules_ready.is_set())  # type: ignore[attr-defined]
    return runtime


@pytest.fixture
async def loyalty(loyalty_nats: str, database_url: str) -> AsyncIterator[ServiceRuntime]:
    runtime = await start_loyalty(loyalty_nats, database_url)
    yield runtime
    await runtime.stop()


@pytest.fixture
async def stub(loyalty: ServiceRuntime) -> AsyncIterator[pb_grpc.LoyaltyServiceStub]:
    assert loyalty.grpc_server is not None
    async with grpc.aio.insecure_channel(f"127.0.0.1:{loyalty.grpc_server.port}") as ch:
        yield pb_grpc.LoyaltyServiceStub(ch)


class Upstream:
    """Publishes as identity, feedback and personalization would."""

    def __init__(self, bus: NatsBus) -> None:
        self.bus = bus
        self.pub = EventPublisher(bus, source="/cxloop/test")

    async def send(
        self, kind: ev.EventKind, msg: Any, *, subject: str = "", event_id: str | None = None
    ) -> str:
        e = PendingEvent.of(kind, msg, subject=subject, event_id=event_id)
        await self.pub.publish(e)
        return e.event_id

    async def track(
        self,
        customer: str,
        name: str,
        props: dict[str, Any],
        *,
        event_id: str | None = None,
        when: datetime | None = None,
    ) -> str:
        it = gw.InteractionRecorded(
            message_id=event_id or "", kind=gw.INTERACTION_KIND_TRACK, name=name, channel="web"
        )
        it.properties.update(props)
        it.occurred_at.FromDatetime(when or datetime.now(UTC))
        return await self.send(
            ev.INTERACTION_RESOLVED,
            ipb.InteractionResolved(customer_id=customer, interaction=it),
            subject=customer,
            event_id=event_id,
        )

    async def purchase(
        self,
        customer: str,
        order_id: str,
        total: float = 0,
        *,
        currency: str = "KRW",
        products: list[dict[str, Any]] | None = None,
        when: datetime | None = None,
        event_id: str | None = None,
    ) -> str:
        props: dict[str, Any] = {"order_id": order_id, "currency": currency}
        if products is not None:
            props["products"] = products
        else:
            props["total"] = total
        return await self.track(customer, "Order Completed", props, when=when, event_id=event_id)

    async def refund(
        self,
        customer: str,
        order_id: str,
        total: float | None = None,
        *,
        currency: str = "KRW",
        event_id: str | None = None,
    ) -> str:
        props: dict[str, Any] = {"order_id": order_id, "currency": currency}
        if total is not None:
            props["total"] = total
        return await self.track(customer, "Order Refunded", props, event_id=event_id)

    async def consent(self, customer: str, purpose: str, granted: bool, version: int = 1) -> None:
        kv = await self.bus.js.key_value(STATE_BUCKET)
        notice = cpb.NoticePublished(
            purpose=purpose,
            legal_basis=cpb.LEGAL_BASIS_CONSENT,
            notice_version="1",
            reconsent_from_version="1",
        )
        await kv.put(f"purpose.{purpose}", notice.SerializeToString())
        state = cpb.ConsentChanged(customer_id=customer, version=version, changed_purpose=purpose)
        state.purposes.append(
            cpb.PurposeState(
                purpose=purpose,
                decision=cpb.CONSENT_DECISION_GRANTED if granted else cpb.CONSENT_DECISION_DENIED,
                notice_version="1",
            )
        )
        await kv.put(f"customer.{customer}", state.SerializeToString())


@pytest.fixture
async def upstream(loyalty_nats: str) -> AsyncIterator[Upstream]:
    bus = NatsBus(
        loyalty_nats,
        name="test-upstream",
        streams=[stream_for("identity"), stream_for("feedback"), stream_for("personalization")],
    )
    await bus.connect(timeout=10)
    yield Upstream(bus)
    await bus.close()
