"""The gateway's /v1/loyalty routes against a real loyalty service (gRPC,
real NATS and database): balance, history, reserve with Idempotency-Key,
confirm, cancel, coupon validation, and bad input as 400 naming the field."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from cxloop.loyalty.v1 import loyalty_service_pb2 as pb
from fastapi import FastAPI

from cxloop_libs.grpcx import client_channel
from gateway.adapters.loyalty_client import LoyaltyClient
from gateway.entrypoints.loyalty_api import install_loyalty_errors, loyalty_router
from loyalty.bootstrap import bootstrap
from loyalty.config import LoyaltySettings

pytestmark = pytest.mark.integration
AUTH = {"Authorization": "Bearer t0ken"}


@pytest.fixture
async def http(
    clean_nats: str, database_url: str
) -> AsyncIterator[tuple[httpx.AsyncClient, LoyaltyClient]]:
    runtime = await bootstrap(
        LoyaltySettings(
            env="test", nats_url=clean_nats, database_url=database_url, grpc_port=0, metrics_port=0
        )
    )
    await runtime.start()
    await runtime.db_ready.wait()
    assert runtime.grpc_server is not None
    channel = client_channel(f"127.0.0.1:{runtime.grpc_server.port}")
    client = LoyaltyClient(channel)
    app = FastAPI()
    app.include_router(loyalty_router(client, frozenset({"t0ken"})))
    install_loyalty_errors(app)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as c:
        yield c, client
    await channel.close()
    await runtime.stop()


async def _seed(client: LoyaltyClient) -> None:
    when = datetime.now(UTC) - timedelta(days=30)
    req = pb.PostPurchaseRequest(
        customer_id="w1",
        order_id="web-1",
        currency_code="KRW",
        idempotency_key="web-1",
        lines=[pb.PurchaseLine(quantity=1, unit_price_minor_units=100000)],
    )
    req.purchased_at.FromDatetime(when)
    for _ in range(50):  # the rule set loads just after start
        try:
            await client.stub.PostPurchase(req, timeout=5)
            return
        except Exception:
            import asyncio

            await asyncio.sleep(0.1)
    raise AssertionError("loyalty never accepted the purchase")


async def test_balance_reserve_confirm_cancel_and_coupon(http) -> None:  # type: ignore[no-untyped-def]
    c, client = http
    await _seed(client)
    assert (await c.get("/v1/loyalty/members/w1")).status_code == 401
    acct = (await c.get("/v1/loyalty/members/w1", headers=AUTH)).json()
    assert acct["availablePoints"] == "1000" and acct["tier"] == "silver"
    hist = (await c.get("/v1/loyalty/members/w1/history?pageSize=1", headers=AUTH)).json()
    assert len(hist["entries"]) == 1
    r1 = await c.post(
        "/v1/loyalty/members/w1/redemptions",
        json={"points": 300},
        headers={**AUTH, "Idempotency-Key": "chk-1"},
    )
    assert r1.status_code == 200, r1.text
    again = await c.post(
        "/v1/loyalty/members/w1/redemptions",
        json={"points": 300},
        headers={**AUTH, "Idempotency-Key": "chk-1"},
    )
    assert again.json()["redemptionId"] == r1.json()["redemptionId"]
    rid = r1.json()["redemptionId"]
    ok = await c.post(f"/v1/loyalty/redemptions/{rid}/confirm", headers=AUTH)
    assert ok.json()["redemption"]["status"] == "REDEMPTION_STATUS_CONFIRMED"
    r2 = await c.post(
        "/v1/loyalty/members/w1/redemptions",
        json={"points": 100},
        headers={**AUTH, "Idempotency-Key": "chk-2"},
    )
    back = await c.post(f"/v1/loyalty/redemptions/{r2.json()['redemptionId']}/cancel", headers=AUTH)
    assert back.json()["redemption"]["availableAfter"] == "700"
    too_much = await c.post(
        "/v1/loyalty/members/w1/redemptions",
        json={"points": 701},
        headers={**AUTH, "Idempotency-Key": "chk-3"},
    )
    assert too_much.status_code == 409
    no_key = await c.post("/v1/loyalty/members/w1/redemptions", json={"points": 1}, headers=AUTH)
    assert (
        no_key.status_code == 400
        and no_key.json()["fields"][0]["field"] == "header:Idempotency-Key"
    )
    negative = await c.post(
        "/v1/loyalty/members/w1/redemptions",
        json={"points": -3},
        headers={**AUTH, "Idempotency-Key": "chk-4"},
    )
    assert negative.status_code == 400 and "points" in negative.text
    coupon = await client.stub.IssueCoupon(
        pb.IssueCouponRequest(
            customer_id="w1", amount_off_minor_units=5000, currency_code="KRW", idempotency_key="cp"
        ),
        timeout=5,
    )
    body = {
        "code": coupon.coupon.code,
        "customerId": "w1",
        "orderTotal": 30000,
        "currency": "KRW",
        "redeem": True,
    }
    used = await c.post(
        "/v1/loyalty/coupons/validate", json=body, headers={**AUTH, "Idempotency-Key": "order-9"}
    )
    assert used.json()["valid"] is True and used.json()["discountMinorUnits"] == "5000"
    retry = await c.post(
        "/v1/loyalty/coupons/validate", json=body, headers={**AUTH, "Idempotency-Key": "order-9"}
    )
    assert retry.json()["valid"] is True  # the same order's use, answered again
    reuse = await c.post(
        "/v1/loyalty/coupons/validate", json=body, headers={**AUTH, "Idempotency-Key": "order-10"}
    )
    assert (reuse.json()["valid"], reuse.json()["reason"]) == (False, "used")
    unknown = await c.post("/v1/loyalty/redemptions/nope/confirm", headers=AUTH)
    assert unknown.status_code == 404
