from cxloop.consent.v1 import events_pb2 as _events_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GetRetentionPolicyRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetRetentionPolicyResponse(_message.Message):
    __slots__ = ("policy",)
    POLICY_FIELD_NUMBER: _ClassVar[int]
    policy: _events_pb2.RetentionPolicy
    def __init__(self, policy: _Optional[_Union[_events_pb2.RetentionPolicy, _Mapping]] = ...) -> None: ...

class SetRetentionPolicyRequest(_message.Message):
    __slots__ = ("category_days", "purpose_days", "actor")
    class CategoryDaysEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    class PurposeDaysEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    CATEGORY_DAYS_FIELD_NUMBER: _ClassVar[int]
    PURPOSE_DAYS_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    category_days: _containers.ScalarMap[str, int]
    purpose_days: _containers.ScalarMap[str, int]
    actor: str
    def __init__(self, category_days: _Optional[_Mapping[str, int]] = ..., purpose_days: _Optional[_Mapping[str, int]] = ..., actor: _Optional[str] = ...) -> None: ...

class SetRetentionPolicyResponse(_message.Message):
    __slots__ = ("policy",)
    POLICY_FIELD_NUMBER: _ClassVar[int]
    policy: _events_pb2.RetentionPolicy
    def __init__(self, policy: _Optional[_Union[_events_pb2.RetentionPolicy, _Mapping]] = ...) -> None: ...
