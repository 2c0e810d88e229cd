import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AuditAction(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    AUDIT_ACTION_UNSPECIFIED: _ClassVar[AuditAction]
    AUDIT_ACTION_READ: _ClassVar[AuditAction]
    AUDIT_ACTION_CHANGE: _ClassVar[AuditAction]
    AUDIT_ACTION_EXPORT: _ClassVar[AuditAction]
    AUDIT_ACTION_ERASE: _ClassVar[AuditAction]

class AuditOutcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    AUDIT_OUTCOME_UNSPECIFIED: _ClassVar[AuditOutcome]
    AUDIT_OUTCOME_OK: _ClassVar[AuditOutcome]
    AUDIT_OUTCOME_NOT_FOUND: _ClassVar[AuditOutcome]
AUDIT_ACTION_UNSPECIFIED: AuditAction
AUDIT_ACTION_READ: AuditAction
AUDIT_ACTION_CHANGE: AuditAction
AUDIT_ACTION_EXPORT: AuditAction
AUDIT_ACTION_ERASE: AuditAction
AUDIT_OUTCOME_UNSPECIFIED: AuditOutcome
AUDIT_OUTCOME_OK: AuditOutcome
AUDIT_OUTCOME_NOT_FOUND: AuditOutcome

class AuditEntry(_message.Message):
    __slots__ = ("audit_id", "service", "occurred_at", "actor", "on_behalf_of", "action", "resource", "subject", "reason", "outcome", "trace_id", "fields", "operation", "subject_count")
    AUDIT_ID_FIELD_NUMBER: _ClassVar[int]
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    ON_BEHALF_OF_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    TRACE_ID_FIELD_NUMBER: _ClassVar[int]
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    OPERATION_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_COUNT_FIELD_NUMBER: _ClassVar[int]
    audit_id: str
    service: str
    occurred_at: _timestamp_pb2.Timestamp
    actor: str
    on_behalf_of: str
    action: AuditAction
    resource: str
    subject: str
    reason: str
    outcome: AuditOutcome
    trace_id: str
    fields: _containers.RepeatedScalarFieldContainer[str]
    operation: str
    subject_count: int
    def __init__(self, audit_id: _Optional[str] = ..., service: _Optional[str] = ..., occurred_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., actor: _Optional[str] = ..., on_behalf_of: _Optional[str] = ..., action: _Optional[_Union[AuditAction, str]] = ..., resource: _Optional[str] = ..., subject: _Optional[str] = ..., reason: _Optional[str] = ..., outcome: _Optional[_Union[AuditOutcome, str]] = ..., trace_id: _Optional[str] = ..., fields: _Optional[_Iterable[str]] = ..., operation: _Optional[str] = ..., subject_count: _Optional[int] = ...) -> None: ...
