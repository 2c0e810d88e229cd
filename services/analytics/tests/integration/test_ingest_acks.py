"""The ingest consumer's guarantees around its acks (docs/adr/0205): a batch
committed to the store but never acked (a crash between the two) comes back
and is stored once; a poison event in a fetch is dead-lettered by itself
while its neighbours are stored once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cxloop.consent.v1 import events_pb2 as consent_pb

from analytics.adapters.decoder import ProcessDecoder
from analytics.adapters.event_store import EventStore
from analytics.entrypoints import consumers
from analytics.entrypoints.consumers import EventStoreConsumer
from analytics.service_layer.ingest import Ingest
from analytics.tests.conftest import Bus, interaction, utc
from cxloop_libs.consent.projection import ConsentProjection
from cxloop_libs.db import Database
from cxloop_libs.messaging import ConsumerSpec, NatsBus
from cxloop_libs.messaging import catalog as ev
from cxloop_libs.messaging.cloudevents import ce_headers
from cxloop_libs.messaging.streams import dead_letter_subject
from cxloop_testing.infra import eventually

pytestmark = pytest.mark.integration
T0 = utc(2026, 3, 2, 9)
DURABLE = "analytics-acks-interactions"


class Ingestor:
    def __init__(self, tmp: Path, url: str, decoder: ProcessDecoder | None = None) -> None:
        self.decoder = decoder
        self.store = EventStore(tmp / "analytics.duckdb")
        projection = ConsentProjection()
        projection.apply_notice(
            consent_pb.NoticePublished(
                purpose="analytics",
                legal_basis=consent_pb.LEGAL_BASIS_LEGITIMATE_INTEREST,
                notice_version="1",
                reconsent_from_version="1",
            )
        )
        self.ingest = Ingest(self.store, lambda cid: projection.may_use(cid, "analytics"))
        self.bus = NatsBus(url, name="analytics-acks-test", streams=[])
        self.db = Database(f"sqlite:///{tmp / 'analytics.db'}")
        self.running: list[tuple[EventStoreConsumer, asyncio.Future[None]]] = []

    async def start(self, **spec: Any) -> EventStoreConsumer:
        if not self.running:
            self.bus.start()
            await self.bus.ready()
        consumer = EventStoreConsumer(
            self.bus,
            self.db,
            ConsumerSpec(
                stream="IDENTITY",
                durable=DURABLE,
                filter_subject=ev.INTERACTION_RESOLVED.subject,
                **spec,
            ),
            self.ingest.on_interactions,
            decoder=self.decoder,
            store_decoded=self.ingest.store_decoded if self.decoder is not None else None,
        )
        self.running.append((consumer, asyncio.ensure_future(consumer.run())))
        return consumer

    async def stop(self) -> None:
        for consumer, task in self.running:
            consumer.stop()
            await task
        self.running.clear()

    async def close(self) -> None:
        await self.stop()
        await self.bus.close()
        self.store.close()
        self.db.dispose()
        if self.decoder is not None:
            self.decoder.close()


@pytest.fixture(params=["inline", "decoder-process"])
async def ingestor(
    request: pytest.FixtureRequest, bus: Bus, clean_nats: str, tmp_path: Path
) -> AsyncIterator[Ingestor]:
    # Both ways the service can decode a fetch (docs/adr/0245).
    decoder = ProcessDecoder() if request.param == "decoder-process" else None
    if decoder is not None:
        await decoder.start()
    i = Ingestor(tmp_path, clean_nats, decoder)
    yield i
    if decoder is not None:
        assert decoder.inline_batches == 0  # every batch went through the child
    await i.close()


async def _publish(bus: Bus, n: int, prefix: str) -> None:
    await bus.resolved(
        [
            interaction(f"c-{k % 7}", "view", T0 + timedelta(minutes=k), message_id=f"{prefix}-{k}")
            for k in range(n)
        ]
    )


async def test_a_batch_committed_but_not_acked_comes_back_and_is_stored_once(
    bus: Bus, ingestor: Ingestor, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _publish(bus, 30, "crash")
    real_ack_many = consumers.pull.ack_many
    crashed: list[int] = []

    async def crash_before_ack(msgs: list[Any]) -> None:
        # The store has committed the batch; the process dies before its acks.
        crashed.append(len(msgs))
        raise RuntimeError("crash between store commit and ack")

    monkeypatch.setattr(consumers.pull, "ack_many", crash_before_ack)
    await ingestor.start(ack_wait_s=1.0)
    await eventually(lambda: sum(crashed) >= 30)
    await ingestor.stop()
    assert ingestor.store.count() == 30  # committed, never acked

    monkeypatch.setattr(consumers.pull, "ack_many", real_ack_many)
    consumer = await ingestor.start(ack_wait_s=1.0)

    async def all_acked() -> bool:
        if consumer.processed < 30:
            return False
        info = await bus.js.consumer_info("IDENTITY", DURABLE)
        return info.num_ack_pending == 0 and info.num_pending == 0

    await eventually(all_acked, timeout=30)
    # Redelivered, applied again, and dropped by event id: not doubled.
    assert consumer.processed >= 30
    assert ingestor.store.count() == 30
    assert ingestor.ingest.stored == 30
    assert consumer.dead_lettered == 0


async def test_a_poison_event_is_dead_lettered_alone_and_its_neighbours_stored_once(
    bus: Bus, ingestor: Ingestor
) -> None:
    await _publish(bus, 10, "before")
    await bus.js.publish(
        ev.INTERACTION_RESOLVED.subject,
        b"\xff\xff not a protobuf",
        headers=ce_headers(ev.INTERACTION_RESOLVED, event_id="poison-acks", source="/test"),
    )
    await _publish(bus, 10, "after")
    consumer = await ingestor.start(max_deliver=2, ack_wait_s=5.0)

    async def settled() -> bool:
        if consumer.dead_lettered < 1:
            return False
        info = await bus.js.consumer_info("IDENTITY", DURABLE)
        return info.num_ack_pending == 0

    await eventually(settled, timeout=30)
    assert consumer.dead_lettered == 1
    assert ingestor.store.count() == 20
    assert ingestor.ingest.stored == 20
    dead = await bus.js.get_last_msg(
        "DEADLETTER", dead_letter_subject(DURABLE, ev.INTERACTION_RESOLVED.subject)
    )
    assert dead.headers is not None and dead.headers["ce-id"] == "poison-acks"
    assert dead.data == b"\xff\xff not a protobuf"
