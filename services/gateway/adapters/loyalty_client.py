"""The gateway's client of the loyalty service (gRPC), answering plain dicts
in the shape the HTTP routes return."""

from __future__ import annotations

from typing import Any

import grpc
from cxloop.loyalty.v1 import loyalty_service_pb2 as pb
from cxloop.loyalty.v1 import loyalty_service_pb2_grpc as pb_grpc
from google.protobuf.json_format import MessageToDict


class LoyaltyCallFailed(Exception):
    """A loyalty answer other than OK, with the HTTP status it maps to."""

    STATUS = {
        grpc.StatusCode.INVALID_ARGUMENT: 400,
        grpc.StatusCode.NOT_FOUND: 404,
        grpc.StatusCode.FAILED_PRECONDITION: 409,
        grpc.StatusCode.ALREADY_EXISTS: 409,
        grpc.StatusCode.PERMISSION_DENIED: 403,
        grpc.StatusCode.UNAUTHENTICATED: 502,  # the gateway's own token is wrong
        grpc.StatusCode.UNAVAILABLE: 503,
        grpc.StatusCode.DEADLINE_EXCEEDED: 503,
    }

    def __init__(self, err: grpc.aio.AioRpcError) -> None:
        self.http_status = self.STATUS.get(err.code(), 502)
        details = err.details() or ""
        # Loyalty names the field first ("points: must be positive").
        self.field, _, reason = details.partition(": ")
        self.reason = reason if reason else details
        if not reason:
            self.field = ""
        super().__init__(details)


def _dict(message: Any) -> dict[str, Any]:
    return MessageToDict(message, always_print_fields_with_no_presence=True)


class LoyaltyClient:
    def __init__(self, channel: grpc.aio.Channel, *, deadline_s: float = 5.0) -> None:
        self.stub = pb_grpc.LoyaltyServiceStub(channel)
        self.deadline_s = deadline_s

    async def _call(self, method: Any, request: Any) -> dict[str, Any]:
        try:
            return _dict(await method(request, timeout=self.deadline_s))
        except grpc.aio.AioRpcError as err:
            raise LoyaltyCallFailed(err) from None

    async def account(self, customer_id: str) -> dict[str, Any]:
        return await self._call(self.stub.GetAccount, pb.GetAccountRequest(customer_id=customer_id))

    async def history(self, customer_id: str, page_token: str, page_size: int) -> dict[str, Any]:
        return await self._call(
            self.stub.GetHistory,
            pb.GetHistoryRequest(
                customer_id=customer_id, page_token=page_token, page_size=page_size
            ),
        )

    async def reserve(
        self, customer_id: str, points: int, reward_id: str, key: str, hold_seconds: int
    ) -> dict[str, Any]:
        return await self._call(
            self.stub.Redeem,
            pb.RedeemRequest(
                customer_id=customer_id,
                points=points,
                reward_id=reward_id,
                idempotency_key=key,
                hold_seconds=hold_seconds,
            ),
        )

    async def confirm(self, redemption_id: str) -> dict[str, Any]:
        return await self._call(
            self.stub.ConfirmRedemption, pb.ConfirmRedemptionRequest(redemption_id=redemption_id)
        )

    async def cancel(self, redemption_id: str) -> dict[str, Any]:
        return await self._call(
            self.stub.CancelRedemption, pb.CancelRedemptionRequest(redemption_id=redemption_id)
        )

    async def validate_coupon(self, request: pb.ValidateCouponRequest) -> dict[str, Any]:
        return await self._call(self.stub.ValidateCoupon, request)
