from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from cxloop.consent.v1 import consent_service_pb2 as cpb
from cxloop.consent.v1 import consent_service_pb2_grpc as cpb_grpc
from cxloop.consent.v1 import events_pb2 as cev
from cxloop.gateway.v1 import events_pb2 as gev
from cxloop.identity.v1 import events_pb2 as iev
from cxloop.personalization.v1 import personalization_service_pb2 as pb
from cxloop.personalization.v1 import personalization_service_pb2_grpc as pb_grpc
from cxloop.personalization.v1 import resources_pb2 as res
from google.protobuf.struct_pb2 import Struct

from consent.tests.conftest import start_consent
from cxloop_libs.messaging import EventPublisher, NatsBus, PendingEvent, stream_for
from cxloop_libs.messaging import catalog as ev
from cxloop_libs.runtime import ServiceRuntime
from cxloop_testing.infra import eventually
from personalization.bootstrap import bootstrap
from personalization.config import PersonalizationSettings
from personalization.service_layer.messages import ts


async def start_personalization(nats_url: str, database_url: str, **kw: Any) -> ServiceRuntime:
    settings = PersonalizationSettings(
        env="test",
        nats_url=nats_url,
        database_url=database_url,
        grpc_port=0,
        metrics_port=0,
        retrain_interval_s=kw.pop("retrain_interval_s", 0.2),
        use_als=kw.pop("use_als", False),
        korean_tokenizer=kw.pop("korean_tokenizer", "bigram"),
        **kw,
    )
    runtime = await bootstrap(settings)
    await runtime.start()
    await eventually(runtime.live.is_set)  # type: ignore[attr-defined]
    return runtime


class World:
    """Consent and personalization running; identity's events published by hand."""

    def __init__(
        self,
        perso: ServiceRuntime,
        consent: ServiceRuntime,
        identity: EventPublisher,
        consent_pub: EventPublisher,
    ) -> None:
        assert perso.grpc_server is not None and consent.grpc_server is not None
        self.perso = perso
        self.consent_rt = consent
        self.identity = identity
        self.consent_pub = consent_pub
        self.stub = pb_grpc.PersonalizationServiceStub(
            grpc.aio.insecure_channel(f"127.0.0.1:{perso.grpc_server.port}")
        )
        self.consent = cpb_grpc.ConsentServiceStub(
            grpc.aio.insecure_channel(f"127.0.0.1:{consent.grpc_server.port}")
        )

    async def decide(
        self, cid: str, granted: bool = True, *, runtimes: list[ServiceRuntime] | None = None
    ) -> None:
        await self.consent.RecordConsent(
            cpb.RecordConsentRequest(
                customer_id=cid,
                purpose="personalization",
                decision=cev.CONSENT_DECISION_GRANTED
                if granted
                else cev.CONSENT_DECISION_WITHDRAWN,
                notice_version="1",
                channel=cev.CONSENT_CHANNEL_WEB_FORM,
            ),
            timeout=5,
        )
        for rt in runtimes or [self.perso]:
            await eventually(lambda rt=rt: rt.consent.may_use(cid, "personalization") is granted)  # type: ignore[attr-defined]

    async def track(
        self,
        cid: str,
        name: str,
        props: dict[str, Any],
        *,
        at: float = 1_750_000_000.0,
        channel: str = "web",
    ) -> str:
        s = Struct()
        s.update(props)
        mid = str(uuid.uuid4())
        it = gev.InteractionRecorded(
            message_id=mid,
            kind=gev.INTERACTION_KIND_TRACK,
            name=name,
            properties=s,
            occurred_at=ts(at),
            channel=channel,
        )
        await self.identity.publish(
            PendingEvent.of(
                ev.INTERACTION_RESOLVED,
                iev.InteractionResolved(customer_id=cid, interaction=it),
                subject=cid,
                event_id=mid,
            )
        )
        return mid

    async def upsert(self, items: list[res.Item]) -> pb.UpsertItemsResponse:
        async def gen():  # type: ignore[no-untyped-def]
            for it in items:
                yield pb.UpsertItemsRequest(item=it)

        return await self.stub.UpsertItems(gen(), timeout=10)

    async def recommend(self, cid: str, n: int = 5, **kw: Any) -> pb.RecommendResponse:
        return await self.stub.Recommend(
            pb.RecommendRequest(customer_id=cid, placement="home", limit=n, **kw), timeout=5
        )


@pytest.fixture
async def world(clean_nats: str, database_url: str, tmp_path: Path) -> AsyncIterator[World]:
    import contextlib

    import nats
    from nats.js.errors import NotFoundError

    from cxloop_libs.consent.state_bucket import STATE_STREAM

    nc = await nats.connect(clean_nats)
    with contextlib.suppress(NotFoundError):
        await nc.jetstream().delete_stream(STATE_STREAM)
    await nc.close()
    ibus = NatsBus(clean_nats, name="test-identity", streams=[stream_for("identity")])
    await ibus.connect(timeout=10)
    cbus = NatsBus(clean_nats, name="test-consent", streams=[stream_for("consent")])
    await cbus.connect(timeout=10)
    consent = await start_consent(clean_nats, f"sqlite:///{tmp_path / 'consent.db'}")
    perso = await start_personalization(clean_nats, database_url)
    await perso.consent.wait_ready(timeout=10)  # type: ignore[attr-defined]
    w = World(
        perso,
        consent,
        EventPublisher(ibus, source="/cxloop/identity"),
        EventPublisher(cbus, source="/cxloop/consent"),
    )
    yield w
    if not getattr(perso, "stopped_by_test", False):
        await perso.stop()
    await consent.stop()
    await ibus.close()
    await cbus.close()


def item(
    item_id: str,
    title: str = "",
    category: str = "",
    price: float = 10.0,
    available: bool = True,
    **kw: Any,
) -> res.Item:
    return res.Item(
        item_id=item_id,
        title=title or f"item {item_id}",
        category=category,
        price=price,
        available=available,
        **kw,
    )


class ResolvedEvent:
    """An `interaction resolved` message as the intelligence consumer's
    handler takes it (``.id`` and ``.message()``), for driving the handler
    directly in tests."""

    def __init__(self, cid: str, name: str, props: dict[str, Any]) -> None:
        s = Struct()
        s.update(props)
        it = gev.InteractionRecorded(
            message_id=str(uuid.uuid4()), name=name, properties=s, channel="web"
        )
        it.occurred_at.FromSeconds(int(time.time()))
        self.id = it.message_id
        self._m = iev.InteractionResolved(customer_id=cid, interaction=it)

    def message(self) -> iev.InteractionResolved:
        return self._m
