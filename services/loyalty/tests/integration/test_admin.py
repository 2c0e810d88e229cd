"""Rule administration, Simulate with the why, audited adjustments and tier
floors; the service's health and stream."""

from __future__ import annotations

import json

import grpc
import nats
import pytest
import sqlalchemy as sa
from cxloop.loyalty.v1 import loyalty_service_pb2 as pb
from grpc_health.v1 import health_pb2, health_pb2_grpc

from loyalty.domain.rules import DEFAULT_RULE_SET
from loyalty.service_layer.schedule import check_books

pytestmark = pytest.mark.integration


async def test_rules_simulate_adjust_floor_and_audit(loyalty, stub, loyalty_nats) -> None:  # type: ignore[no-untyped-def]
    assert loyalty.grpc_server is not None
    async with grpc.aio.insecure_channel(f"127.0.0.1:{loyalty.grpc_server.port}") as ch:
        r = await health_pb2_grpc.HealthStub(ch).Check(
            health_pb2.HealthCheckRequest(service="cxloop.loyalty.v1.LoyaltyService"), timeout=5
        )
        assert r.status == health_pb2.HealthCheckResponse.SERVING
    nc = await nats.connect(loyalty_nats)
    try:
        info = await nc.jetstream().stream_info("LOYALTY")
        assert info.config.subjects == ["cx.loyalty.>"]
    finally:
        await nc.close()

    bad = dict(
        DEFAULT_RULE_SET,
        rules=[
            *DEFAULT_RULE_SET["rules"],
            {"id": "x", "kind": "product", "priority": 1, "skus": ["a"], "factor": "2"},
            {"id": "y", "kind": "product", "priority": 1, "skus": ["b"], "factor": "3"},
        ],
    )
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.PutRuleSet(pb.PutRuleSetRequest(rule_set_json=json.dumps(bad)), timeout=5)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "priority" in (
        err.value.details() or ""
    )
    good = dict(
        DEFAULT_RULE_SET,
        rules=[
            *DEFAULT_RULE_SET["rules"],
            {
                "id": "shoes",
                "kind": "product",
                "priority": 1,
                "categories": ["shoes"],
                "factor": "2",
            },
        ],
    )
    put = await stub.PutRuleSet(pb.PutRuleSetRequest(rule_set_json=json.dumps(good)), timeout=5)
    assert put.version == 2
    got = await stub.GetRuleSet(pb.GetRuleSetRequest(), timeout=5)
    assert got.version == 2 and "shoes" in got.rule_set_json
    sample = pb.SamplePurchase(
        currency_code="KRW",
        lines=[
            pb.PurchaseLine(category="shoes", quantity=1, unit_price_minor_units=10000),
            pb.PurchaseLine(category="socks", quantity=3, unit_price_minor_units=150),
        ],
    )
    sim = await stub.Simulate(pb.SimulateRequest(purchase=sample), timeout=5)
    # base 100 + 4.5, shoes +100 -> 204.5 -> 204
    assert sim.total_points == 204 and sim.rule_set_version == 2
    why = {c.rule_id: c for c in sim.breakdown}
    assert why["shoes"].applied and why["shoes"].points == 100
    assert not why["tier-bonus"].applied
    draft = await stub.Simulate(
        pb.SimulateRequest(purchase=sample, rule_set_json=json.dumps(DEFAULT_RULE_SET)), timeout=5
    )
    assert draft.total_points == 104 and draft.rule_set_version == 0
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.Simulate(
            pb.SimulateRequest(purchase=pb.SamplePurchase(currency_code="KRW")), timeout=5
        )
    assert "lines" in (err.value.details() or "")

    meta = (("x-cxloop-actor", "agent-7"),)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.Adjust(pb.AdjustRequest(customer_id="adj", points=500), timeout=5, metadata=meta)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "reason" in (
        err.value.details() or ""
    )
    up = await stub.Adjust(
        pb.AdjustRequest(
            customer_id="adj", points=500, reason="missing store purchase", idempotency_key="a1"
        ),
        timeout=5,
        metadata=meta,
    )
    assert up.available_after == 500
    again = await stub.Adjust(
        pb.AdjustRequest(
            customer_id="adj", points=500, reason="missing store purchase", idempotency_key="a1"
        ),
        timeout=5,
        metadata=meta,
    )
    assert again.entry_id == up.entry_id
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.Adjust(
            pb.AdjustRequest(customer_id="adj", points=-501, reason="fraud", idempotency_key="a2"),
            timeout=5,
            metadata=meta,
        )
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    down = await stub.Adjust(
        pb.AdjustRequest(
            customer_id="adj", points=-200, reason="double credit", idempotency_key="a3"
        ),
        timeout=5,
        metadata=meta,
    )
    assert down.available_after == 300
    floor = await stub.SetTierFloor(
        pb.SetTierFloorRequest(customer_id="adj", tier="gold", reason="VIP"),
        timeout=5,
        metadata=meta,
    )
    assert floor.tier == "gold"
    acct = await stub.GetAccount(pb.GetAccountRequest(customer_id="adj"), timeout=5)
    assert (acct.tier, acct.tier_floor, acct.available_points) == ("gold", "gold", 300)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.SetTierFloor(
            pb.SetTierFloorRequest(customer_id="adj", tier="platinum", reason="x"), timeout=5
        )
    assert "tier" in (err.value.details() or "")
    with loyalty.db.session() as s:
        rows = s.execute(
            sa.text(
                "SELECT operation, reason, subject, on_behalf_of FROM audit_event WHERE operation IN ('Adjust', 'SetTierFloor') ORDER BY id"
            )
        ).all()
        assert check_books(s) == []
    # The retried adjustment is answered, and audited again as a call.
    assert [r[0] for r in rows] == ["Adjust", "Adjust", "Adjust", "SetTierFloor"]
    assert (
        rows[0][1] == "missing store purchase" and rows[0][2] == "adj" and rows[0][3] == "agent-7"
    )
