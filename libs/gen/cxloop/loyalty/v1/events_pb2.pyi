import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ReversalReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REVERSAL_REASON_UNSPECIFIED: _ClassVar[ReversalReason]
    REVERSAL_REASON_RETURN: _ClassVar[ReversalReason]
    REVERSAL_REASON_CANCELLATION: _ClassVar[ReversalReason]
    REVERSAL_REASON_FRAUD: _ClassVar[ReversalReason]
    REVERSAL_REASON_MANUAL_ADJUSTMENT: _ClassVar[ReversalReason]

class TierChangeDirection(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TIER_CHANGE_DIRECTION_UNSPECIFIED: _ClassVar[TierChangeDirection]
    TIER_CHANGE_DIRECTION_UPGRADE: _ClassVar[TierChangeDirection]
    TIER_CHANGE_DIRECTION_DOWNGRADE: _ClassVar[TierChangeDirection]
REVERSAL_REASON_UNSPECIFIED: ReversalReason
REVERSAL_REASON_RETURN: ReversalReason
REVERSAL_REASON_CANCELLATION: ReversalReason
REVERSAL_REASON_FRAUD: ReversalReason
REVERSAL_REASON_MANUAL_ADJUSTMENT: ReversalReason
TIER_CHANGE_DIRECTION_UNSPECIFIED: TierChangeDirection
TIER_CHANGE_DIRECTION_UPGRADE: TierChangeDirection
TIER_CHANGE_DIRECTION_DOWNGRADE: TierChangeDirection

class PointsEarned(_message.Message):
    __slots__ = ("entry_id", "customer_id", "points", "balance_after", "reference_id", "rule_ids", "earned_at", "expires_at", "cause_event_id")
    ENTRY_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    BALANCE_AFTER_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_ID_FIELD_NUMBER: _ClassVar[int]
    RULE_IDS_FIELD_NUMBER: _ClassVar[int]
    EARNED_AT_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    CAUSE_EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    entry_id: str
    customer_id: str
    points: int
    balance_after: int
    reference_id: str
    rule_ids: _containers.RepeatedScalarFieldContainer[str]
    earned_at: _timestamp_pb2.Timestamp
    expires_at: _timestamp_pb2.Timestamp
    cause_event_id: str
    def __init__(self, entry_id: _Optional[str] = ..., customer_id: _Optional[str] = ..., points: _Optional[int] = ..., balance_after: _Optional[int] = ..., reference_id: _Optional[str] = ..., rule_ids: _Optional[_Iterable[str]] = ..., earned_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., cause_event_id: _Optional[str] = ...) -> None: ...

class PointsReversed(_message.Message):
    __slots__ = ("entry_id", "customer_id", "points", "balance_after", "reversed_entry_id", "reason", "reversed_at", "cause_event_id")
    ENTRY_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    BALANCE_AFTER_FIELD_NUMBER: _ClassVar[int]
    REVERSED_ENTRY_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    REVERSED_AT_FIELD_NUMBER: _ClassVar[int]
    CAUSE_EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    entry_id: str
    customer_id: str
    points: int
    balance_after: int
    reversed_entry_id: str
    reason: ReversalReason
    reversed_at: _timestamp_pb2.Timestamp
    cause_event_id: str
    def __init__(self, entry_id: _Optional[str] = ..., customer_id: _Optional[str] = ..., points: _Optional[int] = ..., balance_after: _Optional[int] = ..., reversed_entry_id: _Optional[str] = ..., reason: _Optional[_Union[ReversalReason, str]] = ..., reversed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., cause_event_id: _Optional[str] = ...) -> None: ...

class PointsExpired(_message.Message):
    __slots__ = ("entry_id", "customer_id", "points", "balance_after", "lot_ids", "expired_at")
    ENTRY_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    BALANCE_AFTER_FIELD_NUMBER: _ClassVar[int]
    LOT_IDS_FIELD_NUMBER: _ClassVar[int]
    EXPIRED_AT_FIELD_NUMBER: _ClassVar[int]
    entry_id: str
    customer_id: str
    points: int
    balance_after: int
    lot_ids: _containers.RepeatedScalarFieldContainer[str]
    expired_at: _timestamp_pb2.Timestamp
    def __init__(self, entry_id: _Optional[str] = ..., customer_id: _Optional[str] = ..., points: _Optional[int] = ..., balance_after: _Optional[int] = ..., lot_ids: _Optional[_Iterable[str]] = ..., expired_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class TierChanged(_message.Message):
    __slots__ = ("customer_id", "previous_tier", "new_tier", "direction", "changed_at", "valid_until")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_TIER_FIELD_NUMBER: _ClassVar[int]
    NEW_TIER_FIELD_NUMBER: _ClassVar[int]
    DIRECTION_FIELD_NUMBER: _ClassVar[int]
    CHANGED_AT_FIELD_NUMBER: _ClassVar[int]
    VALID_UNTIL_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    previous_tier: str
    new_tier: str
    direction: TierChangeDirection
    changed_at: _timestamp_pb2.Timestamp
    valid_until: _timestamp_pb2.Timestamp
    def __init__(self, customer_id: _Optional[str] = ..., previous_tier: _Optional[str] = ..., new_tier: _Optional[str] = ..., direction: _Optional[_Union[TierChangeDirection, str]] = ..., changed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., valid_until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CouponIssued(_message.Message):
    __slots__ = ("coupon_id", "customer_id", "reward_id", "campaign_id", "issued_at", "expires_at", "cause_id")
    COUPON_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    REWARD_ID_FIELD_NUMBER: _ClassVar[int]
    CAMPAIGN_ID_FIELD_NUMBER: _ClassVar[int]
    ISSUED_AT_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    CAUSE_ID_FIELD_NUMBER: _ClassVar[int]
    coupon_id: str
    customer_id: str
    reward_id: str
    campaign_id: str
    issued_at: _timestamp_pb2.Timestamp
    expires_at: _timestamp_pb2.Timestamp
    cause_id: str
    def __init__(self, coupon_id: _Optional[str] = ..., customer_id: _Optional[str] = ..., reward_id: _Optional[str] = ..., campaign_id: _Optional[str] = ..., issued_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., cause_id: _Optional[str] = ...) -> None: ...

class PointsPending(_message.Message):
    __slots__ = ("entry_id", "customer_id", "points", "reference_id", "rule_ids", "activates_at", "cause_event_id")
    ENTRY_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_ID_FIELD_NUMBER: _ClassVar[int]
    RULE_IDS_FIELD_NUMBER: _ClassVar[int]
    ACTIVATES_AT_FIELD_NUMBER: _ClassVar[int]
    CAUSE_EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    entry_id: str
    customer_id: str
    points: int
    reference_id: str
    rule_ids: _containers.RepeatedScalarFieldContainer[str]
    activates_at: _timestamp_pb2.Timestamp
    cause_event_id: str
    def __init__(self, entry_id: _Optional[str] = ..., customer_id: _Optional[str] = ..., points: _Optional[int] = ..., reference_id: _Optional[str] = ..., rule_ids: _Optional[_Iterable[str]] = ..., activates_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., cause_event_id: _Optional[str] = ...) -> None: ...

class PointsActivated(_message.Message):
    __slots__ = ("entry_id", "customer_id", "points", "balance_after", "lot_id", "activated_at", "expires_at")
    ENTRY_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    BALANCE_AFTER_FIELD_NUMBER: _ClassVar[int]
    LOT_ID_FIELD_NUMBER: _ClassVar[int]
    ACTIVATED_AT_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    entry_id: str
    customer_id: str
    points: int
    balance_after: int
    lot_id: str
    activated_at: _timestamp_pb2.Timestamp
    expires_at: _timestamp_pb2.Timestamp
    def __init__(self, entry_id: _Optional[str] = ..., customer_id: _Optional[str] = ..., points: _Optional[int] = ..., balance_after: _Optional[int] = ..., lot_id: _Optional[str] = ..., activated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class PointsRedeemed(_message.Message):
    __slots__ = ("entry_id", "customer_id", "points", "balance_after", "redemption_id", "reward_id", "redeemed_at")
    ENTRY_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    BALANCE_AFTER_FIELD_NUMBER: _ClassVar[int]
    REDEMPTION_ID_FIELD_NUMBER: _ClassVar[int]
    REWARD_ID_FIELD_NUMBER: _ClassVar[int]
    REDEEMED_AT_FIELD_NUMBER: _ClassVar[int]
    entry_id: str
    customer_id: str
    points: int
    balance_after: int
    redemption_id: str
    reward_id: str
    redeemed_at: _timestamp_pb2.Timestamp
    def __init__(self, entry_id: _Optional[str] = ..., customer_id: _Optional[str] = ..., points: _Optional[int] = ..., balance_after: _Optional[int] = ..., redemption_id: _Optional[str] = ..., reward_id: _Optional[str] = ..., redeemed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CouponRedeemed(_message.Message):
    __slots__ = ("coupon_id", "customer_id", "order_id", "discount_minor_units", "redeemed_at")
    COUPON_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    DISCOUNT_MINOR_UNITS_FIELD_NUMBER: _ClassVar[int]
    REDEEMED_AT_FIELD_NUMBER: _ClassVar[int]
    coupon_id: str
    customer_id: str
    order_id: str
    discount_minor_units: int
    redeemed_at: _timestamp_pb2.Timestamp
    def __init__(self, coupon_id: _Optional[str] = ..., customer_id: _Optional[str] = ..., order_id: _Optional[str] = ..., discount_minor_units: _Optional[int] = ..., redeemed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class PointsExpiring(_message.Message):
    __slots__ = ("customer_id", "points", "expires_at", "lot_ids")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    LOT_IDS_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    points: int
    expires_at: _timestamp_pb2.Timestamp
    lot_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, customer_id: _Optional[str] = ..., points: _Optional[int] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., lot_ids: _Optional[_Iterable[str]] = ...) -> None: ...
