"""Fakes and request builders shared by the unit tests."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any

from cxloop.gateway.v1 import events_pb2
from nats.js.api import PubAck

from cxloop_libs.messaging import PendingEvent

HASH_KEY = b"unit-test-hash-key-0123456789"
WRITE_KEY = "wk-web"
SOURCE = "web"


def basic(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


class FakeSink:
    """Stands in for EventPublisher: remembers events, acks like JetStream
    (a repeated event id is a duplicate), or fails on demand."""

    def __init__(self) -> None:
        self.events: list[PendingEvent] = []
        self.stored: set[str] = set()
        self.fail: BaseException | None = None

    async def publish(self, event: PendingEvent, *, timeout: float = 5.0) -> PubAck:
        if self.fail is not None:
            raise self.fail
        self.events.append(event)
        duplicate = event.event_id in self.stored
        self.stored.add(event.event_id)
        return PubAck(stream="GATEWAY", seq=len(self.events), duplicate=duplicate)

    async def publish_many(
        self, events: Sequence[PendingEvent], *, timeout: float = 5.0
    ) -> list[PubAck | BaseException]:
        results: list[PubAck | BaseException] = []
        for e in events:
            try:
                results.append(await self.publish(e, timeout=timeout))
            except Exception as exc:
                results.append(exc)
        return results

    def messages(self) -> list[events_pb2.InteractionRecorded]:
        out = []
        for e in self.events:
            m = events_pb2.InteractionRecorded()
            m.ParseFromString(e.data)
            out.append(m)
        return out


class FakeReadiness:
    def __init__(self, checks: dict[str, bool] | None = None) -> None:
        self.result = checks if checks is not None else {"nats": True}

        self.deps: dict[str, bool] = {}

    async def checks(self) -> dict[str, bool]:
        return dict(self.result)

    async def dependencies(self) -> dict[str, bool]:
        return dict(self.deps)


class Bus:
    is_connected = True


def track(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "userId": "user-1",
        "event": "Order Completed",
        "messageId": "m-1",
        "timestamp": "2024-05-01T10:00:00Z",
    }
    body.update(overrides)
    return body
