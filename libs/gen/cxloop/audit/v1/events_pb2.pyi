from cxloop.audit.v1 import audit_pb2 as _audit_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AuditRecorded(_message.Message):
    __slots__ = ("entry",)
    ENTRY_FIELD_NUMBER: _ClassVar[int]
    entry: _audit_pb2.AuditEntry
    def __init__(self, entry: _Optional[_Union[_audit_pb2.AuditEntry, _Mapping]] = ...) -> None: ...
