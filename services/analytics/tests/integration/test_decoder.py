"""The ingest decoder process (docs/adr/0245): a real child decodes a fetch
exactly as the service's process would; before it has started, or once it
has died, batches are decoded in the service's process and nothing is lost."""

from __future__ import annotations

import os
import signal

import pytest

from analytics.adapters.decoder import ProcessDecoder
from analytics.domain.batch import decode_interactions
from analytics.tests.conftest import interaction, utc
from cxloop_libs.messaging import ReceivedEvent
from cxloop_libs.messaging import catalog as ev
from cxloop_libs.messaging.cloudevents import ce_headers, parse_headers
from cxloop_testing.infra import eventually

pytestmark = pytest.mark.integration
T0 = utc(2026, 3, 2, 9)


def events(n: int, prefix: str) -> list[ReceivedEvent]:
    out = []
    for k in range(n):
        msg = interaction(f"c-{k % 3}", "Viewed", T0, message_id=f"{prefix}-{k}", n=k)
        headers = ce_headers(ev.INTERACTION_RESOLVED, event_id=f"ce-{prefix}-{k}", source="/t")
        out.append(parse_headers(ev.INTERACTION_RESOLVED.subject, headers, msg.SerializeToString()))
    return out


def same(a, b) -> bool:  # type: ignore[no-untyped-def]
    fields = (
        "event_id",
        "customer_id",
        "ts_us",
        "event",
        "kind",
        "channel",
        "source",
        "properties",
    )
    return all(getattr(a, f) == getattr(b, f) for f in fields) and (
        a.event_keys.tolist() == b.event_keys.tolist()
        and a.customer_keys.tolist() == b.customer_keys.tolist()
    )


async def test_child_decodes_as_the_service_would_and_a_dead_child_costs_no_batch() -> None:
    decoder = ProcessDecoder()
    try:
        batch = events(50, "a")
        inline = decode_interactions(
            [(e.type, e.id, e.data) for e in batch], ev.INTERACTION_RESOLVED.ce_type
        )
        # Not started yet: decoded here, at once.
        early = await decoder.decode(batch)
        assert decoder.inline_batches == 1 and same(early.batch, inline.batch)

        await decoder.start()
        child = await decoder.decode(batch)
        assert decoder.inline_batches == 1  # this one went to the child
        assert same(child.batch, inline.batch) and child.errors == []
        pool = decoder._pool
        assert pool is not None
        pids = list(pool._processes)  # type: ignore[attr-defined]
        assert pids and os.getpid() not in pids

        # The child dies (OOM killer, crash): the batch is decoded here and a
        # new child takes the next ones.
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        await eventually(lambda: pool._broken, timeout=10)  # type: ignore[attr-defined]
        after = await decoder.decode(batch)
        assert same(after.batch, inline.batch)
        assert decoder.inline_batches == 2
        await eventually(lambda: decoder._ready, timeout=30)
        again = await decoder.decode(events(5, "b"))
        assert decoder.inline_batches == 2 and again.batch.event_id == [f"b-{k}" for k in range(5)]
    finally:
        decoder.close()
