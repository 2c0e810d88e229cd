"""Test helpers for the outbox and streams: stage events in one commit, read
back the event ids a stream holds."""

from __future__ import annotations

import nats
from cxloop.gateway.v1 import events_pb2 as gw
from nats.js import JetStreamContext

from cxloop_libs.db import Database
from cxloop_libs.messaging import OutboxWriter
from cxloop_libs.messaging import catalog as ev


def stage_interactions(db: Database, ids: list[str]) -> None:
    """One commit staging an `interaction recorded` event per id."""
    with db.session() as s:
        out = OutboxWriter(s)
        for i in ids:
            out.stage(ev.INTERACTION_RECORDED, gw.InteractionRecorded(message_id=i), event_id=i)
        out.flush()


async def gateway_event_ids(js: JetStreamContext) -> list[str]:
    """Every event id the GATEWAY stream holds, one per stored message."""
    sub = await js.pull_subscribe(ev.INTERACTION_RECORDED.subject, stream="GATEWAY")
    ids: list[str] = []
    try:
        while True:
            for m in await sub.fetch(100, timeout=0.5):
                ids.append(m.headers.get("ce-id", "") if m.headers else "")
                await m.ack()
    except (nats.errors.TimeoutError, TimeoutError):
        pass
    finally:
        await sub.unsubscribe()
    return ids
