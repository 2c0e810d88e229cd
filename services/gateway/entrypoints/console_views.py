"""``/v1/console/...`` and the customer actions: the JSON behind the
console's Overview, Journeys, Experiments & segments views, and what an
agent or privacy officer may do from a customer's page (adjust points with
a reason, open a privacy request). Same callers as the rest of the console
API (an API key or a console session, gateway/entrypoints/console_auth.py);
each route names its permission (gateway/domain/access.py)."""

# No `from __future__ import annotations`: FastAPI reads the routes'
# annotations at run time.
import re
import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, Header, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cxloop_libs.audit import Action, Actor, AuditEntry
from cxloop_libs.errors import NotFound, Unavailable
from gateway.adapters.body import parse_json, read_body
from gateway.adapters.console_sources import ActionFailed
from gateway.adapters.error_body import error_body
from gateway.domain.access import Permission
from gateway.domain.errors import InvalidRequest
from gateway.domain.segment import problems_from
from gateway.entrypoints.console_api import _ID, _reason
from gateway.entrypoints.console_auth import Caller, ConsoleGate, Refused
from gateway.service_layer.console_views import ConsoleSources
from gateway.service_layer.customer360 import PartUnavailable
from gateway.service_layer.privacy_desk import NewPrivacyRequest, PrivacyDesk, Subject

_EVENT = re.compile(r"^[^\x00-\x1f]{1,128}$")
_BREAKDOWN = re.compile(r"^[A-Za-z0-9_.-]{0,64}$")
MAX_BODY = 4096


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class AdjustPointsBody(_Model):
    points: int = Field(ge=-(10**9), le=10**9, description="Signed; never 0.")
    reason: str = Field(min_length=1, max_length=200, description="Kept in the audit log.")


class SegmentPreviewBody(_Model):
    rule: str = Field(min_length=1, max_length=2000)


class ConsolePrivacyBody(_Model):
    type: Literal["access", "erasure", "rectification", "restriction"]
    verification_status: Literal["pending", "verified"] = Field(
        "pending", alias="verificationStatus"
    )
    verification_method: str = Field("", alias="verificationMethod", max_length=64)


def json_body(model: type[BaseModel]) -> dict[str, Any]:
    """OpenAPI for a body the route reads itself (to bound its size first)."""
    schema = model.model_json_schema(by_alias=True)
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "Invalid request; `fields` names each problem."},
    401: {"description": "No API key or console session, or an unknown, revoked one."},
    403: {
        "description": "The role may not; a session request without its CSRF token or "
        "from another origin."
    },
    429: {"description": "Over the key's rate; see `Retry-After`."},
    503: {"description": "A service cannot answer now; see `Retry-After`."},
}


async def _body(request: Request, model: type[_Model]) -> Any:
    if "application/json" not in request.headers.get("content-type", ""):
        raise Refused(415, "send JSON", "header:Content-Type")
    try:
        return model.model_validate(parse_json(await read_body(request, MAX_BODY)))
    except ValidationError as exc:
        raise InvalidRequest(problems_from(exc)) from None


def _actor(caller: Caller, reason: str) -> Actor:
    key = caller.key.key_id
    return Actor(f"gateway-key:{key}", f"key:{key}", reason)


def add_console_views(
    app: FastAPI,
    gate: ConsoleGate,
    sources: ConsoleSources,
    desk: PrivacyDesk | None,
    audit: Callable[[AuditEntry], Awaitable[None]],
    make_entry: Callable[..., AuditEntry],
) -> None:
    router = APIRouter(tags=["console"], responses=ERRORS)

    def may(permission: Permission) -> Any:
        return Depends(gate.require(permission))

    async def answer(work: Callable[[], Awaitable[Any]]) -> JSONResponse:
        try:
            return JSONResponse(await work())
        except InvalidRequest as exc:
            return JSONResponse(
                error_body(400, "invalid request", [p.as_dict() for p in exc.problems]), 400
            )
        except ActionFailed as exc:
            body = error_body(exc.status, exc.message)
            if exc.status == 409:
                body["code"] = "conflict"
            return JSONResponse(body, exc.status)
        except NotFound as exc:
            return JSONResponse(error_body(404, str(exc)), 404)
        except (PartUnavailable, Unavailable, TimeoutError) as exc:
            return JSONResponse(
                error_body(503, getattr(exc, "reason", "") or str(exc) or "unavailable"),
                503,
                headers={"Retry-After": "2"},
            )

    async def audited(actor: Actor, action: Action, resource: str, subject: str) -> None:
        try:
            await audit(make_entry(actor, action, resource, subject, True))
        except Exception:
            raise Refused(
                503,
                "the audit log could not be written; nothing was done",
                headers={"Retry-After": "2"},
            ) from None

    @router.get("/v1/console/overview", summary="The suite's numbers; unavailable parts named")
    async def overview(_: Annotated[Caller, may(Permission.ANALYTICS_READ)]) -> JSONResponse:
        return await answer(sources.overview)

    @router.get("/v1/console/funnel", summary="A funnel from the analytics service")
    async def funnel(
        _: Annotated[Caller, may(Permission.ANALYTICS_READ)],
        steps: Annotated[str, Query(max_length=1400, description="Events, comma separated")],
        days: Annotated[int, Query(ge=1, le=400)] = 90,
        breakdown: Annotated[str, Query(max_length=64)] = "",
    ) -> JSONResponse:
        names = [s.strip() for s in steps.split(",") if s.strip()]
        if not 2 <= len(names) <= 10 or not all(_EVENT.match(n) for n in names):
            raise Refused(400, "2 to 10 event names, comma separated", "steps")
        if not _BREAKDOWN.match(breakdown):
            raise Refused(400, "a property name: letters, digits and _.-", "breakdown")
        return await answer(lambda: sources.funnel(names, days, breakdown))

    @router.get("/v1/console/experiments/{experiment_id}", summary="An experiment's results")
    async def experiment(
        experiment_id: str, _: Annotated[Caller, may(Permission.ANALYTICS_READ)]
    ) -> JSONResponse:
        if not _ID.match(experiment_id):
            raise Refused(400, "1-128 letters, digits and _.:@=-", "experiment_id")

        async def work() -> Any:
            got = await sources.experiment(experiment_id)
            if got is None:
                raise NotFound("no such experiment")
            return got

        return await answer(work)

    @router.get("/v1/console/segments/{segment_id}", summary="How many customers a segment holds")
    async def segment(
        segment_id: str, _: Annotated[Caller, may(Permission.SEGMENTS)]
    ) -> JSONResponse:
        if not _ID.match(segment_id):
            raise Refused(400, "1-128 letters, digits and _.:@=-", "segment_id")

        async def work() -> Any:
            got = await sources.segment_members(segment_id)
            if got is None:
                raise NotFound("no such segment")
            # Aggregates for marketers: the size, not the people.
            return {"segmentId": segment_id, "size": int(got.get("total", 0))}

        return await answer(work)

    @router.post(
        "/v1/console/segments/preview",
        summary="Size a segment rule without saving it",
        openapi_extra=json_body(SegmentPreviewBody),
    )
    async def preview(
        request: Request, _: Annotated[Caller, may(Permission.SEGMENTS)]
    ) -> JSONResponse:
        async def work() -> Any:
            body: SegmentPreviewBody = await _body(request, SegmentPreviewBody)
            got = await sources.preview_segment(body.rule, 0)
            return {"size": int(got.get("size", 0)), "evaluated": int(got.get("evaluated", 0))}

        return await answer(work)

    @router.post(
        "/v1/customers/{customer_id}/points",
        summary="Add or take points by hand, with a reason (audited)",
        openapi_extra=json_body(AdjustPointsBody),
    )
    async def adjust(
        customer_id: str,
        request: Request,
        caller: Annotated[Caller, may(Permission.CUSTOMER_ACT)],
        idempotency_key: Annotated[str, Header(alias="Idempotency-Key", max_length=200)] = "",
    ) -> JSONResponse:
        if not _ID.match(customer_id):
            raise Refused(400, "1-128 letters, digits and _.:@=-", "customer_id")

        async def work() -> Any:
            body: AdjustPointsBody = await _body(request, AdjustPointsBody)
            if body.points == 0:
                raise InvalidRequest.one("points", "must not be 0")
            reason = _reason(body.reason)
            actor = _actor(caller, reason)
            await audited(actor, Action.CHANGE, "loyalty_adjustment", customer_id)
            key = idempotency_key.strip() or uuid.uuid4().hex
            return await sources.adjust_points(customer_id, body.points, reason, key, actor)

        return await answer(work)

    @router.post(
        "/v1/customers/{customer_id}/privacy-requests",
        summary="Open a privacy request for this customer (audited)",
        status_code=201,
        openapi_extra=json_body(ConsolePrivacyBody),
    )
    async def privacy(
        customer_id: str,
        request: Request,
        caller: Annotated[Caller, may(Permission.PRIVACY)],
        x_cxloop_reason: Annotated[str | None, Header()] = None,
    ) -> JSONResponse:
        if not _ID.match(customer_id):
            raise Refused(400, "1-128 letters, digits and _.:@=-", "customer_id")
        if desk is None:
            raise Refused(503, "privacy requests are not configured", headers={"Retry-After": "5"})

        async def work() -> Any:
            body: ConsolePrivacyBody = await _body(request, ConsolePrivacyBody)
            actor = _actor(caller, _reason(x_cxloop_reason))
            await audited(actor, Action.CHANGE, f"privacy_request:{body.type}", customer_id)
            return await desk.open(
                NewPrivacyRequest(
                    kind=body.type,
                    subject=Subject(customer_id=customer_id),
                    verification_status=body.verification_status,
                    verification_method=body.verification_method,
                    actor=f"console key {caller.key.key_id}",
                )
            )

        response = await answer(work)
        if response.status_code == 200:
            response.status_code = 201
        return response

    app.include_router(router)
