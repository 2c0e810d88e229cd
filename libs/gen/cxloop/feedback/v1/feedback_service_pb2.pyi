import datetime

from cxloop.feedback.v1 import events_pb2 as _events_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Granularity(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    GRANULARITY_UNSPECIFIED: _ClassVar[Granularity]
    GRANULARITY_DAY: _ClassVar[Granularity]
    GRANULARITY_WEEK: _ClassVar[Granularity]
    GRANULARITY_MONTH: _ClassVar[Granularity]

class CaseStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CASE_STATUS_UNSPECIFIED: _ClassVar[CaseStatus]
    CASE_STATUS_OPEN: _ClassVar[CaseStatus]
    CASE_STATUS_IN_PROGRESS: _ClassVar[CaseStatus]
    CASE_STATUS_WAITING_ON_CUSTOMER: _ClassVar[CaseStatus]
    CASE_STATUS_RESOLVED: _ClassVar[CaseStatus]
    CASE_STATUS_CLOSED: _ClassVar[CaseStatus]

class CasePriority(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CASE_PRIORITY_UNSPECIFIED: _ClassVar[CasePriority]
    CASE_PRIORITY_LOW: _ClassVar[CasePriority]
    CASE_PRIORITY_NORMAL: _ClassVar[CasePriority]
    CASE_PRIORITY_HIGH: _ClassVar[CasePriority]
    CASE_PRIORITY_URGENT: _ClassVar[CasePriority]

class SentimentLabel(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SENTIMENT_LABEL_UNSPECIFIED: _ClassVar[SentimentLabel]
    SENTIMENT_LABEL_NEGATIVE: _ClassVar[SentimentLabel]
    SENTIMENT_LABEL_NEUTRAL: _ClassVar[SentimentLabel]
    SENTIMENT_LABEL_POSITIVE: _ClassVar[SentimentLabel]
GRANULARITY_UNSPECIFIED: Granularity
GRANULARITY_DAY: Granularity
GRANULARITY_WEEK: Granularity
GRANULARITY_MONTH: Granularity
CASE_STATUS_UNSPECIFIED: CaseStatus
CASE_STATUS_OPEN: CaseStatus
CASE_STATUS_IN_PROGRESS: CaseStatus
CASE_STATUS_WAITING_ON_CUSTOMER: CaseStatus
CASE_STATUS_RESOLVED: CaseStatus
CASE_STATUS_CLOSED: CaseStatus
CASE_PRIORITY_UNSPECIFIED: CasePriority
CASE_PRIORITY_LOW: CasePriority
CASE_PRIORITY_NORMAL: CasePriority
CASE_PRIORITY_HIGH: CasePriority
CASE_PRIORITY_URGENT: CasePriority
SENTIMENT_LABEL_UNSPECIFIED: SentimentLabel
SENTIMENT_LABEL_NEGATIVE: SentimentLabel
SENTIMENT_LABEL_NEUTRAL: SentimentLabel
SENTIMENT_LABEL_POSITIVE: SentimentLabel

class Survey(_message.Message):
    __slots__ = ("survey_id", "version", "name", "survey_json", "created_at")
    SURVEY_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    SURVEY_JSON_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    survey_id: str
    version: int
    name: str
    survey_json: str
    created_at: _timestamp_pb2.Timestamp
    def __init__(self, survey_id: _Optional[str] = ..., version: _Optional[int] = ..., name: _Optional[str] = ..., survey_json: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class PutSurveyRequest(_message.Message):
    __slots__ = ("survey_json",)
    SURVEY_JSON_FIELD_NUMBER: _ClassVar[int]
    survey_json: str
    def __init__(self, survey_json: _Optional[str] = ...) -> None: ...

class PutSurveyResponse(_message.Message):
    __slots__ = ("survey",)
    SURVEY_FIELD_NUMBER: _ClassVar[int]
    survey: Survey
    def __init__(self, survey: _Optional[_Union[Survey, _Mapping]] = ...) -> None: ...

class GetSurveyRequest(_message.Message):
    __slots__ = ("survey_id", "version")
    SURVEY_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    survey_id: str
    version: int
    def __init__(self, survey_id: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...

class GetSurveyResponse(_message.Message):
    __slots__ = ("survey",)
    SURVEY_FIELD_NUMBER: _ClassVar[int]
    survey: Survey
    def __init__(self, survey: _Optional[_Union[Survey, _Mapping]] = ...) -> None: ...

class ListSurveysRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListSurveysResponse(_message.Message):
    __slots__ = ("surveys",)
    SURVEYS_FIELD_NUMBER: _ClassVar[int]
    surveys: _containers.RepeatedCompositeFieldContainer[Survey]
    def __init__(self, surveys: _Optional[_Iterable[_Union[Survey, _Mapping]]] = ...) -> None: ...

class Trigger(_message.Message):
    __slots__ = ("trigger_id", "survey_id", "event", "delay_seconds", "sample_rate", "segments", "channel", "touchpoint", "journey_stage", "expires_after_seconds", "active")
    TRIGGER_ID_FIELD_NUMBER: _ClassVar[int]
    SURVEY_ID_FIELD_NUMBER: _ClassVar[int]
    EVENT_FIELD_NUMBER: _ClassVar[int]
    DELAY_SECONDS_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_RATE_FIELD_NUMBER: _ClassVar[int]
    SEGMENTS_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    TOUCHPOINT_FIELD_NUMBER: _ClassVar[int]
    JOURNEY_STAGE_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AFTER_SECONDS_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_FIELD_NUMBER: _ClassVar[int]
    trigger_id: str
    survey_id: str
    event: str
    delay_seconds: int
    sample_rate: float
    segments: _containers.RepeatedScalarFieldContainer[str]
    channel: _events_pb2.InvitationChannel
    touchpoint: str
    journey_stage: str
    expires_after_seconds: int
    active: bool
    def __init__(self, trigger_id: _Optional[str] = ..., survey_id: _Optional[str] = ..., event: _Optional[str] = ..., delay_seconds: _Optional[int] = ..., sample_rate: _Optional[float] = ..., segments: _Optional[_Iterable[str]] = ..., channel: _Optional[_Union[_events_pb2.InvitationChannel, str]] = ..., touchpoint: _Optional[str] = ..., journey_stage: _Optional[str] = ..., expires_after_seconds: _Optional[int] = ..., active: _Optional[bool] = ...) -> None: ...

class PutTriggerRequest(_message.Message):
    __slots__ = ("trigger",)
    TRIGGER_FIELD_NUMBER: _ClassVar[int]
    trigger: Trigger
    def __init__(self, trigger: _Optional[_Union[Trigger, _Mapping]] = ...) -> None: ...

class PutTriggerResponse(_message.Message):
    __slots__ = ("trigger",)
    TRIGGER_FIELD_NUMBER: _ClassVar[int]
    trigger: Trigger
    def __init__(self, trigger: _Optional[_Union[Trigger, _Mapping]] = ...) -> None: ...

class ListTriggersRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListTriggersResponse(_message.Message):
    __slots__ = ("triggers",)
    TRIGGERS_FIELD_NUMBER: _ClassVar[int]
    triggers: _containers.RepeatedCompositeFieldContainer[Trigger]
    def __init__(self, triggers: _Optional[_Iterable[_Union[Trigger, _Mapping]]] = ...) -> None: ...

class Answer(_message.Message):
    __slots__ = ("question_id", "score", "text", "choice_id")
    QUESTION_ID_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    CHOICE_ID_FIELD_NUMBER: _ClassVar[int]
    question_id: str
    score: int
    text: str
    choice_id: str
    def __init__(self, question_id: _Optional[str] = ..., score: _Optional[int] = ..., text: _Optional[str] = ..., choice_id: _Optional[str] = ...) -> None: ...

class SubmitResponseRequest(_message.Message):
    __slots__ = ("survey_id", "customer_id", "invitation_id", "answers", "submitted_at", "idempotency_key", "token", "survey_version", "partial", "channel", "touchpoint", "segment", "journey_stage")
    SURVEY_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    INVITATION_ID_FIELD_NUMBER: _ClassVar[int]
    ANSWERS_FIELD_NUMBER: _ClassVar[int]
    SUBMITTED_AT_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    SURVEY_VERSION_FIELD_NUMBER: _ClassVar[int]
    PARTIAL_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    TOUCHPOINT_FIELD_NUMBER: _ClassVar[int]
    SEGMENT_FIELD_NUMBER: _ClassVar[int]
    JOURNEY_STAGE_FIELD_NUMBER: _ClassVar[int]
    survey_id: str
    customer_id: str
    invitation_id: str
    answers: _containers.RepeatedCompositeFieldContainer[Answer]
    submitted_at: _timestamp_pb2.Timestamp
    idempotency_key: str
    token: str
    survey_version: int
    partial: bool
    channel: str
    touchpoint: str
    segment: str
    journey_stage: str
    def __init__(self, survey_id: _Optional[str] = ..., customer_id: _Optional[str] = ..., invitation_id: _Optional[str] = ..., answers: _Optional[_Iterable[_Union[Answer, _Mapping]]] = ..., submitted_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., idempotency_key: _Optional[str] = ..., token: _Optional[str] = ..., survey_version: _Optional[int] = ..., partial: _Optional[bool] = ..., channel: _Optional[str] = ..., touchpoint: _Optional[str] = ..., segment: _Optional[str] = ..., journey_stage: _Optional[str] = ...) -> None: ...

class SubmitResponseResponse(_message.Message):
    __slots__ = ("response_id", "detractor", "case_id", "complete", "analysis")
    RESPONSE_ID_FIELD_NUMBER: _ClassVar[int]
    DETRACTOR_FIELD_NUMBER: _ClassVar[int]
    CASE_ID_FIELD_NUMBER: _ClassVar[int]
    COMPLETE_FIELD_NUMBER: _ClassVar[int]
    ANALYSIS_FIELD_NUMBER: _ClassVar[int]
    response_id: str
    detractor: bool
    case_id: str
    complete: bool
    analysis: TextAnalysis
    def __init__(self, response_id: _Optional[str] = ..., detractor: _Optional[bool] = ..., case_id: _Optional[str] = ..., complete: _Optional[bool] = ..., analysis: _Optional[_Union[TextAnalysis, _Mapping]] = ...) -> None: ...

class SubmitReviewRequest(_message.Message):
    __slots__ = ("customer_id", "product_id", "rating", "text", "idempotency_key", "submitted_at", "channel", "token")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    PRODUCT_ID_FIELD_NUMBER: _ClassVar[int]
    RATING_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    SUBMITTED_AT_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    product_id: str
    rating: int
    text: str
    idempotency_key: str
    submitted_at: _timestamp_pb2.Timestamp
    channel: str
    token: str
    def __init__(self, customer_id: _Optional[str] = ..., product_id: _Optional[str] = ..., rating: _Optional[int] = ..., text: _Optional[str] = ..., idempotency_key: _Optional[str] = ..., submitted_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., channel: _Optional[str] = ..., token: _Optional[str] = ...) -> None: ...

class SubmitReviewResponse(_message.Message):
    __slots__ = ("review_id", "analysis", "case_id")
    REVIEW_ID_FIELD_NUMBER: _ClassVar[int]
    ANALYSIS_FIELD_NUMBER: _ClassVar[int]
    CASE_ID_FIELD_NUMBER: _ClassVar[int]
    review_id: str
    analysis: TextAnalysis
    case_id: str
    def __init__(self, review_id: _Optional[str] = ..., analysis: _Optional[_Union[TextAnalysis, _Mapping]] = ..., case_id: _Optional[str] = ...) -> None: ...

class RecordVoiceRequest(_message.Message):
    __slots__ = ("customer_id", "source", "text", "recorded_at", "idempotency_key", "channel")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    RECORDED_AT_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    source: str
    text: str
    recorded_at: _timestamp_pb2.Timestamp
    idempotency_key: str
    channel: str
    def __init__(self, customer_id: _Optional[str] = ..., source: _Optional[str] = ..., text: _Optional[str] = ..., recorded_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., idempotency_key: _Optional[str] = ..., channel: _Optional[str] = ...) -> None: ...

class RecordVoiceResponse(_message.Message):
    __slots__ = ("voice_id", "analysis", "case_id")
    VOICE_ID_FIELD_NUMBER: _ClassVar[int]
    ANALYSIS_FIELD_NUMBER: _ClassVar[int]
    CASE_ID_FIELD_NUMBER: _ClassVar[int]
    voice_id: str
    analysis: TextAnalysis
    case_id: str
    def __init__(self, voice_id: _Optional[str] = ..., analysis: _Optional[_Union[TextAnalysis, _Mapping]] = ..., case_id: _Optional[str] = ...) -> None: ...

class AnalyzeTextRequest(_message.Message):
    __slots__ = ("text",)
    TEXT_FIELD_NUMBER: _ClassVar[int]
    text: str
    def __init__(self, text: _Optional[str] = ...) -> None: ...

class AnalyzeTextResponse(_message.Message):
    __slots__ = ("analysis",)
    ANALYSIS_FIELD_NUMBER: _ClassVar[int]
    analysis: TextAnalysis
    def __init__(self, analysis: _Optional[_Union[TextAnalysis, _Mapping]] = ...) -> None: ...

class TextAnalysis(_message.Message):
    __slots__ = ("language", "sentiment", "sentiment_score", "confidence", "aspects", "keywords")
    LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    SENTIMENT_FIELD_NUMBER: _ClassVar[int]
    SENTIMENT_SCORE_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    ASPECTS_FIELD_NUMBER: _ClassVar[int]
    KEYWORDS_FIELD_NUMBER: _ClassVar[int]
    language: str
    sentiment: SentimentLabel
    sentiment_score: float
    confidence: float
    aspects: _containers.RepeatedCompositeFieldContainer[AspectMention]
    keywords: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, language: _Optional[str] = ..., sentiment: _Optional[_Union[SentimentLabel, str]] = ..., sentiment_score: _Optional[float] = ..., confidence: _Optional[float] = ..., aspects: _Optional[_Iterable[_Union[AspectMention, _Mapping]]] = ..., keywords: _Optional[_Iterable[str]] = ...) -> None: ...

class AspectMention(_message.Message):
    __slots__ = ("aspect", "start", "end", "cue", "sentiment")
    ASPECT_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    CUE_FIELD_NUMBER: _ClassVar[int]
    SENTIMENT_FIELD_NUMBER: _ClassVar[int]
    aspect: str
    start: int
    end: int
    cue: str
    sentiment: SentimentLabel
    def __init__(self, aspect: _Optional[str] = ..., start: _Optional[int] = ..., end: _Optional[int] = ..., cue: _Optional[str] = ..., sentiment: _Optional[_Union[SentimentLabel, str]] = ...) -> None: ...

class GetKpisRequest(_message.Message):
    __slots__ = ("metric", "start_time", "end_time", "granularity", "time_zone", "survey_id", "segment", "channel", "touchpoint", "journey_stage")
    METRIC_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    GRANULARITY_FIELD_NUMBER: _ClassVar[int]
    TIME_ZONE_FIELD_NUMBER: _ClassVar[int]
    SURVEY_ID_FIELD_NUMBER: _ClassVar[int]
    SEGMENT_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    TOUCHPOINT_FIELD_NUMBER: _ClassVar[int]
    JOURNEY_STAGE_FIELD_NUMBER: _ClassVar[int]
    metric: _events_pb2.KpiMetric
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    granularity: Granularity
    time_zone: str
    survey_id: str
    segment: str
    channel: str
    touchpoint: str
    journey_stage: str
    def __init__(self, metric: _Optional[_Union[_events_pb2.KpiMetric, str]] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., granularity: _Optional[_Union[Granularity, str]] = ..., time_zone: _Optional[str] = ..., survey_id: _Optional[str] = ..., segment: _Optional[str] = ..., channel: _Optional[str] = ..., touchpoint: _Optional[str] = ..., journey_stage: _Optional[str] = ...) -> None: ...

class GetKpisResponse(_message.Message):
    __slots__ = ("metric", "series", "total")
    METRIC_FIELD_NUMBER: _ClassVar[int]
    SERIES_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    metric: _events_pb2.KpiMetric
    series: _containers.RepeatedCompositeFieldContainer[KpiPoint]
    total: KpiPoint
    def __init__(self, metric: _Optional[_Union[_events_pb2.KpiMetric, str]] = ..., series: _Optional[_Iterable[_Union[KpiPoint, _Mapping]]] = ..., total: _Optional[_Union[KpiPoint, _Mapping]] = ...) -> None: ...

class KpiPoint(_message.Message):
    __slots__ = ("period_start", "value", "responses", "promoters", "passives", "detractors", "ci_low", "ci_high")
    PERIOD_START_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    RESPONSES_FIELD_NUMBER: _ClassVar[int]
    PROMOTERS_FIELD_NUMBER: _ClassVar[int]
    PASSIVES_FIELD_NUMBER: _ClassVar[int]
    DETRACTORS_FIELD_NUMBER: _ClassVar[int]
    CI_LOW_FIELD_NUMBER: _ClassVar[int]
    CI_HIGH_FIELD_NUMBER: _ClassVar[int]
    period_start: _timestamp_pb2.Timestamp
    value: float
    responses: int
    promoters: int
    passives: int
    detractors: int
    ci_low: float
    ci_high: float
    def __init__(self, period_start: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., value: _Optional[float] = ..., responses: _Optional[int] = ..., promoters: _Optional[int] = ..., passives: _Optional[int] = ..., detractors: _Optional[int] = ..., ci_low: _Optional[float] = ..., ci_high: _Optional[float] = ...) -> None: ...

class GetDriversRequest(_message.Message):
    __slots__ = ("metric", "start_time", "end_time")
    METRIC_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    metric: _events_pb2.KpiMetric
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    def __init__(self, metric: _Optional[_Union[_events_pb2.KpiMetric, str]] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Driver(_message.Message):
    __slots__ = ("aspect", "mentions", "kpi_when_mentioned", "kpi_overall", "impact", "negative_share")
    ASPECT_FIELD_NUMBER: _ClassVar[int]
    MENTIONS_FIELD_NUMBER: _ClassVar[int]
    KPI_WHEN_MENTIONED_FIELD_NUMBER: _ClassVar[int]
    KPI_OVERALL_FIELD_NUMBER: _ClassVar[int]
    IMPACT_FIELD_NUMBER: _ClassVar[int]
    NEGATIVE_SHARE_FIELD_NUMBER: _ClassVar[int]
    aspect: str
    mentions: int
    kpi_when_mentioned: float
    kpi_overall: float
    impact: float
    negative_share: float
    def __init__(self, aspect: _Optional[str] = ..., mentions: _Optional[int] = ..., kpi_when_mentioned: _Optional[float] = ..., kpi_overall: _Optional[float] = ..., impact: _Optional[float] = ..., negative_share: _Optional[float] = ...) -> None: ...

class GetDriversResponse(_message.Message):
    __slots__ = ("drivers",)
    DRIVERS_FIELD_NUMBER: _ClassVar[int]
    drivers: _containers.RepeatedCompositeFieldContainer[Driver]
    def __init__(self, drivers: _Optional[_Iterable[_Union[Driver, _Mapping]]] = ...) -> None: ...

class ScanAnomaliesRequest(_message.Message):
    __slots__ = ("until",)
    UNTIL_FIELD_NUMBER: _ClassVar[int]
    until: _timestamp_pb2.Timestamp
    def __init__(self, until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ScanAnomaliesResponse(_message.Message):
    __slots__ = ("alerts",)
    ALERTS_FIELD_NUMBER: _ClassVar[int]
    alerts: _containers.RepeatedCompositeFieldContainer[_events_pb2.AlertRaised]
    def __init__(self, alerts: _Optional[_Iterable[_Union[_events_pb2.AlertRaised, _Mapping]]] = ...) -> None: ...

class ListCasesRequest(_message.Message):
    __slots__ = ("status", "page_token", "page_size", "customer_id")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    status: CaseStatus
    page_token: str
    page_size: int
    customer_id: str
    def __init__(self, status: _Optional[_Union[CaseStatus, str]] = ..., page_token: _Optional[str] = ..., page_size: _Optional[int] = ..., customer_id: _Optional[str] = ...) -> None: ...

class ListCasesResponse(_message.Message):
    __slots__ = ("cases", "next_page_token")
    CASES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    cases: _containers.RepeatedCompositeFieldContainer[Case]
    next_page_token: str
    def __init__(self, cases: _Optional[_Iterable[_Union[Case, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class Case(_message.Message):
    __slots__ = ("case_id", "customer_id", "status", "priority", "response_id", "assignee", "subject", "notes", "opened_at", "updated_at", "due_at", "source_kind", "source_id", "escalation_level", "resolution", "resolved_at", "follow_up_invitation_id")
    CASE_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_ID_FIELD_NUMBER: _ClassVar[int]
    ASSIGNEE_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    NOTES_FIELD_NUMBER: _ClassVar[int]
    OPENED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    DUE_AT_FIELD_NUMBER: _ClassVar[int]
    SOURCE_KIND_FIELD_NUMBER: _ClassVar[int]
    SOURCE_ID_FIELD_NUMBER: _ClassVar[int]
    ESCALATION_LEVEL_FIELD_NUMBER: _ClassVar[int]
    RESOLUTION_FIELD_NUMBER: _ClassVar[int]
    RESOLVED_AT_FIELD_NUMBER: _ClassVar[int]
    FOLLOW_UP_INVITATION_ID_FIELD_NUMBER: _ClassVar[int]
    case_id: str
    customer_id: str
    status: CaseStatus
    priority: CasePriority
    response_id: str
    assignee: str
    subject: str
    notes: _containers.RepeatedCompositeFieldContainer[CaseNote]
    opened_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    due_at: _timestamp_pb2.Timestamp
    source_kind: str
    source_id: str
    escalation_level: int
    resolution: str
    resolved_at: _timestamp_pb2.Timestamp
    follow_up_invitation_id: str
    def __init__(self, case_id: _Optional[str] = ..., customer_id: _Optional[str] = ..., status: _Optional[_Union[CaseStatus, str]] = ..., priority: _Optional[_Union[CasePriority, str]] = ..., response_id: _Optional[str] = ..., assignee: _Optional[str] = ..., subject: _Optional[str] = ..., notes: _Optional[_Iterable[_Union[CaseNote, _Mapping]]] = ..., opened_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., due_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., source_kind: _Optional[str] = ..., source_id: _Optional[str] = ..., escalation_level: _Optional[int] = ..., resolution: _Optional[str] = ..., resolved_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., follow_up_invitation_id: _Optional[str] = ...) -> None: ...

class CaseNote(_message.Message):
    __slots__ = ("author", "text", "added_at")
    AUTHOR_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    ADDED_AT_FIELD_NUMBER: _ClassVar[int]
    author: str
    text: str
    added_at: _timestamp_pb2.Timestamp
    def __init__(self, author: _Optional[str] = ..., text: _Optional[str] = ..., added_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class UpdateCaseRequest(_message.Message):
    __slots__ = ("case_id", "status", "note", "actor", "assignee", "resolution", "notify_customer")
    CASE_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    ASSIGNEE_FIELD_NUMBER: _ClassVar[int]
    RESOLUTION_FIELD_NUMBER: _ClassVar[int]
    NOTIFY_CUSTOMER_FIELD_NUMBER: _ClassVar[int]
    case_id: str
    status: CaseStatus
    note: str
    actor: str
    assignee: str
    resolution: str
    notify_customer: bool
    def __init__(self, case_id: _Optional[str] = ..., status: _Optional[_Union[CaseStatus, str]] = ..., note: _Optional[str] = ..., actor: _Optional[str] = ..., assignee: _Optional[str] = ..., resolution: _Optional[str] = ..., notify_customer: _Optional[bool] = ...) -> None: ...

class UpdateCaseResponse(_message.Message):
    __slots__ = ("case",)
    CASE_FIELD_NUMBER: _ClassVar[int]
    case: Case
    def __init__(self, case: _Optional[_Union[Case, _Mapping]] = ...) -> None: ...
