from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import nats
import pytest
from cxloop.consent.v1 import events_pb2 as consent_pb
from cxloop.gateway.v1 import events_pb2 as gw
from cxloop.identity.v1 import events_pb2 as identity_pb
from google.protobuf.message import Message
from nats.js import JetStreamContext

from analytics.bootstrap import bootstrap
from analytics.config import AnalyticsSettings
from cxloop_libs.consent.state_bucket import STATE_BUCKET, StateBucketSpec
from cxloop_libs.messaging import EventKind, ensure_stream, stream_for
from cxloop_libs.messaging import catalog as ev
from cxloop_libs.messaging.cloudevents import ce_headers
from cxloop_libs.runtime import ServiceRuntime


def interaction(
    customer_id: str,
    name: str,
    at: datetime,
    *,
    channel: str = "web",
    message_id: str | None = None,
    kind: int = gw.INTERACTION_KIND_TRACK,
    **properties: Any,
) -> identity_pb.InteractionResolved:
    it = gw.InteractionRecorded(
        message_id=message_id or str(uuid.uuid4()),
        kind=kind,
        name=name,
        channel=channel,
        source="shop",
    )
    it.occurred_at.FromDatetime(at)
    it.received_at.FromDatetime(at)
    it.properties.update(properties)
    return identity_pb.InteractionResolved(customer_id=customer_id, interaction=it)


async def publish(
    js: JetStreamContext,
    kind: EventKind,
    msg: Message,
    *,
    event_id: str | None = None,
    subject: str = "",
) -> str:
    event_id = event_id or (
        msg.interaction.message_id
        if isinstance(msg, identity_pb.InteractionResolved)
        else str(uuid.uuid4())
    )
    await js.publish(
        kind.subject,
        msg.SerializeToString(),
        headers=ce_headers(kind, event_id=event_id, source="/test", subject=subject),
    )
    return event_id


class Bus:
    def __init__(self, nc: nats.NATS) -> None:
        self.nc = nc
        self.js = nc.jetstream()

    async def resolved(self, msgs: list[identity_pb.InteractionResolved]) -> None:
        for m in msgs:
            await publish(self.js, ev.INTERACTION_RESOLVED, m, subject=m.customer_id)

    async def object_to_analytics(self, customer_id: str, version: int = 1) -> None:
        kv = await self.js.key_value(STATE_BUCKET)
        state = consent_pb.ConsentChanged(
            customer_id=customer_id,
            version=version,
            purposes=[
                consent_pb.PurposeState(
                    purpose="analytics",
                    decision=consent_pb.CONSENT_DECISION_DENIED,
                    notice_version="1",
                )
            ],
        )
        await kv.put(f"customer.{customer_id}", state.SerializeToString())


@pytest.fixture
async def bus(clean_nats: str) -> AsyncIterator[Bus]:
    """Streams identity and consent would provision, and consent's state
    bucket holding the analytics purpose (legitimate interest)."""
    nc = await nats.connect(clean_nats)
    js = nc.jetstream()
    for spec in (stream_for("identity"), stream_for("consent"), StateBucketSpec()):
        await ensure_stream(js, spec)
    kv = await js.key_value(STATE_BUCKET)
    notice = consent_pb.NoticePublished(
        purpose="analytics",
        legal_basis=consent_pb.LEGAL_BASIS_LEGITIMATE_INTEREST,
        notice_version="1",
        reconsent_from_version="1",
    )
    await kv.put("purpose.analytics", notice.SerializeToString())
    yield Bus(nc)
    await nc.close()


@pytest.fixture
def make_analytics(clean_nats: str, database_url: str, tmp_path: Path) -> Callable[..., Any]:
    started: list[ServiceRuntime] = []

    async def start(replica: str = "r0", **overrides: Any) -> ServiceRuntime:
        settings = AnalyticsSettings(
            env="test",
            nats_url=clean_nats,
            database_url=database_url,
            grpc_port=0,
            metrics_port=0,
            duckdb_path=str(tmp_path / f"analytics-{replica}.duckdb"),
            replica=replica,
            **overrides,
        )
        runtime = await bootstrap(settings)
        await runtime.start()
        started.append(runtime)
        return runtime

    return start


@pytest.fixture
async def analytics_runtimes(
    make_analytics: Callable[..., Any],
) -> AsyncIterator[Callable[..., Any]]:
    runtimes: list[ServiceRuntime] = []

    async def start(replica: str = "r0", **overrides: Any) -> ServiceRuntime:
        rt: ServiceRuntime = await make_analytics(replica, **overrides)
        runtimes.append(rt)
        return rt

    yield start
    for rt in runtimes:
        await rt.stop()


async def dead_lettered(js: JetStreamContext) -> bool:
    """At least one message on the dead-letter stream (it exists once a
    consumer has dead-lettered something)."""
    try:
        info = await js.stream_info("DEADLETTER")
    except Exception:
        return False
    return info.state.messages >= 1


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]
