"""The gateway against a real NATS JetStream: events stored once, with the
right CloudEvents headers and no raw PII; 503 when NATS is unreachable."""

from __future__ import annotations

import base64
import uuid
from collections.abc import AsyncIterator

import httpx
import nats
import pytest
from cxloop.gateway.v1 import events_pb2
from nats.js.errors import NotFoundError

from cxloop_libs.messaging import EventPublisher, NatsBus, stream_for
from cxloop_libs.messaging import catalog as ev
from gateway.bootstrap import SOURCE, create_gateway_app
from gateway.config import GatewaySettings

pytestmark = pytest.mark.integration

WRITE_KEY = "it-write-key"
EMAIL = "Integration.Tester@Example.com"


def settings(nats_url: str, source: str) -> GatewaySettings:
    return GatewaySettings.from_env(
        {
            "CXLOOP_ENV": "test",
            "CXLOOP_NATS_URL": nats_url,
            "CXLOOP_GATEWAY_WRITE_KEYS": f"{WRITE_KEY}={source}",
            "CXLOOP_GATEWAY_READINESS_SERVICES": "",
        }
    )


def auth() -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{WRITE_KEY}:".encode()).decode()}


async def stored(
    nats_url: str, source: str
) -> list[tuple[dict[str, str], events_pb2.InteractionRecorded]]:
    """Every message of ``source`` in the GATEWAY stream (tests share the server)."""
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        info = await js.stream_info("GATEWAY")
        out = []
        for seq in range(info.state.first_seq, info.state.last_seq + 1):
            try:
                msg = await js.get_msg("GATEWAY", seq)
            except NotFoundError:
                continue
            # The stream carries the gateway's other events too (privacy
            # answers, audit records): only interactions are read as such.
            if (msg.headers or {}).get("ce-type") != ev.INTERACTION_RECORDED.ce_type:
                continue
            body = events_pb2.InteractionRecorded()
            body.ParseFromString(msg.data or b"")
            if body.source == source:
                out.append((dict(msg.headers or {}), body))
        return out
    finally:
        await nc.close()


@pytest.fixture
async def fresh_streams(clean_nats: str) -> str:
    """The test NATS (CXLOOP_TEST_NATS_URL, a local one, or the embedded
    fallback: cxloop_testing.infra), its cxloop streams deleted first."""
    return clean_nats


@pytest.fixture
def source() -> str:
    return f"it-{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def client(fresh_streams: str, source: str) -> AsyncIterator[httpx.AsyncClient]:
    bus = NatsBus(fresh_streams, name="gateway-it", streams=[stream_for("gateway")])
    await bus.connect(timeout=10)
    app = create_gateway_app(
        settings(fresh_streams, source), bus, EventPublisher(bus, source=SOURCE)
    )
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as c:
            yield c
    finally:
        await bus.close()


async def test_batch_is_stored_with_cloudevents_headers_and_no_raw_pii(
    client: httpx.AsyncClient, source: str, fresh_streams: str
) -> None:
    batch = [
        {"type": "track", "userId": "u-1", "event": "Order Completed", "messageId": "it-1",
         "properties": {"total": 12, "email": EMAIL}},
        {"type": "identify", "userId": "u-1", "messageId": "it-2",
         "traits": {"email": EMAIL, "phone": "010-2345-6789", "name": "Tester"}},
        {"type": "page", "anonymousId": "a-1", "name": "Home", "messageId": "it-3",
         "context": {"traits": {"email": EMAIL}}},
    ]  # fmt: skip
    r = await client.post("/v1/batch", json={"batch": batch}, headers={**auth(), "Sec-GPC": "1"})
    assert r.status_code == 200, r.text
    assert r.json()["accepted"] == 3

    messages = await stored(fresh_streams, source)
    assert len(messages) == 3
    assert sorted(m.message_id for _, m in messages) == ["it-1", "it-2", "it-3"]
    for headers, body in messages:
        assert headers["ce-type"] == ev.INTERACTION_RECORDED.ce_type
        assert headers["ce-source"] == SOURCE
        assert headers["Nats-Msg-Id"] == headers["ce-id"]
        assert body.global_privacy_control is True
        wire = body.SerializeToString()
        assert EMAIL.encode() not in wire and EMAIL.lower().encode() not in wire
        assert b"Tester" not in wire
    identify = next(m for _, m in messages if m.kind == events_pb2.INTERACTION_KIND_IDENTIFY)
    assert len(identify.identifiers) == 3  # userId, email, phone (hashed)


async def test_same_message_id_twice_is_stored_once(
    client: httpx.AsyncClient, source: str, fresh_streams: str
) -> None:
    body = {"userId": "u-2", "event": "Coupon Applied", "messageId": "it-dup"}
    first = await client.post("/v1/track", json=body, headers=auth())
    again = await client.post("/v1/track", json=body, headers=auth())
    assert (first.status_code, again.status_code) == (200, 200)
    assert again.json()["duplicates"] == 1
    assert [m.message_id for _, m in await stored(fresh_streams, source)] == ["it-dup"]


async def test_unreachable_nats_is_503_never_200(fresh_streams: str, source: str) -> None:
    bus = NatsBus("nats://127.0.0.1:1", name="gateway-it-down", streams=[stream_for("gateway")])
    bus.start()
    app = create_gateway_app(
        settings("nats://127.0.0.1:1", source), bus, EventPublisher(bus, source=SOURCE)
    )
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://gateway"
        ) as c:
            r = await c.post(
                "/v1/track",
                json={"userId": "u-3", "event": "Lost", "messageId": "it-down"},
                headers=auth(),
            )
            assert r.status_code == 503
            assert r.headers["Retry-After"] == "1"
            ready = await c.get("/readyz")
            assert ready.status_code == 503
            assert ready.json()["checks"]["nats"] is False
    finally:
        await bus.close()
