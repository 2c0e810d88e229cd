"""``/v1/console/...`` and the customer actions: the JSON behind the
console's Overview, Journeys (funnel, paths, retention, KPI alerts),
Experiments & segments (preview, save, list) and Merge review views, and
what an agent or privacy officer may do from a customer's page (adjust
points with a reason, resolve a case, see why two identifiers are one
customer, open a privacy request). Same callers as the rest of the console
API (an API key or a console session, gateway/entrypoints/console_auth.py);
each route names its permission (gateway/domain/access.py). Reads of
customer data need ``X-Cxloop-Reason`` and are audited before the answer
leaves; actions are audited before the service is asked (ADR 0210)."""

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
from gateway.entrypoints.console_auth import ERRORS, Caller, ConsoleGate, Refused
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


class DefineSegmentBody(_Model):
    segment_id: str = Field(
        alias="segmentId", min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:@=-]+$"
    )
    name: str = Field("", max_length=200)
    rule: str = Field(min_length=1, max_length=2000)


class ReviewDecisionBody(_Model):
    decision: Literal["approve", "reject"] = Field(
        description="approve: one person, merge the two customers; reject: two people, "
        "never link them automatically."
    )
    reason: str = Field(min_length=1, max_length=200, description="Kept in the audit log.")


class IdentifierBody(_Model):
    type: Literal["email", "phone", "userId", "anonymousId", "loyaltyCard", "external"]
    value: str = Field(min_length=1, max_length=320)
    namespace: str = Field("", max_length=64, description="external ids: the source system")


class ExplainBody(_Model):
    a: IdentifierBody
    b: IdentifierBody


class CaseUpdateBody(_Model):
    status: Literal["open", "in_progress", "waiting_on_customer", "resolved", "closed"] | None = (
        None
    )
    note: str = Field("", max_length=2000, description="Appended to the case's notes.")
    resolution: str = Field("", max_length=2000, description="What was done; to resolve.")
    notify_customer: bool = Field(False, alias="notifyCustomer")


class ConsolePrivacyBody(_Model):
    type: Literal["access", "erasure", "rectification", "restriction"]
    verification_status: Literal["pending", "verified"] = Field(
        "pending", alias="verificationStatus"
    )
    verification_method: str = Field("", alias="verificationMethod", max_length=64)


def json_body(model: type[BaseModel]) -> dict[str, Any]:
    """OpenAPI for a body the route reads itself (to bound its size first).
    Nested models are inlined: a ``#/$defs/...`` reference would point at
    the OpenAPI document's root."""
    schema = model.model_json_schema(by_alias=True)
    defs = schema.pop("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            if ref.startswith("#/$defs/"):
                return inline(defs[ref.removeprefix("#/$defs/")])
            return {k: inline(v) for k, v in node.items()}
        if isinstance(node, list):
            return [inline(v) for v in node]
        return node

    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": inline(schema)}},
        }
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

    async def audited(
        actor: Actor, action: Action, resource: str, subject: str, found: bool = True
    ) -> None:
        try:
            await audit(make_entry(actor, action, resource, subject, found))
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

    def _check_id(value: str, field: str) -> None:
        if not _ID.match(value):
            raise Refused(400, "1-128 letters, digits and _.:@=-", field)

    # -- Journeys: paths, retention, KPI alerts ------------------------------------

    @router.get("/v1/console/paths", summary="Top paths after (or before) an event, Sankey-ready")
    async def paths(
        _: Annotated[Caller, may(Permission.ANALYTICS_READ)],
        anchor: Annotated[str, Query(max_length=128, description="The anchor event")],
        direction: Annotated[Literal["after", "before"], Query()] = "after",
        depth: Annotated[int, Query(ge=1, le=10)] = 3,
        top: Annotated[int, Query(ge=1, le=100)] = 10,
        days: Annotated[int, Query(ge=1, le=400)] = 90,
        exclude: Annotated[str, Query(max_length=1400, description="Events, comma separated")] = "",
    ) -> JSONResponse:
        if not _EVENT.match(anchor.strip()):
            raise Refused(400, "an event name", "anchor")
        left_out = [e.strip() for e in exclude.split(",") if e.strip()]
        if len(left_out) > 20 or not all(_EVENT.match(e) for e in left_out):
            raise Refused(400, "at most 20 event names, comma separated", "exclude")
        return await answer(
            lambda: sources.paths(anchor.strip(), direction == "before", depth, top, days, left_out)
        )

    @router.get("/v1/console/retention", summary="Weekly retention triangle (cohorts by week)")
    async def retention(
        _: Annotated[Caller, may(Permission.ANALYTICS_READ)],
        cohort_event: Annotated[str, Query(alias="cohortEvent", max_length=128)] = "",
        return_event: Annotated[str, Query(alias="returnEvent", max_length=128)] = "",
        weeks: Annotated[int, Query(ge=1, le=52)] = 12,
    ) -> JSONResponse:
        for field, value in (("cohortEvent", cohort_event), ("returnEvent", return_event)):
            if value and not _EVENT.match(value.strip()):
                raise Refused(400, "an event name, or empty for any event", field)
        return await answer(
            lambda: sources.retention(cohort_event.strip(), return_event.strip(), weeks)
        )

    @router.get("/v1/console/alerts", summary="KPI alerts raised by analytics, newest first")
    async def alerts(
        _: Annotated[Caller, may(Permission.ANALYTICS_READ)],
        kpi: Annotated[str, Query(max_length=64, pattern=r"^[a-z0-9_]*$")] = "",
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
    ) -> JSONResponse:
        return await answer(lambda: sources.alerts(kpi, limit))

    # -- Segments: save and list ------------------------------------------------------

    @router.get("/v1/console/segments", summary="Saved segments with their rules and sizes")
    async def segments(_: Annotated[Caller, may(Permission.SEGMENTS)]) -> JSONResponse:
        return await answer(sources.list_segments)

    @router.post(
        "/v1/console/segments",
        summary="Save a segment (create or replace); the next sweep fills it",
        openapi_extra=json_body(DefineSegmentBody),
    )
    async def define_segment(
        request: Request, _: Annotated[Caller, may(Permission.SEGMENTS)]
    ) -> JSONResponse:
        async def work() -> Any:
            body: DefineSegmentBody = await _body(request, DefineSegmentBody)
            return await sources.define_segment(body.segment_id, body.name, body.rule)

        return await answer(work)

    # -- Identity: the review queue, decisions, why two identifiers are one ----------

    @router.get(
        "/v1/console/identity/reviews",
        summary="Pairs of records the matcher was unsure about (audited read)",
    )
    async def reviews(
        caller: Annotated[Caller, may(Permission.CUSTOMER_ACT)],
        status: Annotated[Literal["open", "approved", "rejected"], Query()] = "open",
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        x_cxloop_reason: Annotated[str | None, Header()] = None,
    ) -> JSONResponse:
        actor = _actor(caller, _reason(x_cxloop_reason))

        async def work() -> Any:
            got = await sources.review_items(status, limit, actor)
            # Record references and customer ids: audited before they leave.
            await audited(actor, Action.READ, f"identity_review_queue:{status}", "")
            return got

        return await answer(work)

    @router.post(
        "/v1/console/identity/reviews/{item_id}",
        summary="Approve (merge) or reject (never link) a review item (audited)",
        openapi_extra=json_body(ReviewDecisionBody),
    )
    async def decide(
        item_id: str, request: Request, caller: Annotated[Caller, may(Permission.CUSTOMER_ACT)]
    ) -> JSONResponse:
        _check_id(item_id, "item_id")

        async def work() -> Any:
            body: ReviewDecisionBody = await _body(request, ReviewDecisionBody)
            actor = _actor(caller, _reason(body.reason))
            await audited(actor, Action.CHANGE, f"identity_review:{body.decision}:{item_id}", "")
            return await sources.decide_review(item_id, body.decision, actor.reason, actor)

        return await answer(work)

    @router.post(
        "/v1/console/identity/explain",
        summary="Why two identifiers are (or are not) one customer (audited read)",
        openapi_extra=json_body(ExplainBody),
    )
    async def explain(
        request: Request,
        caller: Annotated[Caller, may(Permission.CUSTOMER_READ)],
        x_cxloop_reason: Annotated[str | None, Header()] = None,
    ) -> JSONResponse:
        actor = _actor(caller, _reason(x_cxloop_reason))

        async def work() -> Any:
            body: ExplainBody = await _body(request, ExplainBody)
            try:
                got = await sources.explain(body.a.model_dump(), body.b.model_dump(), actor)
            except ActionFailed:
                await audited(actor, Action.READ, "identity_link_explanation", "", False)
                raise
            ids = {got.get("customerIdA", ""), got.get("customerIdB", "")} - {""}
            for cid in sorted(ids) or [""]:
                await audited(actor, Action.READ, "identity_link_explanation", cid)
            return got

        return await answer(work)

    # -- Feedback: a customer's case ------------------------------------------------

    @router.post(
        "/v1/customers/{customer_id}/cases/{case_id}",
        summary="Change a customer's case: status, a note, the resolution (audited)",
        openapi_extra=json_body(CaseUpdateBody),
    )
    async def update_case(
        customer_id: str,
        case_id: str,
        request: Request,
        caller: Annotated[Caller, may(Permission.CUSTOMER_ACT)],
        x_cxloop_reason: Annotated[str | None, Header()] = None,
    ) -> JSONResponse:
        _check_id(customer_id, "customer_id")
        _check_id(case_id, "case_id")
        actor = _actor(caller, _reason(x_cxloop_reason))

        async def work() -> Any:
            body: CaseUpdateBody = await _body(request, CaseUpdateBody)
            if body.status == "resolved" and not body.resolution.strip():
                raise InvalidRequest.one("resolution", "say what was done to resolve the case")
            if body.status is None and not body.note.strip() and not body.resolution.strip():
                raise InvalidRequest.one("status", "give a status, a note or a resolution")
            change = body.model_dump(by_alias=True, exclude_none=True)
            await audited(
                actor, Action.CHANGE, f"feedback_case:{body.status or 'note'}", customer_id
            )
            return await sources.update_case(customer_id, case_id, change, actor)

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
