"""A consumer whose creation times out (JetStream busy, a clustered stream
electing its leader, a process that held the GIL) retries instead of dying:
a dead consumer task stops the whole service (seen in the production boot:
personalization exited while its Korean tokenizer loaded)."""

from __future__ import annotations

from typing import Any

import nats.errors
from nats.js.errors import NotFoundError

from cxloop_libs.messaging.consumer import BatchConsumer, ConsumerSpec


class _Flaky(BatchConsumer):
    def __init__(self, failures: list[BaseException]) -> None:
        super().__init__(
            bus=None,  # type: ignore[arg-type]
            db=None,  # type: ignore[arg-type]
            spec=ConsumerSpec(stream="S", durable="d-test", filter_subject="cx.s.>"),
            handler=lambda *_: None,  # type: ignore[arg-type,return-value]
        )
        self.failures = failures
        self.calls = 0

    async def _subscribe(self) -> Any:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return "subscribed"


async def test_timeouts_and_missing_streams_are_retried_until_the_consumer_exists() -> None:
    c = _Flaky([nats.errors.TimeoutError(), NotFoundError(), nats.errors.NoRespondersError()])
    assert await c._subscribe_when_stream_exists() == "subscribed"
    assert c.calls == 4


async def test_stopping_while_retrying_ends_without_a_subscription() -> None:
    c = _Flaky([nats.errors.TimeoutError()] * 1000)
    c.stop()
    assert await c._subscribe_when_stream_exists() is None


async def test_other_errors_still_surface() -> None:
    c = _Flaky([ValueError("bad config")])
    try:
        await c._subscribe_when_stream_exists()
    except ValueError:
        return
    raise AssertionError("a configuration error must not be retried forever")
