"""Two personalization processes (plus the in-process one of the fixture) on
one database: what one learns or is told, the other answers with, through
the service's own events — catalogue, interactions, experiments, exposures,
and erasure reaching every replica's memory."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from cxloop.consent.v1 import events_pb2 as cev
from cxloop.personalization.v1 import personalization_service_pb2 as pb
from cxloop.personalization.v1 import personalization_service_pb2_grpc as pb_grpc
from cxloop.personalization.v1 import resources_pb2 as res
from grpc_health.v1 import health_pb2, health_pb2_grpc

from cxloop_libs.messaging import PendingEvent
from cxloop_libs.messaging import catalog as ev
from cxloop_testing.infra import eventually, free_port
from personalization.tests.conftest import World, item

pytestmark = pytest.mark.integration


@pytest.fixture
def processes(world: World, database_url: str, tmp_path: Path) -> Iterator[list[int]]:
    ports, procs = [free_port(), free_port()], []
    for n, port in enumerate(ports):
        env = {
            **os.environ,
            "CXLOOP_ENV": "test",
            "CXLOOP_NATS_URL": world.perso.settings.nats_url,
            "CXLOOP_PERSONALIZATION_DATABASE_URL": database_url,
            "CXLOOP_PERSONALIZATION_GRPC_PORT": str(port),
            "CXLOOP_PERSONALIZATION_METRICS_PORT": "0",
            "CXLOOP_PERSONALIZATION_KOREAN_TOKENIZER": "bigram",
            "CXLOOP_PERSONALIZATION_USE_ALS": "false",
            "CXLOOP_PERSONALIZATION_RETRAIN_INTERVAL_S": "0.2",
        }
        log = open(tmp_path / f"replica-{n}.log", "w")
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "personalization"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )
    yield ports
    for p in procs:
        p.terminate()
    for p in procs:
        try:
            p.wait(timeout=15)
        except subprocess.TimeoutExpired:
            p.kill()


async def _ready(port: int) -> pb_grpc.PersonalizationServiceStub:
    ch = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    stub = pb_grpc.PersonalizationServiceStub(ch)

    async def answers() -> bool:
        try:
            await stub.SimilarItems(pb.SimilarItemsRequest(item_id="x", limit=1), timeout=2)
            return True
        except grpc.aio.AioRpcError:
            return False

    await eventually(answers, timeout=60)
    _ = health_pb2, health_pb2_grpc
    return stub


async def test_two_processes_stay_consistent(world: World, processes: list[int]) -> None:
    w = world
    a, b = [await _ready(p) for p in processes]

    async def upsert(stub: pb_grpc.PersonalizationServiceStub, items: list[res.Item]) -> None:
        async def gen():  # type: ignore[no-untyped-def]
            for it in items:
                yield pb.UpsertItemsRequest(item=it)

        r = await stub.UpsertItems(gen(), timeout=10)
        assert r.accepted == len(items)

    async def rec(
        stub: pb_grpc.PersonalizationServiceStub, cid: str, **kw: object
    ) -> pb.RecommendResponse:
        return await stub.Recommend(
            pb.RecommendRequest(customer_id=cid, placement="home", limit=3, **kw), timeout=5
        )  # type: ignore[arg-type]

    # Catalogue through A; B answers with it.
    await upsert(a, [item("p1"), item("p2"), item("p3"), item("p4")])

    async def b_knows_p4() -> bool:
        r = await rec(b, "nobody", context={"current_item": "p4"})
        return "p4" not in [i.item_id for i in r.items] and len(r.items) == 3

    await eventually(b_knows_p4)
    # Availability changed on B reaches A.
    await upsert(b, [item("p1", available=False)])

    async def a_drops_p1() -> bool:
        r = await a.Recommend(pb.RecommendRequest(customer_id="nobody", limit=4), timeout=5)
        return "p1" not in [i.item_id for i in r.items]

    await eventually(a_drops_p1)

    # Interactions (consumed by whichever replica) reach both.
    for c in ("u1", "u2", "dana"):
        await w.decide(c, runtimes=[w.perso])
    for c in ("u1", "u2"):
        await w.track(
            c, "Order Completed", {"products": [{"product_id": "p2"}, {"product_id": "p3"}]}
        )
    await w.track("dana", "Product Viewed", {"product_id": "p2"})

    async def personal_on(stub: pb_grpc.PersonalizationServiceStub) -> bool:
        r = await rec(stub, "dana")
        return not r.fallback and r.items[0].item_id == "p3"

    await eventually(lambda: personal_on(a))
    await eventually(lambda: personal_on(b))
    # Both replicas now hold dana's list in their caches; her own next event
    # (through the service's stream) replaces it on each.
    await w.track("dana", "Order Completed", {"products": [{"product_id": "p3"}]})

    async def bought_gone(stub: pb_grpc.PersonalizationServiceStub) -> bool:
        r = await rec(stub, "dana")
        return not r.fallback and "p3" not in [i.item_id for i in r.items]

    await eventually(lambda: bought_gone(a))
    await eventually(lambda: bought_gone(b))

    # Experiment created on A; B assigns the same variant and counts A's exposures.
    e = res.Experiment(
        name="x",
        placement="home",
        metric=res.EXPERIMENT_METRIC_PURCHASE,
        attribution_window_hours=1,
    )
    e.variants.add(variant_id="c", strategy="popular", weight_percent=50, control=True)
    e.variants.add(variant_id="t", strategy="hybrid", weight_percent=50)
    exp_id = (
        await a.CreateExperiment(pb.CreateExperimentRequest(experiment=e), timeout=5)
    ).experiment.experiment_id
    await b.StartExperiment(pb.StartExperimentRequest(experiment_id=exp_id), timeout=5)

    async def both_assign() -> bool:
        ra, rb = await rec(a, "dana"), await rec(b, "dana")
        return ra.experiment_id == rb.experiment_id == exp_id and ra.variant_id == rb.variant_id

    await eventually(both_assign)
    await rec(a, "u1")

    async def b_counts() -> bool:
        r = await b.GetExperimentResults(
            pb.GetExperimentResultsRequest(experiment_id=exp_id), timeout=5
        )
        return sum(v.exposures for v in r.results.variants) == 2

    await eventually(b_counts)

    # Erasure reaches every replica's memory.
    await w.consent_pub.publish(
        PendingEvent.of(
            ev.ERASURE_REQUESTED,
            cev.ErasureRequested(request_id="r-dana", customer_id="dana"),
            subject="dana",
        )
    )

    async def forgotten(stub: pb_grpc.PersonalizationServiceStub) -> bool:
        r = await stub.GetExperimentResults(
            pb.GetExperimentResultsRequest(experiment_id=exp_id), timeout=5
        )
        return sum(v.exposures for v in r.results.variants) == 1

    await eventually(lambda: forgotten(a))
    await eventually(lambda: forgotten(b))
    assert "dana" not in w.perso.engine.signals.histories  # type: ignore[attr-defined]
    await asyncio.sleep(0)
