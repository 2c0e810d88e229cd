"""The event catalogue: which protobuf message travels under which CloudEvents
type and NATS subject.

Naming (DESIGN.md): type ``cxloop.<domain>.<noun>.<past_verb>.v1`` on subject
``cx.<domain>.<noun>.<past_verb>``; the stream of the owning service captures
``cx.<domain>.>``.
"""

from __future__ import annotations

from dataclasses import dataclass

from cxloop.consent.v1 import events_pb2 as consent_events
from cxloop.gateway.v1 import events_pb2 as gateway_events
from cxloop.identity.v1 import events_pb2 as identity_events
from google.protobuf.message import Message


@dataclass(frozen=True, slots=True)
class EventKind:
    domain: str
    noun: str
    verb: str
    message_type: type[Message]
    version: int = 1

    @property
    def ce_type(self) -> str:
        return f"cxloop.{self.domain}.{self.noun}.{self.verb}.v{self.version}"

    @property
    def subject(self) -> str:
        return f"cx.{self.domain}.{self.noun}.{self.verb}"

    def decode(self, data: bytes) -> Message:
        msg = self.message_type()
        msg.ParseFromString(data)
        return msg


INTERACTION_RECORDED = EventKind(
    "gateway", "interaction", "recorded", gateway_events.InteractionRecorded
)
PROFILE_CREATED = EventKind("identity", "profile", "created", identity_events.ProfileCreated)
PROFILE_UPDATED = EventKind("identity", "profile", "updated", identity_events.ProfileUpdated)
PROFILE_MERGED = EventKind("identity", "profile", "merged", identity_events.ProfileMerged)
PROFILE_SPLIT = EventKind("identity", "profile", "split", identity_events.ProfileSplit)
INTERACTION_RESOLVED = EventKind(
    "identity", "interaction", "resolved", identity_events.InteractionResolved
)
CONSENT_CHANGED = EventKind("consent", "consent", "changed", consent_events.ConsentChanged)
NOTICE_PUBLISHED = EventKind("consent", "notice", "published", consent_events.NoticePublished)

_ALL: tuple[EventKind, ...] = (
    INTERACTION_RECORDED,
    PROFILE_CREATED,
    PROFILE_UPDATED,
    PROFILE_MERGED,
    PROFILE_SPLIT,
    INTERACTION_RESOLVED,
    CONSENT_CHANGED,
    NOTICE_PUBLISHED,
)
BY_CE_TYPE: dict[str, EventKind] = {k.ce_type: k for k in _ALL}


def kind_for_type(ce_type: str) -> EventKind | None:
    return BY_CE_TYPE.get(ce_type)
