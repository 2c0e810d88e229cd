import datetime

from cxloop.audit.v1 import audit_pb2 as _audit_pb2
from cxloop.consent.v1 import events_pb2 as _events_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CheckReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CHECK_REASON_UNSPECIFIED: _ClassVar[CheckReason]
    CHECK_REASON_GRANTED: _ClassVar[CheckReason]
    CHECK_REASON_DENIED: _ClassVar[CheckReason]
    CHECK_REASON_WITHDRAWN: _ClassVar[CheckReason]
    CHECK_REASON_NO_DECISION: _ClassVar[CheckReason]
    CHECK_REASON_NOTICE_OUTDATED: _ClassVar[CheckReason]
    CHECK_REASON_RESTRICTED: _ClassVar[CheckReason]
    CHECK_REASON_ERASED: _ClassVar[CheckReason]
    CHECK_REASON_UNKNOWN_PURPOSE: _ClassVar[CheckReason]
    CHECK_REASON_EXPIRED: _ClassVar[CheckReason]
    CHECK_REASON_LEGAL_BASIS: _ClassVar[CheckReason]

class VerificationStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    VERIFICATION_STATUS_UNSPECIFIED: _ClassVar[VerificationStatus]
    VERIFICATION_STATUS_PENDING: _ClassVar[VerificationStatus]
    VERIFICATION_STATUS_VERIFIED: _ClassVar[VerificationStatus]
    VERIFICATION_STATUS_FAILED: _ClassVar[VerificationStatus]

class PrivacyRequestStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PRIVACY_REQUEST_STATUS_UNSPECIFIED: _ClassVar[PrivacyRequestStatus]
    PRIVACY_REQUEST_STATUS_AWAITING_VERIFICATION: _ClassVar[PrivacyRequestStatus]
    PRIVACY_REQUEST_STATUS_IN_PROGRESS: _ClassVar[PrivacyRequestStatus]
    PRIVACY_REQUEST_STATUS_COMPLETED: _ClassVar[PrivacyRequestStatus]
    PRIVACY_REQUEST_STATUS_REJECTED: _ClassVar[PrivacyRequestStatus]
    PRIVACY_REQUEST_STATUS_ESCALATED: _ClassVar[PrivacyRequestStatus]

class ParticipantState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PARTICIPANT_STATE_UNSPECIFIED: _ClassVar[ParticipantState]
    PARTICIPANT_STATE_PENDING: _ClassVar[ParticipantState]
    PARTICIPANT_STATE_DONE: _ClassVar[ParticipantState]
    PARTICIPANT_STATE_FAILED: _ClassVar[ParticipantState]
    PARTICIPANT_STATE_NOT_APPLICABLE: _ClassVar[ParticipantState]
CHECK_REASON_UNSPECIFIED: CheckReason
CHECK_REASON_GRANTED: CheckReason
CHECK_REASON_DENIED: CheckReason
CHECK_REASON_WITHDRAWN: CheckReason
CHECK_REASON_NO_DECISION: CheckReason
CHECK_REASON_NOTICE_OUTDATED: CheckReason
CHECK_REASON_RESTRICTED: CheckReason
CHECK_REASON_ERASED: CheckReason
CHECK_REASON_UNKNOWN_PURPOSE: CheckReason
CHECK_REASON_EXPIRED: CheckReason
CHECK_REASON_LEGAL_BASIS: CheckReason
VERIFICATION_STATUS_UNSPECIFIED: VerificationStatus
VERIFICATION_STATUS_PENDING: VerificationStatus
VERIFICATION_STATUS_VERIFIED: VerificationStatus
VERIFICATION_STATUS_FAILED: VerificationStatus
PRIVACY_REQUEST_STATUS_UNSPECIFIED: PrivacyRequestStatus
PRIVACY_REQUEST_STATUS_AWAITING_VERIFICATION: PrivacyRequestStatus
PRIVACY_REQUEST_STATUS_IN_PROGRESS: PrivacyRequestStatus
PRIVACY_REQUEST_STATUS_COMPLETED: PrivacyRequestStatus
PRIVACY_REQUEST_STATUS_REJECTED: PrivacyRequestStatus
PRIVACY_REQUEST_STATUS_ESCALATED: PrivacyRequestStatus
PARTICIPANT_STATE_UNSPECIFIED: ParticipantState
PARTICIPANT_STATE_PENDING: ParticipantState
PARTICIPANT_STATE_DONE: ParticipantState
PARTICIPANT_STATE_FAILED: ParticipantState
PARTICIPANT_STATE_NOT_APPLICABLE: ParticipantState

class CheckRequest(_message.Message):
    __slots__ = ("customer_id", "purpose")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    purpose: str
    def __init__(self, customer_id: _Optional[str] = ..., purpose: _Optional[str] = ...) -> None: ...

class CheckResponse(_message.Message):
    __slots__ = ("allowed", "reason", "notice_version", "decided_at", "known")
    ALLOWED_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    NOTICE_VERSION_FIELD_NUMBER: _ClassVar[int]
    DECIDED_AT_FIELD_NUMBER: _ClassVar[int]
    KNOWN_FIELD_NUMBER: _ClassVar[int]
    allowed: bool
    reason: CheckReason
    notice_version: str
    decided_at: _timestamp_pb2.Timestamp
    known: bool
    def __init__(self, allowed: _Optional[bool] = ..., reason: _Optional[_Union[CheckReason, str]] = ..., notice_version: _Optional[str] = ..., decided_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., known: _Optional[bool] = ...) -> None: ...

class CheckBatchRequest(_message.Message):
    __slots__ = ("customer_ids", "purpose")
    CUSTOMER_IDS_FIELD_NUMBER: _ClassVar[int]
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    customer_ids: _containers.RepeatedScalarFieldContainer[str]
    purpose: str
    def __init__(self, customer_ids: _Optional[_Iterable[str]] = ..., purpose: _Optional[str] = ...) -> None: ...

class CheckBatchResponse(_message.Message):
    __slots__ = ("verdicts",)
    VERDICTS_FIELD_NUMBER: _ClassVar[int]
    verdicts: _containers.RepeatedCompositeFieldContainer[ConsentVerdict]
    def __init__(self, verdicts: _Optional[_Iterable[_Union[ConsentVerdict, _Mapping]]] = ...) -> None: ...

class ConsentVerdict(_message.Message):
    __slots__ = ("customer_id", "allowed", "reason", "notice_version", "known")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    ALLOWED_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    NOTICE_VERSION_FIELD_NUMBER: _ClassVar[int]
    KNOWN_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    allowed: bool
    reason: CheckReason
    notice_version: str
    known: bool
    def __init__(self, customer_id: _Optional[str] = ..., allowed: _Optional[bool] = ..., reason: _Optional[_Union[CheckReason, str]] = ..., notice_version: _Optional[str] = ..., known: _Optional[bool] = ...) -> None: ...

class ConsentProof(_message.Message):
    __slots__ = ("ip_hash", "user_agent_hash", "actor", "ip_address", "user_agent")
    IP_HASH_FIELD_NUMBER: _ClassVar[int]
    USER_AGENT_HASH_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    IP_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    USER_AGENT_FIELD_NUMBER: _ClassVar[int]
    ip_hash: str
    user_agent_hash: str
    actor: str
    ip_address: str
    user_agent: str
    def __init__(self, ip_hash: _Optional[str] = ..., user_agent_hash: _Optional[str] = ..., actor: _Optional[str] = ..., ip_address: _Optional[str] = ..., user_agent: _Optional[str] = ...) -> None: ...

class RecordConsentRequest(_message.Message):
    __slots__ = ("customer_id", "purpose", "decision", "notice_version", "channel", "proof", "decided_at", "idempotency_key", "expires_at")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    DECISION_FIELD_NUMBER: _ClassVar[int]
    NOTICE_VERSION_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    PROOF_FIELD_NUMBER: _ClassVar[int]
    DECIDED_AT_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    purpose: str
    decision: _events_pb2.ConsentDecision
    notice_version: str
    channel: _events_pb2.ConsentChannel
    proof: ConsentProof
    decided_at: _timestamp_pb2.Timestamp
    idempotency_key: str
    expires_at: _timestamp_pb2.Timestamp
    def __init__(self, customer_id: _Optional[str] = ..., purpose: _Optional[str] = ..., decision: _Optional[_Union[_events_pb2.ConsentDecision, str]] = ..., notice_version: _Optional[str] = ..., channel: _Optional[_Union[_events_pb2.ConsentChannel, str]] = ..., proof: _Optional[_Union[ConsentProof, _Mapping]] = ..., decided_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., idempotency_key: _Optional[str] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class RecordConsentResponse(_message.Message):
    __slots__ = ("record_id", "receipt_jws", "recorded_at", "conflicts_with_gpc")
    RECORD_ID_FIELD_NUMBER: _ClassVar[int]
    RECEIPT_JWS_FIELD_NUMBER: _ClassVar[int]
    RECORDED_AT_FIELD_NUMBER: _ClassVar[int]
    CONFLICTS_WITH_GPC_FIELD_NUMBER: _ClassVar[int]
    record_id: str
    receipt_jws: str
    recorded_at: _timestamp_pb2.Timestamp
    conflicts_with_gpc: bool
    def __init__(self, record_id: _Optional[str] = ..., receipt_jws: _Optional[str] = ..., recorded_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., conflicts_with_gpc: _Optional[bool] = ...) -> None: ...

class ListPurposesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListPurposesResponse(_message.Message):
    __slots__ = ("purposes",)
    PURPOSES_FIELD_NUMBER: _ClassVar[int]
    purposes: _containers.RepeatedCompositeFieldContainer[Purpose]
    def __init__(self, purposes: _Optional[_Iterable[_Union[Purpose, _Mapping]]] = ...) -> None: ...

class Purpose(_message.Message):
    __slots__ = ("key", "legal_basis", "mandatory", "notice", "reconsent_from_version", "validity_days")
    KEY_FIELD_NUMBER: _ClassVar[int]
    LEGAL_BASIS_FIELD_NUMBER: _ClassVar[int]
    MANDATORY_FIELD_NUMBER: _ClassVar[int]
    NOTICE_FIELD_NUMBER: _ClassVar[int]
    RECONSENT_FROM_VERSION_FIELD_NUMBER: _ClassVar[int]
    VALIDITY_DAYS_FIELD_NUMBER: _ClassVar[int]
    key: str
    legal_basis: _events_pb2.LegalBasis
    mandatory: bool
    notice: Notice
    reconsent_from_version: str
    validity_days: int
    def __init__(self, key: _Optional[str] = ..., legal_basis: _Optional[_Union[_events_pb2.LegalBasis, str]] = ..., mandatory: _Optional[bool] = ..., notice: _Optional[_Union[Notice, _Mapping]] = ..., reconsent_from_version: _Optional[str] = ..., validity_days: _Optional[int] = ...) -> None: ...

class Notice(_message.Message):
    __slots__ = ("version", "text_ko", "text_en", "substantive", "published_at", "third_party")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    TEXT_KO_FIELD_NUMBER: _ClassVar[int]
    TEXT_EN_FIELD_NUMBER: _ClassVar[int]
    SUBSTANTIVE_FIELD_NUMBER: _ClassVar[int]
    PUBLISHED_AT_FIELD_NUMBER: _ClassVar[int]
    THIRD_PARTY_FIELD_NUMBER: _ClassVar[int]
    version: str
    text_ko: str
    text_en: str
    substantive: bool
    published_at: _timestamp_pb2.Timestamp
    third_party: ThirdPartyProvision
    def __init__(self, version: _Optional[str] = ..., text_ko: _Optional[str] = ..., text_en: _Optional[str] = ..., substantive: _Optional[bool] = ..., published_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., third_party: _Optional[_Union[ThirdPartyProvision, _Mapping]] = ...) -> None: ...

class ThirdPartyProvision(_message.Message):
    __slots__ = ("recipient", "purpose", "items", "retention")
    RECIPIENT_FIELD_NUMBER: _ClassVar[int]
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    RETENTION_FIELD_NUMBER: _ClassVar[int]
    recipient: str
    purpose: str
    items: _containers.RepeatedScalarFieldContainer[str]
    retention: str
    def __init__(self, recipient: _Optional[str] = ..., purpose: _Optional[str] = ..., items: _Optional[_Iterable[str]] = ..., retention: _Optional[str] = ...) -> None: ...

class GetReceiptKeysRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetReceiptKeysResponse(_message.Message):
    __slots__ = ("jwks_json",)
    JWKS_JSON_FIELD_NUMBER: _ClassVar[int]
    jwks_json: str
    def __init__(self, jwks_json: _Optional[str] = ...) -> None: ...

class GetPreferencesRequest(_message.Message):
    __slots__ = ("customer_id",)
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    def __init__(self, customer_id: _Optional[str] = ...) -> None: ...

class GetPreferencesResponse(_message.Message):
    __slots__ = ("customer_id", "purposes")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    PURPOSES_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    purposes: _containers.RepeatedCompositeFieldContainer[_events_pb2.PurposeState]
    def __init__(self, customer_id: _Optional[str] = ..., purposes: _Optional[_Iterable[_Union[_events_pb2.PurposeState, _Mapping]]] = ...) -> None: ...

class OpenPrivacyRequestRequest(_message.Message):
    __slots__ = ("customer_id", "kind", "jurisdiction", "verification_status", "verification_method", "actor")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    JURISDICTION_FIELD_NUMBER: _ClassVar[int]
    VERIFICATION_STATUS_FIELD_NUMBER: _ClassVar[int]
    VERIFICATION_METHOD_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    kind: _events_pb2.PrivacyRequestKind
    jurisdiction: _events_pb2.Jurisdiction
    verification_status: VerificationStatus
    verification_method: str
    actor: str
    def __init__(self, customer_id: _Optional[str] = ..., kind: _Optional[_Union[_events_pb2.PrivacyRequestKind, str]] = ..., jurisdiction: _Optional[_Union[_events_pb2.Jurisdiction, str]] = ..., verification_status: _Optional[_Union[VerificationStatus, str]] = ..., verification_method: _Optional[str] = ..., actor: _Optional[str] = ...) -> None: ...

class OpenPrivacyRequestResponse(_message.Message):
    __slots__ = ("request_id", "status", "opened_at", "due_at")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    OPENED_AT_FIELD_NUMBER: _ClassVar[int]
    DUE_AT_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    status: PrivacyRequestStatus
    opened_at: _timestamp_pb2.Timestamp
    due_at: _timestamp_pb2.Timestamp
    def __init__(self, request_id: _Optional[str] = ..., status: _Optional[_Union[PrivacyRequestStatus, str]] = ..., opened_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., due_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class GetPrivacyRequestStatusRequest(_message.Message):
    __slots__ = ("request_id",)
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    def __init__(self, request_id: _Optional[str] = ...) -> None: ...

class GetPrivacyRequestStatusResponse(_message.Message):
    __slots__ = ("request_id", "customer_id", "kind", "jurisdiction", "status", "verification_status", "opened_at", "due_at", "closed_at", "participants", "access_bundle_json", "overdue", "extended", "extension_reason", "escalation_reason")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    JURISDICTION_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    VERIFICATION_STATUS_FIELD_NUMBER: _ClassVar[int]
    OPENED_AT_FIELD_NUMBER: _ClassVar[int]
    DUE_AT_FIELD_NUMBER: _ClassVar[int]
    CLOSED_AT_FIELD_NUMBER: _ClassVar[int]
    PARTICIPANTS_FIELD_NUMBER: _ClassVar[int]
    ACCESS_BUNDLE_JSON_FIELD_NUMBER: _ClassVar[int]
    OVERDUE_FIELD_NUMBER: _ClassVar[int]
    EXTENDED_FIELD_NUMBER: _ClassVar[int]
    EXTENSION_REASON_FIELD_NUMBER: _ClassVar[int]
    ESCALATION_REASON_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    customer_id: str
    kind: _events_pb2.PrivacyRequestKind
    jurisdiction: _events_pb2.Jurisdiction
    status: PrivacyRequestStatus
    verification_status: VerificationStatus
    opened_at: _timestamp_pb2.Timestamp
    due_at: _timestamp_pb2.Timestamp
    closed_at: _timestamp_pb2.Timestamp
    participants: _containers.RepeatedCompositeFieldContainer[ParticipantAnswer]
    access_bundle_json: str
    overdue: bool
    extended: bool
    extension_reason: str
    escalation_reason: _events_pb2.PrivacyEscalationReason
    def __init__(self, request_id: _Optional[str] = ..., customer_id: _Optional[str] = ..., kind: _Optional[_Union[_events_pb2.PrivacyRequestKind, str]] = ..., jurisdiction: _Optional[_Union[_events_pb2.Jurisdiction, str]] = ..., status: _Optional[_Union[PrivacyRequestStatus, str]] = ..., verification_status: _Optional[_Union[VerificationStatus, str]] = ..., opened_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., due_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., closed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., participants: _Optional[_Iterable[_Union[ParticipantAnswer, _Mapping]]] = ..., access_bundle_json: _Optional[str] = ..., overdue: _Optional[bool] = ..., extended: _Optional[bool] = ..., extension_reason: _Optional[str] = ..., escalation_reason: _Optional[_Union[_events_pb2.PrivacyEscalationReason, str]] = ...) -> None: ...

class ParticipantAnswer(_message.Message):
    __slots__ = ("participant", "state", "answered_at", "records_affected", "detail", "categories", "row_counts")
    class RowCountsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    PARTICIPANT_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    ANSWERED_AT_FIELD_NUMBER: _ClassVar[int]
    RECORDS_AFFECTED_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    CATEGORIES_FIELD_NUMBER: _ClassVar[int]
    ROW_COUNTS_FIELD_NUMBER: _ClassVar[int]
    participant: str
    state: ParticipantState
    answered_at: _timestamp_pb2.Timestamp
    records_affected: int
    detail: str
    categories: _containers.RepeatedScalarFieldContainer[str]
    row_counts: _containers.ScalarMap[str, int]
    def __init__(self, participant: _Optional[str] = ..., state: _Optional[_Union[ParticipantState, str]] = ..., answered_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., records_affected: _Optional[int] = ..., detail: _Optional[str] = ..., categories: _Optional[_Iterable[str]] = ..., row_counts: _Optional[_Mapping[str, int]] = ...) -> None: ...

class VerifyPrivacyRequestRequest(_message.Message):
    __slots__ = ("request_id", "verification_status", "verification_method")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    VERIFICATION_STATUS_FIELD_NUMBER: _ClassVar[int]
    VERIFICATION_METHOD_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    verification_status: VerificationStatus
    verification_method: str
    def __init__(self, request_id: _Optional[str] = ..., verification_status: _Optional[_Union[VerificationStatus, str]] = ..., verification_method: _Optional[str] = ...) -> None: ...

class VerifyPrivacyRequestResponse(_message.Message):
    __slots__ = ("status",)
    STATUS_FIELD_NUMBER: _ClassVar[int]
    status: PrivacyRequestStatus
    def __init__(self, status: _Optional[_Union[PrivacyRequestStatus, str]] = ...) -> None: ...

class ExtendPrivacyRequestRequest(_message.Message):
    __slots__ = ("request_id", "reason")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    reason: str
    def __init__(self, request_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class ExtendPrivacyRequestResponse(_message.Message):
    __slots__ = ("due_at",)
    DUE_AT_FIELD_NUMBER: _ClassVar[int]
    due_at: _timestamp_pb2.Timestamp
    def __init__(self, due_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ExportAuditLogRequest(_message.Message):
    __slots__ = ("subject", "actor", "since", "until", "action", "page_size", "page_token")
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    SINCE_FIELD_NUMBER: _ClassVar[int]
    UNTIL_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    subject: str
    actor: str
    since: _timestamp_pb2.Timestamp
    until: _timestamp_pb2.Timestamp
    action: _audit_pb2.AuditAction
    page_size: int
    page_token: str
    def __init__(self, subject: _Optional[str] = ..., actor: _Optional[str] = ..., since: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., action: _Optional[_Union[_audit_pb2.AuditAction, str]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ExportAuditLogResponse(_message.Message):
    __slots__ = ("entries", "next_page_token")
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[_audit_pb2.AuditEntry]
    next_page_token: str
    def __init__(self, entries: _Optional[_Iterable[_Union[_audit_pb2.AuditEntry, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class PublishNoticeRequest(_message.Message):
    __slots__ = ("purpose", "text_ko", "text_en", "substantive", "third_party")
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    TEXT_KO_FIELD_NUMBER: _ClassVar[int]
    TEXT_EN_FIELD_NUMBER: _ClassVar[int]
    SUBSTANTIVE_FIELD_NUMBER: _ClassVar[int]
    THIRD_PARTY_FIELD_NUMBER: _ClassVar[int]
    purpose: str
    text_ko: str
    text_en: str
    substantive: bool
    third_party: ThirdPartyProvision
    def __init__(self, purpose: _Optional[str] = ..., text_ko: _Optional[str] = ..., text_en: _Optional[str] = ..., substantive: _Optional[bool] = ..., third_party: _Optional[_Union[ThirdPartyProvision, _Mapping]] = ...) -> None: ...

class PublishNoticeResponse(_message.Message):
    __slots__ = ("notice", "reconsent_from_version")
    NOTICE_FIELD_NUMBER: _ClassVar[int]
    RECONSENT_FROM_VERSION_FIELD_NUMBER: _ClassVar[int]
    notice: Notice
    reconsent_from_version: str
    def __init__(self, notice: _Optional[_Union[Notice, _Mapping]] = ..., reconsent_from_version: _Optional[str] = ...) -> None: ...

class RotateReceiptKeyRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class RotateReceiptKeyResponse(_message.Message):
    __slots__ = ("kid", "alg", "jwks_json")
    KID_FIELD_NUMBER: _ClassVar[int]
    ALG_FIELD_NUMBER: _ClassVar[int]
    JWKS_JSON_FIELD_NUMBER: _ClassVar[int]
    kid: str
    alg: str
    jwks_json: str
    def __init__(self, kid: _Optional[str] = ..., alg: _Optional[str] = ..., jwks_json: _Optional[str] = ...) -> None: ...
