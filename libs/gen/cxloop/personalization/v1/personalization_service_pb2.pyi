import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RecommendationReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RECOMMENDATION_REASON_UNSPECIFIED: _ClassVar[RecommendationReason]
    RECOMMENDATION_REASON_SIMILAR_TO_HISTORY: _ClassVar[RecommendationReason]
    RECOMMENDATION_REASON_BOUGHT_TOGETHER: _ClassVar[RecommendationReason]
    RECOMMENDATION_REASON_SEGMENT_AFFINITY: _ClassVar[RecommendationReason]
    RECOMMENDATION_REASON_POPULAR: _ClassVar[RecommendationReason]
    RECOMMENDATION_REASON_TRENDING: _ClassVar[RecommendationReason]
    RECOMMENDATION_REASON_NEW_ARRIVAL: _ClassVar[RecommendationReason]

class PredictionModel(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PREDICTION_MODEL_UNSPECIFIED: _ClassVar[PredictionModel]
    PREDICTION_MODEL_CHURN: _ClassVar[PredictionModel]
    PREDICTION_MODEL_NEXT_PURCHASE: _ClassVar[PredictionModel]
    PREDICTION_MODEL_CLV: _ClassVar[PredictionModel]

class ExperimentStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EXPERIMENT_STATUS_UNSPECIFIED: _ClassVar[ExperimentStatus]
    EXPERIMENT_STATUS_DRAFT: _ClassVar[ExperimentStatus]
    EXPERIMENT_STATUS_RUNNING: _ClassVar[ExperimentStatus]
    EXPERIMENT_STATUS_STOPPED: _ClassVar[ExperimentStatus]
    EXPERIMENT_STATUS_CONCLUDED: _ClassVar[ExperimentStatus]
RECOMMENDATION_REASON_UNSPECIFIED: RecommendationReason
RECOMMENDATION_REASON_SIMILAR_TO_HISTORY: RecommendationReason
RECOMMENDATION_REASON_BOUGHT_TOGETHER: RecommendationReason
RECOMMENDATION_REASON_SEGMENT_AFFINITY: RecommendationReason
RECOMMENDATION_REASON_POPULAR: RecommendationReason
RECOMMENDATION_REASON_TRENDING: RecommendationReason
RECOMMENDATION_REASON_NEW_ARRIVAL: RecommendationReason
PREDICTION_MODEL_UNSPECIFIED: PredictionModel
PREDICTION_MODEL_CHURN: PredictionModel
PREDICTION_MODEL_NEXT_PURCHASE: PredictionModel
PREDICTION_MODEL_CLV: PredictionModel
EXPERIMENT_STATUS_UNSPECIFIED: ExperimentStatus
EXPERIMENT_STATUS_DRAFT: ExperimentStatus
EXPERIMENT_STATUS_RUNNING: ExperimentStatus
EXPERIMENT_STATUS_STOPPED: ExperimentStatus
EXPERIMENT_STATUS_CONCLUDED: ExperimentStatus

class RecommendRequest(_message.Message):
    __slots__ = ("customer_id", "placement", "limit", "exclude_item_ids")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    PLACEMENT_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    EXCLUDE_ITEM_IDS_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    placement: str
    limit: int
    exclude_item_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, customer_id: _Optional[str] = ..., placement: _Optional[str] = ..., limit: _Optional[int] = ..., exclude_item_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class RecommendResponse(_message.Message):
    __slots__ = ("recommendation_id", "items", "model_version", "fallback")
    RECOMMENDATION_ID_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    FALLBACK_FIELD_NUMBER: _ClassVar[int]
    recommendation_id: str
    items: _containers.RepeatedCompositeFieldContainer[RecommendedItem]
    model_version: str
    fallback: bool
    def __init__(self, recommendation_id: _Optional[str] = ..., items: _Optional[_Iterable[_Union[RecommendedItem, _Mapping]]] = ..., model_version: _Optional[str] = ..., fallback: _Optional[bool] = ...) -> None: ...

class RecommendedItem(_message.Message):
    __slots__ = ("item_id", "score", "reason", "related_item_id")
    ITEM_ID_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    RELATED_ITEM_ID_FIELD_NUMBER: _ClassVar[int]
    item_id: str
    score: float
    reason: RecommendationReason
    related_item_id: str
    def __init__(self, item_id: _Optional[str] = ..., score: _Optional[float] = ..., reason: _Optional[_Union[RecommendationReason, str]] = ..., related_item_id: _Optional[str] = ...) -> None: ...

class SimilarItemsRequest(_message.Message):
    __slots__ = ("item_id", "limit")
    ITEM_ID_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    item_id: str
    limit: int
    def __init__(self, item_id: _Optional[str] = ..., limit: _Optional[int] = ...) -> None: ...

class SimilarItemsResponse(_message.Message):
    __slots__ = ("items",)
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[SimilarItem]
    def __init__(self, items: _Optional[_Iterable[_Union[SimilarItem, _Mapping]]] = ...) -> None: ...

class SimilarItem(_message.Message):
    __slots__ = ("item_id", "similarity")
    ITEM_ID_FIELD_NUMBER: _ClassVar[int]
    SIMILARITY_FIELD_NUMBER: _ClassVar[int]
    item_id: str
    similarity: float
    def __init__(self, item_id: _Optional[str] = ..., similarity: _Optional[float] = ...) -> None: ...

class ListSegmentsRequest(_message.Message):
    __slots__ = ("customer_id",)
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    def __init__(self, customer_id: _Optional[str] = ...) -> None: ...

class ListSegmentsResponse(_message.Message):
    __slots__ = ("segments",)
    SEGMENTS_FIELD_NUMBER: _ClassVar[int]
    segments: _containers.RepeatedCompositeFieldContainer[SegmentMembership]
    def __init__(self, segments: _Optional[_Iterable[_Union[SegmentMembership, _Mapping]]] = ...) -> None: ...

class SegmentMembership(_message.Message):
    __slots__ = ("segment_id", "name", "entered_at")
    SEGMENT_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    ENTERED_AT_FIELD_NUMBER: _ClassVar[int]
    segment_id: str
    name: str
    entered_at: _timestamp_pb2.Timestamp
    def __init__(self, segment_id: _Optional[str] = ..., name: _Optional[str] = ..., entered_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class GetPredictionRequest(_message.Message):
    __slots__ = ("customer_id", "model")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    model: PredictionModel
    def __init__(self, customer_id: _Optional[str] = ..., model: _Optional[_Union[PredictionModel, str]] = ...) -> None: ...

class GetPredictionResponse(_message.Message):
    __slots__ = ("prediction",)
    PREDICTION_FIELD_NUMBER: _ClassVar[int]
    prediction: Prediction
    def __init__(self, prediction: _Optional[_Union[Prediction, _Mapping]] = ...) -> None: ...

class Prediction(_message.Message):
    __slots__ = ("customer_id", "model", "churn_probability", "next_purchase_at", "clv_minor_units", "currency_code", "horizon_days", "model_version", "computed_at")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    CHURN_PROBABILITY_FIELD_NUMBER: _ClassVar[int]
    NEXT_PURCHASE_AT_FIELD_NUMBER: _ClassVar[int]
    CLV_MINOR_UNITS_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_CODE_FIELD_NUMBER: _ClassVar[int]
    HORIZON_DAYS_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    COMPUTED_AT_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    model: PredictionModel
    churn_probability: float
    next_purchase_at: _timestamp_pb2.Timestamp
    clv_minor_units: int
    currency_code: str
    horizon_days: int
    model_version: str
    computed_at: _timestamp_pb2.Timestamp
    def __init__(self, customer_id: _Optional[str] = ..., model: _Optional[_Union[PredictionModel, str]] = ..., churn_probability: _Optional[float] = ..., next_purchase_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., clv_minor_units: _Optional[int] = ..., currency_code: _Optional[str] = ..., horizon_days: _Optional[int] = ..., model_version: _Optional[str] = ..., computed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class GetExperimentResultsRequest(_message.Message):
    __slots__ = ("experiment_id",)
    EXPERIMENT_ID_FIELD_NUMBER: _ClassVar[int]
    experiment_id: str
    def __init__(self, experiment_id: _Optional[str] = ...) -> None: ...

class GetExperimentResultsResponse(_message.Message):
    __slots__ = ("experiment_id", "status", "primary_metric", "variants", "winning_variant_id", "started_at", "ended_at")
    EXPERIMENT_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    PRIMARY_METRIC_FIELD_NUMBER: _ClassVar[int]
    VARIANTS_FIELD_NUMBER: _ClassVar[int]
    WINNING_VARIANT_ID_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    ENDED_AT_FIELD_NUMBER: _ClassVar[int]
    experiment_id: str
    status: ExperimentStatus
    primary_metric: str
    variants: _containers.RepeatedCompositeFieldContainer[VariantResult]
    winning_variant_id: str
    started_at: _timestamp_pb2.Timestamp
    ended_at: _timestamp_pb2.Timestamp
    def __init__(self, experiment_id: _Optional[str] = ..., status: _Optional[_Union[ExperimentStatus, str]] = ..., primary_metric: _Optional[str] = ..., variants: _Optional[_Iterable[_Union[VariantResult, _Mapping]]] = ..., winning_variant_id: _Optional[str] = ..., started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., ended_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class VariantResult(_message.Message):
    __slots__ = ("variant_id", "control", "exposures", "conversions", "conversion_rate", "uplift", "uplift_ci_low", "uplift_ci_high", "probability_to_beat_control")
    VARIANT_ID_FIELD_NUMBER: _ClassVar[int]
    CONTROL_FIELD_NUMBER: _ClassVar[int]
    EXPOSURES_FIELD_NUMBER: _ClassVar[int]
    CONVERSIONS_FIELD_NUMBER: _ClassVar[int]
    CONVERSION_RATE_FIELD_NUMBER: _ClassVar[int]
    UPLIFT_FIELD_NUMBER: _ClassVar[int]
    UPLIFT_CI_LOW_FIELD_NUMBER: _ClassVar[int]
    UPLIFT_CI_HIGH_FIELD_NUMBER: _ClassVar[int]
    PROBABILITY_TO_BEAT_CONTROL_FIELD_NUMBER: _ClassVar[int]
    variant_id: str
    control: bool
    exposures: int
    conversions: int
    conversion_rate: float
    uplift: float
    uplift_ci_low: float
    uplift_ci_high: float
    probability_to_beat_control: float
    def __init__(self, variant_id: _Optional[str] = ..., control: _Optional[bool] = ..., exposures: _Optional[int] = ..., conversions: _Optional[int] = ..., conversion_rate: _Optional[float] = ..., uplift: _Optional[float] = ..., uplift_ci_low: _Optional[float] = ..., uplift_ci_high: _Optional[float] = ..., probability_to_beat_control: _Optional[float] = ...) -> None: ...
