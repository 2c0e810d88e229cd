import datetime

from cxloop.common.v1 import identifier_pb2 as _identifier_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class InteractionKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    INTERACTION_KIND_UNSPECIFIED: _ClassVar[InteractionKind]
    INTERACTION_KIND_TRACK: _ClassVar[InteractionKind]
    INTERACTION_KIND_IDENTIFY: _ClassVar[InteractionKind]
    INTERACTION_KIND_PAGE: _ClassVar[InteractionKind]
    INTERACTION_KIND_SCREEN: _ClassVar[InteractionKind]
    INTERACTION_KIND_ALIAS: _ClassVar[InteractionKind]
    INTERACTION_KIND_GROUP: _ClassVar[InteractionKind]
    INTERACTION_KIND_PRIVACY_SIGNAL: _ClassVar[InteractionKind]
INTERACTION_KIND_UNSPECIFIED: InteractionKind
INTERACTION_KIND_TRACK: InteractionKind
INTERACTION_KIND_IDENTIFY: InteractionKind
INTERACTION_KIND_PAGE: InteractionKind
INTERACTION_KIND_SCREEN: InteractionKind
INTERACTION_KIND_ALIAS: InteractionKind
INTERACTION_KIND_GROUP: InteractionKind
INTERACTION_KIND_PRIVACY_SIGNAL: InteractionKind

class InteractionRecorded(_message.Message):
    __slots__ = ("message_id", "kind", "name", "identifiers", "properties", "occurred_at", "received_at", "source", "channel", "global_privacy_control")
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    IDENTIFIERS_FIELD_NUMBER: _ClassVar[int]
    PROPERTIES_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    RECEIVED_AT_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    GLOBAL_PRIVACY_CONTROL_FIELD_NUMBER: _ClassVar[int]
    message_id: str
    kind: InteractionKind
    name: str
    identifiers: _containers.RepeatedCompositeFieldContainer[_identifier_pb2.HashedIdentifier]
    properties: _struct_pb2.Struct
    occurred_at: _timestamp_pb2.Timestamp
    received_at: _timestamp_pb2.Timestamp
    source: str
    channel: str
    global_privacy_control: bool
    def __init__(self, message_id: _Optional[str] = ..., kind: _Optional[_Union[InteractionKind, str]] = ..., name: _Optional[str] = ..., identifiers: _Optional[_Iterable[_Union[_identifier_pb2.HashedIdentifier, _Mapping]]] = ..., properties: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., occurred_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., received_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., source: _Optional[str] = ..., channel: _Optional[str] = ..., global_privacy_control: _Optional[bool] = ...) -> None: ...
