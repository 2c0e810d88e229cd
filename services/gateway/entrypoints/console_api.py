"""``/v1/me`` and ``/v1/customers``: the console API for people (agents,
privacy officers, marketers, analysts, admins) and their scripts.

Authenticated with an API key (``Authorization: Bearer cxk_...``, created with
``cxloop keys create``), never a write key: write keys ship inside web pages.
Each key has a role; each route needs a permission of that role
(gateway/domain/access.py). A read of one customer's data needs a reason
(``X-Cxloop-Reason``: a ticket number, "customer on the phone") and is
audited — on the gateway's stream before the answer leaves, and by each
service asked (it receives the key and the reason) — docs/adr/0100.
"""

# No `from __future__ import annotations`: FastAPI reads the routes'
# annotations at run time, and they name key_for(), local to add_console_routes.
import re
import time
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Header, Query
from fastapi.responses import JSONResponse

from cxloop_libs.apikeys import ApiKey, KeyRegistry
from cxloop_libs.audit import Action, Actor, AuditEntry
from cxloop_libs.audit.actor import MAX_REASON
from gateway.adapters.error_body import error_body
from gateway.domain.access import Permission
from gateway.entrypoints.console_auth import (
    ERRORS,
    Caller,
    ConsoleGate,
    Refused,
    describe,
    install,
)
from gateway.service_layer.customer360 import Customer360, CustomerNotFound, PartUnavailable

_ID = re.compile(r"^[A-Za-z0-9_.:@=-]{1,128}$")
REASON = "X-Cxloop-Reason"


def _reason(value: str | None) -> str:
    reason = (value or "").strip()
    if not reason:
        raise Refused(400, "say why you read this customer's data (a ticket, a request)", REASON)
    if len(reason) > MAX_REASON or any(not c.isprintable() for c in reason):
        raise Refused(400, f"at most {MAX_REASON} printable characters", REASON)
    return reason


def add_console_routes(
    app: FastAPI,
    registry: KeyRegistry,
    c360: Customer360,
    audit: Callable[[AuditEntry], Awaitable[None]],
    make_entry: Callable[..., AuditEntry],
    *,
    clock: Callable[[], float] = time.monotonic,
    gate: ConsoleGate | None = None,
) -> ConsoleGate:
    gate = gate or ConsoleGate(registry, clock=clock)
    router = APIRouter(tags=["console"], responses=ERRORS)

    async def audited(actor: Actor, resource: str, subject: str, found: bool) -> None:
        try:
            await audit(make_entry(actor, Action.READ, resource, subject, found))
        except Exception:
            raise Refused(
                503,
                "the audit log could not be written; nothing was read",
                headers={"Retry-After": "2"},
            ) from None

    async def answer_360(key: ApiKey, reason: str, customer_id: str) -> JSONResponse:
        actor = Actor(f"gateway-key:{key.key_id}", f"key:{key.key_id}", reason)
        try:
            body = await c360.get(customer_id, actor)
        except CustomerNotFound:
            await audited(actor, "customer_360", customer_id, False)
            return JSONResponse(error_body(404, "no such customer"), status_code=404)
        # Audited before the data leaves: no stored entry, no answer.
        await audited(actor, "customer_360", body["customerId"], True)
        return JSONResponse(body)

    @router.get("/v1/me", summary="The calling key: name, role and what it may do")
    async def me(caller: Annotated[Caller, Depends(gate.require(None))]) -> dict[str, Any]:
        return describe(caller.key)

    @router.get(
        "/v1/customers/{customer_id}",
        summary="One customer across the suite (partial when a service is down)",
    )
    async def customer(
        customer_id: str,
        caller: Annotated[Caller, Depends(gate.require(Permission.CUSTOMER_READ))],
        x_cxloop_reason: Annotated[str | None, Header()] = None,
    ) -> JSONResponse:
        key = caller.key
        if not _ID.match(customer_id):
            raise Refused(400, "1-128 letters, digits and _.:@=-", "customer_id")
        return await answer_360(key, _reason(x_cxloop_reason), customer_id)

    @router.get(
        "/v1/customers",
        summary="Find a customer by email, phone or user id; answers their 360",
    )
    async def lookup(
        caller: Annotated[Caller, Depends(gate.require(Permission.CUSTOMER_READ))],
        email: Annotated[str | None, Query(max_length=320)] = None,
        phone: Annotated[str | None, Query(max_length=64)] = None,
        user_id: Annotated[str | None, Query(alias="userId", max_length=256)] = None,
        x_cxloop_reason: Annotated[str | None, Header()] = None,
    ) -> JSONResponse:
        given = [(k, v) for k, v in (("email", email), ("phone", phone), ("userId", user_id)) if v]
        if len(given) != 1:
            raise Refused(400, "give exactly one of email, phone or userId", "email")
        reason = _reason(x_cxloop_reason)
        key = caller.key
        kind, value = given[0]
        actor = Actor(f"gateway-key:{key.key_id}", f"key:{key.key_id}", reason)
        try:
            found = await c360.find(kind, value, actor)
        except (PartUnavailable, TimeoutError):
            return JSONResponse(
                error_body(503, "identity is unavailable; try again"),
                status_code=503,
                headers={"Retry-After": "2"},
            )
        if found is None:
            await audited(actor, "customer_lookup", "", False)
            return JSONResponse(error_body(404, "no customer with that identifier"), 404)
        return await answer_360(key, reason, found)

    app.include_router(router)
    install(app, gate)
    return gate
