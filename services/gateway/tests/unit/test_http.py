"""The HTTP edge with a fake publisher: auth, validation, limits, delivery."""

from __future__ import annotations

import asyncio
import gzip
import json
from collections.abc import AsyncIterator, Sequence
from typing import Any

import httpx
import pytest
from nats.js.api import PubAck

from cxloop_libs.messaging import PendingEvent, catalog
from gateway.adapters.http import create_app
from gateway.domain.translation import InteractionTranslator
from gateway.domain.write_keys import WriteKeys
from gateway.service_layer.ingest import SegmentIngest
from gateway.tests.unit.fakes import (
    SOURCE,
    WRITE_KEY,
    Bus,
    FakeReadiness,
    FakeSink,
    basic,
    track,
)

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
    # One shape: Segment's code/message (what rudder-sdk-python reads) plus error.
    assert r.json() == {
        "success": False,
        "code": "unauthorized",
        "message": "unknown write key",
        "error": "unknown write key",
    }
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
        (
            "/v1/track",
            {"userId": "u", "event": "x", "context": {"externalIds": [{"id": "1", "type": "a.b"}]}},
            ["context.externalIds[0].type"],
        ),
        ("/v1/track", {"userId": 2**63, "event": "x"}, ["userId"]),
        ("/v1/track", {"userId": 1.5, "event": "x"}, ["userId"]),
        ("/v1/track", {"userId": "u", "event": 5}, ["event"]),
        ("/v1/track", {"userId": "x" * 257, "event": "x"}, ["userId"]),
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


async def test_invalid_batch_item_is_rejected_alone(
    client: httpx.AsyncClient, sink: FakeSink
) -> None:
    """Issue 10 item 1: one bad event no longer drops the batch (SDKs drop a
    batch answered 400): the good events are stored, each bad one reported."""
    batch = [
        item(0),
        item(1, type="identify", traits={"email": "kim@"}),
        item(2),
        item(3, userId=None),
        item(4, type="purchase"),
    ]
    r = await client.post("/v1/batch", json={"batch": batch}, headers=AUTH)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["accepted"] == 2
    assert body["rejected"] == 3
    assert [(x["index"], x["messageId"], x["field"]) for x in body["rejections"]] == [
        (1, "m-1", "batch[1].traits.email"),
        (3, "m-3", "batch[3].userId"),
        (4, "m-4", "batch[4].type"),
    ]
    assert all(x["reason"] for x in body["rejections"])
    assert "kim@" not in r.text  # the value is never echoed
    assert [m.message_id for m in sink.messages()] == ["m-0", "m-2"]


async def test_ten_tracks_and_a_bad_identify_store_ten(
    client: httpx.AsyncClient, sink: FakeSink, limits: dict[str, int]
) -> None:
    limits_n = limits["max_batch_events"]
    batch = [item(i) for i in range(limits_n - 1)]
    batch.append(item(99, type="identify", traits={"email": "not-an-email"}))
    r = await client.post("/v1/batch", json={"batch": batch}, headers=AUTH)
    assert r.status_code == 200
    assert r.json()["accepted"] == limits_n - 1
    assert len(sink.events) == limits_n - 1


async def test_placeholder_only_events_are_not_attributable(
    client: httpx.AsyncClient, sink: FakeSink
) -> None:
    """Issue 10 item 11: an event whose every identifier is a placeholder
    cannot belong to anyone; it is reported, not silently stored."""
    batch = [item(0), item(1, userId="undefined"), item(2, userId=None, anonymousId="null")]
    r = await client.post("/v1/batch", json={"batch": batch}, headers=AUTH)
    body = r.json()
    assert body["accepted"] == 1
    assert body["notAttributable"] == 2
    assert [(x["index"], x["field"], x["code"]) for x in body["rejections"]] == [
        (1, "batch[1].userId", "not_attributable"),
        (2, "batch[2].anonymousId", "not_attributable"),
    ]
    assert [m.message_id for m in sink.messages()] == ["m-0"]
    r = await client.post("/v1/track", json=track(userId="undefined"), headers=AUTH)
    assert r.status_code == 200
    assert r.json()["accepted"] == 0
    assert r.json()["notAttributable"] == 1
    assert r.json()["rejections"][0]["field"] == "userId"
    assert "not attributable" in r.json()["rejections"][0]["reason"]
    assert [m.message_id for m in sink.messages()] == ["m-0"]
    # A placeholder next to a real identifier is only dropped.
    r = await client.post(
        "/v1/track", json=track(messageId="m-9", anonymousId="undefined"), headers=AUTH
    )
    assert r.status_code == 200
    assert r.json()["droppedIdentifiers"] == 1


async def test_batch_envelope_errors(client: httpx.AsyncClient, sink: FakeSink) -> None:
    r = await client.post("/v1/batch", json={"events": []}, headers=AUTH)
    assert await fields_of(r) == ["batch"]
    r = await client.post("/v1/batch", json={"batch": {"type": "track"}}, headers=AUTH)
    assert await fields_of(r) == ["batch"]
    # An item that is not an object is one rejected event, not a bad batch.
    r = await client.post("/v1/batch", json={"batch": [item(0), 7]}, headers=AUTH)
    assert r.status_code == 200
    assert [(x["index"], x["field"]) for x in r.json()["rejections"]] == [(1, "batch[1]")]
    assert len(sink.events) == 1


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
        "rejected": 0,
        "notAttributable": 0,
        "rejections": [],
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
    assert r.status_code == 200
    assert [(x["field"], x["code"]) for x in r.json()["rejections"]] == [("batch[1]", "too_large")]
    assert [m.message_id for m in sink.messages()] == ["m-0"]


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


class PartialSink(FakeSink):
    """JetStream stored some events of a batch and not others; the failures
    are what nats-py hands back in a stall: a timeout and a cancelled future."""

    async def publish_many(
        self, events: Sequence[PendingEvent], *, timeout: float = 5.0
    ) -> list[PubAck | BaseException]:
        results: list[PubAck | BaseException] = []
        for i, e in enumerate(events):
            if i == 0:
                results.append(await self.publish(e))
            else:
                results.append(asyncio.CancelledError() if i % 2 else TimeoutError())
        return results


async def test_partly_stored_batch_is_503_naming_the_stored(
    translator: InteractionTranslator,
) -> None:
    """Issue 10 item 2: a stall answered 500 on /v1/batch; now 503 with
    Retry-After and the messageIds that were stored."""
    sink = PartialSink()
    ingest = SegmentIngest(translator, sink)
    app = create_app(
        ingest=ingest, write_keys=WriteKeys({WRITE_KEY: SOURCE}), readiness=FakeReadiness()
    )
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://g") as c:
        r = await c.post("/v1/batch", json={"batch": [item(i) for i in range(3)]}, headers=AUTH)
    assert r.status_code == 503, r.text
    assert r.headers["Retry-After"] == "1"
    assert r.json()["stored"] == ["m-0"]
    assert r.json()["code"] == "unavailable"


class RaisingSink(FakeSink):
    def __init__(self, exc: BaseException) -> None:
        super().__init__()
        self.exc = exc

    async def publish(self, event: PendingEvent, *, timeout: float = 5.0) -> PubAck:
        raise self.exc

    async def publish_many(
        self, events: Sequence[PendingEvent], *, timeout: float = 5.0
    ) -> list[PubAck | BaseException]:
        raise self.exc


@pytest.mark.parametrize("exc", [asyncio.CancelledError(), TimeoutError(), RuntimeError("x")])
async def test_any_publish_failure_is_503_on_every_route(
    translator: InteractionTranslator, exc: BaseException
) -> None:
    ingest = SegmentIngest(translator, RaisingSink(exc))
    app = create_app(
        ingest=ingest, write_keys=WriteKeys({WRITE_KEY: SOURCE}), readiness=FakeReadiness()
    )
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://g") as c:
        for path, body in (("/v1/track", track()), ("/v1/batch", {"batch": [item(0)]})):
            r = await c.post(path, json=body, headers=AUTH)
            assert r.status_code == 503, (path, r.text)
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
    readiness.result = {"nats": True, "jetstream": True}
    readiness.deps = {"identity": False}
    r = await client.get("/readyz")
    # A service only some routes call does not make the gateway unready.
    assert r.status_code == 200
    assert r.json() == {
        "ready": True,
        "checks": {"nats": True, "jetstream": True},
        "dependencies": {"identity": False},
    }
    readiness.result = {"nats": True, "jetstream": False}
    r = await client.get("/readyz")
    assert r.status_code == 503
    assert r.json()["ready"] is False


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
