"""The gateway's public feedback routes against the real feedback service
(real NATS, SQLite and PostgreSQL): a browser page answers with the
invitation token only, reviews with it, and is refused with the field named;
origins outside the allow-list are refused."""

from __future__ import annotations

import grpc
import httpx
import pytest
from cxloop.feedback.v1 import events_pb2 as epb
from cxloop.feedback.v1 import feedback_service_pb2 as pb
from cxloop.feedback.v1 import feedback_service_pb2_grpc as pb_grpc
from fastapi import FastAPI

from cxloop_libs.messaging import catalog as ev
from cxloop_libs.runtime import ServiceRuntime
from cxloop_testing.infra import eventually
from feedback.tests.integration.conftest import World
from feedback.tests.integration.test_feedback_loop import invite, setup_surveys
from gateway.adapters.feedback_client import FeedbackClient
from gateway.entrypoints.feedback_api import add_feedback_routes

pytestmark = [pytest.mark.integration, pytest.mark.timeout(400)]
SHOP = "https://shop.example.kr"


async def test_token_response_and_review_over_http(
    feedback: ServiceRuntime, stub: pb_grpc.FeedbackServiceStub, world: World
) -> None:
    await setup_surveys(stub)
    inv = await invite(world, stub, "c-web")
    assert feedback.grpc_server is not None
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{feedback.grpc_server.port}")
    app = FastAPI()
    add_feedback_routes(app, FeedbackClient(channel, deadline_s=10), frozenset({SHOP}))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://gw"
    ) as http:
        page = await http.get("/v1/feedback/surveys/post-purchase")
        assert page.status_code == 200 and page.json()["questions"][0]["id"] == "nps"
        body = {
            "token": inv.response_token,
            "answers": [
                {"questionId": "nps", "score": 9},
                {"questionId": "why", "text": "Fast delivery"},
            ],
            # Not for a public page to decide: ignored.
            "customerId": "someone-else",
            "segment": "vip",
        }
        r = await http.post("/v1/feedback/responses", json=body, headers={"origin": SHOP})
        assert r.status_code == 200, r.text
        assert r.json()["complete"] is True and "detractor" not in r.json()
        again = await http.post("/v1/feedback/responses", json=body, headers={"origin": SHOP})
        assert again.status_code == 400 and again.json()["fields"][0]["field"] == "token"
        bad = await http.post(
            "/v1/feedback/responses",
            json={"token": "x.y", "answers": [{"questionId": "nps", "score": 12}]},
        )
        assert bad.status_code == 400 and bad.json()["fields"][0]["field"] == "token"
        evil = await http.post(
            "/v1/feedback/responses", json=body, headers={"origin": "https://evil.example"}
        )
        assert evil.status_code == 403 and evil.json()["fields"][0]["field"] == "origin"
        no_token = await http.post("/v1/feedback/responses", json={"answers": []})
        assert no_token.status_code == 400
        garbage = await http.post("/v1/feedback/responses", content=b"\xff\x00not json")
        assert garbage.status_code == 400 and garbage.json()["fields"][0]["field"] == "body"
        review = {"token": inv.response_token, "productId": "sku-9", "rating": 5, "text": "좋아요"}
        rv = await http.post("/v1/feedback/reviews", json=review, headers={"origin": SHOP})
        assert rv.status_code == 200, rv.text
        twice = await http.post("/v1/feedback/reviews", json=review)
        assert twice.json()["reviewId"] == rv.json()["reviewId"]  # one per invitation and product
        low = await http.post(
            "/v1/feedback/reviews", json={**review, "productId": "sku-2", "rating": 0}
        )
        assert low.status_code == 400 and low.json()["fields"][0]["field"] == "rating"
    await channel.close()
    submitted = await eventually(lambda: world.events(ev.REVIEW_SUBMITTED), timeout=10)
    assert submitted[0].customer_id == "c-web"  # type: ignore[attr-defined]
    k = await stub.GetKpis(pb.GetKpisRequest(metric=epb.KPI_METRIC_NPS), timeout=5)
    assert k.total.responses == 1 and k.total.promoters == 1


async def test_preflight_allows_only_the_configured_origins() -> None:
    """The gateway's own app (its CORS middleware allows every origin for the
    ingest API); the feedback routes' preflight answers only the shop."""
    from gateway.adapters.http import create_app
    from gateway.domain.write_keys import WriteKeys
    from gateway.tests.unit.fakes import FakeReadiness

    app = create_app(ingest=None, write_keys=WriteKeys({}), readiness=FakeReadiness())  # type: ignore[arg-type]
    # A preflight never reaches the feedback service: nothing listens here.
    channel = grpc.aio.insecure_channel("127.0.0.1:9")
    add_feedback_routes(app, FeedbackClient(channel, deadline_s=1), frozenset({SHOP}))
    preflight = {
        "access-control-request-method": "POST",
        "access-control-request-headers": "content-type",
    }
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://gw"
    ) as http:
        ok = await http.options("/v1/feedback/responses", headers={"origin": SHOP, **preflight})
        assert ok.status_code == 200
        # The shop is named, not "*": no other page is told it may post.
        assert ok.headers["access-control-allow-origin"] == SHOP
        assert "origin" in ok.headers["vary"].lower()
        assert "POST" in ok.headers["access-control-allow-methods"]
        evil = await http.options(
            "/v1/feedback/responses", headers={"origin": "https://evil.example", **preflight}
        )
        assert evil.status_code == 403
        assert "access-control-allow-origin" not in evil.headers
        assert evil.json()["fields"][0]["field"] == "origin"
        # The requests themselves: the shop's answer names the shop (here a
        # 503, nothing listens behind); another origin's 403 carries no CORS
        # header, so its page cannot even read the refusal.
        answer = {"token": "x.y", "answers": []}
        shop = await http.post("/v1/feedback/responses", json=answer, headers={"origin": SHOP})
        assert shop.status_code == 503, shop.text
        assert shop.headers["access-control-allow-origin"] == SHOP
        assert "origin" in shop.headers["vary"].lower()
        refused = await http.post(
            "/v1/feedback/responses", json=answer, headers={"origin": "https://evil.example"}
        )
        assert refused.status_code == 403 and refused.json()["fields"][0]["field"] == "origin"
        assert not [h for h in refused.headers if h.startswith("access-control-")]
        # The ingest API's preflight still answers any origin.
        ingest = await http.options(
            "/v1/batch", headers={"origin": "https://evil.example", **preflight}
        )
        assert ingest.status_code == 200
    await channel.close()
