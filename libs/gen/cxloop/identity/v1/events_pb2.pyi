from cxloop.common.v1 import identifier_pb2 as _identifier_pb2
from cxloop.gateway.v1 import events_pb2 as _events_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ProfileCreated(_message.Message):
    __slots__ = ("customer_id", "identifiers", "cause_event_id", "observed_traits")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    IDENTIFIERS_FIELD_NUMBER: _ClassVar[int]
    CAUSE_EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    OBSERVED_TRAITS_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    identifiers: _containers.RepeatedCompositeFieldContainer[_identifier_pb2.HashedIdentifier]
    cause_event_id: str
    observed_traits: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, customer_id: _Optional[str] = ..., identifiers: _Optional[_Iterable[_Union[_identifier_pb2.HashedIdentifier, _Mapping]]] = ..., cause_event_id: _Optional[str] = ..., observed_traits: _Optional[_Iterable[str]] = ...) -> None: ...

class ProfileUpdated(_message.Message):
    __slots__ = ("customer_id", "added_identifiers", "cause_event_id", "removed_identifiers", "observed_traits")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    ADDED_IDENTIFIERS_FIELD_NUMBER: _ClassVar[int]
    CAUSE_EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    REMOVED_IDENTIFIERS_FIELD_NUMBER: _ClassVar[int]
    OBSERVED_TRAITS_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    added_identifiers: _containers.RepeatedCompositeFieldContainer[_identifier_pb2.HashedIdentifier]
    cause_event_id: str
    removed_identifiers: _containers.RepeatedCompositeFieldContainer[_identifier_pb2.HashedIdentifier]
    observed_traits: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, customer_id: _Optional[str] = ..., added_identifiers: _Optional[_Iterable[_Union[_identifier_pb2.HashedIdentifier, _Mapping]]] = ..., cause_event_id: _Optional[str] = ..., removed_identifiers: _Optional[_Iterable[_Union[_identifier_pb2.HashedIdentifier, _Mapping]]] = ..., observed_traits: _Optional[_Iterable[str]] = ...) -> None: ...

class ProfileMerged(_message.Message):
    __slots__ = ("surviving_customer_id", "merged_customer_ids", "cause_event_id", "reason")
    SURVIVING_CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    MERGED_CUSTOMER_IDS_FIELD_NUMBER: _ClassVar[int]
    CAUSE_EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    surviving_customer_id: str
    merged_customer_ids: _containers.RepeatedScalarFieldContainer[str]
    cause_event_id: str
    reason: str
    def __init__(self, surviving_customer_id: _Optional[str] = ..., merged_customer_ids: _Optional[_Iterable[str]] = ..., cause_event_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class ProfileSplit(_message.Message):
    __slots__ = ("original_customer_id", "resulting_customer_ids", "reason", "moved_identifiers", "cause_event_id")
    ORIGINAL_CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    RESULTING_CUSTOMER_IDS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    MOVED_IDENTIFIERS_FIELD_NUMBER: _ClassVar[int]
    CAUSE_EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    original_customer_id: str
    resulting_customer_ids: _containers.RepeatedScalarFieldContainer[str]
    reason: str
    moved_identifiers: _containers.RepeatedCompositeFieldContainer[_identifier_pb2.HashedIdentifier]
    cause_event_id: str
    def __init__(self, original_customer_id: _Optional[str] = ..., resulting_customer_ids: _Optional[_Iterable[str]] = ..., reason: _Optional[str] = ..., moved_identifiers: _Optional[_Iterable[_Union[_identifier_pb2.HashedIdentifier, _Mapping]]] = ..., cause_event_id: _Optional[str] = ...) -> None: ...

class InteractionResolved(_message.Message):
    __slots__ = ("customer_id", "interaction")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    INTERACTION_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    interaction: _events_pb2.InteractionRecorded
    def __init__(self, customer_id: _Optional[str] = ..., interaction: _Optional[_Union[_events_pb2.InteractionRecorded, _Mapping]] = ...) -> None: ...
