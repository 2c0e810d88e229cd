"""CloudEvents 1.0 binary mode on NATS: attributes as ``ce-*`` headers, the
protobuf message as the body."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from google.protobuf.message import DecodeError, Message
from opentelemetry.context import Context

from cxloop_libs.messaging.catalog import EventKind, kind_for_type

CONTENT_TYPE = "application/protobuf"
REQUIRED = ("ce-specversion", "ce-id", "ce-type", "ce-source")


class MalformedEvent(Exception):
    """The message cannot be understood; retrying will not help."""


def new_event_id() -> str:
    return str(uuid.uuid4())


def rfc3339(ts: datetime | None = None) -> str:
    ts = ts or datetime.now(UTC)
    return ts.astimezone(UTC).isoformat().replace("+00:00", "Z")


def ce_headers(
    kind: EventKind,
    *,
    event_id: str,
    source: str,
    subject: str = "",
    time: datetime | None = None,
) -> dict[str, str]:
    headers = {
        "ce-specversion": "1.0",
        "ce-id": event_id,
        "ce-type": kind.ce_type,
        "ce-source": source,
        "ce-time": rfc3339(time),
        "content-type": CONTENT_TYPE,
        # JetStream drops a second message with the same id inside the
        # duplicate window, so retried publishes cannot double an event.
        "Nats-Msg-Id": event_id,
    }
    if subject:
        headers["ce-subject"] = subject
    return headers


@dataclass(slots=True)
class ReceivedEvent:
    """An event taken from a stream, decoded lazily."""

    id: str
    type: str
    source: str
    subject: str
    time: str
    data: bytes
    nats_subject: str
    headers: dict[str, str]
    deliveries: int = 1
    stream_seq: int = 0
    # Context of this message's consumer span: handlers start their spans in it.
    trace_context: Context | None = None
    _message: Message | None = field(default=None, repr=False)

    @property
    def kind(self) -> EventKind | None:
        return kind_for_type(self.type)

    def message(self) -> Any:
        """The decoded protobuf body; raises MalformedEvent if it is not one."""
        if self._message is None:
            kind = self.kind
            if kind is None:
                raise MalformedEvent(f"unknown event type {self.type!r}")
            try:
                self._message = kind.decode(self.data)
            except DecodeError as exc:
                raise MalformedEvent(f"body is not a valid {kind.message_type.__name__}") from exc
        return self._message


def parse_headers(nats_subject: str, headers: dict[str, str] | None, data: bytes) -> ReceivedEvent:
    headers = dict(headers) if headers else {}
    get = headers.get
    # Every consumer parses every message here: the four required headers
    # are read once each, the error path only when one is missing.
    spec, ce_id, ce_type, source = (
        get("ce-specversion"),
        get("ce-id"),
        get("ce-type"),
        get("ce-source"),
    )
    if not (spec and ce_id and ce_type and source):
        missing = [h for h in REQUIRED if not get(h)]
        raise MalformedEvent(f"missing CloudEvents headers: {', '.join(missing)}")
    if spec != "1.0":
        raise MalformedEvent(f"unsupported ce-specversion {spec!r}")
    return ReceivedEvent(
        ce_id,
        ce_type,
        source,
        get("ce-subject", ""),
        get("ce-time", ""),
        data,
        nats_subject,
        headers,
    )
