"""Events on NATS JetStream: catalogue, CloudEvents headers, publisher,
transactional outbox and relay, batched consumer with inbox and dead letters."""

from cxloop_libs.messaging.bus import NatsBus
from cxloop_libs.messaging.catalog import EventKind, kind_for_type
from cxloop_libs.messaging.cloudevents import MalformedEvent, ReceivedEvent, new_event_id
from cxloop_libs.messaging.consumer import BatchConsumer, BatchHandler, ConsumerSpec
from cxloop_libs.messaging.inbox import already_processed, mark_processed
from cxloop_libs.messaging.outbox import OutboxRelay, OutboxWriter
from cxloop_libs.messaging.publisher import EventPublisher, PendingEvent
from cxloop_libs.messaging.streams import DEAD_LETTER, StreamSpec, ensure_stream, stream_for
from cxloop_libs.messaging.tables import InboxEvent, OutboxEvent, create_messaging_tables

__all__ = [
    "DEAD_LETTER",
    "BatchConsumer",
    "BatchHandler",
    "ConsumerSpec",
    "EventKind",
    "EventPublisher",
    "InboxEvent",
    "MalformedEvent",
    "NatsBus",
    "OutboxEvent",
    "OutboxRelay",
    "OutboxWriter",
    "PendingEvent",
    "ReceivedEvent",
    "StreamSpec",
    "already_processed",
    "create_messaging_tables",
    "ensure_stream",
    "kind_for_type",
    "mark_processed",
    "new_event_id",
    "stream_for",
]
