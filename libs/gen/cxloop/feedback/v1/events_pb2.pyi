import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class KpiMetric(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    KPI_METRIC_UNSPECIFIED: _ClassVar[KpiMetric]
    KPI_METRIC_NPS: _ClassVar[KpiMetric]
    KPI_METRIC_CSAT: _ClassVar[KpiMetric]
    KPI_METRIC_CES: _ClassVar[KpiMetric]

class InvitationChannel(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    INVITATION_CHANNEL_UNSPECIFIED: _ClassVar[InvitationChannel]
    INVITATION_CHANNEL_EMAIL: _ClassVar[InvitationChannel]
    INVITATION_CHANNEL_SMS: _ClassVar[InvitationChannel]
    INVITATION_CHANNEL_APP_PUSH: _ClassVar[InvitationChannel]
    INVITATION_CHANNEL_IN_PRODUCT: _ClassVar[InvitationChannel]

class AlertKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ALERT_KIND_UNSPECIFIED: _ClassVar[AlertKind]
    ALERT_KIND_KPI_DROP: _ClassVar[AlertKind]
    ALERT_KIND_DETRACTOR_SPIKE: _ClassVar[AlertKind]
    ALERT_KIND_NEGATIVE_REVIEW: _ClassVar[AlertKind]
    ALERT_KIND_CASE_OVERDUE: _ClassVar[AlertKind]

class AlertSeverity(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ALERT_SEVERITY_UNSPECIFIED: _ClassVar[AlertSeverity]
    ALERT_SEVERITY_INFO: _ClassVar[AlertSeverity]
    ALERT_SEVERITY_WARNING: _ClassVar[AlertSeverity]
    ALERT_SEVERITY_CRITICAL: _ClassVar[AlertSeverity]
KPI_METRIC_UNSPECIFIED: KpiMetric
KPI_METRIC_NPS: KpiMetric
KPI_METRIC_CSAT: KpiMetric
KPI_METRIC_CES: KpiMetric
INVITATION_CHANNEL_UNSPECIFIED: InvitationChannel
INVITATION_CHANNEL_EMAIL: InvitationChannel
INVITATION_CHANNEL_SMS: InvitationChannel
INVITATION_CHANNEL_APP_PUSH: InvitationChannel
INVITATION_CHANNEL_IN_PRODUCT: InvitationChannel
ALERT_KIND_UNSPECIFIED: AlertKind
ALERT_KIND_KPI_DROP: AlertKind
ALERT_KIND_DETRACTOR_SPIKE: AlertKind
ALERT_KIND_NEGATIVE_REVIEW: AlertKind
ALERT_KIND_CASE_OVERDUE: AlertKind
ALERT_SEVERITY_UNSPECIFIED: AlertSeverity
ALERT_SEVERITY_INFO: AlertSeverity
ALERT_SEVERITY_WARNING: AlertSeverity
ALERT_SEVERITY_CRITICAL: AlertSeverity

class RecordedAnswer(_message.Message):
    __slots__ = ("question_id", "score", "choice_id", "encrypted_text")
    QUESTION_ID_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    CHOICE_ID_FIELD_NUMBER: _ClassVar[int]
    ENCRYPTED_TEXT_FIELD_NUMBER: _ClassVar[int]
    question_id: str
    score: int
    choice_id: str
    encrypted_text: bytes
    def __init__(self, question_id: _Optional[str] = ..., score: _Optional[int] = ..., choice_id: _Optional[str] = ..., encrypted_text: _Optional[bytes] = ...) -> None: ...

class SurveyInvited(_message.Message):
    __slots__ = ("invitation_id", "survey_id", "customer_id", "channel", "cause_event_id", "invited_at", "expires_at", "response_token", "survey_version", "touchpoint", "journey_stage", "case_id")
    INVITATION_ID_FIELD_NUMBER: _ClassVar[int]
    SURVEY_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    CAUSE_EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    INVITED_AT_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    SURVEY_VERSION_FIELD_NUMBER: _ClassVar[int]
    TOUCHPOINT_FIELD_NUMBER: _ClassVar[int]
    JOURNEY_STAGE_FIELD_NUMBER: _ClassVar[int]
    CASE_ID_FIELD_NUMBER: _ClassVar[int]
    invitation_id: str
    survey_id: str
    customer_id: str
    channel: InvitationChannel
    cause_event_id: str
    invited_at: _timestamp_pb2.Timestamp
    expires_at: _timestamp_pb2.Timestamp
    response_token: str
    survey_version: int
    touchpoint: str
    journey_stage: str
    case_id: str
    def __init__(self, invitation_id: _Optional[str] = ..., survey_id: _Optional[str] = ..., customer_id: _Optional[str] = ..., channel: _Optional[_Union[InvitationChannel, str]] = ..., cause_event_id: _Optional[str] = ..., invited_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., response_token: _Optional[str] = ..., survey_version: _Optional[int] = ..., touchpoint: _Optional[str] = ..., journey_stage: _Optional[str] = ..., case_id: _Optional[str] = ...) -> None: ...

class ResponseReceived(_message.Message):
    __slots__ = ("response_id", "survey_id", "invitation_id", "customer_id", "answers", "submitted_at")
    RESPONSE_ID_FIELD_NUMBER: _ClassVar[int]
    SURVEY_ID_FIELD_NUMBER: _ClassVar[int]
    INVITATION_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    ANSWERS_FIELD_NUMBER: _ClassVar[int]
    SUBMITTED_AT_FIELD_NUMBER: _ClassVar[int]
    response_id: str
    survey_id: str
    invitation_id: str
    customer_id: str
    answers: _containers.RepeatedCompositeFieldContainer[RecordedAnswer]
    submitted_at: _timestamp_pb2.Timestamp
    def __init__(self, response_id: _Optional[str] = ..., survey_id: _Optional[str] = ..., invitation_id: _Optional[str] = ..., customer_id: _Optional[str] = ..., answers: _Optional[_Iterable[_Union[RecordedAnswer, _Mapping]]] = ..., submitted_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class DetractorDetected(_message.Message):
    __slots__ = ("response_id", "customer_id", "survey_id", "metric", "score", "encrypted_text", "case_id", "detected_at")
    RESPONSE_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    SURVEY_ID_FIELD_NUMBER: _ClassVar[int]
    METRIC_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    ENCRYPTED_TEXT_FIELD_NUMBER: _ClassVar[int]
    CASE_ID_FIELD_NUMBER: _ClassVar[int]
    DETECTED_AT_FIELD_NUMBER: _ClassVar[int]
    response_id: str
    customer_id: str
    survey_id: str
    metric: KpiMetric
    score: int
    encrypted_text: bytes
    case_id: str
    detected_at: _timestamp_pb2.Timestamp
    def __init__(self, response_id: _Optional[str] = ..., customer_id: _Optional[str] = ..., survey_id: _Optional[str] = ..., metric: _Optional[_Union[KpiMetric, str]] = ..., score: _Optional[int] = ..., encrypted_text: _Optional[bytes] = ..., case_id: _Optional[str] = ..., detected_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class AlertRaised(_message.Message):
    __slots__ = ("alert_id", "kind", "severity", "metric", "observed_value", "expected_value", "window_start", "window_end", "customer_id", "case_id", "raised_at", "dimension", "z_score", "responses")
    ALERT_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    SEVERITY_FIELD_NUMBER: _ClassVar[int]
    METRIC_FIELD_NUMBER: _ClassVar[int]
    OBSERVED_VALUE_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_VALUE_FIELD_NUMBER: _ClassVar[int]
    WINDOW_START_FIELD_NUMBER: _ClassVar[int]
    WINDOW_END_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    CASE_ID_FIELD_NUMBER: _ClassVar[int]
    RAISED_AT_FIELD_NUMBER: _ClassVar[int]
    DIMENSION_FIELD_NUMBER: _ClassVar[int]
    Z_SCORE_FIELD_NUMBER: _ClassVar[int]
    RESPONSES_FIELD_NUMBER: _ClassVar[int]
    alert_id: str
    kind: AlertKind
    severity: AlertSeverity
    metric: KpiMetric
    observed_value: float
    expected_value: float
    window_start: _timestamp_pb2.Timestamp
    window_end: _timestamp_pb2.Timestamp
    customer_id: str
    case_id: str
    raised_at: _timestamp_pb2.Timestamp
    dimension: str
    z_score: float
    responses: int
    def __init__(self, alert_id: _Optional[str] = ..., kind: _Optional[_Union[AlertKind, str]] = ..., severity: _Optional[_Union[AlertSeverity, str]] = ..., metric: _Optional[_Union[KpiMetric, str]] = ..., observed_value: _Optional[float] = ..., expected_value: _Optional[float] = ..., window_start: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., window_end: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., customer_id: _Optional[str] = ..., case_id: _Optional[str] = ..., raised_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., dimension: _Optional[str] = ..., z_score: _Optional[float] = ..., responses: _Optional[int] = ...) -> None: ...

class ReviewSubmitted(_message.Message):
    __slots__ = ("review_id", "customer_id", "product_id", "rating", "text_length", "submitted_at")
    REVIEW_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    PRODUCT_ID_FIELD_NUMBER: _ClassVar[int]
    RATING_FIELD_NUMBER: _ClassVar[int]
    TEXT_LENGTH_FIELD_NUMBER: _ClassVar[int]
    SUBMITTED_AT_FIELD_NUMBER: _ClassVar[int]
    review_id: str
    customer_id: str
    product_id: str
    rating: int
    text_length: int
    submitted_at: _timestamp_pb2.Timestamp
    def __init__(self, review_id: _Optional[str] = ..., customer_id: _Optional[str] = ..., product_id: _Optional[str] = ..., rating: _Optional[int] = ..., text_length: _Optional[int] = ..., submitted_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CaseOpened(_message.Message):
    __slots__ = ("case_id", "customer_id", "source_kind", "source_id", "priority", "opened_at", "due_at")
    CASE_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    SOURCE_KIND_FIELD_NUMBER: _ClassVar[int]
    SOURCE_ID_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    OPENED_AT_FIELD_NUMBER: _ClassVar[int]
    DUE_AT_FIELD_NUMBER: _ClassVar[int]
    case_id: str
    customer_id: str
    source_kind: str
    source_id: str
    priority: str
    opened_at: _timestamp_pb2.Timestamp
    due_at: _timestamp_pb2.Timestamp
    def __init__(self, case_id: _Optional[str] = ..., customer_id: _Optional[str] = ..., source_kind: _Optional[str] = ..., source_id: _Optional[str] = ..., priority: _Optional[str] = ..., opened_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., due_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CaseResolved(_message.Message):
    __slots__ = ("case_id", "customer_id", "encrypted_resolution", "notify_customer", "follow_up_invitation_id", "resolved_at")
    CASE_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    ENCRYPTED_RESOLUTION_FIELD_NUMBER: _ClassVar[int]
    NOTIFY_CUSTOMER_FIELD_NUMBER: _ClassVar[int]
    FOLLOW_UP_INVITATION_ID_FIELD_NUMBER: _ClassVar[int]
    RESOLVED_AT_FIELD_NUMBER: _ClassVar[int]
    case_id: str
    customer_id: str
    encrypted_resolution: bytes
    notify_customer: bool
    follow_up_invitation_id: str
    resolved_at: _timestamp_pb2.Timestamp
    def __init__(self, case_id: _Optional[str] = ..., customer_id: _Optional[str] = ..., encrypted_resolution: _Optional[bytes] = ..., notify_customer: _Optional[bool] = ..., follow_up_invitation_id: _Optional[str] = ..., resolved_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
