import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ExperimentMetric(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EXPERIMENT_METRIC_UNSPECIFIED: _ClassVar[ExperimentMetric]
    EXPERIMENT_METRIC_CLICK: _ClassVar[ExperimentMetric]
    EXPERIMENT_METRIC_ADD_TO_CART: _ClassVar[ExperimentMetric]
    EXPERIMENT_METRIC_PURCHASE: _ClassVar[ExperimentMetric]
    EXPERIMENT_METRIC_REVENUE: _ClassVar[ExperimentMetric]

class ExperimentStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EXPERIMENT_STATUS_UNSPECIFIED: _ClassVar[ExperimentStatus]
    EXPERIMENT_STATUS_DRAFT: _ClassVar[ExperimentStatus]
    EXPERIMENT_STATUS_RUNNING: _ClassVar[ExperimentStatus]
    EXPERIMENT_STATUS_STOPPED: _ClassVar[ExperimentStatus]
EXPERIMENT_METRIC_UNSPECIFIED: ExperimentMetric
EXPERIMENT_METRIC_CLICK: ExperimentMetric
EXPERIMENT_METRIC_ADD_TO_CART: ExperimentMetric
EXPERIMENT_METRIC_PURCHASE: ExperimentMetric
EXPERIMENT_METRIC_REVENUE: ExperimentMetric
EXPERIMENT_STATUS_UNSPECIFIED: ExperimentStatus
EXPERIMENT_STATUS_DRAFT: ExperimentStatus
EXPERIMENT_STATUS_RUNNING: ExperimentStatus
EXPERIMENT_STATUS_STOPPED: ExperimentStatus

class Item(_message.Message):
    __slots__ = ("item_id", "title", "category", "tags", "price", "brand", "available", "attributes", "description", "listed_at")
    class AttributesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ITEM_ID_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    PRICE_FIELD_NUMBER: _ClassVar[int]
    BRAND_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    LISTED_AT_FIELD_NUMBER: _ClassVar[int]
    item_id: str
    title: str
    category: str
    tags: _containers.RepeatedScalarFieldContainer[str]
    price: float
    brand: str
    available: bool
    attributes: _containers.ScalarMap[str, str]
    description: str
    listed_at: _timestamp_pb2.Timestamp
    def __init__(self, item_id: _Optional[str] = ..., title: _Optional[str] = ..., category: _Optional[str] = ..., tags: _Optional[_Iterable[str]] = ..., price: _Optional[float] = ..., brand: _Optional[str] = ..., available: _Optional[bool] = ..., attributes: _Optional[_Mapping[str, str]] = ..., description: _Optional[str] = ..., listed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Variant(_message.Message):
    __slots__ = ("variant_id", "strategy", "weight_percent", "control", "blend")
    class BlendEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    VARIANT_ID_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_PERCENT_FIELD_NUMBER: _ClassVar[int]
    CONTROL_FIELD_NUMBER: _ClassVar[int]
    BLEND_FIELD_NUMBER: _ClassVar[int]
    variant_id: str
    strategy: str
    weight_percent: float
    control: bool
    blend: _containers.ScalarMap[str, float]
    def __init__(self, variant_id: _Optional[str] = ..., strategy: _Optional[str] = ..., weight_percent: _Optional[float] = ..., control: _Optional[bool] = ..., blend: _Optional[_Mapping[str, float]] = ...) -> None: ...

class Experiment(_message.Message):
    __slots__ = ("experiment_id", "name", "placement", "variants", "metric", "attribution_window_hours", "bandit", "status", "created_at", "started_at", "stopped_at")
    EXPERIMENT_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    PLACEMENT_FIELD_NUMBER: _ClassVar[int]
    VARIANTS_FIELD_NUMBER: _ClassVar[int]
    METRIC_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTION_WINDOW_HOURS_FIELD_NUMBER: _ClassVar[int]
    BANDIT_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    STOPPED_AT_FIELD_NUMBER: _ClassVar[int]
    experiment_id: str
    name: str
    placement: str
    variants: _containers.RepeatedCompositeFieldContainer[Variant]
    metric: ExperimentMetric
    attribution_window_hours: int
    bandit: bool
    status: ExperimentStatus
    created_at: _timestamp_pb2.Timestamp
    started_at: _timestamp_pb2.Timestamp
    stopped_at: _timestamp_pb2.Timestamp
    def __init__(self, experiment_id: _Optional[str] = ..., name: _Optional[str] = ..., placement: _Optional[str] = ..., variants: _Optional[_Iterable[_Union[Variant, _Mapping]]] = ..., metric: _Optional[_Union[ExperimentMetric, str]] = ..., attribution_window_hours: _Optional[int] = ..., bandit: _Optional[bool] = ..., status: _Optional[_Union[ExperimentStatus, str]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., stopped_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class VariantResult(_message.Message):
    __slots__ = ("variant_id", "control", "exposures", "conversions", "conversion_rate", "uplift", "uplift_ci_low", "uplift_ci_high", "probability_to_beat_control", "conversion_rate_ci_low", "conversion_rate_ci_high", "revenue", "revenue_per_exposure", "expected_share_percent")
    VARIANT_ID_FIELD_NUMBER: _ClassVar[int]
    CONTROL_FIELD_NUMBER: _ClassVar[int]
    EXPOSURES_FIELD_NUMBER: _ClassVar[int]
    CONVERSIONS_FIELD_NUMBER: _ClassVar[int]
    CONVERSION_RATE_FIELD_NUMBER: _ClassVar[int]
    UPLIFT_FIELD_NUMBER: _ClassVar[int]
    UPLIFT_CI_LOW_FIELD_NUMBER: _ClassVar[int]
    UPLIFT_CI_HIGH_FIELD_NUMBER: _ClassVar[int]
    PROBABILITY_TO_BEAT_CONTROL_FIELD_NUMBER: _ClassVar[int]
    CONVERSION_RATE_CI_LOW_FIELD_NUMBER: _ClassVar[int]
    CONVERSION_RATE_CI_HIGH_FIELD_NUMBER: _ClassVar[int]
    REVENUE_FIELD_NUMBER: _ClassVar[int]
    REVENUE_PER_EXPOSURE_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_SHARE_PERCENT_FIELD_NUMBER: _ClassVar[int]
    variant_id: str
    control: bool
    exposures: int
    conversions: int
    conversion_rate: float
    uplift: float
    uplift_ci_low: float
    uplift_ci_high: float
    probability_to_beat_control: float
    conversion_rate_ci_low: float
    conversion_rate_ci_high: float
    revenue: float
    revenue_per_exposure: float
    expected_share_percent: float
    def __init__(self, variant_id: _Optional[str] = ..., control: _Optional[bool] = ..., exposures: _Optional[int] = ..., conversions: _Optional[int] = ..., conversion_rate: _Optional[float] = ..., uplift: _Optional[float] = ..., uplift_ci_low: _Optional[float] = ..., uplift_ci_high: _Optional[float] = ..., probability_to_beat_control: _Optional[float] = ..., conversion_rate_ci_low: _Optional[float] = ..., conversion_rate_ci_high: _Optional[float] = ..., revenue: _Optional[float] = ..., revenue_per_exposure: _Optional[float] = ..., expected_share_percent: _Optional[float] = ...) -> None: ...

class ExperimentResults(_message.Message):
    __slots__ = ("experiment", "variants", "srm_p_value", "sample_ratio_mismatch", "winning_variant_id", "computed_at")
    EXPERIMENT_FIELD_NUMBER: _ClassVar[int]
    VARIANTS_FIELD_NUMBER: _ClassVar[int]
    SRM_P_VALUE_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_RATIO_MISMATCH_FIELD_NUMBER: _ClassVar[int]
    WINNING_VARIANT_ID_FIELD_NUMBER: _ClassVar[int]
    COMPUTED_AT_FIELD_NUMBER: _ClassVar[int]
    experiment: Experiment
    variants: _containers.RepeatedCompositeFieldContainer[VariantResult]
    srm_p_value: float
    sample_ratio_mismatch: bool
    winning_variant_id: str
    computed_at: _timestamp_pb2.Timestamp
    def __init__(self, experiment: _Optional[_Union[Experiment, _Mapping]] = ..., variants: _Optional[_Iterable[_Union[VariantResult, _Mapping]]] = ..., srm_p_value: _Optional[float] = ..., sample_ratio_mismatch: _Optional[bool] = ..., winning_variant_id: _Optional[str] = ..., computed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
