"""The gateway's read-only recommendation routes against a real
personalization service (real NATS, real database): write-key auth, fields
named on bad input, and a popular list with a stated reason when
personalization is down."""

from __future__ import annotations

import base64

import grpc
import httpx
import pytest
from fastapi import FastAPI

from cxloop_testing.infra import eventually
from gateway.adapters.personalization_client import PersonalizationClient
from gateway.domain.write_keys import WriteKeys
from gateway.entrypoints.personalization_api import add_personalization_routes
from personalization.tests.conftest import World, item, world  # noqa: F401  (fixture)

pytestmark = pytest.mark.integration
AUTH = {"authorization": "Basic " + base64.b64encode(b"wk:").decode()}


async def test_routes_answer_refuse_and_fall_back(world: World) -> None:  # noqa: F811
    w = world
    await w.upsert([item("a"), item("b"), item("c")])
    for c, n in (("x1", 3), ("x2", 2)):
        await w.decide(c)
        for k in range(n):
            await w.track(c, "Product Viewed", {"product_id": "abc"[k]})

    def learned() -> bool:
        h = w.perso.engine.signals.histories  # type: ignore[attr-defined]
        return "x1" in h and len(h["x1"].weights) == 3 and "x2" in h

    await eventually(learned)
    assert w.perso.grpc_server is not None
    target = f"127.0.0.1:{w.perso.grpc_server.port}"
    # A generous deadline: on a loaded machine the first Recommend (caches
    # warming) took longer than the 1 s default and the route answered 503.
    client = PersonalizationClient(
        grpc.aio.insecure_channel(target), grpc.aio.insecure_channel("127.0.0.1:1"), deadline_s=10
    )
    app = FastAPI()
    add_personalization_routes(app, client, WriteKeys({"wk": "web"}))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://gw"
    ) as http:
        r = await http.get(
            "/v1/recommendations",
            params={"placement": "home", "limit": 2, "anonymousId": "v1"},
            headers=AUTH,
        )
        assert r.status_code == 200, r.text
        body = r.json()
        assert [i["itemId"] for i in body["items"]] == ["a", "b"]  # most viewed first
        assert body["fallback"] and body["items"][0]["reason"] in ("popular", "popular_in_context")
        ctx = await http.get(
            "/v1/recommendations",
            params={"placement": "pdp", "currentItem": "a", "limit": 1},
            headers=AUTH,
        )
        assert ctx.json()["items"][0]["reason"] == "viewing_now"
        sim = await http.get("/v1/items/a/similar", params={"limit": 2}, headers=AUTH)
        assert sim.status_code == 200 and {i["itemId"] for i in sim.json()["items"]} == {"b", "c"}

        assert (
            await http.get("/v1/recommendations", params={"placement": "home"})
        ).status_code == 401
        bad = await http.get(
            "/v1/recommendations", params={"placement": "home", "limit": 0}, headers=AUTH
        )
        assert bad.status_code == 400 and bad.json()["fields"][0]["field"] == "limit"
        bad = await http.get(
            "/v1/recommendations", params={"placement": "home", "strategy": "magic"}, headers=AUTH
        )
        assert bad.status_code == 400 and bad.json()["fields"][0]["field"] == "strategy"
        bad = await http.get(
            "/v1/recommendations", params={"placement": "home", "weather": "x"}, headers=AUTH
        )
        assert bad.status_code == 400 and bad.json()["fields"][0]["field"] == "weather"

        # Down: nothing held yet -> 503; with the popular list held -> fallback with a reason.
        assert await client.refresh_popular()
        await w.perso.stop()
        w.perso.stopped_by_test = True  # type: ignore[attr-defined]
        down = await http.get(
            "/v1/recommendations", params={"placement": "home", "limit": 2}, headers=AUTH
        )
        assert down.status_code == 200
        d = down.json()
        assert d["fallback"] and d["fallbackReason"] == "personalization_unavailable"
        assert [i["itemId"] for i in d["items"]] == ["a", "b"]
        assert "unavailable" in d["items"][0]["explanation"]
        client.popular.clear()
        gone = await http.get("/v1/recommendations", params={"placement": "home"}, headers=AUTH)
        assert gone.status_code == 503
