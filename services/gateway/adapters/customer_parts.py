"""The customer 360's parts over each service's gRPC API. Every call carries
the console user as ``x-cxloop-actor`` and the stated reason as
``x-cxloop-reason``, so each service's own audit log records who read what
and why (docs/adr/0020-audit-log.md)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

import grpc
import grpc.aio
from cxloop.analytics.v1 import analytics_service_pb2 as apb
from cxloop.analytics.v1 import analytics_service_pb2_grpc as agrpc
from cxloop.common.v1 import identifier_pb2 as common
from cxloop.consent.v1 import consent_service_pb2 as cpb
from cxloop.consent.v1 import consent_service_pb2_grpc as cgrpc
from cxloop.feedback.v1 import feedback_service_pb2 as fpb
from cxloop.feedback.v1 import feedback_service_pb2_grpc as fgrpc
from cxloop.identity.v1 import identity_service_pb2 as ipb
from cxloop.identity.v1 import identity_service_pb2_grpc as igrpc
from cxloop.loyalty.v1 import loyalty_service_pb2 as lpb
from cxloop.loyalty.v1 import loyalty_service_pb2_grpc as lgrpc
from cxloop.personalization.v1 import personalization_service_pb2 as ppb
from cxloop.personalization.v1 import personalization_service_pb2_grpc as pgrpc

from cxloop_libs.audit import ACTOR_HEADER, REASON_HEADER, Actor
from gateway.adapters.proto_json import message_to_dict
from gateway.service_layer.customer360 import Answer, Customer360, Fetch, Part, PartUnavailable

LOOKUP_KINDS = {
    "email": common.IDENTIFIER_TYPE_EMAIL,
    "phone": common.IDENTIFIER_TYPE_PHONE,
    "userId": common.IDENTIFIER_TYPE_USER_ID,
}
HISTORY_PAGE = 20
JOURNEY_EVENTS = 20
# Personalization's parts of the 360, all from its GetCustomerView.
PERSONALIZATION_PARTS = ("recommendations", "segments", "traits", "predictions")


def metadata(actor: Actor) -> tuple[tuple[str, str], ...]:
    md = [(ACTOR_HEADER, actor.on_behalf_of)] if actor.on_behalf_of else []
    if actor.reason:
        md.append((REASON_HEADER, quote(actor.reason, safe="")))
    return tuple(md)


def _json(message: Any) -> dict[str, Any]:
    # MessageToDict(message, always_print_fields_with_no_presence=True), at a
    # fraction of its CPU (docs/adr/0310).
    return message_to_dict(message)


_STATUS_BY_NUMBER = {code.value[0]: code for code in grpc.StatusCode}


def part_unavailable(service: str, err: grpc.aio.AioRpcError) -> PartUnavailable:
    """Why a service's part is missing, in words safe to show a caller."""
    return unavailable_for(service, err.code())


def unavailable_for(service: str, code: grpc.StatusCode) -> PartUnavailable:
    if code == grpc.StatusCode.UNIMPLEMENTED:
        return PartUnavailable(f"{service} does not offer this yet")
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        return PartUnavailable(f"{service} is unavailable")
    return PartUnavailable(f"{service} answered {code.name}")


async def _ask(service: str, call: Awaitable[Any]) -> Any:
    """The answer, None for NOT_FOUND, PartUnavailable for anything else."""
    try:
        return await call
    except grpc.aio.AioRpcError as err:
        if err.code() == grpc.StatusCode.NOT_FOUND:
            return None
        raise part_unavailable(service, err) from None


def grpc_customer360(
    channels: dict[str, grpc.aio.Channel], *, deadline_s: float = 1.0
) -> Customer360:
    """The 360 over these services' channels (keys: identity, consent,
    loyalty, personalization, feedback, analytics; a missing key leaves the
    part out)."""
    parts: list[Part] = []

    def add(service: str, names: tuple[str, ...], fetch: Fetch) -> None:
        if service in channels:
            parts.append(Part(names, service, fetch))

    def one_call(
        service: str, name: str, method: Any, request: Callable[[str], Any], unwrap: str = ""
    ) -> Fetch:
        """A part that is one unary call (its answer, or one field of it)."""

        async def fetch(cid: str, actor: Actor) -> dict[str, Answer]:
            r = await _ask(
                service, method(request(cid), timeout=deadline_s, metadata=metadata(actor))
            )
            return {name: None if r is None else _json(getattr(r, unwrap) if unwrap else r)}

        return fetch

    if "identity" in channels:
        identity = igrpc.IdentityServiceStub(channels["identity"])
        add(
            "identity",
            ("profile",),
            one_call(
                "identity",
                "profile",
                identity.GetProfile,
                lambda c: ipb.GetProfileRequest(customer_id=c),
                unwrap="profile",
            ),
        )

    if "consent" in channels:
        consent = cgrpc.ConsentServiceStub(channels["consent"])
        add(
            "consent",
            ("consent",),
            one_call(
                "consent",
                "consent",
                consent.GetPreferences,
                lambda c: cpb.GetPreferencesRequest(customer_id=c),
            ),
        )

    if "loyalty" in channels:
        loyalty = lgrpc.LoyaltyServiceStub(channels["loyalty"])

        async def points(cid: str, actor: Actor) -> dict[str, Answer]:
            view = await _ask(
                "loyalty",
                loyalty.GetMemberView(
                    lpb.GetMemberViewRequest(customer_id=cid, history_page_size=HISTORY_PAGE),
                    timeout=deadline_s,
                    metadata=metadata(actor),
                ),
            )
            if view is None:
                return {"loyalty": None}
            out = _json(view.account)
            out["history"] = _json(view.history)
            return {"loyalty": out}

        add("loyalty", ("loyalty",), points)

    if "personalization" in channels:
        perso = pgrpc.PersonalizationServiceStub(channels["personalization"])

        async def intelligence(cid: str, actor: Actor) -> dict[str, Answer]:
            view = await _ask(
                "personalization",
                perso.GetCustomerView(
                    ppb.GetCustomerViewRequest(customer_id=cid, placement="console", limit=10),
                    timeout=deadline_s,
                    metadata=metadata(actor),
                ),
            )
            out: dict[str, Answer] = dict.fromkeys(PERSONALIZATION_PARTS)
            if view is None:
                return out
            for name in PERSONALIZATION_PARTS:
                if view.HasField(name):
                    out[name] = _json(getattr(view, name))
            for u in view.unanswered:
                if u.part in out:
                    code = _STATUS_BY_NUMBER.get(u.code, grpc.StatusCode.UNKNOWN)
                    out[u.part] = unavailable_for("personalization", code)
            return out

        add("personalization", PERSONALIZATION_PARTS, intelligence)

    if "feedback" in channels:
        feedback = fgrpc.FeedbackServiceStub(channels["feedback"])
        add(
            "feedback",
            ("cases",),
            one_call(
                "feedback",
                "cases",
                feedback.ListCases,
                lambda c: fpb.ListCasesRequest(customer_id=c, page_size=20),
            ),
        )

    if "analytics" in channels:
        analytics = agrpc.AnalyticsServiceStub(channels["analytics"])
        add(
            "analytics",
            ("journey",),
            one_call(
                "analytics",
                "journey",
                analytics.RecentJourney,
                lambda c: apb.RecentJourneyRequest(customer_id=c, limit=JOURNEY_EVENTS),
            ),
        )

    lookup = None
    if "identity" in channels:
        identity_stub = igrpc.IdentityServiceStub(channels["identity"])

        async def find(kind: str, value: str, actor: Actor) -> str | None:
            r = await _ask(
                "identity",
                identity_stub.LookupByIdentifier(
                    ipb.LookupByIdentifierRequest(
                        identifier=common.Identifier(type=LOOKUP_KINDS[kind], value=value)
                    ),
                    timeout=deadline_s,
                    metadata=metadata(actor),
                ),
            )
            return None if r is None or not r.customer_id else str(r.customer_id)

        lookup = find
    return Customer360(tuple(parts), deadline_s=deadline_s, lookup=lookup)
