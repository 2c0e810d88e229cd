"""The official Segment (`segment-analytics-python`) and RudderStack
(`rudder-sdk-python`) SDKs against the real gateway process (issue 10,
"Prove it"): every call type, gzip on and off, a batch with one bad event,
a 503 during a NATS stall followed by the SDK's own retries. The good
events are stored, each exactly once; the SDKs report no error."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections import Counter
from typing import Any

import pytest
from rudderstack.analytics.client import Client as RudderClient
from segment.analytics.client import Client as SegmentClient

from cxloop_testing.gateway_process import (
    WRITE_KEY,
    RunningGateway,
    nats_paused,
    stored_events,
)

pytestmark = pytest.mark.integration

SDKS = {"segment": SegmentClient, "rudder": RudderClient}


class Sdk:
    def __init__(self, kind: str, gateway: RunningGateway, *, gzip: bool) -> None:
        self.errors: list[Any] = []
        self.client = SDKS[kind](
            write_key=WRITE_KEY,
            host=gateway.url,
            gzip=gzip,
            on_error=lambda exc, batch: self.errors.append((exc, len(batch))),
            max_retries=10,
        )
        self.prefix = f"{kind}-{'gz' if gzip else 'plain'}-{uuid.uuid4().hex[:8]}"

    def mid(self, n: int | str) -> str:
        return f"{self.prefix}-{n}"

    def done(self) -> None:
        self.client.flush()
        self.client.shutdown() if hasattr(self.client, "shutdown") else self.client.join()


def stored_ids(gateway: RunningGateway, prefix: str) -> Counter[str]:
    events = asyncio.run(stored_events(gateway.nats.url))
    return Counter(m.message_id for m in events if m.message_id.startswith(prefix))


@pytest.mark.parametrize("gzip", [False, True], ids=["plain", "gzip"])
@pytest.mark.parametrize("kind", list(SDKS))
def test_every_call_type_and_one_bad_event(gateway: RunningGateway, kind: str, gzip: bool) -> None:
    sdk = Sdk(kind, gateway, gzip=gzip)
    c, m = sdk.client, sdk.mid
    user, anon = f"{sdk.prefix}-user", str(uuid.uuid4())
    c.identify(user, {"email": f"{sdk.prefix}@example.com"}, message_id=m("identify"))
    c.track(user, "Order Completed", {"total": 30}, message_id=m("track"))
    c.page(user, "Docs", "Home", {"url": "https://x.kr"}, message_id=m("page"))
    c.screen(user, "App", "Cart", message_id=m("screen"))
    c.group(user, "company-1", {"plan": "pro"}, message_id=m("group"))
    c.alias(anon, user, message_id=m("alias"))
    for i in range(10):
        c.track(anonymous_id=anon, event="Viewed", message_id=m(f"t{i}"))
    # One event the gateway refuses (a malformed email): the rest must stay.
    c.identify(user, {"email": "not-an-email"}, message_id=m("bad"))
    sdk.done()
    assert sdk.errors == []
    got = stored_ids(gateway, sdk.prefix)
    expected = {m(x) for x in ("identify", "track", "page", "screen", "group", "alias")}
    expected |= {m(f"t{i}") for i in range(10)}
    assert set(got) == expected
    assert all(n == 1 for n in got.values())


@pytest.mark.parametrize("kind", list(SDKS))
def test_a_503_during_a_stall_is_retried_and_stored_once(
    gateway: RunningGateway, kind: str
) -> None:
    sdk = Sdk(kind, gateway, gzip=True)
    before = gateway.logs().count("events not stored")
    with nats_paused(gateway.nats):
        for i in range(3):
            sdk.client.track(f"{sdk.prefix}-u", "Stalled", message_id=sdk.mid(i))
        flushing = threading.Thread(target=sdk.client.flush)
        flushing.start()
        # The gateway answers 503 (publish timeout 1 s) at least once.
        deadline = time.monotonic() + 30
        while gateway.logs().count("events not stored") == before:
            assert time.monotonic() < deadline, "the gateway never answered 503"
            time.sleep(0.1)
    flushing.join(timeout=60)
    sdk.done()
    assert sdk.errors == []
    got = stored_ids(gateway, sdk.prefix)
    assert got == {sdk.mid(i): 1 for i in range(3)}
    assert gateway.healthy()


@pytest.mark.parametrize("kind", list(SDKS))
def test_sdks_read_our_error_body(gateway: RunningGateway, kind: str) -> None:
    """Issue 10 item 9: rudder-sdk-python raised KeyError on `{"error": ...}`;
    both SDKs now get Segment's code and message."""
    if kind == "rudder":
        from rudderstack.analytics.request import APIError, post
    else:
        from segment.analytics.request import APIError, post  # type: ignore[no-redef]
    with pytest.raises(APIError) as info:
        post("not-a-write-key", host=gateway.url, batch=[{"type": "track"}])
    assert info.value.status == 401
    assert info.value.code == "unauthorized"
    assert info.value.message == "unknown write key"
