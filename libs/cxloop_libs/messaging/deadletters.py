"""Inspecting and replaying the dead-letter stream.

A dead letter keeps the original body and headers byte for byte (ADR 0004),
so once the cause is fixed (a bug, a missing catalogue entry) an operator
replays it onto its original subject. The replay keeps the original ``ce-id``,
so a consumer's inbox still drops it if it had been applied after all; it gets
a fresh ``Nats-Msg-Id`` so JetStream's duplicate window does not swallow it.
Only after the replay is stored is the dead letter deleted.
"""

from __future__ import annotations

from dataclasses import dataclass

from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from cxloop_libs.messaging.streams import DEAD_LETTER

DLQ_HEADERS = (
    "cx-dlq-reason",
    "cx-dlq-consumer",
    "cx-dlq-stream",
    "cx-dlq-subject",
    "cx-dlq-deliveries",
)


@dataclass(frozen=True, slots=True)
class DeadLetter:
    seq: int
    consumer: str
    subject: str
    event_id: str
    event_type: str
    reason: str
    deliveries: int
    size: int


async def list_dead_letters(
    js: JetStreamContext, *, consumer: str | None = None, limit: int = 1000
) -> list[DeadLetter]:
    try:
        info = await js.stream_info(DEAD_LETTER.name)
    except NotFoundError:
        return []
    out: list[DeadLetter] = []
    if info.state.messages == 0:
        # The normal state of a healthy suite (first_seq is 0 then: there is
        # no message 0 to ask for).
        return out
    seq = max(info.state.first_seq, 1)
    while seq <= info.state.last_seq and len(out) < limit:
        try:
            raw = await js.get_msg(DEAD_LETTER.name, seq)
        except NotFoundError:  # deleted (already replayed)
            seq += 1
            continue
        h = raw.headers or {}
        dl = DeadLetter(
            seq=seq,
            consumer=h.get("cx-dlq-consumer", ""),
            subject=h.get("cx-dlq-subject", ""),
            event_id=h.get("ce-id", ""),
            event_type=h.get("ce-type", ""),
            reason=h.get("cx-dlq-reason", ""),
            deliveries=int(h.get("cx-dlq-deliveries", "0") or 0),
            size=len(raw.data or b""),
        )
        if consumer is None or dl.consumer == consumer:
            out.append(dl)
        seq += 1
    return out


async def replay_dead_letter(js: JetStreamContext, seq: int, *, attempt: str) -> str:
    """Republish one dead letter to its original subject; returns that subject.
    ``attempt`` makes the new Nats-Msg-Id unique per replay run."""
    raw = await js.get_msg(DEAD_LETTER.name, seq)
    headers = dict(raw.headers or {})
    subject: str = headers.get("cx-dlq-subject", "")
    if not subject:
        raise ValueError(f"dead letter {seq} does not name its original subject")
    for h in DLQ_HEADERS:
        headers.pop(h, None)
    headers["Nats-Msg-Id"] = f"replay:{attempt}:{headers.get('ce-id') or seq}"
    await js.publish(subject, raw.data or b"", headers=headers)
    await js.delete_msg(DEAD_LETTER.name, seq)
    return subject
