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
    __slots__ = ("survey_id", "customer_id", "invitation_id", "answers", "submitted_at", "idempotency_key")
    SURVEY_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    INVITATION_ID_FIELD_NUMBER: _ClassVar[int]
    ANSWERS_FIELD_NUMBER: _ClassVar[int]
    SUBMITTED_AT_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    survey_id: str
    customer_id: str
    invitation_id: str
    answers: _containers.RepeatedCompositeFieldContainer[Answer]
    submitted_at: _timestamp_pb2.Timestamp
    idempotency_key: str
    def __init__(self, survey_id: _Optional[str] = ..., customer_id: _Optional[str] = ..., invitation_id: _Optional[str] = ..., answers: _Optional[_Iterable[_Union[Answer, _Mapping]]] = ..., submitted_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., idempotency_key: _Optional[str] = ...) -> None: ...

class SubmitResponseResponse(_message.Message):
    __slots__ = ("response_id", "detractor")
    RESPONSE_ID_FIELD_NUMBER: _ClassVar[int]
    DETRACTOR_FIELD_NUMBER: _ClassVar[int]
    response_id: str
    detractor: bool
    def __init__(self, response_id: _Optional[str] = ..., detractor: _Optional[bool] = ...) -> None: ...

class GetKpisRequest(_message.Message):
    __slots__ = ("metric", "start_time", "end_time", "granularity", "time_zone", "survey_id")
    METRIC_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    GRANULARITY_FIELD_NUMBER: _ClassVar[int]
    TIME_ZONE_FIELD_NUMBER: _ClassVar[int]
    SURVEY_ID_FIELD_NUMBER: _ClassVar[int]
    metric: _events_pb2.KpiMetric
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    granularity: Granularity
    time_zone: str
    survey_id: str
    def __init__(self, metric: _Optional[_Union[_events_pb2.KpiMetric, str]] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., granularity: _Optional[_Union[Granularity, str]] = ..., time_zone: _Optional[str] = ..., survey_id: _Optional[str] = ...) -> None: ...

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
    __slots__ = ("period_start", "value", "responses", "promoters", "passives", "detractors")
    PERIOD_START_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    RESPONSES_FIELD_NUMBER: _ClassVar[int]
    PROMOTERS_FIELD_NUMBER: _ClassVar[int]
    PASSIVES_FIELD_NUMBER: _ClassVar[int]
    DETRACTORS_FIELD_NUMBER: _ClassVar[int]
    period_start: _timestamp_pb2.Timestamp
    value: float
    responses: int
    promoters: int
    passives: int
    detractors: int
    def __init__(self, period_start: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., value: _Optional[float] = ..., responses: _Optional[int] = ..., promoters: _Optional[int] = ..., passives: _Optional[int] = ..., detractors: _Optional[int] = ...) -> None: ...

class ListCasesRequest(_message.Message):
    __slots__ = ("status", "page_token", "page_size")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    status: CaseStatus
    page_token: str
    page_size: int
    def __init__(self, status: _Optional[_Union[CaseStatus, str]] = ..., page_token: _Optional[str] = ..., page_size: _Optional[int] = ...) -> None: ...

class ListCasesResponse(_message.Message):
    __slots__ = ("cases", "next_page_token")
    CASES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    cases: _containers.RepeatedCompositeFieldContainer[Case]
    next_page_token: str
    def __init__(self, cases: _Optional[_Iterable[_Union[Case, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class Case(_message.Message):
    __slots__ = ("case_id", "customer_id", "status", "priority", "response_id", "assignee", "subject", "notes", "opened_at", "updated_at", "due_at")
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
    def __init__(self, case_id: _Optional[str] = ..., customer_id: _Optional[str] = ..., status: _Optional[_Union[CaseStatus, str]] = ..., priority: _Optional[_Union[CasePriority, str]] = ..., response_id: _Optional[str] = ..., assignee: _Optional[str] = ..., subject: _Optional[str] = ..., notes: _Optional[_Iterable[_Union[CaseNote, _Mapping]]] = ..., opened_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., due_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

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
    __slots__ = ("case_id", "status", "note", "actor", "assignee")
    CASE_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    ASSIGNEE_FIELD_NUMBER: _ClassVar[int]
    case_id: str
    status: CaseStatus
    note: str
    actor: str
    assignee: str
    def __init__(self, case_id: _Optional[str] = ..., status: _Optional[_Union[CaseStatus, str]] = ..., note: _Optional[str] = ..., actor: _Optional[str] = ..., assignee: _Optional[str] = ...) -> None: ...

class UpdateCaseResponse(_message.Message):
    __slots__ = ("case",)
    CASE_FIELD_NUMBER: _ClassVar[int]
    case: Case
    def __init__(self, case: _Optional[_Union[Case, _Mapping]] = ...) -> None: ...
