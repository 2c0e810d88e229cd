"""Every path and body Segment-compatible SDKs use (issue 10 items 12, 13):
analytics-next's batching (`/v1/b`, text/plain `{writeKey, batch, sentAt}`),
its settings and metrics calls, and CORS that lets its retries through."""

from __future__ import annotations

import json

import httpx
import pytest

from gateway.tests.unit.fakes import WRITE_KEY, FakeSink, basic

ORIGIN = "https://shop.example"


async def test_browser_batching_posts_text_plain_to_v1_b(
    client: httpx.AsyncClient, sink: FakeSink
) -> None:
    body = {
        "writeKey": WRITE_KEY,
        "sentAt": "2024-05-01T10:00:00Z",
        "batch": [
            {"type": "track", "event": "Viewed", "anonymousId": "a-1", "messageId": "b-1"},
            {"type": "page", "name": "Home", "anonymousId": "a-1", "messageId": "b-2"},
        ],
    }
    r = await client.post(
        "/v1/b",
        content=json.dumps(body),
        headers={"Content-Type": "text/plain", "Origin": ORIGIN},
    )
    assert r.status_code == 200, r.text
    assert r.json()["accepted"] == 2
    assert [m.message_id for m in sink.messages()] == ["b-1", "b-2"]
    assert r.headers["access-control-allow-origin"] == "*"


@pytest.mark.parametrize("path", ["/v1/t", "/v1/i", "/v1/p", "/v1/s", "/v1/a", "/v1/g"])
async def test_short_paths_take_text_plain(client: httpx.AsyncClient, path: str) -> None:
    body = {
        "writeKey": WRITE_KEY,
        "userId": "u",
        "anonymousId": "a",
        "previousId": "p",
        "groupId": "g",
        "event": "E",
    }
    r = await client.post(path, content=json.dumps(body), headers={"Content-Type": "text/plain"})
    assert r.status_code == 200, r.text


async def test_preflight_allows_retry_header_and_exposes_retry_after(
    client: httpx.AsyncClient,
) -> None:
    r = await client.options(
        "/v1/t",
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,x-retry-count,authorization",
        },
    )
    assert r.status_code == 200, r.text
    allowed = r.headers["access-control-allow-headers"].lower()
    assert "x-retry-count" in allowed
    r = await client.post(
        "/v1/t",
        json={"userId": "u", "event": "E"},
        headers={**basic(WRITE_KEY), "Origin": ORIGIN, "X-Retry-Count": "1"},
    )
    assert r.status_code == 200
    assert "retry-after" in r.headers["access-control-expose-headers"].lower()


@pytest.mark.parametrize(
    "content_type",
    ["application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "text/xml"],
)
async def test_non_json_content_types_are_415(
    client: httpx.AsyncClient, sink: FakeSink, content_type: str
) -> None:
    r = await client.post(
        "/v1/track",
        content=b"userId=u&event=E",
        headers={**basic(WRITE_KEY), "Content-Type": content_type},
    )
    assert r.status_code == 415
    assert r.json()["fields"][0]["field"] == "header:Content-Type"
    assert sink.events == []


async def test_json_content_types_are_read(client: httpx.AsyncClient) -> None:
    for ct in ("application/json; charset=utf-8", "application/vnd.segment+json", None):
        headers = {**basic(WRITE_KEY)}
        if ct:
            headers["Content-Type"] = ct
        r = await client.post(
            "/v1/track", content=json.dumps({"userId": "u", "event": "E"}), headers=headers
        )
        assert r.status_code == 200, (ct, r.text)


async def test_cdn_settings_point_the_browser_sdk_here(client: httpx.AsyncClient) -> None:
    r = await client.get(f"/v1/projects/{WRITE_KEY}/settings")
    assert r.status_code == 200
    io = r.json()["integrations"]["Segment.io"]
    assert io == {"apiKey": WRITE_KEY, "apiHost": "gateway/v1", "protocol": "http"}
    assert (await client.get("/v1/projects/nope/settings")).status_code == 401


async def test_sdk_metrics_are_accepted_and_dropped(
    client: httpx.AsyncClient, sink: FakeSink
) -> None:
    r = await client.post(
        "/v1/m", content=b'{"series": []}', headers={"Content-Type": "text/plain"}
    )
    assert r.status_code == 200
    assert sink.events == []
