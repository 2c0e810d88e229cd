"""What `cxloop status` says about the event loop: each durable consumer's
backlog (messages not yet delivered, delivered but not acknowledged,
redelivered) and its dead letters, grouped by the service that owns it."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass

from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from cxloop_libs.messaging.streams import DEAD_LETTER


@dataclass(frozen=True)
class ConsumerBacklog:
    service: str
    consumer: str
    stream: str
    pending: int
    unacknowledged: int
    redelivered: int
    dead_letters: int

    def to_json(self) -> dict[str, object]:
        return asdict(self)


async def consumer_backlogs(js: JetStreamContext) -> list[ConsumerBacklog]:
    dead: Counter[str] = Counter()
    try:
        info = await js.stream_info(DEAD_LETTER.name, subjects_filter="dlq.>")
        for subject, n in (info.state.subjects or {}).items():
            # dlq.<consumer>.<original subject>
            dead[subject.split(".", 2)[1]] += n
    except NotFoundError:
        pass
    out: list[ConsumerBacklog] = []
    seen: set[str] = set()
    for stream in await js.streams_info():
        name = stream.config.name or ""
        if name.startswith("KV_") or name == DEAD_LETTER.name:
            continue
        for c in await js.consumers_info(name):
            durable = c.config.durable_name or c.name or ""
            if not durable:  # ephemeral readers (a CLI, a replica's live follow)
                continue
            seen.add(durable)
            out.append(
                ConsumerBacklog(
                    service=durable.split("-", 1)[0],
                    consumer=durable,
                    stream=name,
                    pending=c.num_pending or 0,
                    unacknowledged=c.num_ack_pending or 0,
                    redelivered=c.num_redelivered or 0,
                    dead_letters=dead.get(durable, 0),
                )
            )
    for consumer, n in dead.items():  # dead letters of a consumer since deleted
        if consumer not in seen:
            out.append(ConsumerBacklog(consumer.split("-", 1)[0], consumer, "", 0, 0, 0, n))
    return sorted(out, key=lambda b: (b.service, b.consumer))
