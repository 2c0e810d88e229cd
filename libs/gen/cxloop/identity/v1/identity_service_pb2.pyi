import datetime

from cxloop.common.v1 import identifier_pb2 as _identifier_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ResolveRequest(_message.Message):
    __slots__ = ("identifiers", "source")
    IDENTIFIERS_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    identifiers: _containers.RepeatedCompositeFieldContainer[_identifier_pb2.Identifier]
    source: str
    def __init__(self, identifiers: _Optional[_Iterable[_Union[_identifier_pb2.Identifier, _Mapping]]] = ..., source: _Optional[str] = ...) -> None: ...

class ResolveResponse(_message.Message):
    __slots__ = ("customer_id", "created")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    created: bool
    def __init__(self, customer_id: _Optional[str] = ..., created: _Optional[bool] = ...) -> None: ...

class GetProfileRequest(_message.Message):
    __slots__ = ("customer_id",)
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    def __init__(self, customer_id: _Optional[str] = ...) -> None: ...

class GetProfileResponse(_message.Message):
    __slots__ = ("profile",)
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    profile: Profile
    def __init__(self, profile: _Optional[_Union[Profile, _Mapping]] = ...) -> None: ...

class Profile(_message.Message):
    __slots__ = ("customer_id", "identifiers", "merged_customer_ids", "created_at", "updated_at", "interaction_count", "last_seen_at")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    IDENTIFIERS_FIELD_NUMBER: _ClassVar[int]
    MERGED_CUSTOMER_IDS_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    INTERACTION_COUNT_FIELD_NUMBER: _ClassVar[int]
    LAST_SEEN_AT_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    identifiers: _containers.RepeatedCompositeFieldContainer[_identifier_pb2.HashedIdentifier]
    merged_customer_ids: _containers.RepeatedScalarFieldContainer[str]
    created_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    interaction_count: int
    last_seen_at: _timestamp_pb2.Timestamp
    def __init__(self, customer_id: _Optional[str] = ..., identifiers: _Optional[_Iterable[_Union[_identifier_pb2.HashedIdentifier, _Mapping]]] = ..., merged_customer_ids: _Optional[_Iterable[str]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., interaction_count: _Optional[int] = ..., last_seen_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class LookupByIdentifierRequest(_message.Message):
    __slots__ = ("identifier",)
    IDENTIFIER_FIELD_NUMBER: _ClassVar[int]
    identifier: _identifier_pb2.Identifier
    def __init__(self, identifier: _Optional[_Union[_identifier_pb2.Identifier, _Mapping]] = ...) -> None: ...

class LookupByIdentifierResponse(_message.Message):
    __slots__ = ("customer_id", "profile")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    profile: Profile
    def __init__(self, customer_id: _Optional[str] = ..., profile: _Optional[_Union[Profile, _Mapping]] = ...) -> None: ...

class ExplainRequest(_message.Message):
    __slots__ = ("identifier_a", "identifier_b")
    IDENTIFIER_A_FIELD_NUMBER: _ClassVar[int]
    IDENTIFIER_B_FIELD_NUMBER: _ClassVar[int]
    identifier_a: _identifier_pb2.Identifier
    identifier_b: _identifier_pb2.Identifier
    def __init__(self, identifier_a: _Optional[_Union[_identifier_pb2.Identifier, _Mapping]] = ..., identifier_b: _Optional[_Union[_identifier_pb2.Identifier, _Mapping]] = ...) -> None: ...

class ExplainResponse(_message.Message):
    __slots__ = ("same_customer", "customer_id_a", "customer_id_b", "path")
    SAME_CUSTOMER_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_A_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_B_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    same_customer: bool
    customer_id_a: str
    customer_id_b: str
    path: _containers.RepeatedCompositeFieldContainer[ExplainStep]
    def __init__(self, same_customer: _Optional[bool] = ..., customer_id_a: _Optional[str] = ..., customer_id_b: _Optional[str] = ..., path: _Optional[_Iterable[_Union[ExplainStep, _Mapping]]] = ...) -> None: ...

class ExplainStep(_message.Message):
    __slots__ = ("kind", "identifier", "customer_id", "from_customer_id", "event_id", "source", "rule", "at")
    class Kind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        KIND_UNSPECIFIED: _ClassVar[ExplainStep.Kind]
        KIND_LINK: _ClassVar[ExplainStep.Kind]
        KIND_MERGE: _ClassVar[ExplainStep.Kind]
        KIND_BLOCKED: _ClassVar[ExplainStep.Kind]
    KIND_UNSPECIFIED: ExplainStep.Kind
    KIND_LINK: ExplainStep.Kind
    KIND_MERGE: ExplainStep.Kind
    KIND_BLOCKED: ExplainStep.Kind
    KIND_FIELD_NUMBER: _ClassVar[int]
    IDENTIFIER_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    FROM_CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    RULE_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    kind: ExplainStep.Kind
    identifier: _identifier_pb2.HashedIdentifier
    customer_id: str
    from_customer_id: str
    event_id: str
    source: str
    rule: str
    at: _timestamp_pb2.Timestamp
    def __init__(self, kind: _Optional[_Union[ExplainStep.Kind, str]] = ..., identifier: _Optional[_Union[_identifier_pb2.HashedIdentifier, _Mapping]] = ..., customer_id: _Optional[str] = ..., from_customer_id: _Optional[str] = ..., event_id: _Optional[str] = ..., source: _Optional[str] = ..., rule: _Optional[str] = ..., at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class MergeRequest(_message.Message):
    __slots__ = ("customer_ids", "reason", "actor")
    CUSTOMER_IDS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    customer_ids: _containers.RepeatedScalarFieldContainer[str]
    reason: str
    actor: str
    def __init__(self, customer_ids: _Optional[_Iterable[str]] = ..., reason: _Optional[str] = ..., actor: _Optional[str] = ...) -> None: ...

class MergeResponse(_message.Message):
    __slots__ = ("surviving_customer_id", "merged_customer_ids")
    SURVIVING_CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    MERGED_CUSTOMER_IDS_FIELD_NUMBER: _ClassVar[int]
    surviving_customer_id: str
    merged_customer_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, surviving_customer_id: _Optional[str] = ..., merged_customer_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class SplitRequest(_message.Message):
    __slots__ = ("customer_id", "identifiers", "hashed_identifiers", "reason", "actor")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    IDENTIFIERS_FIELD_NUMBER: _ClassVar[int]
    HASHED_IDENTIFIERS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    identifiers: _containers.RepeatedCompositeFieldContainer[_identifier_pb2.Identifier]
    hashed_identifiers: _containers.RepeatedCompositeFieldContainer[_identifier_pb2.HashedIdentifier]
    reason: str
    actor: str
    def __init__(self, customer_id: _Optional[str] = ..., identifiers: _Optional[_Iterable[_Union[_identifier_pb2.Identifier, _Mapping]]] = ..., hashed_identifiers: _Optional[_Iterable[_Union[_identifier_pb2.HashedIdentifier, _Mapping]]] = ..., reason: _Optional[str] = ..., actor: _Optional[str] = ...) -> None: ...

class SplitResponse(_message.Message):
    __slots__ = ("customer_id", "new_customer_id")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    NEW_CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    new_customer_id: str
    def __init__(self, customer_id: _Optional[str] = ..., new_customer_id: _Optional[str] = ...) -> None: ...

class GetStatsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetStatsResponse(_message.Message):
    __slots__ = ("customers", "identifiers_by_type", "merges", "blocked_links", "shared_devices", "events_without_identifiers", "splits")
    class IdentifiersByTypeEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    CUSTOMERS_FIELD_NUMBER: _ClassVar[int]
    IDENTIFIERS_BY_TYPE_FIELD_NUMBER: _ClassVar[int]
    MERGES_FIELD_NUMBER: _ClassVar[int]
    BLOCKED_LINKS_FIELD_NUMBER: _ClassVar[int]
    SHARED_DEVICES_FIELD_NUMBER: _ClassVar[int]
    EVENTS_WITHOUT_IDENTIFIERS_FIELD_NUMBER: _ClassVar[int]
    SPLITS_FIELD_NUMBER: _ClassVar[int]
    customers: int
    identifiers_by_type: _containers.ScalarMap[str, int]
    merges: int
    blocked_links: int
    shared_devices: int
    events_without_identifiers: int
    splits: int
    def __init__(self, customers: _Optional[int] = ..., identifiers_by_type: _Optional[_Mapping[str, int]] = ..., merges: _Optional[int] = ..., blocked_links: _Optional[int] = ..., shared_devices: _Optional[int] = ..., events_without_identifiers: _Optional[int] = ..., splits: _Optional[int] = ...) -> None: ...
