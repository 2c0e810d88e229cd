"""The HTTP edge with a fake publisher: auth, validation, limits, delivery."""

from __future__ import annotations

import gzip
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from cxloop_libs.messaging import catalog
from gateway.tests.unit.fakes import WRITE_KEY, Bus, FakeReadiness, FakeSink, basic, track

AUTH = basic(WRITE_KEY)


def item(i: int, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": "track",
        "userId": f"user-{i}",
        "event": "Product Viewed",
        "messageId": f"m-{i}",
    }
    body.update(overrides)
    return body


# -- auth -------------------------------------------------------------------


async def test_missing_write_key_is_401(client: httpx.AsyncClient, sink: FakeSink) -> None:
    r = await client.post("/v1/track", json=track())
    assert r.status_code == 401
    assert "error" in r.json()
    assert sink.events == []


async def test_unknown_write_key_is_401(client: httpx.AsyncClient) -> None:
    r = await client.post("/v1/track", json=track(), headers=basic("nope"))
    assert r.status_code == 401
    assert r.json() == {"error": "unknown write key"}
    r = await client.post("/v1/track", json=track(writeKey="nope"))
    assert r.status_code == 401


async def test_malformed_basic_header_is_401(client: httpx.AsyncClient) -> None:
    r = await client.post("/v1/track", json=track(), headers={"Authorization": "Basic %%%"})
    assert r.status_code == 401


async def test_write_key_in_basic_auth_or_body(client: httpx.AsyncClient, sink: FakeSink) -> None:
    r = await client.post("/v1/track", json=track(), headers=AUTH)
    assert r.status_code == 200, r.text
    assert r.json() == {
        "success": True,
        "accepted": 1,
        "duplicates": 0,
        "droppedIdentifiers": 0,
        "withheld": 0,
    }
    r = await client.post("/v1/track", json=track(messageId="m-2", writeKey=WRITE_KEY))
    assert r.status_code == 200
    assert [m.source for m in sink.messages()] == ["web", "web"]
    assert sink.events[0].kind is catalog.INTERACTION_RECORDED


# -- every call type ----------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/track", {"userId": "u", "event": "Signed Up"}),
        ("/v1/identify", {"userId": "u", "traits": {"email": "kim@example.com"}}),
        ("/v1/page", {"anonymousId": "a", "name": "Home"}),
        ("/v1/screen", {"anonymousId": "a", "name": "Cart"}),
        ("/v1/alias", {"previousId": "a", "userId": "u"}),
        ("/v1/group", {"userId": "u", "groupId": "g"}),
        ("/v1/t", {"userId": "u", "event": "Signed Up"}),
    ],
)
async def test_call_types(
    client: httpx.AsyncClient, sink: FakeSink, path: str, body: dict[str, Any]
) -> None:
    r = await client.post(path, json=body, headers=AUTH)
    assert r.status_code == 200, r.text
    assert len(sink.events) == 1
    assert b"kim@example.com" not in sink.events[0].data


async def test_sec_gpc_header_sets_flag(client: httpx.AsyncClient, sink: FakeSink) -> None:
    await client.post("/v1/track", json=track(), headers={**AUTH, "Sec-GPC": "1"})
    await client.post("/v1/track", json=track(messageId="m-2"), headers=AUTH)
    assert [m.global_privacy_control for m in sink.messages()] == [True, False]


async def test_malformed_sec_gpc_is_refused_with_the_header_named(
    client: httpx.AsyncClient, sink: FakeSink
) -> None:
    for value in ("yes", "0", "1, 1"):
        r = await client.post("/v1/track", json=track(), headers={**AUTH, "Sec-GPC": value})
        assert r.status_code == 400, (value, r.text)
        assert r.json()["fields"][0]["field"] == "header:Sec-GPC"
    r = await client.post("/v1/batch", json={"batch": [track()]}, headers={**AUTH, "Sec-GPC": "x"})
    assert r.status_code == 400
    assert sink.events == []  # nothing half-written


async def test_junk_identifiers_reported(client: httpx.AsyncClient) -> None:
    body = {"userId": "u", "traits": {"email": "test@test.com"}}
    r = await client.post("/v1/identify", json=body, headers=AUTH)
    assert r.json()["droppedIdentifiers"] == 1


async def test_gzip_body(client: httpx.AsyncClient, sink: FakeSink) -> None:
    raw = gzip.compress(json.dumps(track()).encode())
    headers = {**AUTH, "Content-Encoding": "gzip", "Content-Type": "application/json"}
    r = await client.post("/v1/track", content=raw, headers=headers)
    assert r.status_code == 200, r.text
    assert len(sink.events) == 1


# -- validation -------------------------------------------------------------------


async def fields_of(r: httpx.Response) -> list[str]:
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["error"] == "invalid request"
    return [f["field"] for f in body["fields"]]


async def test_non_json_body_is_400(client: httpx.AsyncClient) -> None:
    r = await client.post("/v1/track", content=b"{not json", headers=AUTH)
    assert await fields_of(r) == ["body"]
    r = await client.post("/v1/track", content=b"[1, 2]", headers=AUTH)
    assert await fields_of(r) == ["body"]
    r = await client.post("/v1/track", content=b'{"event": NaN}', headers=AUTH)
    assert await fields_of(r) == ["body"]


@pytest.mark.parametrize(
    ("path", "body", "expected"),
    [
        ("/v1/track", {"event": "x"}, ["userId"]),
        ("/v1/track", {"userId": "u"}, ["event"]),
        ("/v1/track", {"userId": "u", "event": "x", "timestamp": "yesterday"}, ["timestamp"]),
        ("/v1/track", {"userId": "u", "event": "x", "sentAt": 12}, ["sentAt"]),
        ("/v1/track", {"userId": "u", "event": "x", "properties": []}, ["properties"]),
        ("/v1/alias", {"userId": "u"}, ["previousId"]),
        ("/v1/alias", {"anonymousId": "a", "previousId": "p"}, ["userId"]),
        ("/v1/group", {"userId": "u"}, ["groupId"]),
        ("/v1/identify", {"userId": "u", "traits": {"email": "nope"}}, ["traits.email"]),
        (
            "/v1/track",
            {"userId": "u", "event": "x", "context": {"traits": {"phone": "12"}}},
            ["context.traits.phone"],
        ),
        (
            "/v1/track",
            {"userId": "u", "event": "x", "context": {"externalIds": [{"id": "1"}]}},
            ["context.externalIds[0].type"],
        ),
    ],
)
async def test_validation_errors_name_fields(
    client: httpx.AsyncClient,
    sink: FakeSink,
    path: str,
    body: dict[str, Any],
    expected: list[str],
) -> None:
    r = await client.post(path, json=body, headers=AUTH)
    assert await fields_of(r) == expected
    assert sink.events == []


async def test_invalid_batch_item_rejects_whole_batch(
    client: httpx.AsyncClient, sink: FakeSink
) -> None:
    batch = [
        item(0),
        item(1, type="identify", traits={"email": "kim@"}),
        item(2),
        item(3, userId=None),
        item(4, type="purchase"),
    ]
    r = await client.post("/v1/batch", json={"batch": batch}, headers=AUTH)
    assert await fields_of(r) == [
        "batch[1].traits.email",
        "batch[3].userId",
        "batch[4].type",
    ]
    assert "kim@" not in r.text  # the value is never echoed
    assert sink.events == []


async def test_batch_envelope_errors(client: httpx.AsyncClient) -> None:
    r = await client.post("/v1/batch", json={"events": []}, headers=AUTH)
    assert await fields_of(r) == ["batch"]
    r = await client.post("/v1/batch", json={"batch": [item(0), 7]}, headers=AUTH)
    assert await fields_of(r) == ["batch[1]"]


# -- batch ---------------------------------------------------------------------------


async def test_batch_publishes_every_item(client: httpx.AsyncClient, sink: FakeSink) -> None:
    batch = [item(0), item(1, type="page", name="Home"), item(2, type="identify")]
    body = {"batch": batch, "context": {"channel": "web"}, "writeKey": WRITE_KEY}
    r = await client.post("/v1/batch", json=body)
    assert r.status_code == 200, r.text
    assert r.json()["accepted"] == 3
    assert [m.message_id for m in sink.messages()] == ["m-0", "m-1", "m-2"]
    assert {m.channel for m in sink.messages()} == {"web"}


async def test_same_message_id_is_one_event(client: httpx.AsyncClient, sink: FakeSink) -> None:
    r = await client.post("/v1/batch", json={"batch": [item(0), item(0)]}, headers=AUTH)
    assert r.json() == {
        "success": True,
        "accepted": 2,
        "duplicates": 1,
        "droppedIdentifiers": 0,
        "withheld": 0,
    }
    assert len(sink.events) == 1
    # A retry of the same call: same event id, JetStream reports the duplicate.
    r = await client.post("/v1/track", json=track(messageId="m-0"), headers=AUTH)
    assert r.json()["duplicates"] == 1
    assert sink.events[0].event_id == sink.events[1].event_id


# -- limits ------------------------------------------------------------------------------


async def test_batch_over_byte_limit_by_content_length(
    client: httpx.AsyncClient, sink: FakeSink, limits: dict[str, int]
) -> None:
    payload = json.dumps({"batch": [item(0, properties={"pad": "x" * limits["max_batch_bytes"]})]})
    r = await client.post("/v1/batch", content=payload, headers=AUTH)
    assert r.status_code == 413
    assert "error" in r.json()
    assert sink.events == []


async def test_batch_over_byte_limit_while_streaming(
    client: httpx.AsyncClient, limits: dict[str, int]
) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        # No Content-Length (chunked): the limit is enforced on bytes read.
        for _ in range(limits["max_batch_bytes"] // 1024 + 2):
            yield b" " * 1024

    r = await client.post("/v1/batch", content=chunks(), headers=AUTH)
    assert r.status_code == 413


async def test_lying_content_length_is_caught_while_reading(
    client: httpx.AsyncClient, limits: dict[str, int]
) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(limits["max_batch_bytes"] // 1024 + 2):
            yield b" " * 1024

    headers = {**AUTH, "Content-Length": "10"}
    r = await client.post("/v1/batch", content=chunks(), headers=headers)
    assert r.status_code == 413


async def test_too_many_batch_events(
    client: httpx.AsyncClient, sink: FakeSink, limits: dict[str, int]
) -> None:
    batch = [item(i) for i in range(limits["max_batch_events"] + 1)]
    r = await client.post("/v1/batch", json={"batch": batch}, headers=AUTH)
    assert r.status_code == 413
    assert sink.events == []


async def test_single_call_limit_is_32kb(client: httpx.AsyncClient) -> None:
    r = await client.post("/v1/track", json=track(properties={"pad": "x" * 33_000}), headers=AUTH)
    assert r.status_code == 413


async def test_batch_event_over_32kb(client: httpx.AsyncClient, sink: FakeSink) -> None:
    batch = [item(0), item(1, properties={"pad": "x" * 33_000})]
    r = await client.post("/v1/batch", json={"batch": batch}, headers=AUTH)
    assert r.status_code == 413
    assert [f["field"] for f in r.json()["fields"]] == ["batch[1]"]
    assert sink.events == []


async def test_gzip_bomb_is_413(client: httpx.AsyncClient, limits: dict[str, int]) -> None:
    body = {"batch": [item(0, properties={"pad": " " * (limits["max_batch_bytes"] * 4)})]}
    raw = gzip.compress(json.dumps(body).encode())
    assert len(raw) < limits["max_batch_bytes"]
    headers = {**AUTH, "Content-Encoding": "gzip"}
    r = await client.post("/v1/batch", content=raw, headers=headers)
    assert r.status_code == 413


# -- delivery -----------------------------------------------------------------------------


async def test_publish_failure_is_503_with_retry_after(
    client: httpx.AsyncClient, sink: FakeSink
) -> None:
    sink.fail = TimeoutError()
    r = await client.post("/v1/track", json=track(), headers=AUTH)
    assert r.status_code == 503
    assert r.headers["Retry-After"] == "1"
    assert "error" in r.json()
    r = await client.post("/v1/batch", json={"batch": [item(0), item(1)]}, headers=AUTH)
    assert r.status_code == 503
    assert r.headers["Retry-After"] == "1"


async def test_bus_down_is_503(client: httpx.AsyncClient, sink: FakeSink, bus: Bus) -> None:
    bus.is_connected = False
    r = await client.post("/v1/track", json=track(), headers=AUTH)
    assert r.status_code == 503
    assert r.headers["Retry-After"] == "1"
    assert sink.events == []


# -- probes and docs -------------------------------------------------------------------------


async def test_healthz(client: httpx.AsyncClient, bus: Bus) -> None:
    bus.is_connected = False
    r = await client.get("/healthz")
    assert r.status_code == 200


async def test_readyz(client: httpx.AsyncClient, readiness: FakeReadiness) -> None:
    readiness.result = {"nats": True, "identity": True}
    r = await client.get("/readyz")
    assert r.status_code == 200
    assert r.json() == {"ready": True, "checks": {"nats": True, "identity": True}}
    readiness.result = {"nats": True, "identity": False}
    r = await client.get("/readyz")
    assert r.status_code == 503
    assert r.json() == {"ready": False, "checks": {"nats": True, "identity": False}}


async def test_openapi_documents_request_bodies(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    assert spec["info"]["title"] == "cxloop gateway"
    for path in ("/v1/track", "/v1/identify", "/v1/batch"):
        assert "requestBody" in spec["paths"][path]["post"]
    assert "userId" in spec["components"]["schemas"]["TrackMessage"]["properties"]
    assert "writeKey" in spec["components"]["securitySchemes"]
    assert (await client.get("/docs")).status_code == 200


async def test_unknown_path_is_json_error(client: httpx.AsyncClient) -> None:
    r = await client.get("/v1/nothing")
    assert r.status_code == 404
    assert "error" in r.json()
