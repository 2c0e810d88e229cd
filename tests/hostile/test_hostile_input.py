"""Hostile input through the real gateway process against a real nats-server
(issue 10, "Prove it"): each case gets the status it should, a body in the
one error shape naming the problem, never a 5xx; nothing half-written
reaches the stream; the gateway is still healthy afterwards."""

from __future__ import annotations

import asyncio
import gzip
import json
import zlib
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from cxloop_testing.gateway_process import (
    AUTH,
    PRIVACY_TOKEN,
    WRITE_KEY,
    RunningGateway,
    stored_events,
)

pytestmark = pytest.mark.integration

LONE = "\udc00"


@pytest.fixture(scope="module")
def http(gateway: RunningGateway) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway.url, timeout=30) as c:
        yield c


def raw(body: Any) -> bytes:
    return json.dumps(body).encode()


def fields(r: httpx.Response) -> list[str]:
    return [f["field"] for f in r.json().get("fields", [])]


def error_shape(r: httpx.Response) -> dict[str, Any]:
    body = r.json()
    assert body["success"] is False
    assert body["code"] and body["message"] == body["error"]
    return dict(body)


def nest(depth: int) -> Any:
    node: Any = "x"
    for _ in range(depth):
        node = {"a": node}
    return node


# (name, path, headers, body bytes, status, field named in the answer)
CASES: list[tuple[str, str, dict[str, str], bytes, int, str | None]] = [
    ("malformed JSON", "/v1/track", {}, b'{"userId": "u", "event": ', 400, "body"),
    ("JSON array body", "/v1/track", {}, b"[1, 2]", 400, "body"),
    ("JSON string body", "/v1/batch", {}, b'"batch"', 400, "body"),
    ("NaN literal", "/v1/track", {}, b'{"userId": "u", "event": "x", "n": NaN}', 400, "body"),
    ("empty body", "/v1/track", {}, b"", 400, "body"),
    ("not UTF-8", "/v1/track", {}, b'{"userId": "\xff\xfe", "event": "x"}', 400, "body"),
    (
        "form content type",
        "/v1/track",
        {"Content-Type": "application/x-www-form-urlencoded"},
        b"userId=u&event=x",
        415,
        "header:Content-Type",
    ),
    (
        "XML content type",
        "/v1/batch",
        {"Content-Type": "application/xml"},
        b"<batch/>",
        415,
        "header:Content-Type",
    ),
    (
        "unknown content encoding",
        "/v1/track",
        {"Content-Encoding": "br"},
        raw({"userId": "u", "event": "x"}),
        400,
        "Content-Encoding",
    ),
    ("corrupt gzip", "/v1/track", {"Content-Encoding": "gzip"}, b"\x1f\x8bnot gzip", 400, "body"),
    (
        "truncated gzip",
        "/v1/track",
        {"Content-Encoding": "gzip"},
        gzip.compress(raw({"userId": "u", "event": "x"}))[:-12],
        400,
        "body",
    ),
    (
        "gzip bomb",
        "/v1/batch",
        {"Content-Encoding": "gzip"},
        gzip.compress(b'{"batch": [' + b" " * 50_000_000 + b"]}"),
        413,
        None,
    ),
    (
        "deep nesting in properties",
        "/v1/track",
        {},
        raw({"userId": "u", "event": "x", "properties": nest(40)}),
        400,
        "properties",
    ),
    (
        "nesting past the parser",
        "/v1/track",
        {},
        b'{"userId": "u", "event": "x", "properties": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        413,
        None,
    ),
    (
        "nesting past the parser in a small body",
        "/v1/track",
        {},
        b'{"userId": "u", "event": "x", "properties": ' + b"[" * 3_000 + b"]" * 3_000 + b"}",
        400,
        "body",
    ),
    (
        "deep nesting in context",
        "/v1/track",
        {},
        raw({"userId": "u", "event": "x", "integrations": nest(200)}),
        400,
        "integrations",
    ),
    (
        "huge string in a call",
        "/v1/track",
        {},
        raw({"userId": "u", "event": "x" * 40_000}),
        413,
        None,
    ),
    (
        "huge userId",
        "/v1/track",
        {},
        raw({"userId": "u" * 5_000, "event": "x"}),
        400,
        "userId",
    ),
    ("lone surrogate userId", "/v1/track", {}, raw({"userId": LONE, "event": "x"}), 400, "userId"),
    (
        "lone surrogate anonymousId",
        "/v1/page",
        {},
        raw({"anonymousId": LONE}),
        400,
        "anonymousId",
    ),
    (
        "lone surrogate previousId",
        "/v1/alias",
        {},
        raw({"previousId": LONE, "userId": "u"}),
        400,
        "previousId",
    ),
    (
        "lone surrogate groupId",
        "/v1/group",
        {},
        raw({"userId": "u", "groupId": LONE}),
        400,
        "groupId",
    ),
    (
        "lone surrogate externalId",
        "/v1/track",
        {},
        raw({"userId": "u", "event": "x", "context": {"externalIds": [{"id": LONE, "type": "c"}]}}),
        400,
        "context.externalIds[0].id",
    ),
    (
        "lone surrogate traits.email",
        "/v1/identify",
        {},
        raw({"userId": "u", "traits": {"email": LONE}}),
        400,
        "traits.email",
    ),
    ("NUL in userId", "/v1/track", {}, raw({"userId": "u\x00", "event": "x"}), 400, "userId"),
    (
        "infinite number",
        "/v1/track",
        {},
        b'{"userId": "u", "event": "x", "properties": {"total": 1e400}}',
        400,
        "properties.total",
    ),
    (
        "huge integer",
        "/v1/track",
        {},
        b'{"userId": "u", "event": "x", "properties": {"n": 1' + b"0" * 400 + b"}}",
        400,
        "properties.n",
    ),
    ("number as event", "/v1/track", {}, raw({"userId": "u", "event": 12}), 400, "event"),
    ("bool as userId", "/v1/track", {}, raw({"userId": True, "event": "x"}), 400, "userId"),
    ("batch not a list", "/v1/batch", {}, raw({"batch": {"type": "track"}}), 400, "batch"),
    ("no batch", "/v1/batch", {}, raw({"events": []}), 400, "batch"),
    (
        "too many events",
        "/v1/batch",
        {},
        raw({"batch": [{"type": "track", "userId": "u", "event": "x"}] * 501}),
        413,
        None,
    ),
    (
        "bad Sec-GPC",
        "/v1/track",
        {"Sec-GPC": "yes"},
        raw({"userId": "u", "event": "x"}),
        400,
        "header:Sec-GPC",
    ),
]


@pytest.mark.parametrize(
    ("path", "headers", "body", "status", "field"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_hostile_request_gets_a_clear_answer(
    http: httpx.Client,
    gateway: RunningGateway,
    path: str,
    headers: dict[str, str],
    body: bytes,
    status: int,
    field: str | None,
) -> None:
    r = http.post(path, content=body, headers={**AUTH, **headers})
    assert r.status_code == status, r.text[:2000]
    error_shape(r)
    if field is not None:
        named = fields(r)
        assert any(f == field or f.startswith((f"{field}.", f"{field}[")) for f in named), r.text[
            :2000
        ]
    assert gateway.alive()


def test_wrong_and_missing_write_keys(http: httpx.Client) -> None:
    body = raw({"userId": "u", "event": "x"})
    r = http.post("/v1/track", content=body)
    assert r.status_code == 401 and error_shape(r)["code"] == "unauthorized"
    r = http.post("/v1/track", content=body, headers={"Authorization": "Basic !!!"})
    assert r.status_code == 401
    r = http.post("/v1/track", content=raw({"writeKey": LONE, "userId": "u", "event": "x"}))
    assert r.status_code == 401


def test_unknown_paths_and_methods_are_json_errors(http: httpx.Client) -> None:
    r = http.post("/v1/nope", content=b"{}", headers=AUTH)
    assert r.status_code == 404 and error_shape(r)["code"] == "not_found"
    r = http.get("/v1/track", headers=AUTH)
    assert r.status_code == 405 and error_shape(r)["code"] == "method_not_allowed"


def test_a_mixed_batch_keeps_its_good_events_and_the_suite_stays_healthy(
    http: httpx.Client, gateway: RunningGateway
) -> None:
    """Every bad-item kind in one batch, between good ones: the good events
    are stored once each, the bad ones named, nothing else in the stream."""
    good = [
        {"type": "track", "userId": "hz-u", "event": "Good", "messageId": f"hz-good-{i}"}
        for i in range(4)
    ]
    bad: list[Any] = [
        7,
        {"type": "purchase", "userId": "u", "messageId": "hz-bad-1"},
        {"type": "track", "userId": LONE, "event": "x", "messageId": "hz-bad-2"},
        {"type": "identify", "userId": "u", "traits": {"email": "kim@"}, "messageId": "hz-bad-3"},
        {"type": "track", "userId": "undefined", "event": "x", "messageId": "hz-bad-4"},
        {"type": "track", "userId": "u", "event": "x", "properties": {"n": float("inf")}},
        {"type": "track", "userId": "u", "event": "x" * 40_000, "messageId": "hz-bad-6"},
        {"type": "track", "userId": "u", "event": "x", "properties": nest(40)},
    ]
    batch = [good[0], *bad[:4], good[1], *bad[4:], good[2], good[3]]
    text = json.dumps({"batch": batch}).replace("Infinity", "1e400")
    for attempt in range(2):  # the retry of the same batch adds nothing
        r = http.post("/v1/batch", content=text.encode(), headers=AUTH)
        assert r.status_code == 200, r.text[:2000]
        body = r.json()
        assert body["accepted"] == 4
        assert body["duplicates"] == (4 if attempt else 0)
        assert body["rejected"] == len(bad)
        assert body["notAttributable"] == 1
        assert {x["index"] for x in body["rejections"]} == {1, 2, 3, 4, 6, 7, 8, 9}
        assert "kim@" not in r.text
    stored = asyncio.run(stored_events(gateway.nats.url))
    ids = [m.message_id for m in stored if m.message_id.startswith("hz-")]
    assert sorted(ids) == [f"hz-good-{i}" for i in range(4)]
    assert gateway.healthy()


def test_gzip_batches_and_text_plain_are_read(http: httpx.Client, gateway: RunningGateway) -> None:
    body = {"batch": [{"type": "page", "anonymousId": "a", "messageId": "hz-gz", "name": "P"}]}
    r = http.post(
        "/v1/b",
        content=gzip.compress(raw({**body, "writeKey": WRITE_KEY})),
        headers={"Content-Encoding": "gzip", "Content-Type": "text/plain"},
    )
    assert r.status_code == 200, r.text
    # zlib (deflate) is not gzip: named, not guessed.
    r = http.post(
        "/v1/batch",
        content=zlib.compress(raw(body)),
        headers={**AUTH, "Content-Encoding": "gzip"},
    )
    assert r.status_code == 400 and "body" in fields(r)
    assert gateway.healthy()


def test_no_traceback_or_500_in_the_gateway_log(gateway: RunningGateway) -> None:
    logs = gateway.logs()
    assert "unhandled error" not in logs
    assert "Traceback" not in logs


@pytest.mark.parametrize(
    "subject",
    [
        {"identifier": {"type": "email", "value": LONE}},
        {"identifier": {"type": "user_id", "value": "u\x00"}},
        {"customerId": LONE},
        {"identifier": {"type": "external", "namespace": LONE, "value": "1"}},
    ],
)
def test_privacy_requests_with_invalid_unicode_are_400(
    http: httpx.Client, gateway: RunningGateway, subject: dict[str, Any]
) -> None:
    r = http.post(
        "/v1/privacy/requests",
        content=raw({"type": "erasure", "subject": subject}),
        headers={"Authorization": f"Bearer {PRIVACY_TOKEN}"},
    )
    assert r.status_code == 400, r.text
    assert error_shape(r)["fields"][0]["field"].startswith("subject")
    assert gateway.alive()
