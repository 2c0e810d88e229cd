"""Experiments end to end: create/start/stop over gRPC, sticky assignment,
exposures from served recommendations, conversions attributed from the
interaction stream, results over gRPC and as an event; bad splits refused."""

from __future__ import annotations

import grpc
import nats
import pytest
from cxloop.personalization.v1 import events_pb2 as ev_pb
from cxloop.personalization.v1 import personalization_service_pb2 as pb
from cxloop.personalization.v1 import resources_pb2 as res

from cxloop_libs.messaging import catalog as ev
from cxloop_testing.infra import eventually
from personalization.adapters import repository as repo
from personalization.tests.conftest import World, item

pytestmark = pytest.mark.integration


def _experiment(**kw: object) -> res.Experiment:
    e = res.Experiment(
        name="popular vs hybrid",
        placement="home",
        metric=res.EXPERIMENT_METRIC_PURCHASE,
        attribution_window_hours=24,
        **kw,  # type: ignore[arg-type]
    )
    if not e.variants:
        e.variants.add(variant_id="control", strategy="popular", weight_percent=50, control=True)
        e.variants.add(variant_id="hybrid", strategy="hybrid", weight_percent=50)
    return e


async def test_sticky_assignment_exposures_conversions_and_results(world: World) -> None:
    w = world
    await w.upsert([item(f"i{n}") for n in range(5)])
    created = await w.stub.CreateExperiment(
        pb.CreateExperimentRequest(experiment=_experiment()), timeout=5
    )
    exp_id = created.experiment.experiment_id
    assert created.experiment.status == res.EXPERIMENT_STATUS_DRAFT
    started = await w.stub.StartExperiment(
        pb.StartExperimentRequest(experiment_id=exp_id), timeout=5
    )
    assert started.experiment.status == res.EXPERIMENT_STATUS_RUNNING

    customers = [f"c{n}" for n in range(12)]
    variant: dict[str, str] = {}
    for c in customers:
        await w.decide(c)
        first = await w.recommend(c)
        second = await w.recommend(c)
        assert first.experiment_id == exp_id
        assert first.variant_id == second.variant_id  # sticky
        assert first.strategy == ("popular" if first.variant_id == "control" else "hybrid")
        variant[c] = first.variant_id
    assert set(variant.values()) == {"control", "hybrid"}
    # A customer without consent is not enrolled.
    anon = await w.recommend("anonymous-1")
    assert anon.experiment_id == ""

    buyers = customers[:5]
    for c in buyers:
        await w.track(
            c,
            "Order Completed",
            {"products": [{"product_id": "i1", "price": 10, "quantity": 2}]},
            at=_now(),
        )

    async def results() -> res.ExperimentResults:
        r = await w.stub.GetExperimentResults(
            pb.GetExperimentResultsRequest(experiment_id=exp_id), timeout=5
        )
        return r.results

    async def converted() -> bool:
        r = await results()
        return sum(v.conversions for v in r.variants) == len(buyers)

    await eventually(converted)

    # Exposures are stored by the replica that served them (ADR 0190): the
    # first list per customer, one row each, for a restart to load.
    def stored() -> dict[str, str]:
        assert w.perso.db is not None
        with w.perso.db.session() as s:
            return {r.customer_id: r.variant_id for r in repo.load_exposures(s)}

    await eventually(lambda: stored() == variant)
    r = await results()
    by = {v.variant_id: v for v in r.variants}
    for vid in ("control", "hybrid"):
        exposed = sum(1 for c in customers if variant[c] == vid)
        bought = sum(1 for c in buyers if variant[c] == vid)
        assert by[vid].exposures == exposed
        assert by[vid].conversions == bought
        assert by[vid].revenue == pytest.approx(20.0 * bought)
        assert (
            by[vid].conversion_rate_ci_low
            <= by[vid].conversion_rate
            <= by[vid].conversion_rate_ci_high
        )
    assert 0.0 <= by["hybrid"].probability_to_beat_control <= 1.0
    assert r.srm_p_value > 0.001 and not r.sample_ratio_mismatch

    # Stopping publishes the results as an event.
    nc = await nats.connect(w.perso.settings.nats_url)
    try:
        sub = await nc.jetstream().subscribe(
            ev.EXPERIMENT_RESULTS_PUBLISHED.subject, ordered_consumer=True
        )
        stopped = await w.stub.StopExperiment(
            pb.StopExperimentRequest(experiment_id=exp_id), timeout=5
        )
        assert stopped.experiment.status == res.EXPERIMENT_STATUS_STOPPED
        m = await sub.next_msg(timeout=10)
        published = ev_pb.ExperimentResultsPublished()
        published.ParseFromString(m.data)
        assert published.results.experiment.experiment_id == exp_id
        assert sum(v.exposures for v in published.results.variants) == len(customers)
    finally:
        await nc.close()
    after = await w.recommend(customers[0])
    assert after.experiment_id == ""  # stopped: no more assignment
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await w.stub.StartExperiment(pb.StartExperimentRequest(experiment_id=exp_id), timeout=5)
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION


def _now() -> float:
    import time

    return time.time() + 1


@pytest.mark.parametrize(
    ("variants", "field"),
    [
        ([("a", "popular", 50, True), ("b", "hybrid", 40, False)], "weight_percent"),
        ([("a", "popular", 50, True), ("b", "magic", 50, False)], "variants[1].strategy"),
        ([("a", "popular", 50, False), ("b", "hybrid", 50, False)], "control"),
    ],
)
async def test_bad_experiments_name_the_field(
    world: World, variants: list[tuple[str, str, float, bool]], field: str
) -> None:
    e = _experiment()
    del e.variants[:]
    for vid, strategy, share, control in variants:
        e.variants.add(variant_id=vid, strategy=strategy, weight_percent=share, control=control)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await world.stub.CreateExperiment(pb.CreateExperimentRequest(experiment=e), timeout=5)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in (err.value.details() or "")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await world.stub.GetExperimentResults(
            pb.GetExperimentResultsRequest(experiment_id="nope"), timeout=5
        )
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
