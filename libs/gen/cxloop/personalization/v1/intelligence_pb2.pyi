import datetime

from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GetTraitsRequest(_message.Message):
    __slots__ = ("customer_id",)
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    def __init__(self, customer_id: _Optional[str] = ...) -> None: ...

class GetTraitsResponse(_message.Message):
    __slots__ = ("customer_id", "traits", "lifecycle_stage", "lifecycle_rule", "computed_at")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    TRAITS_FIELD_NUMBER: _ClassVar[int]
    LIFECYCLE_STAGE_FIELD_NUMBER: _ClassVar[int]
    LIFECYCLE_RULE_FIELD_NUMBER: _ClassVar[int]
    COMPUTED_AT_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    traits: _struct_pb2.Struct
    lifecycle_stage: str
    lifecycle_rule: str
    computed_at: _timestamp_pb2.Timestamp
    def __init__(self, customer_id: _Optional[str] = ..., traits: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., lifecycle_stage: _Optional[str] = ..., lifecycle_rule: _Optional[str] = ..., computed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class SegmentDefinition(_message.Message):
    __slots__ = ("segment_id", "name", "rule", "size")
    SEGMENT_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    RULE_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    segment_id: str
    name: str
    rule: str
    size: int
    def __init__(self, segment_id: _Optional[str] = ..., name: _Optional[str] = ..., rule: _Optional[str] = ..., size: _Optional[int] = ...) -> None: ...

class DefineSegmentRequest(_message.Message):
    __slots__ = ("segment",)
    SEGMENT_FIELD_NUMBER: _ClassVar[int]
    segment: SegmentDefinition
    def __init__(self, segment: _Optional[_Union[SegmentDefinition, _Mapping]] = ...) -> None: ...

class DefineSegmentResponse(_message.Message):
    __slots__ = ("segment",)
    SEGMENT_FIELD_NUMBER: _ClassVar[int]
    segment: SegmentDefinition
    def __init__(self, segment: _Optional[_Union[SegmentDefinition, _Mapping]] = ...) -> None: ...

class ListSegmentDefinitionsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListSegmentDefinitionsResponse(_message.Message):
    __slots__ = ("segments",)
    SEGMENTS_FIELD_NUMBER: _ClassVar[int]
    segments: _containers.RepeatedCompositeFieldContainer[SegmentDefinition]
    def __init__(self, segments: _Optional[_Iterable[_Union[SegmentDefinition, _Mapping]]] = ...) -> None: ...

class PreviewSegmentRequest(_message.Message):
    __slots__ = ("rule", "sample_size")
    RULE_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_SIZE_FIELD_NUMBER: _ClassVar[int]
    rule: str
    sample_size: int
    def __init__(self, rule: _Optional[str] = ..., sample_size: _Optional[int] = ...) -> None: ...

class PreviewSegmentResponse(_message.Message):
    __slots__ = ("size", "sample_customer_ids", "evaluated")
    SIZE_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_CUSTOMER_IDS_FIELD_NUMBER: _ClassVar[int]
    EVALUATED_FIELD_NUMBER: _ClassVar[int]
    size: int
    sample_customer_ids: _containers.RepeatedScalarFieldContainer[str]
    evaluated: int
    def __init__(self, size: _Optional[int] = ..., sample_customer_ids: _Optional[_Iterable[str]] = ..., evaluated: _Optional[int] = ...) -> None: ...

class GetSegmentsRequest(_message.Message):
    __slots__ = ("customer_id",)
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    def __init__(self, customer_id: _Optional[str] = ...) -> None: ...

class ExportSegmentMembersResponse(_message.Message):
    __slots__ = ("member",)
    MEMBER_FIELD_NUMBER: _ClassVar[int]
    member: SegmentMember
    def __init__(self, member: _Optional[_Union[SegmentMember, _Mapping]] = ...) -> None: ...

class SegmentMember(_message.Message):
    __slots__ = ("segment_id", "customer_id", "entered_at")
    SEGMENT_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    ENTERED_AT_FIELD_NUMBER: _ClassVar[int]
    segment_id: str
    customer_id: str
    entered_at: _timestamp_pb2.Timestamp
    def __init__(self, segment_id: _Optional[str] = ..., customer_id: _Optional[str] = ..., entered_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class GetSegmentsResponse(_message.Message):
    __slots__ = ("segments",)
    SEGMENTS_FIELD_NUMBER: _ClassVar[int]
    segments: _containers.RepeatedCompositeFieldContainer[SegmentMember]
    def __init__(self, segments: _Optional[_Iterable[_Union[SegmentMember, _Mapping]]] = ...) -> None: ...

class ListSegmentMembersRequest(_message.Message):
    __slots__ = ("segment_id", "page_size", "page_token")
    SEGMENT_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    segment_id: str
    page_size: int
    page_token: str
    def __init__(self, segment_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListSegmentMembersResponse(_message.Message):
    __slots__ = ("members", "next_page_token", "total")
    MEMBERS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    members: _containers.RepeatedCompositeFieldContainer[SegmentMember]
    next_page_token: str
    total: int
    def __init__(self, members: _Optional[_Iterable[_Union[SegmentMember, _Mapping]]] = ..., next_page_token: _Optional[str] = ..., total: _Optional[int] = ...) -> None: ...

class ExportSegmentMembersRequest(_message.Message):
    __slots__ = ("segment_id",)
    SEGMENT_ID_FIELD_NUMBER: _ClassVar[int]
    segment_id: str
    def __init__(self, segment_id: _Optional[str] = ...) -> None: ...

class GetPredictionsRequest(_message.Message):
    __slots__ = ("customer_id",)
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    def __init__(self, customer_id: _Optional[str] = ...) -> None: ...

class CustomerPredictions(_message.Message):
    __slots__ = ("customer_id", "predicted_clv", "expected_purchases", "probability_alive", "churn_probability", "clv_model_version", "churn_model_version", "computed_at", "clv_horizon_days", "churn_horizon_days")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    PREDICTED_CLV_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_PURCHASES_FIELD_NUMBER: _ClassVar[int]
    PROBABILITY_ALIVE_FIELD_NUMBER: _ClassVar[int]
    CHURN_PROBABILITY_FIELD_NUMBER: _ClassVar[int]
    CLV_MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    CHURN_MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    COMPUTED_AT_FIELD_NUMBER: _ClassVar[int]
    CLV_HORIZON_DAYS_FIELD_NUMBER: _ClassVar[int]
    CHURN_HORIZON_DAYS_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    predicted_clv: float
    expected_purchases: float
    probability_alive: float
    churn_probability: float
    clv_model_version: str
    churn_model_version: str
    computed_at: _timestamp_pb2.Timestamp
    clv_horizon_days: int
    churn_horizon_days: int
    def __init__(self, customer_id: _Optional[str] = ..., predicted_clv: _Optional[float] = ..., expected_purchases: _Optional[float] = ..., probability_alive: _Optional[float] = ..., churn_probability: _Optional[float] = ..., clv_model_version: _Optional[str] = ..., churn_model_version: _Optional[str] = ..., computed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., clv_horizon_days: _Optional[int] = ..., churn_horizon_days: _Optional[int] = ...) -> None: ...

class GetPredictionsResponse(_message.Message):
    __slots__ = ("predictions",)
    PREDICTIONS_FIELD_NUMBER: _ClassVar[int]
    predictions: CustomerPredictions
    def __init__(self, predictions: _Optional[_Union[CustomerPredictions, _Mapping]] = ...) -> None: ...

class RefreshPredictionsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ModelVersion(_message.Message):
    __slots__ = ("version", "model", "metrics", "trained_at")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    TRAINED_AT_FIELD_NUMBER: _ClassVar[int]
    version: str
    model: str
    metrics: _struct_pb2.Struct
    trained_at: _timestamp_pb2.Timestamp
    def __init__(self, version: _Optional[str] = ..., model: _Optional[str] = ..., metrics: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., trained_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class RefreshPredictionsResponse(_message.Message):
    __slots__ = ("models", "customers")
    MODELS_FIELD_NUMBER: _ClassVar[int]
    CUSTOMERS_FIELD_NUMBER: _ClassVar[int]
    models: _containers.RepeatedCompositeFieldContainer[ModelVersion]
    customers: int
    def __init__(self, models: _Optional[_Iterable[_Union[ModelVersion, _Mapping]]] = ..., customers: _Optional[int] = ...) -> None: ...

class TriggerDefinition(_message.Message):
    __slots__ = ("trigger_id", "on", "unless", "delay_seconds", "action", "channels", "parameters", "max_per_customer", "cap_window_seconds", "disabled")
    TRIGGER_ID_FIELD_NUMBER: _ClassVar[int]
    ON_FIELD_NUMBER: _ClassVar[int]
    UNLESS_FIELD_NUMBER: _ClassVar[int]
    DELAY_SECONDS_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    MAX_PER_CUSTOMER_FIELD_NUMBER: _ClassVar[int]
    CAP_WINDOW_SECONDS_FIELD_NUMBER: _ClassVar[int]
    DISABLED_FIELD_NUMBER: _ClassVar[int]
    trigger_id: str
    on: str
    unless: str
    delay_seconds: int
    action: str
    channels: _containers.RepeatedScalarFieldContainer[str]
    parameters: _struct_pb2.Struct
    max_per_customer: int
    cap_window_seconds: int
    disabled: bool
    def __init__(self, trigger_id: _Optional[str] = ..., on: _Optional[str] = ..., unless: _Optional[str] = ..., delay_seconds: _Optional[int] = ..., action: _Optional[str] = ..., channels: _Optional[_Iterable[str]] = ..., parameters: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., max_per_customer: _Optional[int] = ..., cap_window_seconds: _Optional[int] = ..., disabled: _Optional[bool] = ...) -> None: ...

class DefineTriggerRequest(_message.Message):
    __slots__ = ("trigger",)
    TRIGGER_FIELD_NUMBER: _ClassVar[int]
    trigger: TriggerDefinition
    def __init__(self, trigger: _Optional[_Union[TriggerDefinition, _Mapping]] = ...) -> None: ...

class DefineTriggerResponse(_message.Message):
    __slots__ = ("trigger",)
    TRIGGER_FIELD_NUMBER: _ClassVar[int]
    trigger: TriggerDefinition
    def __init__(self, trigger: _Optional[_Union[TriggerDefinition, _Mapping]] = ...) -> None: ...
