import datetime

from cxloop.common.v1 import identifier_pb2 as _identifier_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ReviewStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REVIEW_STATUS_UNSPECIFIED: _ClassVar[ReviewStatus]
    REVIEW_STATUS_OPEN: _ClassVar[ReviewStatus]
    REVIEW_STATUS_APPROVED: _ClassVar[ReviewStatus]
    REVIEW_STATUS_REJECTED: _ClassVar[ReviewStatus]

class ReviewDecision(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REVIEW_DECISION_UNSPECIFIED: _ClassVar[ReviewDecision]
    REVIEW_DECISION_APPROVE: _ClassVar[ReviewDecision]
    REVIEW_DECISION_REJECT: _ClassVar[ReviewDecision]
REVIEW_STATUS_UNSPECIFIED: ReviewStatus
REVIEW_STATUS_OPEN: ReviewStatus
REVIEW_STATUS_APPROVED: ReviewStatus
REVIEW_STATUS_REJECTED: ReviewStatus
REVIEW_DECISION_UNSPECIFIED: ReviewDecision
REVIEW_DECISION_APPROVE: ReviewDecision
REVIEW_DECISION_REJECT: ReviewDecision

class ResolveRequest(_message.Message):
    __slots__ = ("identifiers", "source", "traits", "observed_at")
    class TraitsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    IDENTIFIERS_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    TRAITS_FIELD_NUMBER: _ClassVar[int]
    OBSERVED_AT_FIELD_NUMBER: _ClassVar[int]
    identifiers: _containers.RepeatedCompositeFieldContainer[_identifier_pb2.Identifier]
    source: str
    traits: _containers.ScalarMap[str, str]
    observed_at: _timestamp_pb2.Timestamp
    def __init__(self, identifiers: _Optional[_Iterable[_Union[_identifier_pb2.Identifier, _Mapping]]] = ..., source: _Optional[str] = ..., traits: _Optional[_Mapping[str, str]] = ..., observed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ResolveResponse(_message.Message):
    __slots__ = ("customer_id", "created")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    created: bool
    def __init__(self, customer_id: _Optional[str] = ..., created: _Optional[bool] = ...) -> None: ...

class GetProfileRequest(_message.Message):
    __slots__ = ("customer_id",)
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    def __init__(self, customer_id: _Optional[str] = ...) -> None: ...

class GetProfileResponse(_message.Message):
    __slots__ = ("profile",)
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    profile: Profile
    def __init__(self, profile: _Optional[_Union[Profile, _Mapping]] = ...) -> None: ...

class Profile(_message.Message):
    __slots__ = ("customer_id", "identifiers", "merged_customer_ids", "created_at", "updated_at", "interaction_count", "last_seen_at", "golden_record")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    IDENTIFIERS_FIELD_NUMBER: _ClassVar[int]
    MERGED_CUSTOMER_IDS_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    INTERACTION_COUNT_FIELD_NUMBER: _ClassVar[int]
    LAST_SEEN_AT_FIELD_NUMBER: _ClassVar[int]
    GOLDEN_RECORD_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    identifiers: _containers.RepeatedCompositeFieldContainer[_identifier_pb2.HashedIdentifier]
    merged_customer_ids: _containers.RepeatedScalarFieldContainer[str]
    created_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    interaction_count: int
    last_seen_at: _timestamp_pb2.Timestamp
    golden_record: _containers.RepeatedCompositeFieldContainer[ProfileTrait]
    def __init__(self, customer_id: _Optional[str] = ..., identifiers: _Optional[_Iterable[_Union[_identifier_pb2.HashedIdentifier, _Mapping]]] = ..., merged_customer_ids: _Optional[_Iterable[str]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., interaction_count: _Optional[int] = ..., last_seen_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., golden_record: _Optional[_Iterable[_Union[ProfileTrait, _Mapping]]] = ...) -> None: ...

class ProfileTrait(_message.Message):
    __slots__ = ("name", "value", "rule", "source", "observed_at", "observations")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    RULE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    OBSERVED_AT_FIELD_NUMBER: _ClassVar[int]
    OBSERVATIONS_FIELD_NUMBER: _ClassVar[int]
    name: str
    value: str
    rule: str
    source: str
    observed_at: _timestamp_pb2.Timestamp
    observations: int
    def __init__(self, name: _Optional[str] = ..., value: _Optional[str] = ..., rule: _Optional[str] = ..., source: _Optional[str] = ..., observed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., observations: _Optional[int] = ...) -> None: ...

class LookupByIdentifierRequest(_message.Message):
    __slots__ = ("identifier",)
    IDENTIFIER_FIELD_NUMBER: _ClassVar[int]
    identifier: _identifier_pb2.Identifier
    def __init__(self, identifier: _Optional[_Union[_identifier_pb2.Identifier, _Mapping]] = ...) -> None: ...

class LookupByIdentifierResponse(_message.Message):
    __slots__ = ("customer_id", "profile")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    profile: Profile
    def __init__(self, customer_id: _Optional[str] = ..., profile: _Optional[_Union[Profile, _Mapping]] = ...) -> None: ...

class ExplainRequest(_message.Message):
    __slots__ = ("identifier_a", "identifier_b")
    IDENTIFIER_A_FIELD_NUMBER: _ClassVar[int]
    IDENTIFIER_B_FIELD_NUMBER: _ClassVar[int]
    identifier_a: _identifier_pb2.Identifier
    identifier_b: _identifier_pb2.Identifier
    def __init__(self, identifier_a: _Optional[_Union[_identifier_pb2.Identifier, _Mapping]] = ..., identifier_b: _Optional[_Union[_identifier_pb2.Identifier, _Mapping]] = ...) -> None: ...

class ExplainResponse(_message.Message):
    __slots__ = ("same_customer", "customer_id_a", "customer_id_b", "path")
    SAME_CUSTOMER_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_A_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_B_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    same_customer: bool
    customer_id_a: str
    customer_id_b: str
    path: _containers.RepeatedCompositeFieldContainer[ExplainStep]
    def __init__(self, same_customer: _Optional[bool] = ..., customer_id_a: _Optional[str] = ..., customer_id_b: _Optional[str] = ..., path: _Optional[_Iterable[_Union[ExplainStep, _Mapping]]] = ...) -> None: ...

class ExplainStep(_message.Message):
    __slots__ = ("kind", "identifier", "customer_id", "from_customer_id", "event_id", "source", "rule", "at", "match_probability", "match_weights")
    class Kind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        KIND_UNSPECIFIED: _ClassVar[ExplainStep.Kind]
        KIND_LINK: _ClassVar[ExplainStep.Kind]
        KIND_MERGE: _ClassVar[ExplainStep.Kind]
        KIND_BLOCKED: _ClassVar[ExplainStep.Kind]
    KIND_UNSPECIFIED: ExplainStep.Kind
    KIND_LINK: ExplainStep.Kind
    KIND_MERGE: ExplainStep.Kind
    KIND_BLOCKED: ExplainStep.Kind
    KIND_FIELD_NUMBER: _ClassVar[int]
    IDENTIFIER_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    FROM_CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    RULE_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    MATCH_PROBABILITY_FIELD_NUMBER: _ClassVar[int]
    MATCH_WEIGHTS_FIELD_NUMBER: _ClassVar[int]
    kind: ExplainStep.Kind
    identifier: _identifier_pb2.HashedIdentifier
    customer_id: str
    from_customer_id: str
    event_id: str
    source: str
    rule: str
    at: _timestamp_pb2.Timestamp
    match_probability: float
    match_weights: _containers.RepeatedCompositeFieldContainer[FieldWeight]
    def __init__(self, kind: _Optional[_Union[ExplainStep.Kind, str]] = ..., identifier: _Optional[_Union[_identifier_pb2.HashedIdentifier, _Mapping]] = ..., customer_id: _Optional[str] = ..., from_customer_id: _Optional[str] = ..., event_id: _Optional[str] = ..., source: _Optional[str] = ..., rule: _Optional[str] = ..., at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., match_probability: _Optional[float] = ..., match_weights: _Optional[_Iterable[_Union[FieldWeight, _Mapping]]] = ...) -> None: ...

class FieldWeight(_message.Message):
    __slots__ = ("field", "level", "weight")
    FIELD_FIELD_NUMBER: _ClassVar[int]
    LEVEL_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    field: str
    level: str
    weight: float
    def __init__(self, field: _Optional[str] = ..., level: _Optional[str] = ..., weight: _Optional[float] = ...) -> None: ...

class MergeRequest(_message.Message):
    __slots__ = ("customer_ids", "reason", "actor")
    CUSTOMER_IDS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    customer_ids: _containers.RepeatedScalarFieldContainer[str]
    reason: str
    actor: str
    def __init__(self, customer_ids: _Optional[_Iterable[str]] = ..., reason: _Optional[str] = ..., actor: _Optional[str] = ...) -> None: ...

class MergeResponse(_message.Message):
    __slots__ = ("surviving_customer_id", "merged_customer_ids")
    SURVIVING_CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    MERGED_CUSTOMER_IDS_FIELD_NUMBER: _ClassVar[int]
    surviving_customer_id: str
    merged_customer_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, surviving_customer_id: _Optional[str] = ..., merged_customer_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class SplitRequest(_message.Message):
    __slots__ = ("customer_id", "identifiers", "hashed_identifiers", "reason", "actor")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    IDENTIFIERS_FIELD_NUMBER: _ClassVar[int]
    HASHED_IDENTIFIERS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    identifiers: _containers.RepeatedCompositeFieldContainer[_identifier_pb2.Identifier]
    hashed_identifiers: _containers.RepeatedCompositeFieldContainer[_identifier_pb2.HashedIdentifier]
    reason: str
    actor: str
    def __init__(self, customer_id: _Optional[str] = ..., identifiers: _Optional[_Iterable[_Union[_identifier_pb2.Identifier, _Mapping]]] = ..., hashed_identifiers: _Optional[_Iterable[_Union[_identifier_pb2.HashedIdentifier, _Mapping]]] = ..., reason: _Optional[str] = ..., actor: _Optional[str] = ...) -> None: ...

class SplitResponse(_message.Message):
    __slots__ = ("customer_id", "new_customer_id")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    NEW_CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    new_customer_id: str
    def __init__(self, customer_id: _Optional[str] = ..., new_customer_id: _Optional[str] = ...) -> None: ...

class GetStatsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetStatsResponse(_message.Message):
    __slots__ = ("customers", "identifiers_by_type", "merges", "blocked_links", "shared_devices", "events_without_identifiers", "splits")
    class IdentifiersByTypeEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    CUSTOMERS_FIELD_NUMBER: _ClassVar[int]
    IDENTIFIERS_BY_TYPE_FIELD_NUMBER: _ClassVar[int]
    MERGES_FIELD_NUMBER: _ClassVar[int]
    BLOCKED_LINKS_FIELD_NUMBER: _ClassVar[int]
    SHARED_DEVICES_FIELD_NUMBER: _ClassVar[int]
    EVENTS_WITHOUT_IDENTIFIERS_FIELD_NUMBER: _ClassVar[int]
    SPLITS_FIELD_NUMBER: _ClassVar[int]
    customers: int
    identifiers_by_type: _containers.ScalarMap[str, int]
    merges: int
    blocked_links: int
    shared_devices: int
    events_without_identifiers: int
    splits: int
    def __init__(self, customers: _Optional[int] = ..., identifiers_by_type: _Optional[_Mapping[str, int]] = ..., merges: _Optional[int] = ..., blocked_links: _Optional[int] = ..., shared_devices: _Optional[int] = ..., events_without_identifiers: _Optional[int] = ..., splits: _Optional[int] = ...) -> None: ...

class ImportedRecord(_message.Message):
    __slots__ = ("record_id", "source", "given_name", "family_name", "full_name", "date_of_birth", "street", "city", "postcode", "state", "phone", "email", "national_id", "observed_at")
    RECORD_ID_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    GIVEN_NAME_FIELD_NUMBER: _ClassVar[int]
    FAMILY_NAME_FIELD_NUMBER: _ClassVar[int]
    FULL_NAME_FIELD_NUMBER: _ClassVar[int]
    DATE_OF_BIRTH_FIELD_NUMBER: _ClassVar[int]
    STREET_FIELD_NUMBER: _ClassVar[int]
    CITY_FIELD_NUMBER: _ClassVar[int]
    POSTCODE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    PHONE_FIELD_NUMBER: _ClassVar[int]
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    NATIONAL_ID_FIELD_NUMBER: _ClassVar[int]
    OBSERVED_AT_FIELD_NUMBER: _ClassVar[int]
    record_id: str
    source: str
    given_name: str
    family_name: str
    full_name: str
    date_of_birth: str
    street: str
    city: str
    postcode: str
    state: str
    phone: str
    email: str
    national_id: str
    observed_at: _timestamp_pb2.Timestamp
    def __init__(self, record_id: _Optional[str] = ..., source: _Optional[str] = ..., given_name: _Optional[str] = ..., family_name: _Optional[str] = ..., full_name: _Optional[str] = ..., date_of_birth: _Optional[str] = ..., street: _Optional[str] = ..., city: _Optional[str] = ..., postcode: _Optional[str] = ..., state: _Optional[str] = ..., phone: _Optional[str] = ..., email: _Optional[str] = ..., national_id: _Optional[str] = ..., observed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ImportRecordsRequest(_message.Message):
    __slots__ = ("records",)
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    records: _containers.RepeatedCompositeFieldContainer[ImportedRecord]
    def __init__(self, records: _Optional[_Iterable[_Union[ImportedRecord, _Mapping]]] = ...) -> None: ...

class ImportIssue(_message.Message):
    __slots__ = ("record_id", "field", "message")
    RECORD_ID_FIELD_NUMBER: _ClassVar[int]
    FIELD_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    record_id: str
    field: str
    message: str
    def __init__(self, record_id: _Optional[str] = ..., field: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class ImportRecordsResponse(_message.Message):
    __slots__ = ("records", "records_skipped", "customers_created", "linked_exact", "linked_probabilistic", "review_items", "links_refused", "comparisons", "model", "issues", "comparisons_with_earlier", "links_refused_chaining")
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    RECORDS_SKIPPED_FIELD_NUMBER: _ClassVar[int]
    CUSTOMERS_CREATED_FIELD_NUMBER: _ClassVar[int]
    LINKED_EXACT_FIELD_NUMBER: _ClassVar[int]
    LINKED_PROBABILISTIC_FIELD_NUMBER: _ClassVar[int]
    REVIEW_ITEMS_FIELD_NUMBER: _ClassVar[int]
    LINKS_REFUSED_FIELD_NUMBER: _ClassVar[int]
    COMPARISONS_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    ISSUES_FIELD_NUMBER: _ClassVar[int]
    COMPARISONS_WITH_EARLIER_FIELD_NUMBER: _ClassVar[int]
    LINKS_REFUSED_CHAINING_FIELD_NUMBER: _ClassVar[int]
    records: int
    records_skipped: int
    customers_created: int
    linked_exact: int
    linked_probabilistic: int
    review_items: int
    links_refused: int
    comparisons: int
    model: str
    issues: _containers.RepeatedCompositeFieldContainer[ImportIssue]
    comparisons_with_earlier: int
    links_refused_chaining: int
    def __init__(self, records: _Optional[int] = ..., records_skipped: _Optional[int] = ..., customers_created: _Optional[int] = ..., linked_exact: _Optional[int] = ..., linked_probabilistic: _Optional[int] = ..., review_items: _Optional[int] = ..., links_refused: _Optional[int] = ..., comparisons: _Optional[int] = ..., model: _Optional[str] = ..., issues: _Optional[_Iterable[_Union[ImportIssue, _Mapping]]] = ..., comparisons_with_earlier: _Optional[int] = ..., links_refused_chaining: _Optional[int] = ...) -> None: ...

class ListReviewItemsRequest(_message.Message):
    __slots__ = ("status", "page_size")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    status: ReviewStatus
    page_size: int
    def __init__(self, status: _Optional[_Union[ReviewStatus, str]] = ..., page_size: _Optional[int] = ...) -> None: ...

class ReviewItem(_message.Message):
    __slots__ = ("item_id", "status", "match_probability", "match_weights", "source_a", "record_id_a", "source_b", "record_id_b", "customer_id_a", "customer_id_b", "created_at", "decided_at", "decided_by")
    ITEM_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    MATCH_PROBABILITY_FIELD_NUMBER: _ClassVar[int]
    MATCH_WEIGHTS_FIELD_NUMBER: _ClassVar[int]
    SOURCE_A_FIELD_NUMBER: _ClassVar[int]
    RECORD_ID_A_FIELD_NUMBER: _ClassVar[int]
    SOURCE_B_FIELD_NUMBER: _ClassVar[int]
    RECORD_ID_B_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_A_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_B_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    DECIDED_AT_FIELD_NUMBER: _ClassVar[int]
    DECIDED_BY_FIELD_NUMBER: _ClassVar[int]
    item_id: str
    status: ReviewStatus
    match_probability: float
    match_weights: _containers.RepeatedCompositeFieldContainer[FieldWeight]
    source_a: str
    record_id_a: str
    source_b: str
    record_id_b: str
    customer_id_a: str
    customer_id_b: str
    created_at: _timestamp_pb2.Timestamp
    decided_at: _timestamp_pb2.Timestamp
    decided_by: str
    def __init__(self, item_id: _Optional[str] = ..., status: _Optional[_Union[ReviewStatus, str]] = ..., match_probability: _Optional[float] = ..., match_weights: _Optional[_Iterable[_Union[FieldWeight, _Mapping]]] = ..., source_a: _Optional[str] = ..., record_id_a: _Optional[str] = ..., source_b: _Optional[str] = ..., record_id_b: _Optional[str] = ..., customer_id_a: _Optional[str] = ..., customer_id_b: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., decided_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., decided_by: _Optional[str] = ...) -> None: ...

class ListReviewItemsResponse(_message.Message):
    __slots__ = ("items",)
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[ReviewItem]
    def __init__(self, items: _Optional[_Iterable[_Union[ReviewItem, _Mapping]]] = ...) -> None: ...

class DecideReviewRequest(_message.Message):
    __slots__ = ("item_id", "decision", "actor", "reason")
    ITEM_ID_FIELD_NUMBER: _ClassVar[int]
    DECISION_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    item_id: str
    decision: ReviewDecision
    actor: str
    reason: str
    def __init__(self, item_id: _Optional[str] = ..., decision: _Optional[_Union[ReviewDecision, str]] = ..., actor: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class DecideReviewResponse(_message.Message):
    __slots__ = ("item",)
    ITEM_FIELD_NUMBER: _ClassVar[int]
    item: ReviewItem
    def __init__(self, item: _Optional[_Union[ReviewItem, _Mapping]] = ...) -> None: ...
