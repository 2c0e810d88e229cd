import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class LedgerEntryKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    LEDGER_ENTRY_KIND_UNSPECIFIED: _ClassVar[LedgerEntryKind]
    LEDGER_ENTRY_KIND_EARN: _ClassVar[LedgerEntryKind]
    LEDGER_ENTRY_KIND_REDEEM: _ClassVar[LedgerEntryKind]
    LEDGER_ENTRY_KIND_REVERSE: _ClassVar[LedgerEntryKind]
    LEDGER_ENTRY_KIND_EXPIRE: _ClassVar[LedgerEntryKind]
    LEDGER_ENTRY_KIND_ADJUST: _ClassVar[LedgerEntryKind]
    LEDGER_ENTRY_KIND_PENDING: _ClassVar[LedgerEntryKind]
    LEDGER_ENTRY_KIND_ACTIVATE: _ClassVar[LedgerEntryKind]
    LEDGER_ENTRY_KIND_RESERVE: _ClassVar[LedgerEntryKind]
    LEDGER_ENTRY_KIND_RELEASE: _ClassVar[LedgerEntryKind]
    LEDGER_ENTRY_KIND_TRANSFER: _ClassVar[LedgerEntryKind]

class CouponStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    COUPON_STATUS_UNSPECIFIED: _ClassVar[CouponStatus]
    COUPON_STATUS_ACTIVE: _ClassVar[CouponStatus]
    COUPON_STATUS_USED: _ClassVar[CouponStatus]
    COUPON_STATUS_EXPIRED: _ClassVar[CouponStatus]
    COUPON_STATUS_REVOKED: _ClassVar[CouponStatus]

class RedemptionStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REDEMPTION_STATUS_UNSPECIFIED: _ClassVar[RedemptionStatus]
    REDEMPTION_STATUS_RESERVED: _ClassVar[RedemptionStatus]
    REDEMPTION_STATUS_CONFIRMED: _ClassVar[RedemptionStatus]
    REDEMPTION_STATUS_CANCELLED: _ClassVar[RedemptionStatus]
    REDEMPTION_STATUS_EXPIRED: _ClassVar[RedemptionStatus]

class ReturnPolicy(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RETURN_POLICY_UNSPECIFIED: _ClassVar[ReturnPolicy]
    RETURN_POLICY_ONLY_PENDING: _ClassVar[ReturnPolicy]
    RETURN_POLICY_WITHIN_BALANCE: _ClassVar[ReturnPolicy]
    RETURN_POLICY_ALLOW_NEGATIVE: _ClassVar[ReturnPolicy]
LEDGER_ENTRY_KIND_UNSPECIFIED: LedgerEntryKind
LEDGER_ENTRY_KIND_EARN: LedgerEntryKind
LEDGER_ENTRY_KIND_REDEEM: LedgerEntryKind
LEDGER_ENTRY_KIND_REVERSE: LedgerEntryKind
LEDGER_ENTRY_KIND_EXPIRE: LedgerEntryKind
LEDGER_ENTRY_KIND_ADJUST: LedgerEntryKind
LEDGER_ENTRY_KIND_PENDING: LedgerEntryKind
LEDGER_ENTRY_KIND_ACTIVATE: LedgerEntryKind
LEDGER_ENTRY_KIND_RESERVE: LedgerEntryKind
LEDGER_ENTRY_KIND_RELEASE: LedgerEntryKind
LEDGER_ENTRY_KIND_TRANSFER: LedgerEntryKind
COUPON_STATUS_UNSPECIFIED: CouponStatus
COUPON_STATUS_ACTIVE: CouponStatus
COUPON_STATUS_USED: CouponStatus
COUPON_STATUS_EXPIRED: CouponStatus
COUPON_STATUS_REVOKED: CouponStatus
REDEMPTION_STATUS_UNSPECIFIED: RedemptionStatus
REDEMPTION_STATUS_RESERVED: RedemptionStatus
REDEMPTION_STATUS_CONFIRMED: RedemptionStatus
REDEMPTION_STATUS_CANCELLED: RedemptionStatus
REDEMPTION_STATUS_EXPIRED: RedemptionStatus
RETURN_POLICY_UNSPECIFIED: ReturnPolicy
RETURN_POLICY_ONLY_PENDING: ReturnPolicy
RETURN_POLICY_WITHIN_BALANCE: ReturnPolicy
RETURN_POLICY_ALLOW_NEGATIVE: ReturnPolicy

class GetAccountRequest(_message.Message):
    __slots__ = ("customer_id", "expiring_within_days")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    EXPIRING_WITHIN_DAYS_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    expiring_within_days: int
    def __init__(self, customer_id: _Optional[str] = ..., expiring_within_days: _Optional[int] = ...) -> None: ...

class GetAccountResponse(_message.Message):
    __slots__ = ("customer_id", "available_points", "pending_points", "reserved_points", "tier", "tier_valid_until", "next_tier", "score_to_next_tier", "expiring_soon", "tier_score", "tier_floor", "tier_benefits", "debt_points")
    class TierBenefitsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_POINTS_FIELD_NUMBER: _ClassVar[int]
    PENDING_POINTS_FIELD_NUMBER: _ClassVar[int]
    RESERVED_POINTS_FIELD_NUMBER: _ClassVar[int]
    TIER_FIELD_NUMBER: _ClassVar[int]
    TIER_VALID_UNTIL_FIELD_NUMBER: _ClassVar[int]
    NEXT_TIER_FIELD_NUMBER: _ClassVar[int]
    SCORE_TO_NEXT_TIER_FIELD_NUMBER: _ClassVar[int]
    EXPIRING_SOON_FIELD_NUMBER: _ClassVar[int]
    TIER_SCORE_FIELD_NUMBER: _ClassVar[int]
    TIER_FLOOR_FIELD_NUMBER: _ClassVar[int]
    TIER_BENEFITS_FIELD_NUMBER: _ClassVar[int]
    DEBT_POINTS_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    available_points: int
    pending_points: int
    reserved_points: int
    tier: str
    tier_valid_until: _timestamp_pb2.Timestamp
    next_tier: str
    score_to_next_tier: int
    expiring_soon: _containers.RepeatedCompositeFieldContainer[ExpiringPoints]
    tier_score: int
    tier_floor: str
    tier_benefits: _containers.ScalarMap[str, str]
    debt_points: int
    def __init__(self, customer_id: _Optional[str] = ..., available_points: _Optional[int] = ..., pending_points: _Optional[int] = ..., reserved_points: _Optional[int] = ..., tier: _Optional[str] = ..., tier_valid_until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., next_tier: _Optional[str] = ..., score_to_next_tier: _Optional[int] = ..., expiring_soon: _Optional[_Iterable[_Union[ExpiringPoints, _Mapping]]] = ..., tier_score: _Optional[int] = ..., tier_floor: _Optional[str] = ..., tier_benefits: _Optional[_Mapping[str, str]] = ..., debt_points: _Optional[int] = ...) -> None: ...

class ExpiringPoints(_message.Message):
    __slots__ = ("points", "expires_at")
    POINTS_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    points: int
    expires_at: _timestamp_pb2.Timestamp
    def __init__(self, points: _Optional[int] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class GetMemberViewRequest(_message.Message):
    __slots__ = ("customer_id", "expiring_within_days", "history_page_size")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    EXPIRING_WITHIN_DAYS_FIELD_NUMBER: _ClassVar[int]
    HISTORY_PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    expiring_within_days: int
    history_page_size: int
    def __init__(self, customer_id: _Optional[str] = ..., expiring_within_days: _Optional[int] = ..., history_page_size: _Optional[int] = ...) -> None: ...

class GetMemberViewResponse(_message.Message):
    __slots__ = ("account", "history")
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    HISTORY_FIELD_NUMBER: _ClassVar[int]
    account: GetAccountResponse
    history: GetHistoryResponse
    def __init__(self, account: _Optional[_Union[GetAccountResponse, _Mapping]] = ..., history: _Optional[_Union[GetHistoryResponse, _Mapping]] = ...) -> None: ...

class GetHistoryRequest(_message.Message):
    __slots__ = ("customer_id", "page_token", "page_size")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    page_token: str
    page_size: int
    def __init__(self, customer_id: _Optional[str] = ..., page_token: _Optional[str] = ..., page_size: _Optional[int] = ...) -> None: ...

class GetHistoryResponse(_message.Message):
    __slots__ = ("entries", "next_page_token")
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[LedgerEntry]
    next_page_token: str
    def __init__(self, entries: _Optional[_Iterable[_Union[LedgerEntry, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class LedgerEntry(_message.Message):
    __slots__ = ("entry_id", "kind", "points", "pending_points", "reference_id", "description", "occurred_at", "rule_ids", "reverses_entry_id")
    ENTRY_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    PENDING_POINTS_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_ID_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    RULE_IDS_FIELD_NUMBER: _ClassVar[int]
    REVERSES_ENTRY_ID_FIELD_NUMBER: _ClassVar[int]
    entry_id: str
    kind: LedgerEntryKind
    points: int
    pending_points: int
    reference_id: str
    description: str
    occurred_at: _timestamp_pb2.Timestamp
    rule_ids: _containers.RepeatedScalarFieldContainer[str]
    reverses_entry_id: str
    def __init__(self, entry_id: _Optional[str] = ..., kind: _Optional[_Union[LedgerEntryKind, str]] = ..., points: _Optional[int] = ..., pending_points: _Optional[int] = ..., reference_id: _Optional[str] = ..., description: _Optional[str] = ..., occurred_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., rule_ids: _Optional[_Iterable[str]] = ..., reverses_entry_id: _Optional[str] = ...) -> None: ...

class RedeemRequest(_message.Message):
    __slots__ = ("customer_id", "points", "reward_id", "idempotency_key", "hold_seconds")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    REWARD_ID_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    HOLD_SECONDS_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    points: int
    reward_id: str
    idempotency_key: str
    hold_seconds: int
    def __init__(self, customer_id: _Optional[str] = ..., points: _Optional[int] = ..., reward_id: _Optional[str] = ..., idempotency_key: _Optional[str] = ..., hold_seconds: _Optional[int] = ...) -> None: ...

class RedeemResponse(_message.Message):
    __slots__ = ("redemption_id", "entry_id", "points_reserved", "available_after", "status", "expires_at")
    REDEMPTION_ID_FIELD_NUMBER: _ClassVar[int]
    ENTRY_ID_FIELD_NUMBER: _ClassVar[int]
    POINTS_RESERVED_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_AFTER_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    redemption_id: str
    entry_id: str
    points_reserved: int
    available_after: int
    status: RedemptionStatus
    expires_at: _timestamp_pb2.Timestamp
    def __init__(self, redemption_id: _Optional[str] = ..., entry_id: _Optional[str] = ..., points_reserved: _Optional[int] = ..., available_after: _Optional[int] = ..., status: _Optional[_Union[RedemptionStatus, str]] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ConfirmRedemptionRequest(_message.Message):
    __slots__ = ("redemption_id",)
    REDEMPTION_ID_FIELD_NUMBER: _ClassVar[int]
    redemption_id: str
    def __init__(self, redemption_id: _Optional[str] = ...) -> None: ...

class CancelRedemptionRequest(_message.Message):
    __slots__ = ("redemption_id",)
    REDEMPTION_ID_FIELD_NUMBER: _ClassVar[int]
    redemption_id: str
    def __init__(self, redemption_id: _Optional[str] = ...) -> None: ...

class ConfirmRedemptionResponse(_message.Message):
    __slots__ = ("redemption",)
    REDEMPTION_FIELD_NUMBER: _ClassVar[int]
    redemption: Redemption
    def __init__(self, redemption: _Optional[_Union[Redemption, _Mapping]] = ...) -> None: ...

class CancelRedemptionResponse(_message.Message):
    __slots__ = ("redemption",)
    REDEMPTION_FIELD_NUMBER: _ClassVar[int]
    redemption: Redemption
    def __init__(self, redemption: _Optional[_Union[Redemption, _Mapping]] = ...) -> None: ...

class Redemption(_message.Message):
    __slots__ = ("redemption_id", "customer_id", "points", "status", "available_after", "coupon")
    REDEMPTION_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_AFTER_FIELD_NUMBER: _ClassVar[int]
    COUPON_FIELD_NUMBER: _ClassVar[int]
    redemption_id: str
    customer_id: str
    points: int
    status: RedemptionStatus
    available_after: int
    coupon: Coupon
    def __init__(self, redemption_id: _Optional[str] = ..., customer_id: _Optional[str] = ..., points: _Optional[int] = ..., status: _Optional[_Union[RedemptionStatus, str]] = ..., available_after: _Optional[int] = ..., coupon: _Optional[_Union[Coupon, _Mapping]] = ...) -> None: ...

class PostPurchaseRequest(_message.Message):
    __slots__ = ("customer_id", "order_id", "currency_code", "lines", "channel", "store_id", "purchased_at", "idempotency_key")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_CODE_FIELD_NUMBER: _ClassVar[int]
    LINES_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    STORE_ID_FIELD_NUMBER: _ClassVar[int]
    PURCHASED_AT_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    order_id: str
    currency_code: str
    lines: _containers.RepeatedCompositeFieldContainer[PurchaseLine]
    channel: str
    store_id: str
    purchased_at: _timestamp_pb2.Timestamp
    idempotency_key: str
    def __init__(self, customer_id: _Optional[str] = ..., order_id: _Optional[str] = ..., currency_code: _Optional[str] = ..., lines: _Optional[_Iterable[_Union[PurchaseLine, _Mapping]]] = ..., channel: _Optional[str] = ..., store_id: _Optional[str] = ..., purchased_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., idempotency_key: _Optional[str] = ...) -> None: ...

class PostPurchaseResponse(_message.Message):
    __slots__ = ("entry_id", "points", "pending", "activates_at", "breakdown", "replayed")
    ENTRY_ID_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    PENDING_FIELD_NUMBER: _ClassVar[int]
    ACTIVATES_AT_FIELD_NUMBER: _ClassVar[int]
    BREAKDOWN_FIELD_NUMBER: _ClassVar[int]
    REPLAYED_FIELD_NUMBER: _ClassVar[int]
    entry_id: str
    points: int
    pending: bool
    activates_at: _timestamp_pb2.Timestamp
    breakdown: _containers.RepeatedCompositeFieldContainer[RuleContribution]
    replayed: bool
    def __init__(self, entry_id: _Optional[str] = ..., points: _Optional[int] = ..., pending: _Optional[bool] = ..., activates_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., breakdown: _Optional[_Iterable[_Union[RuleContribution, _Mapping]]] = ..., replayed: _Optional[bool] = ...) -> None: ...

class PostReturnRequest(_message.Message):
    __slots__ = ("customer_id", "order_id", "currency_code", "refunded_minor_units", "full_return", "idempotency_key", "policy")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_CODE_FIELD_NUMBER: _ClassVar[int]
    REFUNDED_MINOR_UNITS_FIELD_NUMBER: _ClassVar[int]
    FULL_RETURN_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    order_id: str
    currency_code: str
    refunded_minor_units: int
    full_return: bool
    idempotency_key: str
    policy: ReturnPolicy
    def __init__(self, customer_id: _Optional[str] = ..., order_id: _Optional[str] = ..., currency_code: _Optional[str] = ..., refunded_minor_units: _Optional[int] = ..., full_return: _Optional[bool] = ..., idempotency_key: _Optional[str] = ..., policy: _Optional[_Union[ReturnPolicy, str]] = ...) -> None: ...

class PostReturnResponse(_message.Message):
    __slots__ = ("points_reversed", "entry_id", "replayed")
    POINTS_REVERSED_FIELD_NUMBER: _ClassVar[int]
    ENTRY_ID_FIELD_NUMBER: _ClassVar[int]
    REPLAYED_FIELD_NUMBER: _ClassVar[int]
    points_reversed: int
    entry_id: str
    replayed: bool
    def __init__(self, points_reversed: _Optional[int] = ..., entry_id: _Optional[str] = ..., replayed: _Optional[bool] = ...) -> None: ...

class IssueCouponRequest(_message.Message):
    __slots__ = ("customer_id", "reward_id", "title", "amount_off_minor_units", "percent_off_basis_points", "currency_code", "minimum_spend_minor_units", "valid_days", "max_uses", "campaign_id", "idempotency_key", "max_per_customer")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    REWARD_ID_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_OFF_MINOR_UNITS_FIELD_NUMBER: _ClassVar[int]
    PERCENT_OFF_BASIS_POINTS_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_CODE_FIELD_NUMBER: _ClassVar[int]
    MINIMUM_SPEND_MINOR_UNITS_FIELD_NUMBER: _ClassVar[int]
    VALID_DAYS_FIELD_NUMBER: _ClassVar[int]
    MAX_USES_FIELD_NUMBER: _ClassVar[int]
    CAMPAIGN_ID_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    MAX_PER_CUSTOMER_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    reward_id: str
    title: str
    amount_off_minor_units: int
    percent_off_basis_points: int
    currency_code: str
    minimum_spend_minor_units: int
    valid_days: int
    max_uses: int
    campaign_id: str
    idempotency_key: str
    max_per_customer: int
    def __init__(self, customer_id: _Optional[str] = ..., reward_id: _Optional[str] = ..., title: _Optional[str] = ..., amount_off_minor_units: _Optional[int] = ..., percent_off_basis_points: _Optional[int] = ..., currency_code: _Optional[str] = ..., minimum_spend_minor_units: _Optional[int] = ..., valid_days: _Optional[int] = ..., max_uses: _Optional[int] = ..., campaign_id: _Optional[str] = ..., idempotency_key: _Optional[str] = ..., max_per_customer: _Optional[int] = ...) -> None: ...

class IssueCouponResponse(_message.Message):
    __slots__ = ("coupon",)
    COUPON_FIELD_NUMBER: _ClassVar[int]
    coupon: Coupon
    def __init__(self, coupon: _Optional[_Union[Coupon, _Mapping]] = ...) -> None: ...

class ValidateCouponRequest(_message.Message):
    __slots__ = ("code", "customer_id", "order_total_minor_units", "currency_code", "redeem", "order_id")
    CODE_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    ORDER_TOTAL_MINOR_UNITS_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_CODE_FIELD_NUMBER: _ClassVar[int]
    REDEEM_FIELD_NUMBER: _ClassVar[int]
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    code: str
    customer_id: str
    order_total_minor_units: int
    currency_code: str
    redeem: bool
    order_id: str
    def __init__(self, code: _Optional[str] = ..., customer_id: _Optional[str] = ..., order_total_minor_units: _Optional[int] = ..., currency_code: _Optional[str] = ..., redeem: _Optional[bool] = ..., order_id: _Optional[str] = ...) -> None: ...

class ValidateCouponResponse(_message.Message):
    __slots__ = ("valid", "reason", "coupon", "discount_minor_units")
    VALID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    COUPON_FIELD_NUMBER: _ClassVar[int]
    DISCOUNT_MINOR_UNITS_FIELD_NUMBER: _ClassVar[int]
    valid: bool
    reason: str
    coupon: Coupon
    discount_minor_units: int
    def __init__(self, valid: _Optional[bool] = ..., reason: _Optional[str] = ..., coupon: _Optional[_Union[Coupon, _Mapping]] = ..., discount_minor_units: _Optional[int] = ...) -> None: ...

class ListCouponsRequest(_message.Message):
    __slots__ = ("customer_id", "status")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    status: CouponStatus
    def __init__(self, customer_id: _Optional[str] = ..., status: _Optional[_Union[CouponStatus, str]] = ...) -> None: ...

class ListCouponsResponse(_message.Message):
    __slots__ = ("coupons",)
    COUPONS_FIELD_NUMBER: _ClassVar[int]
    coupons: _containers.RepeatedCompositeFieldContainer[Coupon]
    def __init__(self, coupons: _Optional[_Iterable[_Union[Coupon, _Mapping]]] = ...) -> None: ...

class Coupon(_message.Message):
    __slots__ = ("coupon_id", "code", "reward_id", "title", "status", "amount_off_minor_units", "percent_off_basis_points", "currency_code", "minimum_spend_minor_units", "issued_at", "expires_at", "used_at", "max_uses", "uses", "customer_id")
    COUPON_ID_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    REWARD_ID_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_OFF_MINOR_UNITS_FIELD_NUMBER: _ClassVar[int]
    PERCENT_OFF_BASIS_POINTS_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_CODE_FIELD_NUMBER: _ClassVar[int]
    MINIMUM_SPEND_MINOR_UNITS_FIELD_NUMBER: _ClassVar[int]
    ISSUED_AT_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    USED_AT_FIELD_NUMBER: _ClassVar[int]
    MAX_USES_FIELD_NUMBER: _ClassVar[int]
    USES_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    coupon_id: str
    code: str
    reward_id: str
    title: str
    status: CouponStatus
    amount_off_minor_units: int
    percent_off_basis_points: int
    currency_code: str
    minimum_spend_minor_units: int
    issued_at: _timestamp_pb2.Timestamp
    expires_at: _timestamp_pb2.Timestamp
    used_at: _timestamp_pb2.Timestamp
    max_uses: int
    uses: int
    customer_id: str
    def __init__(self, coupon_id: _Optional[str] = ..., code: _Optional[str] = ..., reward_id: _Optional[str] = ..., title: _Optional[str] = ..., status: _Optional[_Union[CouponStatus, str]] = ..., amount_off_minor_units: _Optional[int] = ..., percent_off_basis_points: _Optional[int] = ..., currency_code: _Optional[str] = ..., minimum_spend_minor_units: _Optional[int] = ..., issued_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., used_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., max_uses: _Optional[int] = ..., uses: _Optional[int] = ..., customer_id: _Optional[str] = ...) -> None: ...

class SimulateRequest(_message.Message):
    __slots__ = ("purchase", "rule_set_json")
    PURCHASE_FIELD_NUMBER: _ClassVar[int]
    RULE_SET_JSON_FIELD_NUMBER: _ClassVar[int]
    purchase: SamplePurchase
    rule_set_json: str
    def __init__(self, purchase: _Optional[_Union[SamplePurchase, _Mapping]] = ..., rule_set_json: _Optional[str] = ...) -> None: ...

class SamplePurchase(_message.Message):
    __slots__ = ("customer_id", "tier", "lines", "currency_code", "channel", "store_id", "purchased_at")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    TIER_FIELD_NUMBER: _ClassVar[int]
    LINES_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_CODE_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    STORE_ID_FIELD_NUMBER: _ClassVar[int]
    PURCHASED_AT_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    tier: str
    lines: _containers.RepeatedCompositeFieldContainer[PurchaseLine]
    currency_code: str
    channel: str
    store_id: str
    purchased_at: _timestamp_pb2.Timestamp
    def __init__(self, customer_id: _Optional[str] = ..., tier: _Optional[str] = ..., lines: _Optional[_Iterable[_Union[PurchaseLine, _Mapping]]] = ..., currency_code: _Optional[str] = ..., channel: _Optional[str] = ..., store_id: _Optional[str] = ..., purchased_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class PurchaseLine(_message.Message):
    __slots__ = ("sku", "category", "quantity", "unit_price_minor_units", "brand")
    SKU_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    UNIT_PRICE_MINOR_UNITS_FIELD_NUMBER: _ClassVar[int]
    BRAND_FIELD_NUMBER: _ClassVar[int]
    sku: str
    category: str
    quantity: int
    unit_price_minor_units: int
    brand: str
    def __init__(self, sku: _Optional[str] = ..., category: _Optional[str] = ..., quantity: _Optional[int] = ..., unit_price_minor_units: _Optional[int] = ..., brand: _Optional[str] = ...) -> None: ...

class SimulateResponse(_message.Message):
    __slots__ = ("total_points", "breakdown", "rule_set_version")
    TOTAL_POINTS_FIELD_NUMBER: _ClassVar[int]
    BREAKDOWN_FIELD_NUMBER: _ClassVar[int]
    RULE_SET_VERSION_FIELD_NUMBER: _ClassVar[int]
    total_points: int
    breakdown: _containers.RepeatedCompositeFieldContainer[RuleContribution]
    rule_set_version: int
    def __init__(self, total_points: _Optional[int] = ..., breakdown: _Optional[_Iterable[_Union[RuleContribution, _Mapping]]] = ..., rule_set_version: _Optional[int] = ...) -> None: ...

class RuleContribution(_message.Message):
    __slots__ = ("rule_id", "points", "applied", "explanation")
    RULE_ID_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    APPLIED_FIELD_NUMBER: _ClassVar[int]
    EXPLANATION_FIELD_NUMBER: _ClassVar[int]
    rule_id: str
    points: int
    applied: bool
    explanation: str
    def __init__(self, rule_id: _Optional[str] = ..., points: _Optional[int] = ..., applied: _Optional[bool] = ..., explanation: _Optional[str] = ...) -> None: ...

class AdjustRequest(_message.Message):
    __slots__ = ("customer_id", "points", "reason", "idempotency_key")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    points: int
    reason: str
    idempotency_key: str
    def __init__(self, customer_id: _Optional[str] = ..., points: _Optional[int] = ..., reason: _Optional[str] = ..., idempotency_key: _Optional[str] = ...) -> None: ...

class AdjustResponse(_message.Message):
    __slots__ = ("entry_id", "available_after")
    ENTRY_ID_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_AFTER_FIELD_NUMBER: _ClassVar[int]
    entry_id: str
    available_after: int
    def __init__(self, entry_id: _Optional[str] = ..., available_after: _Optional[int] = ...) -> None: ...

class PutRuleSetRequest(_message.Message):
    __slots__ = ("rule_set_json",)
    RULE_SET_JSON_FIELD_NUMBER: _ClassVar[int]
    rule_set_json: str
    def __init__(self, rule_set_json: _Optional[str] = ...) -> None: ...

class PutRuleSetResponse(_message.Message):
    __slots__ = ("version",)
    VERSION_FIELD_NUMBER: _ClassVar[int]
    version: int
    def __init__(self, version: _Optional[int] = ...) -> None: ...

class GetRuleSetRequest(_message.Message):
    __slots__ = ("version",)
    VERSION_FIELD_NUMBER: _ClassVar[int]
    version: int
    def __init__(self, version: _Optional[int] = ...) -> None: ...

class GetRuleSetResponse(_message.Message):
    __slots__ = ("version", "rule_set_json", "activated_at")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    RULE_SET_JSON_FIELD_NUMBER: _ClassVar[int]
    ACTIVATED_AT_FIELD_NUMBER: _ClassVar[int]
    version: int
    rule_set_json: str
    activated_at: _timestamp_pb2.Timestamp
    def __init__(self, version: _Optional[int] = ..., rule_set_json: _Optional[str] = ..., activated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class SetTierFloorRequest(_message.Message):
    __slots__ = ("customer_id", "tier", "reason")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    TIER_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    tier: str
    reason: str
    def __init__(self, customer_id: _Optional[str] = ..., tier: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class SetTierFloorResponse(_message.Message):
    __slots__ = ("tier",)
    TIER_FIELD_NUMBER: _ClassVar[int]
    tier: str
    def __init__(self, tier: _Optional[str] = ...) -> None: ...

class GetProgrammeTotalsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetProgrammeTotalsResponse(_message.Message):
    __slots__ = ("liability", "issued", "redeemed", "expired", "reversed", "breakage_rate")
    LIABILITY_FIELD_NUMBER: _ClassVar[int]
    ISSUED_FIELD_NUMBER: _ClassVar[int]
    REDEEMED_FIELD_NUMBER: _ClassVar[int]
    EXPIRED_FIELD_NUMBER: _ClassVar[int]
    REVERSED_FIELD_NUMBER: _ClassVar[int]
    BREAKAGE_RATE_FIELD_NUMBER: _ClassVar[int]
    liability: int
    issued: int
    redeemed: int
    expired: int
    reversed: int
    breakage_rate: float
    def __init__(self, liability: _Optional[int] = ..., issued: _Optional[int] = ..., redeemed: _Optional[int] = ..., expired: _Optional[int] = ..., reversed: _Optional[int] = ..., breakage_rate: _Optional[float] = ...) -> None: ...

class SetBirthdayRequest(_message.Message):
    __slots__ = ("customer_id", "month", "day")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    MONTH_FIELD_NUMBER: _ClassVar[int]
    DAY_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    month: int
    day: int
    def __init__(self, customer_id: _Optional[str] = ..., month: _Optional[int] = ..., day: _Optional[int] = ...) -> None: ...

class SetBirthdayResponse(_message.Message):
    __slots__ = ("birthday",)
    BIRTHDAY_FIELD_NUMBER: _ClassVar[int]
    birthday: str
    def __init__(self, birthday: _Optional[str] = ...) -> None: ...
