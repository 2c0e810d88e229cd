"""Every replica applies the service's own stream to its memory: an ordered
(ephemeral) JetStream consumer from the sequence the database load covered,
so no event is missed between loading and following. Erasure requests are
followed on a plain subscription, so memory forgets at once everywhere."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from nats.js.api import ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

from cxloop_libs.messaging import catalog as ev
from cxloop_libs.messaging.cloudevents import parse_headers
from cxloop_libs.runtime import ServiceRuntime

log = logging.getLogger(__name__)
STREAM = "PERSONALIZATION"


async def stream_last_seq(runtime: ServiceRuntime) -> int:
    await runtime.bus.ready()
    for _ in range(100):
        try:
            info = await runtime.bus.js.stream_info(STREAM)
            return int(info.state.last_seq)
        except NotFoundError:
            await asyncio.sleep(0.1)
    return 0


def follow(
    runtime: ServiceRuntime,
    load: Callable[[], Awaitable[Any]],
    apply: Callable[[Any], None],
    forget: Callable[[str], Any],
) -> asyncio.Event:
    """Loads (database), then follows the stream; the event is set once live."""
    live = asyncio.Event()
    stopping = asyncio.Event()

    async def on_message(m: Any) -> None:
        try:
            message = parse_headers(m.subject, m.headers, m.data).message()
        except Exception:  # not ours to judge: durable consumers dead-letter it
            log.debug("replica: unreadable event on %s", m.subject, exc_info=True)
            return
        try:
            apply(message)
        except Exception:
            log.exception("replica: could not apply %s", m.subject)

    async def on_erasure(m: Any) -> None:
        try:
            message = parse_headers(m.subject, m.headers, m.data).message()
            forget(message.customer_id)
        except Exception:
            log.exception("replica: could not apply erasure")

    async def run() -> None:
        await runtime.db_ready.wait()
        seq = await stream_last_seq(runtime)
        await load()
        sub = await runtime.bus.js.subscribe(
            "cx.personalization.>",
            stream=STREAM,
            cb=on_message,
            ordered_consumer=True,
            config=ConsumerConfig(
                deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=seq + 1
            ),
        )
        erasures = await runtime.bus.nc.subscribe(ev.ERASURE_REQUESTED.subject, cb=on_erasure)
        live.set()
        try:
            await stopping.wait()
        finally:
            for s in (sub, erasures):
                with contextlib.suppress(Exception):
                    await s.unsubscribe()

    async def stop() -> None:
        stopping.set()

    runtime.extra_tasks.append(run)
    runtime.on_stop.append(stop)
    return live
