"""Segment call -> ``InteractionRecorded``: identifiers hashed, PII dropped.

Pure: no I/O. The keyed hasher is handed in, so the same call always gives the
same event for the same key (except ``received_at`` and a generated messageId).
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from cxloop.common.v1 import identifier_pb2
from cxloop.gateway.v1 import events_pb2

from cxloop_libs.pii import IdentifierHasher, IdType, InvalidIdentifier, is_junk
from cxloop_libs.pii.normalize import normalize_identifier
from cxloop_libs.pii.text import Redactions, redact_text
from gateway.domain.errors import FieldProblem, InvalidRequest, join_path
from gateway.domain.privacy import scrub_properties
from gateway.domain.segment import (
    AliasMessage,
    CallType,
    GroupMessage,
    IdentifyMessage,
    PageMessage,
    ScreenMessage,
    SegmentMessage,
    TrackMessage,
)

# Fixed forever: changing it changes every event id, and JetStream would no
# longer recognise a retried message as a duplicate.
EVENT_ID_NAMESPACE = uuid.UUID("3b0f4a52-9d51-4c0b-8a0e-6f2d9c1e7a44")
GROUP_NAMESPACE = "group"
MAX_CHANNEL_LENGTH = 64

KINDS: dict[CallType, events_pb2.InteractionKind] = {
    CallType.TRACK: events_pb2.INTERACTION_KIND_TRACK,
    CallType.IDENTIFY: events_pb2.INTERACTION_KIND_IDENTIFY,
    CallType.PAGE: events_pb2.INTERACTION_KIND_PAGE,
    CallType.SCREEN: events_pb2.INTERACTION_KIND_SCREEN,
    CallType.ALIAS: events_pb2.INTERACTION_KIND_ALIAS,
    CallType.GROUP: events_pb2.INTERACTION_KIND_GROUP,
}

# Trait keys that are identifiers (Segment reserved traits plus our card).
TRAIT_IDENTIFIERS: tuple[tuple[str, IdType], ...] = (
    ("email", IdType.EMAIL),
    ("phone", IdType.PHONE),
    ("loyaltyCard", IdType.LOYALTY_CARD),
)
# Segment's own externalId types name identifiers we type natively; hashing
# them as EXTERNAL would keep the same email from linking with traits.email.
EXTERNAL_ID_TYPES: dict[str, IdType] = {
    "email": IdType.EMAIL,
    "phone": IdType.PHONE,
    "user_id": IdType.USER_ID,
    "anonymous_id": IdType.ANONYMOUS_ID,
}


def event_id_for(source: str, message_id: str) -> str:
    """CloudEvent id (and Nats-Msg-Id) of a message: the same messageId from the
    same source is the same event, so a retried call is stored once. uuid5
    keeps it bounded however long the messageId is."""
    return str(uuid.uuid5(EVENT_ID_NAMESPACE, f"{source}/{message_id}"))


def previous_id_type(previous_id: str, anonymous_id: str | None) -> IdType:
    """Segment's alias ``previousId`` may be an anonymousId or an older userId.

    It is taken as an anonymous id when it equals the call's anonymousId or is
    a UUID (what analytics.js and the mobile SDKs generate), else as a user id.
    A system that issues UUIDs as user ids will see its alias previousIds typed
    as anonymous ids; both link the same way, only the type differs.
    """
    if anonymous_id is not None and previous_id == anonymous_id:
        return IdType.ANONYMOUS_ID
    try:
        uuid.UUID(previous_id.strip())
    except ValueError:
        return IdType.USER_ID
    return IdType.ANONYMOUS_ID


@dataclass(frozen=True, slots=True)
class Reception:
    """How the gateway received a call: facts not in the JSON body."""

    source: str
    received_at: datetime
    global_privacy_control: bool = False


@dataclass(frozen=True, slots=True)
class RecordedInteraction:
    event: events_pb2.InteractionRecorded
    event_id: str
    occurred_at: datetime
    # Junk identifiers (test@test.com, 010-0000-0000 ...) dropped, by type.
    junk_dropped: Counter[IdType] = field(default_factory=Counter)
    pii_properties_dropped: int = 0
    # Where the dropped placeholders were (field paths).
    junk_fields: tuple[str, ...] = ()
    # The sender's time was implausible; the time of receipt is used.
    timestamp_corrected: bool = False
    # Emails, phones, RRNs replaced in free text, by kind.
    pii_redacted: Counter[str] = field(default_factory=Counter)

    @property
    def junk_count(self) -> int:
        return sum(self.junk_dropped.values())

    @property
    def not_attributable(self) -> bool:
        """No identifier is left: every one sent was a placeholder, so no
        customer can ever be found for the event."""
        return not self.event.identifiers

    def not_attributable_problems(self) -> list[FieldProblem]:
        reason = "not attributable: only placeholder identifiers (e.g. 'undefined')"
        return [FieldProblem(f, reason) for f in self.junk_fields or ("userId",)]


@dataclass(frozen=True, slots=True)
class _Candidate:
    id_type: IdType
    value: str
    field: str
    namespace: str = ""


class InteractionTranslator:
    def __init__(
        self,
        hasher: IdentifierHasher,
        *,
        default_region: str = "KR",
        new_message_id: Callable[[], str] = lambda: str(uuid.uuid4()),
        pii_scan_allow: Iterable[str] = (),
    ) -> None:
        self._hasher = hasher
        self._region = default_region
        self._new_message_id = new_message_id
        self._scan_allow = frozenset(k.casefold() for k in pii_scan_allow)

    def translate(
        self, msg: SegmentMessage, reception: Reception, *, prefix: str = ""
    ) -> RecordedInteraction:
        """Build the event; raises InvalidRequest naming every bad identifier."""
        problems: list[FieldProblem] = []
        candidates = self._candidates(msg, prefix, problems)
        identifiers, junk, junk_fields = self._hash_all(candidates, problems)
        redactions = Redactions()
        name = redact_text(self._name(msg, prefix, problems), found=redactions)
        raw_props = getattr(msg, "properties", None)
        properties, pii_dropped = (
            scrub_properties(
                raw_props,
                field=join_path(prefix, "properties"),
                redactions=redactions,
                allow=self._scan_allow,
            )
            if isinstance(msg, TrackMessage | PageMessage | ScreenMessage)
            else ({}, 0)
        )
        if problems:
            raise InvalidRequest(problems)

        message_id = (msg.message_id or "").strip() or self._new_message_id()
        occurred_at, corrected = _occurred_at(msg, reception.received_at)
        event = events_pb2.InteractionRecorded(
            message_id=message_id,
            kind=KINDS[msg.call_type],
            name=name,
            identifiers=identifiers,
            source=reception.source,
            channel=redact_text(channel_of(msg), found=redactions),
            global_privacy_control=reception.global_privacy_control,
        )
        try:
            event.properties.update(properties)
        except (ValueError, TypeError, OverflowError):
            raise InvalidRequest.one(
                join_path(prefix, "properties"), "holds a value JSON events cannot carry"
            ) from None
        try:
            event.occurred_at.FromDatetime(occurred_at)
        except (ValueError, OverflowError):
            raise InvalidRequest.one(
                join_path(prefix, "timestamp"), "is outside the years 0001 to 9999"
            ) from None
        event.received_at.FromDatetime(reception.received_at)
        return RecordedInteraction(
            event=event,
            event_id=event_id_for(reception.source, message_id),
            occurred_at=occurred_at,
            junk_dropped=junk,
            pii_properties_dropped=pii_dropped,
            junk_fields=tuple(junk_fields),
            timestamp_corrected=corrected,
            pii_redacted=redactions.counts,
        )

    def _candidates(
        self, msg: SegmentMessage, prefix: str, problems: list[FieldProblem]
    ) -> list[_Candidate]:
        found: list[_Candidate] = []
        if msg.user_id and msg.user_id.strip():
            found.append(_Candidate(IdType.USER_ID, msg.user_id, join_path(prefix, "userId")))
        if msg.anonymous_id and msg.anonymous_id.strip():
            found.append(
                _Candidate(IdType.ANONYMOUS_ID, msg.anonymous_id, join_path(prefix, "anonymousId"))
            )
        if isinstance(msg, AliasMessage) and msg.previous_id and msg.previous_id.strip():
            found.append(
                _Candidate(
                    previous_id_type(msg.previous_id, msg.anonymous_id),
                    msg.previous_id,
                    join_path(prefix, "previousId"),
                )
            )
        # Group traits describe the company, so only identify's traits are a person's.
        if isinstance(msg, IdentifyMessage) and msg.traits:
            found += _trait_candidates(msg.traits, join_path(prefix, "traits"), problems)
        context = msg.context
        if context is not None and context.traits:
            found += _trait_candidates(
                context.traits, join_path(prefix, "context.traits"), problems
            )
        if context is not None and context.external_ids:
            for i, ext in enumerate(context.external_ids):
                # "accounts" ids belong to a group, not to the person.
                if ext.collection.strip().lower() not in ("users", ""):
                    continue
                path = join_path(prefix, f"context.externalIds[{i}]")
                native = EXTERNAL_ID_TYPES.get(ext.type.strip().lower())
                if native is not None:
                    found.append(_Candidate(native, ext.id, f"{path}.id"))
                else:
                    found.append(_Candidate(IdType.EXTERNAL, ext.id, f"{path}.id", ext.type))
        return found

    def _hash_all(
        self, candidates: list[_Candidate], problems: list[FieldProblem]
    ) -> tuple[list[identifier_pb2.HashedIdentifier], Counter[IdType], list[str]]:
        hashed: dict[tuple[int, str, str], identifier_pb2.HashedIdentifier] = {}
        junk: Counter[IdType] = Counter()
        junk_fields: list[str] = []
        for c in candidates:
            try:
                value, namespace = normalize_identifier(
                    c.id_type, c.value, c.namespace, field=c.field, default_region=self._region
                )
            except InvalidIdentifier as exc:
                problems.append(FieldProblem(_external_field(exc.field), exc.reason))
                continue
            if is_junk(c.id_type, value):
                junk[c.id_type] += 1
                junk_fields.append(c.field)
                continue
            h = identifier_pb2.HashedIdentifier(
                type=c.id_type.to_proto(),
                hash=self._hasher.hash_normalized(c.id_type, value, namespace),
                namespace=namespace,
            )
            hashed.setdefault((h.type, h.namespace, h.hash), h)
        return list(hashed.values()), junk, junk_fields

    def _name(self, msg: SegmentMessage, prefix: str, problems: list[FieldProblem]) -> str:
        if isinstance(msg, TrackMessage):
            return msg.event.strip()
        if isinstance(msg, PageMessage | ScreenMessage):
            return (msg.name or "").strip()
        if isinstance(msg, GroupMessage) and msg.group_id:
            # Group ids can be a customer's company or household: keyed hash only.
            try:
                return str(
                    self._hasher.hash(
                        IdType.EXTERNAL,
                        msg.group_id,
                        GROUP_NAMESPACE,
                        field=join_path(prefix, "groupId"),
                    )
                )
            except InvalidIdentifier as exc:
                problems.append(FieldProblem(exc.field, exc.reason))
        return ""


def _trait_candidates(
    traits: dict[str, object], path: str, problems: list[FieldProblem]
) -> list[_Candidate]:
    found = []
    for key, id_type in TRAIT_IDENTIFIERS:
        value = traits.get(key)
        # Forms send "" or null for a field the customer left empty: not an identifier.
        if value is None or (isinstance(value, str) and not value.strip()):
            continue
        field_path = join_path(path, key)
        if (
            isinstance(value, int)
            and not isinstance(value, bool)
            and id_type is IdType.LOYALTY_CARD
        ):
            value = str(value)
        if not isinstance(value, str):
            problems.append(FieldProblem(field_path, "must be a string"))
            continue
        found.append(_Candidate(id_type, value, field_path))
    return found


def _external_field(field: str) -> str:
    # normalize_identifier reports a bad namespace as "<field>.namespace";
    # on the wire the namespace of an external id is its "type".
    if field.endswith(".id.namespace"):
        return field.removesuffix(".id.namespace") + ".type"
    return field


# Plausible event times (docs/adr/0037): nothing this platform records
# happened before 2000, and nothing happens after it is received (a little
# slack for clocks that disagree by less than a minute).
EARLIEST_EVENT_TIME = datetime(2000, 1, 1, tzinfo=UTC)
MAX_FUTURE = timedelta(minutes=1)


def occurred_at_of(msg: SegmentMessage, received_at: datetime) -> datetime:
    """When it happened: ``timestamp`` (else ``originalTimestamp``), corrected for
    the sender's clock skew as Segment does when ``sentAt`` is given:
    ``received_at - (sentAt - timestamp)``. Without either, when it arrived.
    An implausible result (before 2000, or after receipt) is a broken clock:
    the time of receipt is used instead (``timestamp_corrected``)."""
    return _occurred_at(msg, received_at)[0]


def _occurred_at(msg: SegmentMessage, received_at: datetime) -> tuple[datetime, bool]:
    base = msg.timestamp or msg.original_timestamp
    if base is None:
        return received_at, False
    when = base
    if msg.sent_at is not None:
        try:
            when = received_at - (msg.sent_at - base)
        except (OverflowError, ValueError):
            when = base
    if when < EARLIEST_EVENT_TIME or when > received_at + MAX_FUTURE:
        return received_at, True
    return when, False


def channel_of(msg: SegmentMessage) -> str:
    context = msg.context
    library = context.library if context is not None else None
    for candidate in (
        context.channel if context is not None else None,
        msg.channel,
        library.name if library is not None else None,
    ):
        if candidate and candidate.strip():
            return candidate.strip()[:MAX_CHANNEL_LENGTH]
    return ""
