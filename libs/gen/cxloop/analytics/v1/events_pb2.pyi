import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AlertDirection(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ALERT_DIRECTION_UNSPECIFIED: _ClassVar[AlertDirection]
    ALERT_DIRECTION_DROP: _ClassVar[AlertDirection]
    ALERT_DIRECTION_SPIKE: _ClassVar[AlertDirection]
ALERT_DIRECTION_UNSPECIFIED: AlertDirection
ALERT_DIRECTION_DROP: AlertDirection
ALERT_DIRECTION_SPIKE: AlertDirection

class KpiPoint(_message.Message):
    __slots__ = ("window_start", "value")
    WINDOW_START_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    window_start: _timestamp_pb2.Timestamp
    value: float
    def __init__(self, window_start: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., value: _Optional[float] = ...) -> None: ...

class AlertRaised(_message.Message):
    __slots__ = ("alert_id", "kpi", "breakdown", "breakdown_value", "window_start", "window_end", "observed_value", "expected_value", "lower_limit", "upper_limit", "direction", "score", "recent", "raised_at")
    ALERT_ID_FIELD_NUMBER: _ClassVar[int]
    KPI_FIELD_NUMBER: _ClassVar[int]
    BREAKDOWN_FIELD_NUMBER: _ClassVar[int]
    BREAKDOWN_VALUE_FIELD_NUMBER: _ClassVar[int]
    WINDOW_START_FIELD_NUMBER: _ClassVar[int]
    WINDOW_END_FIELD_NUMBER: _ClassVar[int]
    OBSERVED_VALUE_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_VALUE_FIELD_NUMBER: _ClassVar[int]
    LOWER_LIMIT_FIELD_NUMBER: _ClassVar[int]
    UPPER_LIMIT_FIELD_NUMBER: _ClassVar[int]
    DIRECTION_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    RECENT_FIELD_NUMBER: _ClassVar[int]
    RAISED_AT_FIELD_NUMBER: _ClassVar[int]
    alert_id: str
    kpi: str
    breakdown: str
    breakdown_value: str
    window_start: _timestamp_pb2.Timestamp
    window_end: _timestamp_pb2.Timestamp
    observed_value: float
    expected_value: float
    lower_limit: float
    upper_limit: float
    direction: AlertDirection
    score: float
    recent: _containers.RepeatedCompositeFieldContainer[KpiPoint]
    raised_at: _timestamp_pb2.Timestamp
    def __init__(self, alert_id: _Optional[str] = ..., kpi: _Optional[str] = ..., breakdown: _Optional[str] = ..., breakdown_value: _Optional[str] = ..., window_start: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., window_end: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., observed_value: _Optional[float] = ..., expected_value: _Optional[float] = ..., lower_limit: _Optional[float] = ..., upper_limit: _Optional[float] = ..., direction: _Optional[_Union[AlertDirection, str]] = ..., score: _Optional[float] = ..., recent: _Optional[_Iterable[_Union[KpiPoint, _Mapping]]] = ..., raised_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
