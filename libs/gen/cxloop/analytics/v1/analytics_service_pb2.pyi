import datetime

from cxloop.analytics.v1 import events_pb2 as _events_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class FilterOperator(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FILTER_OPERATOR_UNSPECIFIED: _ClassVar[FilterOperator]
    FILTER_OPERATOR_IN: _ClassVar[FilterOperator]
    FILTER_OPERATOR_NOT_IN: _ClassVar[FilterOperator]

class StepOrder(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STEP_ORDER_UNSPECIFIED: _ClassVar[StepOrder]
    STEP_ORDER_LOOSE: _ClassVar[StepOrder]
    STEP_ORDER_STRICT: _ClassVar[StepOrder]

class Period(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PERIOD_UNSPECIFIED: _ClassVar[Period]
    PERIOD_DAY: _ClassVar[Period]
    PERIOD_WEEK: _ClassVar[Period]
    PERIOD_MONTH: _ClassVar[Period]

class PathDirection(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PATH_DIRECTION_UNSPECIFIED: _ClassVar[PathDirection]
    PATH_DIRECTION_AFTER: _ClassVar[PathDirection]
    PATH_DIRECTION_BEFORE: _ClassVar[PathDirection]
FILTER_OPERATOR_UNSPECIFIED: FilterOperator
FILTER_OPERATOR_IN: FilterOperator
FILTER_OPERATOR_NOT_IN: FilterOperator
STEP_ORDER_UNSPECIFIED: StepOrder
STEP_ORDER_LOOSE: StepOrder
STEP_ORDER_STRICT: StepOrder
PERIOD_UNSPECIFIED: Period
PERIOD_DAY: Period
PERIOD_WEEK: Period
PERIOD_MONTH: Period
PATH_DIRECTION_UNSPECIFIED: PathDirection
PATH_DIRECTION_AFTER: PathDirection
PATH_DIRECTION_BEFORE: PathDirection

class TimeRange(_message.Message):
    __slots__ = ("start", "end")
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    start: _timestamp_pb2.Timestamp
    end: _timestamp_pb2.Timestamp
    def __init__(self, start: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class PropertyFilter(_message.Message):
    __slots__ = ("property", "operator", "values")
    PROPERTY_FIELD_NUMBER: _ClassVar[int]
    OPERATOR_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    property: str
    operator: FilterOperator
    values: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, property: _Optional[str] = ..., operator: _Optional[_Union[FilterOperator, str]] = ..., values: _Optional[_Iterable[str]] = ...) -> None: ...

class FunnelStep(_message.Message):
    __slots__ = ("event", "filters")
    EVENT_FIELD_NUMBER: _ClassVar[int]
    FILTERS_FIELD_NUMBER: _ClassVar[int]
    event: str
    filters: _containers.RepeatedCompositeFieldContainer[PropertyFilter]
    def __init__(self, event: _Optional[str] = ..., filters: _Optional[_Iterable[_Union[PropertyFilter, _Mapping]]] = ...) -> None: ...

class FunnelRequest(_message.Message):
    __slots__ = ("steps", "conversion_window_seconds", "order", "range", "breakdown", "breakdown_limit")
    STEPS_FIELD_NUMBER: _ClassVar[int]
    CONVERSION_WINDOW_SECONDS_FIELD_NUMBER: _ClassVar[int]
    ORDER_FIELD_NUMBER: _ClassVar[int]
    RANGE_FIELD_NUMBER: _ClassVar[int]
    BREAKDOWN_FIELD_NUMBER: _ClassVar[int]
    BREAKDOWN_LIMIT_FIELD_NUMBER: _ClassVar[int]
    steps: _containers.RepeatedCompositeFieldContainer[FunnelStep]
    conversion_window_seconds: int
    order: StepOrder
    range: TimeRange
    breakdown: str
    breakdown_limit: int
    def __init__(self, steps: _Optional[_Iterable[_Union[FunnelStep, _Mapping]]] = ..., conversion_window_seconds: _Optional[int] = ..., order: _Optional[_Union[StepOrder, str]] = ..., range: _Optional[_Union[TimeRange, _Mapping]] = ..., breakdown: _Optional[str] = ..., breakdown_limit: _Optional[int] = ...) -> None: ...

class FunnelStepResult(_message.Message):
    __slots__ = ("event", "customers", "conversion_from_previous", "conversion_from_start", "dropped", "median_seconds_to_convert", "p90_seconds_to_convert")
    EVENT_FIELD_NUMBER: _ClassVar[int]
    CUSTOMERS_FIELD_NUMBER: _ClassVar[int]
    CONVERSION_FROM_PREVIOUS_FIELD_NUMBER: _ClassVar[int]
    CONVERSION_FROM_START_FIELD_NUMBER: _ClassVar[int]
    DROPPED_FIELD_NUMBER: _ClassVar[int]
    MEDIAN_SECONDS_TO_CONVERT_FIELD_NUMBER: _ClassVar[int]
    P90_SECONDS_TO_CONVERT_FIELD_NUMBER: _ClassVar[int]
    event: str
    customers: int
    conversion_from_previous: float
    conversion_from_start: float
    dropped: int
    median_seconds_to_convert: float
    p90_seconds_to_convert: float
    def __init__(self, event: _Optional[str] = ..., customers: _Optional[int] = ..., conversion_from_previous: _Optional[float] = ..., conversion_from_start: _Optional[float] = ..., dropped: _Optional[int] = ..., median_seconds_to_convert: _Optional[float] = ..., p90_seconds_to_convert: _Optional[float] = ...) -> None: ...

class FunnelBreakdown(_message.Message):
    __slots__ = ("value", "steps")
    VALUE_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    value: str
    steps: _containers.RepeatedCompositeFieldContainer[FunnelStepResult]
    def __init__(self, value: _Optional[str] = ..., steps: _Optional[_Iterable[_Union[FunnelStepResult, _Mapping]]] = ...) -> None: ...

class FunnelResponse(_message.Message):
    __slots__ = ("steps", "breakdowns", "breakdown_values_total", "breakdown_capped", "note")
    STEPS_FIELD_NUMBER: _ClassVar[int]
    BREAKDOWNS_FIELD_NUMBER: _ClassVar[int]
    BREAKDOWN_VALUES_TOTAL_FIELD_NUMBER: _ClassVar[int]
    BREAKDOWN_CAPPED_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    steps: _containers.RepeatedCompositeFieldContainer[FunnelStepResult]
    breakdowns: _containers.RepeatedCompositeFieldContainer[FunnelBreakdown]
    breakdown_values_total: int
    breakdown_capped: bool
    note: str
    def __init__(self, steps: _Optional[_Iterable[_Union[FunnelStepResult, _Mapping]]] = ..., breakdowns: _Optional[_Iterable[_Union[FunnelBreakdown, _Mapping]]] = ..., breakdown_values_total: _Optional[int] = ..., breakdown_capped: _Optional[bool] = ..., note: _Optional[str] = ...) -> None: ...

class PathsRequest(_message.Message):
    __slots__ = ("anchor_event", "direction", "depth", "top_n", "exclude_events", "range")
    ANCHOR_EVENT_FIELD_NUMBER: _ClassVar[int]
    DIRECTION_FIELD_NUMBER: _ClassVar[int]
    DEPTH_FIELD_NUMBER: _ClassVar[int]
    TOP_N_FIELD_NUMBER: _ClassVar[int]
    EXCLUDE_EVENTS_FIELD_NUMBER: _ClassVar[int]
    RANGE_FIELD_NUMBER: _ClassVar[int]
    anchor_event: str
    direction: PathDirection
    depth: int
    top_n: int
    exclude_events: _containers.RepeatedScalarFieldContainer[str]
    range: TimeRange
    def __init__(self, anchor_event: _Optional[str] = ..., direction: _Optional[_Union[PathDirection, str]] = ..., depth: _Optional[int] = ..., top_n: _Optional[int] = ..., exclude_events: _Optional[_Iterable[str]] = ..., range: _Optional[_Union[TimeRange, _Mapping]] = ...) -> None: ...

class PathCount(_message.Message):
    __slots__ = ("events", "count")
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedScalarFieldContainer[str]
    count: int
    def __init__(self, events: _Optional[_Iterable[str]] = ..., count: _Optional[int] = ...) -> None: ...

class PathLink(_message.Message):
    __slots__ = ("step", "source", "target", "count")
    STEP_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    step: int
    source: str
    target: str
    count: int
    def __init__(self, step: _Optional[int] = ..., source: _Optional[str] = ..., target: _Optional[str] = ..., count: _Optional[int] = ...) -> None: ...

class PathsResponse(_message.Message):
    __slots__ = ("paths", "links", "anchors")
    PATHS_FIELD_NUMBER: _ClassVar[int]
    LINKS_FIELD_NUMBER: _ClassVar[int]
    ANCHORS_FIELD_NUMBER: _ClassVar[int]
    paths: _containers.RepeatedCompositeFieldContainer[PathCount]
    links: _containers.RepeatedCompositeFieldContainer[PathLink]
    anchors: int
    def __init__(self, paths: _Optional[_Iterable[_Union[PathCount, _Mapping]]] = ..., links: _Optional[_Iterable[_Union[PathLink, _Mapping]]] = ..., anchors: _Optional[int] = ...) -> None: ...

class RetentionRequest(_message.Message):
    __slots__ = ("cohort_event", "return_event", "period", "periods", "range", "cohort_segment")
    COHORT_EVENT_FIELD_NUMBER: _ClassVar[int]
    RETURN_EVENT_FIELD_NUMBER: _ClassVar[int]
    PERIOD_FIELD_NUMBER: _ClassVar[int]
    PERIODS_FIELD_NUMBER: _ClassVar[int]
    RANGE_FIELD_NUMBER: _ClassVar[int]
    COHORT_SEGMENT_FIELD_NUMBER: _ClassVar[int]
    cohort_event: str
    return_event: str
    period: Period
    periods: int
    range: TimeRange
    cohort_segment: str
    def __init__(self, cohort_event: _Optional[str] = ..., return_event: _Optional[str] = ..., period: _Optional[_Union[Period, str]] = ..., periods: _Optional[int] = ..., range: _Optional[_Union[TimeRange, _Mapping]] = ..., cohort_segment: _Optional[str] = ...) -> None: ...

class CohortRow(_message.Message):
    __slots__ = ("cohort_start", "customers", "retained", "rate")
    COHORT_START_FIELD_NUMBER: _ClassVar[int]
    CUSTOMERS_FIELD_NUMBER: _ClassVar[int]
    RETAINED_FIELD_NUMBER: _ClassVar[int]
    RATE_FIELD_NUMBER: _ClassVar[int]
    cohort_start: _timestamp_pb2.Timestamp
    customers: int
    retained: _containers.RepeatedScalarFieldContainer[int]
    rate: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, cohort_start: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., customers: _Optional[int] = ..., retained: _Optional[_Iterable[int]] = ..., rate: _Optional[_Iterable[float]] = ...) -> None: ...

class RetentionResponse(_message.Message):
    __slots__ = ("cohorts", "stickiness", "average_dau", "mau")
    COHORTS_FIELD_NUMBER: _ClassVar[int]
    STICKINESS_FIELD_NUMBER: _ClassVar[int]
    AVERAGE_DAU_FIELD_NUMBER: _ClassVar[int]
    MAU_FIELD_NUMBER: _ClassVar[int]
    cohorts: _containers.RepeatedCompositeFieldContainer[CohortRow]
    stickiness: float
    average_dau: float
    mau: int
    def __init__(self, cohorts: _Optional[_Iterable[_Union[CohortRow, _Mapping]]] = ..., stickiness: _Optional[float] = ..., average_dau: _Optional[float] = ..., mau: _Optional[int] = ...) -> None: ...

class KpiDefinition(_message.Message):
    __slots__ = ("name", "kind", "event", "target_event", "property", "invert", "window", "breakdown", "alerting")
    NAME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    EVENT_FIELD_NUMBER: _ClassVar[int]
    TARGET_EVENT_FIELD_NUMBER: _ClassVar[int]
    PROPERTY_FIELD_NUMBER: _ClassVar[int]
    INVERT_FIELD_NUMBER: _ClassVar[int]
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    BREAKDOWN_FIELD_NUMBER: _ClassVar[int]
    ALERTING_FIELD_NUMBER: _ClassVar[int]
    name: str
    kind: str
    event: str
    target_event: str
    property: str
    invert: bool
    window: Period
    breakdown: str
    alerting: bool
    def __init__(self, name: _Optional[str] = ..., kind: _Optional[str] = ..., event: _Optional[str] = ..., target_event: _Optional[str] = ..., property: _Optional[str] = ..., invert: _Optional[bool] = ..., window: _Optional[_Union[Period, str]] = ..., breakdown: _Optional[str] = ..., alerting: _Optional[bool] = ...) -> None: ...

class DefineKpiRequest(_message.Message):
    __slots__ = ("kpi",)
    KPI_FIELD_NUMBER: _ClassVar[int]
    kpi: KpiDefinition
    def __init__(self, kpi: _Optional[_Union[KpiDefinition, _Mapping]] = ...) -> None: ...

class DefineKpiResponse(_message.Message):
    __slots__ = ("kpi", "replaced")
    KPI_FIELD_NUMBER: _ClassVar[int]
    REPLACED_FIELD_NUMBER: _ClassVar[int]
    kpi: KpiDefinition
    replaced: bool
    def __init__(self, kpi: _Optional[_Union[KpiDefinition, _Mapping]] = ..., replaced: _Optional[bool] = ...) -> None: ...

class GetKpiRequest(_message.Message):
    __slots__ = ("name", "range")
    NAME_FIELD_NUMBER: _ClassVar[int]
    RANGE_FIELD_NUMBER: _ClassVar[int]
    name: str
    range: TimeRange
    def __init__(self, name: _Optional[str] = ..., range: _Optional[_Union[TimeRange, _Mapping]] = ...) -> None: ...

class KpiValue(_message.Message):
    __slots__ = ("window_start", "breakdown_value", "value", "sample")
    WINDOW_START_FIELD_NUMBER: _ClassVar[int]
    BREAKDOWN_VALUE_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_FIELD_NUMBER: _ClassVar[int]
    window_start: _timestamp_pb2.Timestamp
    breakdown_value: str
    value: float
    sample: int
    def __init__(self, window_start: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., breakdown_value: _Optional[str] = ..., value: _Optional[float] = ..., sample: _Optional[int] = ...) -> None: ...

class GetKpiResponse(_message.Message):
    __slots__ = ("kpi", "values", "breakdown_capped")
    KPI_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    BREAKDOWN_CAPPED_FIELD_NUMBER: _ClassVar[int]
    kpi: KpiDefinition
    values: _containers.RepeatedCompositeFieldContainer[KpiValue]
    breakdown_capped: bool
    def __init__(self, kpi: _Optional[_Union[KpiDefinition, _Mapping]] = ..., values: _Optional[_Iterable[_Union[KpiValue, _Mapping]]] = ..., breakdown_capped: _Optional[bool] = ...) -> None: ...

class ListAlertsRequest(_message.Message):
    __slots__ = ("kpi", "limit")
    KPI_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    kpi: str
    limit: int
    def __init__(self, kpi: _Optional[str] = ..., limit: _Optional[int] = ...) -> None: ...

class ListAlertsResponse(_message.Message):
    __slots__ = ("alerts",)
    ALERTS_FIELD_NUMBER: _ClassVar[int]
    alerts: _containers.RepeatedCompositeFieldContainer[_events_pb2.AlertRaised]
    def __init__(self, alerts: _Optional[_Iterable[_Union[_events_pb2.AlertRaised, _Mapping]]] = ...) -> None: ...

class StageMapping(_message.Message):
    __slots__ = ("stage", "events")
    STAGE_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    stage: str
    events: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, stage: _Optional[str] = ..., events: _Optional[_Iterable[str]] = ...) -> None: ...

class StagesRequest(_message.Message):
    __slots__ = ("stages", "period", "range")
    STAGES_FIELD_NUMBER: _ClassVar[int]
    PERIOD_FIELD_NUMBER: _ClassVar[int]
    RANGE_FIELD_NUMBER: _ClassVar[int]
    stages: _containers.RepeatedCompositeFieldContainer[StageMapping]
    period: Period
    range: TimeRange
    def __init__(self, stages: _Optional[_Iterable[_Union[StageMapping, _Mapping]]] = ..., period: _Optional[_Union[Period, str]] = ..., range: _Optional[_Union[TimeRange, _Mapping]] = ...) -> None: ...

class StageCount(_message.Message):
    __slots__ = ("stage", "customers", "conversion_from_previous")
    STAGE_FIELD_NUMBER: _ClassVar[int]
    CUSTOMERS_FIELD_NUMBER: _ClassVar[int]
    CONVERSION_FROM_PREVIOUS_FIELD_NUMBER: _ClassVar[int]
    stage: str
    customers: int
    conversion_from_previous: float
    def __init__(self, stage: _Optional[str] = ..., customers: _Optional[int] = ..., conversion_from_previous: _Optional[float] = ...) -> None: ...

class StagePeriod(_message.Message):
    __slots__ = ("period_start", "stages")
    PERIOD_START_FIELD_NUMBER: _ClassVar[int]
    STAGES_FIELD_NUMBER: _ClassVar[int]
    period_start: _timestamp_pb2.Timestamp
    stages: _containers.RepeatedCompositeFieldContainer[StageCount]
    def __init__(self, period_start: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., stages: _Optional[_Iterable[_Union[StageCount, _Mapping]]] = ...) -> None: ...

class StagesResponse(_message.Message):
    __slots__ = ("periods",)
    PERIODS_FIELD_NUMBER: _ClassVar[int]
    periods: _containers.RepeatedCompositeFieldContainer[StagePeriod]
    def __init__(self, periods: _Optional[_Iterable[_Union[StagePeriod, _Mapping]]] = ...) -> None: ...

class RecentJourneyRequest(_message.Message):
    __slots__ = ("customer_id", "limit")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    limit: int
    def __init__(self, customer_id: _Optional[str] = ..., limit: _Optional[int] = ...) -> None: ...

class JourneyEvent(_message.Message):
    __slots__ = ("occurred_at", "event", "kind", "channel", "source")
    OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    EVENT_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    occurred_at: _timestamp_pb2.Timestamp
    event: str
    kind: str
    channel: str
    source: str
    def __init__(self, occurred_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., event: _Optional[str] = ..., kind: _Optional[str] = ..., channel: _Optional[str] = ..., source: _Optional[str] = ...) -> None: ...

class ChannelCount(_message.Message):
    __slots__ = ("channel", "events")
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    channel: str
    events: int
    def __init__(self, channel: _Optional[str] = ..., events: _Optional[int] = ...) -> None: ...

class RecentJourneyResponse(_message.Message):
    __slots__ = ("events", "total_events", "first_seen", "last_seen", "channels")
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_EVENTS_FIELD_NUMBER: _ClassVar[int]
    FIRST_SEEN_FIELD_NUMBER: _ClassVar[int]
    LAST_SEEN_FIELD_NUMBER: _ClassVar[int]
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[JourneyEvent]
    total_events: int
    first_seen: _timestamp_pb2.Timestamp
    last_seen: _timestamp_pb2.Timestamp
    channels: _containers.RepeatedCompositeFieldContainer[ChannelCount]
    def __init__(self, events: _Optional[_Iterable[_Union[JourneyEvent, _Mapping]]] = ..., total_events: _Optional[int] = ..., first_seen: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_seen: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., channels: _Optional[_Iterable[_Union[ChannelCount, _Mapping]]] = ...) -> None: ...
