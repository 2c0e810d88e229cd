"""Feedback running in-process on real NATS and a real database (SQLite and
PostgreSQL), with consent state written to the real CONSENT_STATE bucket
the way the consent service writes it, and identity's interactions
published on the IDENTITY stream."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import nats
import pytest
from cxloop.consent.v1 import events_pb2 as cev
from cxloop.feedback.v1 import feedback_service_pb2_grpc as pb_grpc
from cxloop.gateway.v1 import events_pb2 as gw
from cxloop.identity.v1 import events_pb2 as ipb

from cxloop_libs.consent.state_bucket import STATE_BUCKET, customer_key, purpose_key
from cxloop_libs.messaging import EventPublisher, NatsBus, PendingEvent, stream_for
from cxloop_libs.messaging import catalog as ev
from cxloop_libs.runtime import ServiceRuntime
from feedback.bootstrap import bootstrap
from feedback.config import FeedbackSettings

# One small model for the whole test session (trained once, cached).
MODEL_LIMIT = 800


@pytest.fixture(scope="session")
def model_dir() -> Path:
    # Kept across sessions: the cache file is keyed by the data's hash, the
    # row limit and the scikit-learn version, so a stale model is never used.
    return Path(tempfile.gettempdir()) / "cxloop-feedback-test-models"


def settings_for(
    nats_url: str, database_url: str, model_dir: Path, **extra: object
) -> FeedbackSettings:
    return FeedbackSettings(
        env="test",
        nats_url=nats_url,
        database_url=database_url,
        grpc_port=0,
        metrics_port=0,
        consumer_max_deliver=2,
        model_cache_dir=str(model_dir),
        sentiment_train_limit=MODEL_LIMIT,
        dispatch_interval_s=0.2,
        follow_up_survey_id="follow-up",
        **extra,  # type: ignore[arg-type]
    )


async def start_feedback(settings: FeedbackSettings) -> ServiceRuntime:
    runtime = await bootstrap(settings)
    await runtime.start()
    await runtime.db_ready.wait()
    await asyncio.wait_for(runtime.analyzer_slot.ready.wait(), 300)  # type: ignore[attr-defined]
    return runtime


@pytest.fixture
async def feedback(
    clean_nats: str, database_url: str, model_dir: Path
) -> AsyncIterator[ServiceRuntime]:
    runtime = await start_feedback(settings_for(clean_nats, database_url, model_dir))
    yield runtime
    await runtime.stop()


@pytest.fixture
async def stub(feedback: ServiceRuntime) -> AsyncIterator[pb_grpc.FeedbackServiceStub]:
    assert feedback.grpc_server is not None
    async with grpc.aio.insecure_channel(f"127.0.0.1:{feedback.grpc_server.port}") as ch:
        yield pb_grpc.FeedbackServiceStub(ch)


class World:
    """What the other services would do: consent decisions in the state
    bucket, identity's resolved interactions on its stream; and every
    feedback event seen on the bus."""

    def __init__(self, nc: nats.NATS, publisher: EventPublisher) -> None:
        self.nc = nc
        self.publisher = publisher
        self.seen: list[tuple[str, bytes, dict[str, str]]] = []
        self._version = 0

    async def consent(self, customer_id: str, purpose: str, granted: bool) -> None:
        js = self.nc.jetstream()
        try:
            kv = await js.key_value(STATE_BUCKET)
        except Exception:
            kv = await js.create_key_value(bucket=STATE_BUCKET, history=1)
        notice = cev.NoticePublished(
            purpose=purpose,
            legal_basis=cev.LEGAL_BASIS_CONSENT,
            notice_version="1",
            reconsent_from_version="1",
        )
        await kv.put(purpose_key(purpose), notice.SerializeToString())
        self._version += 1
        changed = cev.ConsentChanged(
            customer_id=customer_id,
            purposes=[
                cev.PurposeState(
                    purpose=purpose,
                    decision=cev.CONSENT_DECISION_GRANTED
                    if granted
                    else cev.CONSENT_DECISION_DENIED,
                    notice_version="1",
                )
            ],
            changed_purpose=purpose,
            version=self._version,
        )
        await kv.put(customer_key(customer_id), changed.SerializeToString())

    async def interaction(self, event_id: str, customer_id: str, name: str, **props: str) -> None:
        rec = gw.InteractionRecorded(
            message_id=event_id, kind=gw.INTERACTION_KIND_TRACK, name=name, source="web"
        )
        rec.properties.update(props)
        msg = ipb.InteractionResolved(customer_id=customer_id, interaction=rec)
        await self.publisher.publish(
            PendingEvent.of(ev.INTERACTION_RESOLVED, msg, event_id=event_id)
        )

    def events(self, kind: ev.EventKind) -> list[object]:
        return [kind.decode(data) for subject, data, _ in self.seen if subject == kind.subject]


@pytest.fixture
async def world(clean_nats: str) -> AsyncIterator[World]:
    bus = NatsBus(clean_nats, name="test-identity", streams=[stream_for("identity")])
    await bus.connect(timeout=10)
    nc = await nats.connect(clean_nats)
    w = World(nc, EventPublisher(bus, source="/cxloop/identity"))

    async def collect(msg: nats.aio.msg.Msg) -> None:
        w.seen.append((msg.subject, msg.data, dict(msg.headers or {})))

    await nc.subscribe("cx.feedback.>", cb=collect)
    yield w
    await nc.close()
    await bus.close()
