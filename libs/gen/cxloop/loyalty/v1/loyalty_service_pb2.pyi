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

class CouponStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    COUPON_STATUS_UNSPECIFIED: _ClassVar[CouponStatus]
    COUPON_STATUS_ACTIVE: _ClassVar[CouponStatus]
    COUPON_STATUS_USED: _ClassVar[CouponStatus]
    COUPON_STATUS_EXPIRED: _ClassVar[CouponStatus]
    COUPON_STATUS_REVOKED: _ClassVar[CouponStatus]
LEDGER_ENTRY_KIND_UNSPECIFIED: LedgerEntryKind
LEDGER_ENTRY_KIND_EARN: LedgerEntryKind
LEDGER_ENTRY_KIND_REDEEM: LedgerEntryKind
LEDGER_ENTRY_KIND_REVERSE: LedgerEntryKind
LEDGER_ENTRY_KIND_EXPIRE: LedgerEntryKind
LEDGER_ENTRY_KIND_ADJUST: LedgerEntryKind
COUPON_STATUS_UNSPECIFIED: CouponStatus
COUPON_STATUS_ACTIVE: CouponStatus
COUPON_STATUS_USED: CouponStatus
COUPON_STATUS_EXPIRED: CouponStatus
COUPON_STATUS_REVOKED: CouponStatus

class GetBalanceRequest(_message.Message):
    __slots__ = ("customer_id",)
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    def __init__(self, customer_id: _Optional[str] = ...) -> None: ...

class GetBalanceResponse(_message.Message):
    __slots__ = ("customer_id", "points", "pending_points", "tier", "tier_valid_until", "next_tier", "points_to_next_tier", "expiring_soon")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    PENDING_POINTS_FIELD_NUMBER: _ClassVar[int]
    TIER_FIELD_NUMBER: _ClassVar[int]
    TIER_VALID_UNTIL_FIELD_NUMBER: _ClassVar[int]
    NEXT_TIER_FIELD_NUMBER: _ClassVar[int]
    POINTS_TO_NEXT_TIER_FIELD_NUMBER: _ClassVar[int]
    EXPIRING_SOON_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    points: int
    pending_points: int
    tier: str
    tier_valid_until: _timestamp_pb2.Timestamp
    next_tier: str
    points_to_next_tier: int
    expiring_soon: _containers.RepeatedCompositeFieldContainer[ExpiringPoints]
    def __init__(self, customer_id: _Optional[str] = ..., points: _Optional[int] = ..., pending_points: _Optional[int] = ..., tier: _Optional[str] = ..., tier_valid_until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., next_tier: _Optional[str] = ..., points_to_next_tier: _Optional[int] = ..., expiring_soon: _Optional[_Iterable[_Union[ExpiringPoints, _Mapping]]] = ...) -> None: ...

class ExpiringPoints(_message.Message):
    __slots__ = ("points", "expires_at")
    POINTS_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    points: int
    expires_at: _timestamp_pb2.Timestamp
    def __init__(self, points: _Optional[int] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

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
    __slots__ = ("entry_id", "kind", "points", "balance_after", "reference_id", "description", "occurred_at")
    ENTRY_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    BALANCE_AFTER_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_ID_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    entry_id: str
    kind: LedgerEntryKind
    points: int
    balance_after: int
    reference_id: str
    description: str
    occurred_at: _timestamp_pb2.Timestamp
    def __init__(self, entry_id: _Optional[str] = ..., kind: _Optional[_Union[LedgerEntryKind, str]] = ..., points: _Optional[int] = ..., balance_after: _Optional[int] = ..., reference_id: _Optional[str] = ..., description: _Optional[str] = ..., occurred_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class RedeemRequest(_message.Message):
    __slots__ = ("customer_id", "points", "reward_id", "idempotency_key")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    REWARD_ID_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    points: int
    reward_id: str
    idempotency_key: str
    def __init__(self, customer_id: _Optional[str] = ..., points: _Optional[int] = ..., reward_id: _Optional[str] = ..., idempotency_key: _Optional[str] = ...) -> None: ...

class RedeemResponse(_message.Message):
    __slots__ = ("redemption_id", "entry_id", "points_redeemed", "balance_after", "coupon")
    REDEMPTION_ID_FIELD_NUMBER: _ClassVar[int]
    ENTRY_ID_FIELD_NUMBER: _ClassVar[int]
    POINTS_REDEEMED_FIELD_NUMBER: _ClassVar[int]
    BALANCE_AFTER_FIELD_NUMBER: _ClassVar[int]
    COUPON_FIELD_NUMBER: _ClassVar[int]
    redemption_id: str
    entry_id: str
    points_redeemed: int
    balance_after: int
    coupon: Coupon
    def __init__(self, redemption_id: _Optional[str] = ..., entry_id: _Optional[str] = ..., points_redeemed: _Optional[int] = ..., balance_after: _Optional[int] = ..., coupon: _Optional[_Union[Coupon, _Mapping]] = ...) -> None: ...

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
    __slots__ = ("coupon_id", "code", "reward_id", "title", "status", "amount_off_minor_units", "percent_off_basis_points", "currency_code", "minimum_spend_minor_units", "issued_at", "expires_at", "used_at")
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
    def __init__(self, coupon_id: _Optional[str] = ..., code: _Optional[str] = ..., reward_id: _Optional[str] = ..., title: _Optional[str] = ..., status: _Optional[_Union[CouponStatus, str]] = ..., amount_off_minor_units: _Optional[int] = ..., percent_off_basis_points: _Optional[int] = ..., currency_code: _Optional[str] = ..., minimum_spend_minor_units: _Optional[int] = ..., issued_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., used_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class SimulateRulesRequest(_message.Message):
    __slots__ = ("purchase", "rule_set_id")
    PURCHASE_FIELD_NUMBER: _ClassVar[int]
    RULE_SET_ID_FIELD_NUMBER: _ClassVar[int]
    purchase: SamplePurchase
    rule_set_id: str
    def __init__(self, purchase: _Optional[_Union[SamplePurchase, _Mapping]] = ..., rule_set_id: _Optional[str] = ...) -> None: ...

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
    __slots__ = ("sku", "category", "quantity", "unit_price_minor_units")
    SKU_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    UNIT_PRICE_MINOR_UNITS_FIELD_NUMBER: _ClassVar[int]
    sku: str
    category: str
    quantity: int
    unit_price_minor_units: int
    def __init__(self, sku: _Optional[str] = ..., category: _Optional[str] = ..., quantity: _Optional[int] = ..., unit_price_minor_units: _Optional[int] = ...) -> None: ...

class SimulateRulesResponse(_message.Message):
    __slots__ = ("total_points", "breakdown", "resulting_tier")
    TOTAL_POINTS_FIELD_NUMBER: _ClassVar[int]
    BREAKDOWN_FIELD_NUMBER: _ClassVar[int]
    RESULTING_TIER_FIELD_NUMBER: _ClassVar[int]
    total_points: int
    breakdown: _containers.RepeatedCompositeFieldContainer[RuleContribution]
    resulting_tier: str
    def __init__(self, total_points: _Optional[int] = ..., breakdown: _Optional[_Iterable[_Union[RuleContribution, _Mapping]]] = ..., resulting_tier: _Optional[str] = ...) -> None: ...

class RuleContribution(_message.Message):
    __slots__ = ("rule_id", "rule_name", "points", "applied", "explanation")
    RULE_ID_FIELD_NUMBER: _ClassVar[int]
    RULE_NAME_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    APPLIED_FIELD_NUMBER: _ClassVar[int]
    EXPLANATION_FIELD_NUMBER: _ClassVar[int]
    rule_id: str
    rule_name: str
    points: int
    applied: bool
    explanation: str
    def __init__(self, rule_id: _Optional[str] = ..., rule_name: _Optional[str] = ..., points: _Optional[int] = ..., applied: _Optional[bool] = ..., explanation: _Optional[str] = ...) -> None: ...
