"""``/v1/loyalty``: points balance and history of a customer, two-phase
redemption at checkout, coupon validation — for frontends' backends and
partner checkouts.

Authenticated with a loyalty token (``Authorization: Bearer <token>``, from
``CXLOOP_GATEWAY_LOYALTY_TOKENS``), never a write key: write keys ship inside
web pages, and whoever holds one must not read or spend anyone's points.
A reservation needs an ``Idempotency-Key`` header: a retried request returns
the first reservation, never a second one.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Awaitable, Callable
from typing import Any

from cxloop.loyalty.v1 import loyalty_service_pb2 as pb
from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gateway.adapters.body import parse_json, read_body
from gateway.adapters.loyalty_client import LoyaltyCallFailed, LoyaltyClient
from gateway.domain.errors import InvalidRequest
from gateway.domain.segment import problems_from

MAX_BODY_BYTES = 8 * 1024
_ID = re.compile(r"^[A-Za-z0-9_.:@=-]{1,128}$")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class ReserveBody(_Model):
    points: int = Field(gt=0, le=10**10)
    reward_id: str = Field("", alias="rewardId", max_length=64)
    hold_seconds: int = Field(0, alias="holdSeconds", ge=0, le=86_400)


class ValidateCouponBody(_Model):
    code: str = Field(min_length=1, max_length=32)
    customer_id: str = Field("", alias="customerId", max_length=128)
    order_total: int = Field(0, alias="orderTotal", ge=0, le=10**13, description="Minor units.")
    currency: str = Field("", max_length=3)
    redeem: bool = False
    order_id: str = Field("", alias="orderId", max_length=128)


def _error(status: int, message: str, field: str = "") -> JSONResponse:
    body: dict[str, Any] = {"error": message}
    if field:
        body["fields"] = [{"field": field, "problem": message}]
    return JSONResponse(body, status_code=status)


def _path_id(value: str, field: str) -> str:
    if not _ID.match(value):
        raise InvalidRequest.one(field, "letters, digits and _.:@=- only, at most 128")
    return value


async def _body(request: Request, model: type[_Model]) -> Any:
    raw = parse_json(await read_body(request, MAX_BODY_BYTES))
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise InvalidRequest(problems_from(exc)) from None


def loyalty_router(client: LoyaltyClient, tokens: frozenset[str]) -> APIRouter:
    """The routes; with no tokens every call answers 401."""
    encoded = [t.encode() for t in tokens]

    def authorised(authorization: str = Header("")) -> None:
        scheme, _, token = authorization.partition(" ")
        given = token.strip().encode()
        # Compare with every token, always: timing must not tell how close a guess was.
        if (
            scheme.lower() != "bearer"
            or not given
            or not any([hmac.compare_digest(given, t) for t in encoded])
        ):
            raise _Unauthorized()

    router = APIRouter(prefix="/v1/loyalty", tags=["loyalty"], dependencies=[Depends(authorised)])

    async def answer(call: Callable[[], Awaitable[dict[str, Any]]]) -> JSONResponse:
        try:
            return JSONResponse(await call())
        except LoyaltyCallFailed as exc:
            return _error(exc.http_status, exc.reason, exc.field)
        except InvalidRequest as exc:
            return JSONResponse(
                {"error": "invalid request", "fields": [p.as_dict() for p in exc.problems]},
                status_code=400,
            )

    @router.get("/members/{customer_id}", summary="Balance, pending, tier, expiring soon")
    async def account(customer_id: str) -> JSONResponse:
        return await answer(lambda: client.account(_path_id(customer_id, "customerId")))

    @router.get("/members/{customer_id}/history", summary="Ledger postings, newest first")
    async def history(
        customer_id: str,
        page_token: str = Query("", alias="pageToken", max_length=32),
        page_size: int = Query(50, alias="pageSize", ge=1, le=500),
    ) -> JSONResponse:
        return await answer(
            lambda: client.history(_path_id(customer_id, "customerId"), page_token, page_size)
        )

    @router.post(
        "/members/{customer_id}/redemptions",
        summary="Reserve points for a checkout (Idempotency-Key required)",
    )
    async def reserve(
        customer_id: str,
        request: Request,
        idempotency_key: str = Header("", alias="Idempotency-Key"),
    ) -> JSONResponse:
        async def run() -> dict[str, Any]:
            cid = _path_id(customer_id, "customerId")
            if not idempotency_key.strip() or len(idempotency_key) > 200:
                raise InvalidRequest.one(
                    "header:Idempotency-Key", "required, at most 200 characters"
                )
            body: ReserveBody = await _body(request, ReserveBody)
            return await client.reserve(
                cid, body.points, body.reward_id, idempotency_key.strip(), body.hold_seconds
            )

        return await answer(run)

    @router.post("/redemptions/{redemption_id}/confirm", summary="Spend a reservation")
    async def confirm(redemption_id: str) -> JSONResponse:
        return await answer(lambda: client.confirm(_path_id(redemption_id, "redemptionId")))

    @router.post("/redemptions/{redemption_id}/cancel", summary="Give a reservation back")
    async def cancel(redemption_id: str) -> JSONResponse:
        return await answer(lambda: client.cancel(_path_id(redemption_id, "redemptionId")))

    @router.post(
        "/coupons/validate",
        summary="Check a coupon for an order; with redeem, use it (once per orderId)",
    )
    async def validate(
        request: Request, idempotency_key: str = Header("", alias="Idempotency-Key")
    ) -> JSONResponse:
        async def run() -> dict[str, Any]:
            body: ValidateCouponBody = await _body(request, ValidateCouponBody)
            # A use is idempotent per order; the header may name the order.
            order_id = body.order_id or idempotency_key.strip()
            return await client.validate_coupon(
                pb.ValidateCouponRequest(
                    code=body.code,
                    customer_id=body.customer_id,
                    order_total_minor_units=body.order_total,
                    currency_code=body.currency,
                    redeem=body.redeem,
                    order_id=order_id,
                )
            )

        return await answer(run)

    return router


class _Unauthorized(Exception):
    pass


def install_loyalty_errors(app: Any) -> None:
    async def unauthorised(_: Request, __: Exception) -> JSONResponse:
        response = _error(401, "missing or unknown loyalty token (Authorization: Bearer <token>)")
        response.headers["WWW-Authenticate"] = "Bearer"
        return response

    app.add_exception_handler(_Unauthorized, unauthorised)
