import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ConsentDecision(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CONSENT_DECISION_UNSPECIFIED: _ClassVar[ConsentDecision]
    CONSENT_DECISION_GRANTED: _ClassVar[ConsentDecision]
    CONSENT_DECISION_DENIED: _ClassVar[ConsentDecision]
    CONSENT_DECISION_WITHDRAWN: _ClassVar[ConsentDecision]

class ConsentChannel(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CONSENT_CHANNEL_UNSPECIFIED: _ClassVar[ConsentChannel]
    CONSENT_CHANNEL_WEB_FORM: _ClassVar[ConsentChannel]
    CONSENT_CHANNEL_APP: _ClassVar[ConsentChannel]
    CONSENT_CHANNEL_CALL_CENTRE: _ClassVar[ConsentChannel]
    CONSENT_CHANNEL_GPC_SIGNAL: _ClassVar[ConsentChannel]
    CONSENT_CHANNEL_IMPORT: _ClassVar[ConsentChannel]

class LegalBasis(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    LEGAL_BASIS_UNSPECIFIED: _ClassVar[LegalBasis]
    LEGAL_BASIS_CONSENT: _ClassVar[LegalBasis]
    LEGAL_BASIS_CONTRACT: _ClassVar[LegalBasis]
    LEGAL_BASIS_LEGITIMATE_INTEREST: _ClassVar[LegalBasis]

class PrivacyRequestKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PRIVACY_REQUEST_KIND_UNSPECIFIED: _ClassVar[PrivacyRequestKind]
    PRIVACY_REQUEST_KIND_ACCESS: _ClassVar[PrivacyRequestKind]
    PRIVACY_REQUEST_KIND_ERASURE: _ClassVar[PrivacyRequestKind]
    PRIVACY_REQUEST_KIND_RECTIFICATION: _ClassVar[PrivacyRequestKind]
    PRIVACY_REQUEST_KIND_RESTRICTION: _ClassVar[PrivacyRequestKind]

class Jurisdiction(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    JURISDICTION_UNSPECIFIED: _ClassVar[Jurisdiction]
    JURISDICTION_GDPR: _ClassVar[Jurisdiction]
    JURISDICTION_PIPA: _ClassVar[Jurisdiction]
    JURISDICTION_CCPA: _ClassVar[Jurisdiction]

class PrivacyAnswerOutcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PRIVACY_ANSWER_OUTCOME_UNSPECIFIED: _ClassVar[PrivacyAnswerOutcome]
    PRIVACY_ANSWER_OUTCOME_DONE: _ClassVar[PrivacyAnswerOutcome]
    PRIVACY_ANSWER_OUTCOME_FAILED: _ClassVar[PrivacyAnswerOutcome]
    PRIVACY_ANSWER_OUTCOME_NOT_APPLICABLE: _ClassVar[PrivacyAnswerOutcome]

class PrivacyEscalationReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PRIVACY_ESCALATION_REASON_UNSPECIFIED: _ClassVar[PrivacyEscalationReason]
    PRIVACY_ESCALATION_REASON_PARTICIPANTS_SILENT: _ClassVar[PrivacyEscalationReason]
    PRIVACY_ESCALATION_REASON_OVERDUE: _ClassVar[PrivacyEscalationReason]
    PRIVACY_ESCALATION_REASON_PARTICIPANT_FAILED: _ClassVar[PrivacyEscalationReason]
CONSENT_DECISION_UNSPECIFIED: ConsentDecision
CONSENT_DECISION_GRANTED: ConsentDecision
CONSENT_DECISION_DENIED: ConsentDecision
CONSENT_DECISION_WITHDRAWN: ConsentDecision
CONSENT_CHANNEL_UNSPECIFIED: ConsentChannel
CONSENT_CHANNEL_WEB_FORM: ConsentChannel
CONSENT_CHANNEL_APP: ConsentChannel
CONSENT_CHANNEL_CALL_CENTRE: ConsentChannel
CONSENT_CHANNEL_GPC_SIGNAL: ConsentChannel
CONSENT_CHANNEL_IMPORT: ConsentChannel
LEGAL_BASIS_UNSPECIFIED: LegalBasis
LEGAL_BASIS_CONSENT: LegalBasis
LEGAL_BASIS_CONTRACT: LegalBasis
LEGAL_BASIS_LEGITIMATE_INTEREST: LegalBasis
PRIVACY_REQUEST_KIND_UNSPECIFIED: PrivacyRequestKind
PRIVACY_REQUEST_KIND_ACCESS: PrivacyRequestKind
PRIVACY_REQUEST_KIND_ERASURE: PrivacyRequestKind
PRIVACY_REQUEST_KIND_RECTIFICATION: PrivacyRequestKind
PRIVACY_REQUEST_KIND_RESTRICTION: PrivacyRequestKind
JURISDICTION_UNSPECIFIED: Jurisdiction
JURISDICTION_GDPR: Jurisdiction
JURISDICTION_PIPA: Jurisdiction
JURISDICTION_CCPA: Jurisdiction
PRIVACY_ANSWER_OUTCOME_UNSPECIFIED: PrivacyAnswerOutcome
PRIVACY_ANSWER_OUTCOME_DONE: PrivacyAnswerOutcome
PRIVACY_ANSWER_OUTCOME_FAILED: PrivacyAnswerOutcome
PRIVACY_ANSWER_OUTCOME_NOT_APPLICABLE: PrivacyAnswerOutcome
PRIVACY_ESCALATION_REASON_UNSPECIFIED: PrivacyEscalationReason
PRIVACY_ESCALATION_REASON_PARTICIPANTS_SILENT: PrivacyEscalationReason
PRIVACY_ESCALATION_REASON_OVERDUE: PrivacyEscalationReason
PRIVACY_ESCALATION_REASON_PARTICIPANT_FAILED: PrivacyEscalationReason

class PurposeState(_message.Message):
    __slots__ = ("purpose", "decision", "notice_version", "channel", "decided_at", "record_id", "expires_at", "needs_reconsent", "conflicts_with_gpc")
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    DECISION_FIELD_NUMBER: _ClassVar[int]
    NOTICE_VERSION_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    DECIDED_AT_FIELD_NUMBER: _ClassVar[int]
    RECORD_ID_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    NEEDS_RECONSENT_FIELD_NUMBER: _ClassVar[int]
    CONFLICTS_WITH_GPC_FIELD_NUMBER: _ClassVar[int]
    purpose: str
    decision: ConsentDecision
    notice_version: str
    channel: ConsentChannel
    decided_at: _timestamp_pb2.Timestamp
    record_id: str
    expires_at: _timestamp_pb2.Timestamp
    needs_reconsent: bool
    conflicts_with_gpc: bool
    def __init__(self, purpose: _Optional[str] = ..., decision: _Optional[_Union[ConsentDecision, str]] = ..., notice_version: _Optional[str] = ..., channel: _Optional[_Union[ConsentChannel, str]] = ..., decided_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., record_id: _Optional[str] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., needs_reconsent: _Optional[bool] = ..., conflicts_with_gpc: _Optional[bool] = ...) -> None: ...

class ConsentChanged(_message.Message):
    __slots__ = ("customer_id", "purposes", "changed_purpose", "record_id", "version")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    PURPOSES_FIELD_NUMBER: _ClassVar[int]
    CHANGED_PURPOSE_FIELD_NUMBER: _ClassVar[int]
    RECORD_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    purposes: _containers.RepeatedCompositeFieldContainer[PurposeState]
    changed_purpose: str
    record_id: str
    version: int
    def __init__(self, customer_id: _Optional[str] = ..., purposes: _Optional[_Iterable[_Union[PurposeState, _Mapping]]] = ..., changed_purpose: _Optional[str] = ..., record_id: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...

class NoticePublished(_message.Message):
    __slots__ = ("purpose", "legal_basis", "mandatory", "notice_version", "reconsent_from_version", "substantive", "published_at")
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    LEGAL_BASIS_FIELD_NUMBER: _ClassVar[int]
    MANDATORY_FIELD_NUMBER: _ClassVar[int]
    NOTICE_VERSION_FIELD_NUMBER: _ClassVar[int]
    RECONSENT_FROM_VERSION_FIELD_NUMBER: _ClassVar[int]
    SUBSTANTIVE_FIELD_NUMBER: _ClassVar[int]
    PUBLISHED_AT_FIELD_NUMBER: _ClassVar[int]
    purpose: str
    legal_basis: LegalBasis
    mandatory: bool
    notice_version: str
    reconsent_from_version: str
    substantive: bool
    published_at: _timestamp_pb2.Timestamp
    def __init__(self, purpose: _Optional[str] = ..., legal_basis: _Optional[_Union[LegalBasis, str]] = ..., mandatory: _Optional[bool] = ..., notice_version: _Optional[str] = ..., reconsent_from_version: _Optional[str] = ..., substantive: _Optional[bool] = ..., published_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class PrivacyRequestOpened(_message.Message):
    __slots__ = ("request_id", "customer_id", "kind", "jurisdiction", "opened_at", "due_at")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    JURISDICTION_FIELD_NUMBER: _ClassVar[int]
    OPENED_AT_FIELD_NUMBER: _ClassVar[int]
    DUE_AT_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    customer_id: str
    kind: PrivacyRequestKind
    jurisdiction: Jurisdiction
    opened_at: _timestamp_pb2.Timestamp
    due_at: _timestamp_pb2.Timestamp
    def __init__(self, request_id: _Optional[str] = ..., customer_id: _Optional[str] = ..., kind: _Optional[_Union[PrivacyRequestKind, str]] = ..., jurisdiction: _Optional[_Union[Jurisdiction, str]] = ..., opened_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., due_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ErasureRequested(_message.Message):
    __slots__ = ("request_id", "customer_id", "due_at")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    DUE_AT_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    customer_id: str
    due_at: _timestamp_pb2.Timestamp
    def __init__(self, request_id: _Optional[str] = ..., customer_id: _Optional[str] = ..., due_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class AccessRequested(_message.Message):
    __slots__ = ("request_id", "customer_id", "due_at")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    DUE_AT_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    customer_id: str
    due_at: _timestamp_pb2.Timestamp
    def __init__(self, request_id: _Optional[str] = ..., customer_id: _Optional[str] = ..., due_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class RectificationRequested(_message.Message):
    __slots__ = ("request_id", "customer_id", "due_at")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    DUE_AT_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    customer_id: str
    due_at: _timestamp_pb2.Timestamp
    def __init__(self, request_id: _Optional[str] = ..., customer_id: _Optional[str] = ..., due_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class RestrictionRequested(_message.Message):
    __slots__ = ("request_id", "customer_id", "due_at")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    DUE_AT_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    customer_id: str
    due_at: _timestamp_pb2.Timestamp
    def __init__(self, request_id: _Optional[str] = ..., customer_id: _Optional[str] = ..., due_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class PrivacyRequestAnswered(_message.Message):
    __slots__ = ("request_id", "customer_id", "participant", "kind", "outcome", "categories", "row_counts", "export_json", "detail", "answered_at")
    class RowCountsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    PARTICIPANT_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    CATEGORIES_FIELD_NUMBER: _ClassVar[int]
    ROW_COUNTS_FIELD_NUMBER: _ClassVar[int]
    EXPORT_JSON_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    ANSWERED_AT_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    customer_id: str
    participant: str
    kind: PrivacyRequestKind
    outcome: PrivacyAnswerOutcome
    categories: _containers.RepeatedScalarFieldContainer[str]
    row_counts: _containers.ScalarMap[str, int]
    export_json: str
    detail: str
    answered_at: _timestamp_pb2.Timestamp
    def __init__(self, request_id: _Optional[str] = ..., customer_id: _Optional[str] = ..., participant: _Optional[str] = ..., kind: _Optional[_Union[PrivacyRequestKind, str]] = ..., outcome: _Optional[_Union[PrivacyAnswerOutcome, str]] = ..., categories: _Optional[_Iterable[str]] = ..., row_counts: _Optional[_Mapping[str, int]] = ..., export_json: _Optional[str] = ..., detail: _Optional[str] = ..., answered_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class PrivacyRequestCompleted(_message.Message):
    __slots__ = ("request_id", "customer_id", "kind", "closed_at", "participants", "records_affected")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    CLOSED_AT_FIELD_NUMBER: _ClassVar[int]
    PARTICIPANTS_FIELD_NUMBER: _ClassVar[int]
    RECORDS_AFFECTED_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    customer_id: str
    kind: PrivacyRequestKind
    closed_at: _timestamp_pb2.Timestamp
    participants: _containers.RepeatedScalarFieldContainer[str]
    records_affected: int
    def __init__(self, request_id: _Optional[str] = ..., customer_id: _Optional[str] = ..., kind: _Optional[_Union[PrivacyRequestKind, str]] = ..., closed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., participants: _Optional[_Iterable[str]] = ..., records_affected: _Optional[int] = ...) -> None: ...

class PrivacyRequestEscalated(_message.Message):
    __slots__ = ("request_id", "customer_id", "kind", "reason", "missing_participants", "due_at", "escalated_at")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    MISSING_PARTICIPANTS_FIELD_NUMBER: _ClassVar[int]
    DUE_AT_FIELD_NUMBER: _ClassVar[int]
    ESCALATED_AT_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    customer_id: str
    kind: PrivacyRequestKind
    reason: PrivacyEscalationReason
    missing_participants: _containers.RepeatedScalarFieldContainer[str]
    due_at: _timestamp_pb2.Timestamp
    escalated_at: _timestamp_pb2.Timestamp
    def __init__(self, request_id: _Optional[str] = ..., customer_id: _Optional[str] = ..., kind: _Optional[_Union[PrivacyRequestKind, str]] = ..., reason: _Optional[_Union[PrivacyEscalationReason, str]] = ..., missing_participants: _Optional[_Iterable[str]] = ..., due_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., escalated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class RetentionPolicy(_message.Message):
    __slots__ = ("version", "category_days", "purpose_days", "changed_at", "changed_by")
    class CategoryDaysEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    class PurposeDaysEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    VERSION_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_DAYS_FIELD_NUMBER: _ClassVar[int]
    PURPOSE_DAYS_FIELD_NUMBER: _ClassVar[int]
    CHANGED_AT_FIELD_NUMBER: _ClassVar[int]
    CHANGED_BY_FIELD_NUMBER: _ClassVar[int]
    version: int
    category_days: _containers.ScalarMap[str, int]
    purpose_days: _containers.ScalarMap[str, int]
    changed_at: _timestamp_pb2.Timestamp
    changed_by: str
    def __init__(self, version: _Optional[int] = ..., category_days: _Optional[_Mapping[str, int]] = ..., purpose_days: _Optional[_Mapping[str, int]] = ..., changed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., changed_by: _Optional[str] = ...) -> None: ...

class RetentionPolicyChanged(_message.Message):
    __slots__ = ("policy",)
    POLICY_FIELD_NUMBER: _ClassVar[int]
    policy: RetentionPolicy
    def __init__(self, policy: _Optional[_Union[RetentionPolicy, _Mapping]] = ...) -> None: ...

class RetentionPurgeCompleted(_message.Message):
    __slots__ = ("service", "policy_version", "rows_purged", "batches", "failed_categories", "stream_max_age_seconds", "started_at", "completed_at")
    class RowsPurgedEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    class BatchesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    POLICY_VERSION_FIELD_NUMBER: _ClassVar[int]
    ROWS_PURGED_FIELD_NUMBER: _ClassVar[int]
    BATCHES_FIELD_NUMBER: _ClassVar[int]
    FAILED_CATEGORIES_FIELD_NUMBER: _ClassVar[int]
    STREAM_MAX_AGE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    COMPLETED_AT_FIELD_NUMBER: _ClassVar[int]
    service: str
    policy_version: int
    rows_purged: _containers.ScalarMap[str, int]
    batches: _containers.ScalarMap[str, int]
    failed_categories: _containers.RepeatedScalarFieldContainer[str]
    stream_max_age_seconds: int
    started_at: _timestamp_pb2.Timestamp
    completed_at: _timestamp_pb2.Timestamp
    def __init__(self, service: _Optional[str] = ..., policy_version: _Optional[int] = ..., rows_purged: _Optional[_Mapping[str, int]] = ..., batches: _Optional[_Mapping[str, int]] = ..., failed_categories: _Optional[_Iterable[str]] = ..., stream_max_age_seconds: _Optional[int] = ..., started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., completed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
