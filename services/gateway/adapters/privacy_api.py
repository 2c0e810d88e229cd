"""``/v1/privacy/requests``: data-subject requests over HTTP for the privacy
officer's tools, the service desk and self-service portals' backends.

Authenticated with a privacy token (``Authorization: Bearer <token>``, from
``CXLOOP_GATEWAY_PRIVACY_TOKENS``), never a write key: write keys ship inside
web pages and apps, and whoever holds one must not be able to erase or export
a customer. The caller states how it verified the requester
(``verificationStatus``); consent holds a ``pending`` request until
``VerifyPrivacyRequest``.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Callable
from typing import Any, Literal, Self

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from cxloop_libs.errors import NotFound, Unavailable
from cxloop_libs.pii import IdType
from gateway.adapters.body import parse_json, read_body
from gateway.adapters.error_body import error_body
from gateway.domain.errors import InvalidRequest
from gateway.domain.sanitize import sanitize
from gateway.domain.segment import problems_from
from gateway.service_layer.metrics import GatewayMetrics, gateway_metrics
from gateway.service_layer.privacy_desk import NewPrivacyRequest, PrivacyDesk, Subject

MAX_BODY_BYTES = 16 * 1024
# Consent's request ids are uuids; anything else cannot be one (and must not
# reach a log or another service unchecked).
_REQUEST_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class PrivacyUnauthorized(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


class IdentifierIn(_Model):
    type: Literal["email", "phone", "user_id", "loyalty_card", "external", "anonymous_id"]
    value: str = Field(min_length=1, max_length=512)
    namespace: str = Field("", max_length=64, description="For `external`: the issuing system.")


class SubjectIn(_Model):
    """Exactly one of `customerId` and `identifier`."""

    customer_id: str | None = Field(None, alias="customerId", min_length=1, max_length=64)
    identifier: IdentifierIn | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        if (self.customer_id is None) == (self.identifier is None):
            raise ValueError("give exactly one of customerId and identifier")
        return self


class OpenPrivacyRequestBody(_Model):
    type: Literal["access", "erasure", "rectification", "restriction"]
    subject: SubjectIn
    jurisdiction: Literal["gdpr", "pipa", "ccpa"] | None = Field(
        None, description="Sets the deadline; omitted: the consent service's default."
    )
    verification_status: Literal["pending", "verified"] = Field(
        "pending",
        alias="verificationStatus",
        description="`verified` when the caller has proved the requester is the subject.",
    )
    verification_method: str = Field(
        "", alias="verificationMethod", max_length=64, description="e.g. `email_otp`"
    )
    actor: str = Field("", max_length=100, description="Agent or system acting for the customer.")


class PrivacyRequestOpened(BaseModel):
    request_id: str = Field(alias="requestId")
    customer_id: str = Field(alias="customerId")
    type: str
    status: str = Field(description="awaiting_verification, in_progress ...")
    opened_at: str | None = Field(alias="openedAt")
    due_at: str | None = Field(alias="dueAt", description="Legal deadline.")


class ParticipantOut(BaseModel):
    participant: str
    state: str = Field(description="pending, done, failed, not_applicable")
    answered_at: str | None = Field(alias="answeredAt")
    records_affected: int = Field(alias="recordsAffected")
    categories: list[str]
    row_counts: dict[str, int] = Field(alias="rowCounts")
    detail: str | None


class PrivacyRequestStatusOut(BaseModel):
    request_id: str = Field(alias="requestId")
    customer_id: str = Field(alias="customerId")
    type: str
    jurisdiction: str
    status: str
    verification_status: str = Field(alias="verificationStatus")
    opened_at: str | None = Field(alias="openedAt")
    due_at: str | None = Field(alias="dueAt")
    closed_at: str | None = Field(alias="closedAt")
    overdue: bool
    extended: bool
    extension_reason: str | None = Field(alias="extensionReason")
    escalation_reason: str | None = Field(alias="escalationReason")
    participants: list[ParticipantOut]
    access_bundle: Any = Field(
        alias="accessBundle", description="Access requests, once completed: the JSON bundle."
    )


class ErrorOut(BaseModel):
    error: str
    fields: list[dict[str, str]] | None = None


_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorOut, "description": "Invalid request; `fields` names each problem."},
    401: {"model": ErrorOut, "description": "Missing or unknown privacy token."},
    404: {"model": ErrorOut, "description": "No such customer (or request)."},
    503: {"model": ErrorOut, "description": "Consent or identity cannot answer now; retry."},
}


def to_request(body: OpenPrivacyRequestBody) -> NewPrivacyRequest:
    s = body.subject
    subject = (
        Subject(customer_id=s.customer_id)
        if s.identifier is None
        else Subject(
            id_type=IdType(s.identifier.type),
            value=s.identifier.value,
            namespace=s.identifier.namespace,
        )
    )
    return NewPrivacyRequest(
        kind=body.type,
        subject=subject,
        jurisdiction=body.jurisdiction,
        verification_status=body.verification_status,
        verification_method=body.verification_method,
        actor=body.actor,
    )


def add_privacy_routes(
    app: FastAPI,
    desk: PrivacyDesk,
    tokens: frozenset[str],
    *,
    metrics: GatewayMetrics | None = None,
) -> None:
    """Mount the routes; with no tokens every call answers 401."""
    metrics = metrics or gateway_metrics()
    encoded = [t.encode() for t in tokens]

    def authorize(request: Request) -> None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise PrivacyUnauthorized("missing privacy token (Authorization: Bearer <token>)")
        given = token.strip().encode()
        # Compare with every token, always: timing must not tell how close a guess was.
        if not any([hmac.compare_digest(given, t) for t in encoded]):
            raise PrivacyUnauthorized("unknown privacy token")

    def counted(op: str, status: int) -> None:
        metrics.privacy_requests.add(1, {"operation": op, "status": str(status)})

    async def answered(op: str, work: Callable[[], Any]) -> JSONResponse:
        status = 500
        try:
            body, status = await work()
            return JSONResponse(body, status_code=status)
        except PrivacyUnauthorized:
            status = 401
            raise
        except InvalidRequest:
            status = 400
            raise
        except NotFound as exc:
            status = 404
            return JSONResponse(error_body(404, str(exc)), status_code=404)
        except Unavailable:
            status = 503
            raise
        finally:
            counted(op, status)

    async def open_request(request: Request) -> JSONResponse:
        async def work() -> tuple[dict[str, Any], int]:
            authorize(request)
            data, unusable = sanitize(
                parse_json(await read_body(request, MAX_BODY_BYTES)), refuse_nul=True
            )
            if unusable:
                raise InvalidRequest(unusable)
            try:
                body = OpenPrivacyRequestBody.model_validate(data)
            except ValidationError as exc:
                raise InvalidRequest(problems_from(exc)) from None
            return await desk.open(to_request(body)), 201

        return await answered("open", work)

    async def get_request(request: Request, request_id: str) -> JSONResponse:
        async def work() -> tuple[dict[str, Any], int]:
            authorize(request)
            if not _REQUEST_ID.match(request_id):
                raise InvalidRequest.one("requestId", "is not a privacy request id")
            return await desk.status(request_id), 200

        return await answered("status", work)

    app.add_api_route(
        "/v1/privacy/requests",
        open_request,
        methods=["POST"],
        status_code=201,
        name="open_privacy_request",
        summary="Open a privacy request",
        description="Access (export), erasure, rectification or restriction for one customer, "
        "named by customer id or by an identifier (resolved through identity). The consent "
        "service runs it to completion across every service; poll the status.",
        tags=["privacy"],
        response_model=PrivacyRequestOpened,
        responses=_ERRORS,
    )
    app.add_api_route(
        "/v1/privacy/requests/{request_id}",
        get_request,
        methods=["GET"],
        name="get_privacy_request",
        summary="Where a privacy request stands",
        description="Status, deadline, every service's answer and, for a completed access "
        "request, the JSON bundle.",
        tags=["privacy"],
        response_model=PrivacyRequestStatusOut,
        responses=_ERRORS,
    )
