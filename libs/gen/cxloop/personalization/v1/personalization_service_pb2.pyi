import datetime

from cxloop.personalization.v1 import intelligence_pb2 as _intelligence_pb2
from cxloop.personalization.v1 import resources_pb2 as _resources_pb2
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
    RECOMMENDATION_REASON_VIEWING_NOW: _ClassVar[RecommendationReason]
    RECOMMENDATION_REASON_POPULAR_IN_CONTEXT: _ClassVar[RecommendationReason]
    RECOMMENDATION_REASON_CONTENT_MATCH: _ClassVar[RecommendationReason]
    RECOMMENDATION_REASON_PINNED: _ClassVar[RecommendationReason]

class PredictionModel(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PREDICTION_MODEL_UNSPECIFIED: _ClassVar[PredictionModel]
    PREDICTION_MODEL_CHURN: _ClassVar[PredictionModel]
    PREDICTION_MODEL_NEXT_PURCHASE: _ClassVar[PredictionModel]
    PREDICTION_MODEL_CLV: _ClassVar[PredictionModel]
RECOMMENDATION_REASON_UNSPECIFIED: RecommendationReason
RECOMMENDATION_REASON_SIMILAR_TO_HISTORY: RecommendationReason
RECOMMENDATION_REASON_BOUGHT_TOGETHER: RecommendationReason
RECOMMENDATION_REASON_SEGMENT_AFFINITY: RecommendationReason
RECOMMENDATION_REASON_POPULAR: RecommendationReason
RECOMMENDATION_REASON_TRENDING: RecommendationReason
RECOMMENDATION_REASON_NEW_ARRIVAL: RecommendationReason
RECOMMENDATION_REASON_VIEWING_NOW: RecommendationReason
RECOMMENDATION_REASON_POPULAR_IN_CONTEXT: RecommendationReason
RECOMMENDATION_REASON_CONTENT_MATCH: RecommendationReason
RECOMMENDATION_REASON_PINNED: RecommendationReason
PREDICTION_MODEL_UNSPECIFIED: PredictionModel
PREDICTION_MODEL_CHURN: PredictionModel
PREDICTION_MODEL_NEXT_PURCHASE: PredictionModel
PREDICTION_MODEL_CLV: PredictionModel

class GetCustomerViewRequest(_message.Message):
    __slots__ = ("customer_id", "placement", "limit")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    PLACEMENT_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    placement: str
    limit: int
    def __init__(self, customer_id: _Optional[str] = ..., placement: _Optional[str] = ..., limit: _Optional[int] = ...) -> None: ...

class GetCustomerViewResponse(_message.Message):
    __slots__ = ("recommendations", "segments", "traits", "predictions", "unanswered")
    RECOMMENDATIONS_FIELD_NUMBER: _ClassVar[int]
    SEGMENTS_FIELD_NUMBER: _ClassVar[int]
    TRAITS_FIELD_NUMBER: _ClassVar[int]
    PREDICTIONS_FIELD_NUMBER: _ClassVar[int]
    UNANSWERED_FIELD_NUMBER: _ClassVar[int]
    recommendations: RecommendResponse
    segments: _intelligence_pb2.GetSegmentsResponse
    traits: _intelligence_pb2.GetTraitsResponse
    predictions: _intelligence_pb2.GetPredictionsResponse
    unanswered: _containers.RepeatedCompositeFieldContainer[UnansweredPart]
    def __init__(self, recommendations: _Optional[_Union[RecommendResponse, _Mapping]] = ..., segments: _Optional[_Union[_intelligence_pb2.GetSegmentsResponse, _Mapping]] = ..., traits: _Optional[_Union[_intelligence_pb2.GetTraitsResponse, _Mapping]] = ..., predictions: _Optional[_Union[_intelligence_pb2.GetPredictionsResponse, _Mapping]] = ..., unanswered: _Optional[_Iterable[_Union[UnansweredPart, _Mapping]]] = ...) -> None: ...

class UnansweredPart(_message.Message):
    __slots__ = ("part", "code", "message")
    PART_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    part: str
    code: int
    message: str
    def __init__(self, part: _Optional[str] = ..., code: _Optional[int] = ..., message: _Optional[str] = ...) -> None: ...

class RecommendRequest(_message.Message):
    __slots__ = ("customer_id", "placement", "limit", "exclude_item_ids", "context", "strategy", "exclude_interacted")
    class ContextEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    PLACEMENT_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    EXCLUDE_ITEM_IDS_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_FIELD_NUMBER: _ClassVar[int]
    EXCLUDE_INTERACTED_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    placement: str
    limit: int
    exclude_item_ids: _containers.RepeatedScalarFieldContainer[str]
    context: _containers.ScalarMap[str, str]
    strategy: str
    exclude_interacted: bool
    def __init__(self, customer_id: _Optional[str] = ..., placement: _Optional[str] = ..., limit: _Optional[int] = ..., exclude_item_ids: _Optional[_Iterable[str]] = ..., context: _Optional[_Mapping[str, str]] = ..., strategy: _Optional[str] = ..., exclude_interacted: _Optional[bool] = ...) -> None: ...

class RecommendResponse(_message.Message):
    __slots__ = ("recommendation_id", "items", "model_version", "fallback", "experiment_id", "variant_id", "strategy")
    RECOMMENDATION_ID_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    FALLBACK_FIELD_NUMBER: _ClassVar[int]
    EXPERIMENT_ID_FIELD_NUMBER: _ClassVar[int]
    VARIANT_ID_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_FIELD_NUMBER: _ClassVar[int]
    recommendation_id: str
    items: _containers.RepeatedCompositeFieldContainer[RecommendedItem]
    model_version: str
    fallback: bool
    experiment_id: str
    variant_id: str
    strategy: str
    def __init__(self, recommendation_id: _Optional[str] = ..., items: _Optional[_Iterable[_Union[RecommendedItem, _Mapping]]] = ..., model_version: _Optional[str] = ..., fallback: _Optional[bool] = ..., experiment_id: _Optional[str] = ..., variant_id: _Optional[str] = ..., strategy: _Optional[str] = ...) -> None: ...

class RecommendedItem(_message.Message):
    __slots__ = ("item_id", "score", "reason", "related_item_id", "strategy", "explanation")
    ITEM_ID_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    RELATED_ITEM_ID_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_FIELD_NUMBER: _ClassVar[int]
    EXPLANATION_FIELD_NUMBER: _ClassVar[int]
    item_id: str
    score: float
    reason: RecommendationReason
    related_item_id: str
    strategy: str
    explanation: str
    def __init__(self, item_id: _Optional[str] = ..., score: _Optional[float] = ..., reason: _Optional[_Union[RecommendationReason, str]] = ..., related_item_id: _Optional[str] = ..., strategy: _Optional[str] = ..., explanation: _Optional[str] = ...) -> None: ...

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
    __slots__ = ("item_id", "similarity", "strategy")
    ITEM_ID_FIELD_NUMBER: _ClassVar[int]
    SIMILARITY_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_FIELD_NUMBER: _ClassVar[int]
    item_id: str
    similarity: float
    strategy: str
    def __init__(self, item_id: _Optional[str] = ..., similarity: _Optional[float] = ..., strategy: _Optional[str] = ...) -> None: ...

class UpsertItemsRequest(_message.Message):
    __slots__ = ("item",)
    ITEM_FIELD_NUMBER: _ClassVar[int]
    item: _resources_pb2.Item
    def __init__(self, item: _Optional[_Union[_resources_pb2.Item, _Mapping]] = ...) -> None: ...

class RejectedItem(_message.Message):
    __slots__ = ("index", "item_id", "field", "message")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    ITEM_ID_FIELD_NUMBER: _ClassVar[int]
    FIELD_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    index: int
    item_id: str
    field: str
    message: str
    def __init__(self, index: _Optional[int] = ..., item_id: _Optional[str] = ..., field: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class UpsertItemsResponse(_message.Message):
    __slots__ = ("accepted", "rejected")
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    REJECTED_FIELD_NUMBER: _ClassVar[int]
    accepted: int
    rejected: _containers.RepeatedCompositeFieldContainer[RejectedItem]
    def __init__(self, accepted: _Optional[int] = ..., rejected: _Optional[_Iterable[_Union[RejectedItem, _Mapping]]] = ...) -> None: ...

class CreateExperimentRequest(_message.Message):
    __slots__ = ("experiment",)
    EXPERIMENT_FIELD_NUMBER: _ClassVar[int]
    experiment: _resources_pb2.Experiment
    def __init__(self, experiment: _Optional[_Union[_resources_pb2.Experiment, _Mapping]] = ...) -> None: ...

class CreateExperimentResponse(_message.Message):
    __slots__ = ("experiment",)
    EXPERIMENT_FIELD_NUMBER: _ClassVar[int]
    experiment: _resources_pb2.Experiment
    def __init__(self, experiment: _Optional[_Union[_resources_pb2.Experiment, _Mapping]] = ...) -> None: ...

class StartExperimentRequest(_message.Message):
    __slots__ = ("experiment_id",)
    EXPERIMENT_ID_FIELD_NUMBER: _ClassVar[int]
    experiment_id: str
    def __init__(self, experiment_id: _Optional[str] = ...) -> None: ...

class StartExperimentResponse(_message.Message):
    __slots__ = ("experiment",)
    EXPERIMENT_FIELD_NUMBER: _ClassVar[int]
    experiment: _resources_pb2.Experiment
    def __init__(self, experiment: _Optional[_Union[_resources_pb2.Experiment, _Mapping]] = ...) -> None: ...

class StopExperimentRequest(_message.Message):
    __slots__ = ("experiment_id",)
    EXPERIMENT_ID_FIELD_NUMBER: _ClassVar[int]
    experiment_id: str
    def __init__(self, experiment_id: _Optional[str] = ...) -> None: ...

class StopExperimentResponse(_message.Message):
    __slots__ = ("experiment", "results")
    EXPERIMENT_FIELD_NUMBER: _ClassVar[int]
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    experiment: _resources_pb2.Experiment
    results: _resources_pb2.ExperimentResults
    def __init__(self, experiment: _Optional[_Union[_resources_pb2.Experiment, _Mapping]] = ..., results: _Optional[_Union[_resources_pb2.ExperimentResults, _Mapping]] = ...) -> None: ...

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
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _resources_pb2.ExperimentResults
    def __init__(self, results: _Optional[_Union[_resources_pb2.ExperimentResults, _Mapping]] = ...) -> None: ...
