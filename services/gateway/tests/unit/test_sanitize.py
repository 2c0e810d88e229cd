"""Lone surrogates, NUL characters, non-finite numbers, deep nesting
(issue 10 items 3 and 4): refused naming the field, or stripped where
stripping is harmless; never a 500 and never poison for a consumer."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from gateway.domain.sanitize import sanitize
from gateway.tests.unit.fakes import WRITE_KEY, FakeSink, basic

AUTH = basic(WRITE_KEY)
LONE = "\udc00"


def test_sanitize_strips_nul_in_free_text_and_keys() -> None:
    clean, problems = sanitize({"event": "Sig\x00ned", "properties": {"k\x00ey": ["a\x00", 1]}})
    assert problems == []
    assert clean == {"event": "Signed", "properties": {"key": ["a", 1]}}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"userId": "u\x00"}, "userId"),
        ({"anonymousId": "\x00"}, "anonymousId"),
        ({"messageId": "m\x00"}, "messageId"),
        ({"traits": {"email": "a\x00@b.co"}}, "traits.email"),
        (
            {"context": {"externalIds": [{"id": "1\x00", "type": "crm"}]}},
            "context.externalIds[0].id",
        ),
        ({"properties": {"x": float("inf")}}, "properties.x"),
        ({"properties": {"x": [1, float("nan")]}}, "properties.x[1]"),
        ({"properties": {"x": 10**400}}, "properties.x"),
        ({"properties": {"note": LONE}}, "properties.note"),
        ({"userId": LONE}, "userId"),
    ],
)
def test_sanitize_names_the_field(body: dict[str, Any], field: str) -> None:
    _, problems = sanitize(body)
    assert [p.field for p in problems] == [field]


def test_sanitize_bounds_nesting() -> None:
    deep: Any = "x"
    for _ in range(500):
        deep = [deep]
    _, problems = sanitize({"integrations": deep})
    assert len(problems) == 1 and "nested deeper" in problems[0].reason


def raw(body: dict[str, Any]) -> bytes:
    # json.dumps escapes lone surrogates as \\udc00, which is what SDKs send.
    return json.dumps(body).encode()


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/track", {"userId": LONE, "event": "x"}, "userId"),
        ("/v1/track", {"anonymousId": LONE, "event": "x"}, "anonymousId"),
        ("/v1/alias", {"previousId": LONE, "userId": "u"}, "previousId"),
        ("/v1/group", {"userId": "u", "groupId": LONE}, "groupId"),
        ("/v1/identify", {"userId": "u", "traits": {"email": LONE}}, "traits.email"),
        (
            "/v1/track",
            {"userId": "u", "event": "x", "context": {"externalIds": [{"id": LONE, "type": "c"}]}},
            "context.externalIds[0].id",
        ),
        ("/v1/track", {"userId": "u", "event": "x", "properties": {"a": 1e400}}, "properties.a"),
        ("/v1/track", {"userId": "u\x00", "event": "x"}, "userId"),
    ],
)
async def test_single_calls_are_400_naming_the_field(
    client: httpx.AsyncClient, sink: FakeSink, path: str, body: dict[str, Any], field: str
) -> None:
    content = raw(body).replace(b"Infinity", b"1e400")
    r = await client.post(path, content=content, headers=AUTH)
    assert r.status_code == 400, r.text
    assert [f["field"] for f in r.json()["fields"]] == [field]
    assert sink.events == []


async def test_batch_item_with_lone_surrogate_is_rejected_alone(
    client: httpx.AsyncClient, sink: FakeSink
) -> None:
    batch = [
        {"type": "track", "userId": "u", "event": "ok", "messageId": "m-0"},
        {"type": "track", "userId": LONE, "event": "bad", "messageId": "m-1"},
        {"type": "track", "userId": "u", "event": "N\x00UL", "messageId": "m-2"},
    ]
    r = await client.post("/v1/batch", content=raw({"batch": batch}), headers=AUTH)
    assert r.status_code == 200, r.text
    assert [(x["index"], x["field"]) for x in r.json()["rejections"]] == [(1, "batch[1].userId")]
    assert [m.name for m in sink.messages()] == ["ok", "NUL"]


async def test_nul_in_property_values_never_reaches_a_consumer(
    client: httpx.AsyncClient, sink: FakeSink
) -> None:
    body = {"userId": "u", "event": "x", "properties": {"n\x00": "a\x00b", "l": ["\x00"]}}
    r = await client.post("/v1/track", content=raw(body), headers=AUTH)
    assert r.status_code == 200, r.text
    (event,) = sink.messages()
    assert dict(event.properties) == {"n": "ab", "l": [""]}
    text = json.dumps(dict(event.properties), default=list)
    assert "\\u0000" not in text


async def test_write_key_with_lone_surrogate_is_401(client: httpx.AsyncClient) -> None:
    r = await client.post("/v1/track", content=raw({"writeKey": LONE, "userId": "u", "event": "x"}))
    assert r.status_code == 401
