"""A stalled NATS (SIGSTOP of a nats-server this test owns): every route
answers 503 with Retry-After (never 500), the events that were stored are
named, /readyz says not ready; after SIGCONT the same batch is retried and
every event is stored exactly once (issue 10 items 2 and 8)."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import nats
import pytest
from cxloop.gateway.v1 import events_pb2

from cxloop_libs.messaging import EventPublisher, NatsBus, stream_for
from cxloop_testing.infra import EmbeddedNats, eventually, start_embedded_nats
from gateway.bootstrap import SOURCE, create_gateway_app
from gateway.config import GatewaySettings

pytestmark = pytest.mark.integration

WRITE_KEY = "stall-key"
AUTH = {"Authorization": "Basic " + base64.b64encode(f"{WRITE_KEY}:".encode()).decode()}


@pytest.fixture
def own_nats() -> Iterator[EmbeddedNats]:
    server = start_embedded_nats()
    try:
        yield server
    finally:
        server.resume()
        server.stop()


@pytest.fixture
async def gateway(own_nats: EmbeddedNats) -> AsyncIterator[httpx.AsyncClient]:
    settings = GatewaySettings.from_env(
        {
            "CXLOOP_ENV": "test",
            "CXLOOP_NATS_URL": own_nats.url,
            "CXLOOP_GATEWAY_WRITE_KEYS": f"{WRITE_KEY}=stall",
            "CXLOOP_GATEWAY_READINESS_SERVICES": "identity",
            "CXLOOP_GATEWAY_PUBLISH_TIMEOUT_S": "1",
            "CXLOOP_IDENTITY_GRPC_TARGET": "127.0.0.1:1",
        }
    )
    bus = NatsBus(own_nats.url, name="gateway-stall", streams=[stream_for("gateway")])
    await bus.connect(timeout=10)
    app = create_gateway_app(settings, bus, EventPublisher(bus, source=SOURCE))
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as c:
            yield c
    finally:
        await bus.close()


def item(i: int) -> dict[str, Any]:
    return {"type": "track", "userId": f"u-{i}", "event": "Stalled", "messageId": f"s-{i}"}


async def stored_ids(url: str) -> list[str]:
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        info = await js.stream_info("GATEWAY")
        ids = []
        for seq in range(info.state.first_seq, info.state.last_seq + 1):
            m = events_pb2.InteractionRecorded()
            m.ParseFromString((await js.get_msg("GATEWAY", seq)).data or b"")
            ids.append(m.message_id)
        return ids
    finally:
        await nc.close()


async def test_stall_is_503_everywhere_and_retry_stores_each_once(
    gateway: httpx.AsyncClient, own_nats: EmbeddedNats
) -> None:
    ready = await gateway.get("/readyz")
    # identity is down, yet the gateway can accept events: ready.
    assert ready.status_code == 200, ready.text
    assert ready.json()["dependencies"] == {"identity": False}
    r = await gateway.post("/v1/batch", json={"batch": [item(0)]}, headers=AUTH)
    assert r.status_code == 200, r.text

    own_nats.pause()
    try:
        batch = {"batch": [item(i) for i in range(5)]}
        r = await gateway.post("/v1/batch", json=batch, headers=AUTH)
        assert r.status_code == 503, r.text
        assert r.headers["Retry-After"] == "1"
        assert r.json()["code"] == "unavailable"
        assert r.json()["stored"] == []
        r = await gateway.post("/v1/track", json=item(7), headers=AUTH)
        assert r.status_code == 503, r.text
        assert r.headers["Retry-After"] == "1"
        ready = await gateway.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"]["jetstream"] is False
    finally:
        own_nats.resume()

    async def ready_again() -> bool:
        return (await gateway.get("/readyz")).status_code == 200

    await eventually(ready_again, timeout=15)
    # Retried as an SDK would (a busy machine may still answer 503 once).
    for _ in range(10):
        r = await gateway.post("/v1/batch", json=batch, headers=AUTH)
        if r.status_code != 503:
            break
    assert r.status_code == 200, r.text
    ids = await stored_ids(own_nats.url)
    # Whatever JetStream took during the stall is de-duplicated on retry.
    assert sorted(ids) == [f"s-{i}" for i in range(5)] + ([] if "s-7" not in ids else ["s-7"])
    assert len(ids) == len(set(ids))
