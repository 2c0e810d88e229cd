import datetime

from google.protobuf import struct_pb2 as _struct_pb2
from cxloop.personalization.v1 import resources_pb2 as _resources_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SegmentExitReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SEGMENT_EXIT_REASON_UNSPECIFIED: _ClassVar[SegmentExitReason]
    SEGMENT_EXIT_REASON_NO_LONGER_MATCHES: _ClassVar[SegmentExitReason]
    SEGMENT_EXIT_REASON_CONSENT_WITHDRAWN: _ClassVar[SegmentExitReason]
    SEGMENT_EXIT_REASON_EXPIRED: _ClassVar[SegmentExitReason]
    SEGMENT_EXIT_REASON_SEGMENT_ARCHIVED: _ClassVar[SegmentExitReason]

class ActionKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ACTION_KIND_UNSPECIFIED: _ClassVar[ActionKind]
    ACTION_KIND_SEND_MESSAGE: _ClassVar[ActionKind]
    ACTION_KIND_SHOW_OFFER: _ClassVar[ActionKind]
    ACTION_KIND_AWARD_POINTS: _ClassVar[ActionKind]
    ACTION_KIND_ISSUE_COUPON: _ClassVar[ActionKind]
    ACTION_KIND_SEND_SURVEY: _ClassVar[ActionKind]
    ACTION_KIND_OPEN_FOLLOW_UP: _ClassVar[ActionKind]
SEGMENT_EXIT_REASON_UNSPECIFIED: SegmentExitReason
SEGMENT_EXIT_REASON_NO_LONGER_MATCHES: SegmentExitReason
SEGMENT_EXIT_REASON_CONSENT_WITHDRAWN: SegmentExitReason
SEGMENT_EXIT_REASON_EXPIRED: SegmentExitReason
SEGMENT_EXIT_REASON_SEGMENT_ARCHIVED: SegmentExitReason
ACTION_KIND_UNSPECIFIED: ActionKind
ACTION_KIND_SEND_MESSAGE: ActionKind
ACTION_KIND_SHOW_OFFER: ActionKind
ACTION_KIND_AWARD_POINTS: ActionKind
ACTION_KIND_ISSUE_COUPON: ActionKind
ACTION_KIND_SEND_SURVEY: ActionKind
ACTION_KIND_OPEN_FOLLOW_UP: ActionKind

class SegmentEntered(_message.Message):
    __slots__ = ("customer_id", "segment_id", "entered_at", "cause_event_id")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    SEGMENT_ID_FIELD_NUMBER: _ClassVar[int]
    ENTERED_AT_FIELD_NUMBER: _ClassVar[int]
    CAUSE_EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    segment_id: str
    entered_at: _timestamp_pb2.Timestamp
    cause_event_id: str
    def __init__(self, customer_id: _Optional[str] = ..., segment_id: _Optional[str] = ..., entered_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., cause_event_id: _Optional[str] = ...) -> None: ...

class SegmentExited(_message.Message):
    __slots__ = ("customer_id", "segment_id", "exited_at", "reason", "cause_event_id")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    SEGMENT_ID_FIELD_NUMBER: _ClassVar[int]
    EXITED_AT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    CAUSE_EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    segment_id: str
    exited_at: _timestamp_pb2.Timestamp
    reason: SegmentExitReason
    cause_event_id: str
    def __init__(self, customer_id: _Optional[str] = ..., segment_id: _Optional[str] = ..., exited_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., reason: _Optional[_Union[SegmentExitReason, str]] = ..., cause_event_id: _Optional[str] = ...) -> None: ...

class ActionTriggered(_message.Message):
    __slots__ = ("action_id", "customer_id", "kind", "purpose", "journey_id", "segment_id", "experiment_id", "variant_id", "parameters", "triggered_at")
    ACTION_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    JOURNEY_ID_FIELD_NUMBER: _ClassVar[int]
    SEGMENT_ID_FIELD_NUMBER: _ClassVar[int]
    EXPERIMENT_ID_FIELD_NUMBER: _ClassVar[int]
    VARIANT_ID_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    TRIGGERED_AT_FIELD_NUMBER: _ClassVar[int]
    action_id: str
    customer_id: str
    kind: ActionKind
    purpose: str
    journey_id: str
    segment_id: str
    experiment_id: str
    variant_id: str
    parameters: _struct_pb2.Struct
    triggered_at: _timestamp_pb2.Timestamp
    def __init__(self, action_id: _Optional[str] = ..., customer_id: _Optional[str] = ..., kind: _Optional[_Union[ActionKind, str]] = ..., purpose: _Optional[str] = ..., journey_id: _Optional[str] = ..., segment_id: _Optional[str] = ..., experiment_id: _Optional[str] = ..., variant_id: _Optional[str] = ..., parameters: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., triggered_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class RecommendationServed(_message.Message):
    __slots__ = ("recommendation_id", "customer_id", "placement", "item_ids", "model_version", "fallback", "experiment_id", "variant_id", "served_at", "strategies")
    RECOMMENDATION_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    PLACEMENT_FIELD_NUMBER: _ClassVar[int]
    ITEM_IDS_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    FALLBACK_FIELD_NUMBER: _ClassVar[int]
    EXPERIMENT_ID_FIELD_NUMBER: _ClassVar[int]
    VARIANT_ID_FIELD_NUMBER: _ClassVar[int]
    SERVED_AT_FIELD_NUMBER: _ClassVar[int]
    STRATEGIES_FIELD_NUMBER: _ClassVar[int]
    recommendation_id: str
    customer_id: str
    placement: str
    item_ids: _containers.RepeatedScalarFieldContainer[str]
    model_version: str
    fallback: bool
    experiment_id: str
    variant_id: str
    served_at: _timestamp_pb2.Timestamp
    strategies: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, recommendation_id: _Optional[str] = ..., customer_id: _Optional[str] = ..., placement: _Optional[str] = ..., item_ids: _Optional[_Iterable[str]] = ..., model_version: _Optional[str] = ..., fallback: _Optional[bool] = ..., experiment_id: _Optional[str] = ..., variant_id: _Optional[str] = ..., served_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., strategies: _Optional[_Iterable[str]] = ...) -> None: ...

class CatalogChanged(_message.Message):
    __slots__ = ("items",)
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[_resources_pb2.Item]
    def __init__(self, items: _Optional[_Iterable[_Union[_resources_pb2.Item, _Mapping]]] = ...) -> None: ...

class LearnedInteraction(_message.Message):
    __slots__ = ("event_id", "customer_id", "item_id", "kind", "weight", "occurred_at", "channel", "store", "revenue", "hour")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    ITEM_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    STORE_FIELD_NUMBER: _ClassVar[int]
    REVENUE_FIELD_NUMBER: _ClassVar[int]
    HOUR_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    customer_id: str
    item_id: str
    kind: str
    weight: float
    occurred_at: _timestamp_pb2.Timestamp
    channel: str
    store: str
    revenue: float
    hour: int
    def __init__(self, event_id: _Optional[str] = ..., customer_id: _Optional[str] = ..., item_id: _Optional[str] = ..., kind: _Optional[str] = ..., weight: _Optional[float] = ..., occurred_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., channel: _Optional[str] = ..., store: _Optional[str] = ..., revenue: _Optional[float] = ..., hour: _Optional[int] = ...) -> None: ...

class InteractionsLearned(_message.Message):
    __slots__ = ("interactions",)
    INTERACTIONS_FIELD_NUMBER: _ClassVar[int]
    interactions: _containers.RepeatedCompositeFieldContainer[LearnedInteraction]
    def __init__(self, interactions: _Optional[_Iterable[_Union[LearnedInteraction, _Mapping]]] = ...) -> None: ...

class NamedScores(_message.Message):
    __slots__ = ("values",)
    class ValuesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    VALUES_FIELD_NUMBER: _ClassVar[int]
    values: _containers.ScalarMap[str, float]
    def __init__(self, values: _Optional[_Mapping[str, float]] = ...) -> None: ...

class ModelTuned(_message.Message):
    __slots__ = ("ease_lambda", "blend", "validation", "lambda_scores", "customers", "interactions", "objective", "single_objectives", "tuned_at_epoch_s")
    class BlendEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    class ValidationEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: NamedScores
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[NamedScores, _Mapping]] = ...) -> None: ...
    class LambdaScoresEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: NamedScores
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[NamedScores, _Mapping]] = ...) -> None: ...
    class SingleObjectivesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    EASE_LAMBDA_FIELD_NUMBER: _ClassVar[int]
    BLEND_FIELD_NUMBER: _ClassVar[int]
    VALIDATION_FIELD_NUMBER: _ClassVar[int]
    LAMBDA_SCORES_FIELD_NUMBER: _ClassVar[int]
    CUSTOMERS_FIELD_NUMBER: _ClassVar[int]
    INTERACTIONS_FIELD_NUMBER: _ClassVar[int]
    OBJECTIVE_FIELD_NUMBER: _ClassVar[int]
    SINGLE_OBJECTIVES_FIELD_NUMBER: _ClassVar[int]
    TUNED_AT_EPOCH_S_FIELD_NUMBER: _ClassVar[int]
    ease_lambda: float
    blend: _containers.ScalarMap[str, float]
    validation: _containers.MessageMap[str, NamedScores]
    lambda_scores: _containers.MessageMap[str, NamedScores]
    customers: int
    interactions: int
    objective: float
    single_objectives: _containers.ScalarMap[str, float]
    tuned_at_epoch_s: float
    def __init__(self, ease_lambda: _Optional[float] = ..., blend: _Optional[_Mapping[str, float]] = ..., validation: _Optional[_Mapping[str, NamedScores]] = ..., lambda_scores: _Optional[_Mapping[str, NamedScores]] = ..., customers: _Optional[int] = ..., interactions: _Optional[int] = ..., objective: _Optional[float] = ..., single_objectives: _Optional[_Mapping[str, float]] = ..., tuned_at_epoch_s: _Optional[float] = ...) -> None: ...

class ExperimentChanged(_message.Message):
    __slots__ = ("experiment",)
    EXPERIMENT_FIELD_NUMBER: _ClassVar[int]
    experiment: _resources_pb2.Experiment
    def __init__(self, experiment: _Optional[_Union[_resources_pb2.Experiment, _Mapping]] = ...) -> None: ...

class ExperimentResultsPublished(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _resources_pb2.ExperimentResults
    def __init__(self, results: _Optional[_Union[_resources_pb2.ExperimentResults, _Mapping]] = ...) -> None: ...
