"""The console views' numbers over each service's gRPC API: identity's
stats, review queue and link explanations, loyalty's programme totals and
manual adjustments, feedback's NPS/CSAT/CES series and cases, consent's
purposes, analytics' funnels, paths, retention and KPI alerts,
personalization's experiment results and segments (preview, save, list).

Numbers no service exposes yet (events per second, consent opt-in counts,
tier mix, a list of experiments or segments) are parts that say so
(``NotOffered``): the console shows "not available", never a guess."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import grpc.aio
from cxloop.analytics.v1 import analytics_service_pb2 as apb
from cxloop.analytics.v1 import analytics_service_pb2_grpc as agrpc
from cxloop.common.v1 import identifier_pb2 as common
from cxloop.consent.v1 import consent_service_pb2 as cpb
from cxloop.consent.v1 import consent_service_pb2_grpc as cgrpc
from cxloop.feedback.v1 import events_pb2 as fev
from cxloop.feedback.v1 import feedback_service_pb2 as fpb
from cxloop.feedback.v1 import feedback_service_pb2_grpc as fgrpc
from cxloop.identity.v1 import identity_service_pb2 as ipb
from cxloop.identity.v1 import identity_service_pb2_grpc as igrpc
from cxloop.loyalty.v1 import loyalty_service_pb2 as lpb
from cxloop.loyalty.v1 import loyalty_service_pb2_grpc as lgrpc
from cxloop.personalization.v1 import intelligence_pb2 as intel_pb
from cxloop.personalization.v1 import intelligence_pb2_grpc as intel_grpc
from cxloop.personalization.v1 import personalization_service_pb2 as ppb
from cxloop.personalization.v1 import personalization_service_pb2_grpc as pgrpc
from google.protobuf.json_format import MessageToDict

from cxloop_libs.audit import Actor
from gateway.adapters.customer_parts import metadata, part_unavailable
from gateway.domain.errors import InvalidRequest
from gateway.service_layer.console_views import NotOffered, ViewPart, gather_parts
from gateway.service_layer.customer360 import PartUnavailable

KPI_DAYS = 90


class ActionFailed(Exception):
    """A service refused an action; ``status`` is the HTTP answer."""

    STATUS = {
        grpc.StatusCode.NOT_FOUND: 404,
        grpc.StatusCode.FAILED_PRECONDITION: 409,
        grpc.StatusCode.ALREADY_EXISTS: 409,
    }

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def _json(message: Any) -> dict[str, Any]:
    return MessageToDict(message, always_print_fields_with_no_presence=True)


def _field_of(err: grpc.aio.AioRpcError, default: str) -> tuple[str, str]:
    details = err.details() or "invalid"
    field = dict(err.trailing_metadata() or ()).get("cx-field", "")
    head, sep, rest = details.partition(": ")
    if not field and sep and " " not in head:
        field = head
    return str(field or default), rest if sep else details


async def _ask(
    service: str,
    call: Any,
    *,
    field: str = "body",
    rename: tuple[tuple[str, str], ...] = (),
    not_found: bool = False,
) -> Any:
    """The answer; None for NOT_FOUND (``not_found``: a 404 with the
    service's words); InvalidRequest naming the field for INVALID_ARGUMENT
    (a service's field prefix replaced by the HTTP body's, ``rename``);
    PartUnavailable when the service cannot answer."""
    try:
        return await call
    except grpc.aio.AioRpcError as err:
        code = err.code()
        if code == grpc.StatusCode.NOT_FOUND:
            if not_found:
                raise ActionFailed(404, err.details() or "not found") from None
            return None
        if code == grpc.StatusCode.INVALID_ARGUMENT:
            name, reason = _field_of(err, field)
            for theirs, ours in rename:
                if name == theirs or name.startswith(f"{theirs}."):
                    rest = name[len(theirs) :]
                    name = ours + rest if ours else rest.lstrip(".") or field
                    break
            raise InvalidRequest.one(name, reason) from None
        if code in ActionFailed.STATUS:
            raise ActionFailed(ActionFailed.STATUS[code], err.details() or code.name) from None
        raise part_unavailable(service, err) from None


def _range(days: int) -> apb.TimeRange:
    end = datetime.now(UTC)
    r = apb.TimeRange()
    r.start.FromDatetime(end - timedelta(days=days))
    r.end.FromDatetime(end + timedelta(minutes=1))
    return r


IDENTIFIER_TYPES = {
    "email": common.IDENTIFIER_TYPE_EMAIL,
    "phone": common.IDENTIFIER_TYPE_PHONE,
    "userId": common.IDENTIFIER_TYPE_USER_ID,
    "anonymousId": common.IDENTIFIER_TYPE_ANONYMOUS_ID,
    "loyaltyCard": common.IDENTIFIER_TYPE_LOYALTY_CARD,
    "external": common.IDENTIFIER_TYPE_EXTERNAL,
}
REVIEW_STATUS = {
    "open": ipb.REVIEW_STATUS_OPEN,
    "approved": ipb.REVIEW_STATUS_APPROVED,
    "rejected": ipb.REVIEW_STATUS_REJECTED,
}
REVIEW_DECISION = {"approve": ipb.REVIEW_DECISION_APPROVE, "reject": ipb.REVIEW_DECISION_REJECT}
CASE_STATUS = {
    "open": fpb.CASE_STATUS_OPEN,
    "in_progress": fpb.CASE_STATUS_IN_PROGRESS,
    "waiting_on_customer": fpb.CASE_STATUS_WAITING_ON_CUSTOMER,
    "resolved": fpb.CASE_STATUS_RESOLVED,
    "closed": fpb.CASE_STATUS_CLOSED,
}


class GrpcConsoleSources:
    def __init__(self, channels: dict[str, grpc.aio.Channel], *, deadline_s: float = 2.0) -> None:
        self.deadline_s = deadline_s
        self.identity = igrpc.IdentityServiceStub(channels["identity"])
        self.consent = cgrpc.ConsentServiceStub(channels["consent"])
        self.loyalty = lgrpc.LoyaltyServiceStub(channels["loyalty"])
        self.feedback = fgrpc.FeedbackServiceStub(channels["feedback"])
        self.analytics = agrpc.AnalyticsServiceStub(channels["analytics"])
        self.personalization = pgrpc.PersonalizationServiceStub(channels["personalization"])
        self.intelligence = intel_grpc.IntelligenceServiceStub(channels["personalization"])

    # -- Overview ----------------------------------------------------------

    async def _customers(self) -> dict[str, Any] | None:
        r = await _ask(
            "identity", self.identity.GetStats(ipb.GetStatsRequest(), timeout=self.deadline_s)
        )
        if r is None:
            return None
        out = _json(r)
        live, merges = int(r.customers), int(r.merges)
        out["mergeRate"] = merges / (live + merges) if live + merges else 0.0
        return out

    async def _loyalty(self) -> dict[str, Any] | None:
        r = await _ask(
            "loyalty",
            self.loyalty.GetProgrammeTotals(
                lpb.GetProgrammeTotalsRequest(), timeout=self.deadline_s
            ),
        )
        return None if r is None else _json(r)

    async def _kpis(self) -> dict[str, Any]:
        end = datetime.now(UTC)
        out: dict[str, Any] = {}
        for name, metric in (
            ("nps", fev.KPI_METRIC_NPS),
            ("csat", fev.KPI_METRIC_CSAT),
            ("ces", fev.KPI_METRIC_CES),
        ):
            req = fpb.GetKpisRequest(metric=metric, granularity=fpb.GRANULARITY_WEEK)
            req.start_time.FromDatetime(end - timedelta(days=KPI_DAYS))
            req.end_time.FromDatetime(end + timedelta(minutes=1))
            r = await _ask("feedback", self.feedback.GetKpis(req, timeout=self.deadline_s))
            out[name] = None if r is None else _json(r)
        out["days"] = KPI_DAYS
        return out

    async def _purposes(self) -> dict[str, Any]:
        r = await _ask(
            "consent", self.consent.ListPurposes(cpb.ListPurposesRequest(), timeout=self.deadline_s)
        )
        purposes = [] if r is None else [p.key for p in r.purposes]
        return {"purposes": purposes}

    async def _alerts(self) -> dict[str, Any]:
        r = await _ask(
            "analytics",
            self.analytics.ListAlerts(apb.ListAlertsRequest(limit=10), timeout=self.deadline_s),
        )
        return {"alerts": [] if r is None else _json(r).get("alerts", [])}

    @staticmethod
    def _not_offered(reason: str) -> Any:
        async def fetch() -> Any:
            raise NotOffered(reason)

        return fetch

    async def overview(self) -> dict[str, Any]:
        parts = (
            ViewPart("customers", "identity", self._customers),
            ViewPart("loyalty", "loyalty", self._loyalty),
            ViewPart("experience", "feedback", self._kpis),
            ViewPart("purposes", "consent", self._purposes),
            ViewPart("alerts", "analytics", self._alerts),
            ViewPart(
                "consentOptIn",
                "consent",
                self._not_offered("consent does not expose opt-in counts per purpose yet"),
            ),
            ViewPart(
                "tierMix",
                "loyalty",
                self._not_offered("loyalty does not expose members per tier yet"),
            ),
            ViewPart(
                "experiments",
                "personalization",
                self._not_offered("personalization has no list of experiments; open one by its id"),
            ),
            ViewPart(
                "eventsPerSecond",
                "gateway",
                self._not_offered("events per second are on the Prometheus metrics port"),
            ),
        )
        return await gather_parts(parts, self.deadline_s)

    # -- Journeys ----------------------------------------------------------

    async def funnel(self, steps: list[str], days: int, breakdown: str) -> dict[str, Any]:
        req = apb.FunnelRequest(
            steps=[apb.FunnelStep(event=s) for s in steps],
            conversion_window_seconds=min(days, 90) * 86_400,
            order=apb.STEP_ORDER_LOOSE,
            range=_range(days),
            breakdown=breakdown,
            breakdown_limit=5 if breakdown else 0,
        )
        r = await _ask(
            "analytics", self.analytics.Funnel(req, timeout=self.deadline_s), field="steps"
        )
        return {} if r is None else _json(r)

    # -- Experiments and segments --------------------------------------------

    async def experiment(self, experiment_id: str) -> dict[str, Any] | None:
        r = await _ask(
            "personalization",
            self.personalization.GetExperimentResults(
                ppb.GetExperimentResultsRequest(experiment_id=experiment_id),
                timeout=self.deadline_s,
            ),
            field="experimentId",
        )
        return None if r is None else _json(r.results)

    async def preview_segment(self, rule: str, sample: int) -> dict[str, Any]:
        r = await _ask(
            "personalization",
            self.intelligence.PreviewSegment(
                intel_pb.PreviewSegmentRequest(rule=rule, sample_size=sample),
                timeout=self.deadline_s,
            ),
            field="rule",
        )
        return {} if r is None else _json(r)

    async def segment_members(self, segment_id: str) -> dict[str, Any] | None:
        r = await _ask(
            "personalization",
            self.intelligence.ListSegmentMembers(
                intel_pb.ListSegmentMembersRequest(segment_id=segment_id, page_size=10),
                timeout=self.deadline_s,
            ),
            field="segmentId",
        )
        return None if r is None else _json(r)

    # -- Customer actions --------------------------------------------------------

    async def adjust_points(
        self, customer_id: str, points: int, reason: str, idempotency_key: str, actor: Actor
    ) -> dict[str, Any]:
        r = await _ask(
            "loyalty",
            self.loyalty.Adjust(
                lpb.AdjustRequest(
                    customer_id=customer_id,
                    points=points,
                    reason=reason,
                    idempotency_key=idempotency_key,
                ),
                timeout=self.deadline_s,
                metadata=metadata(actor),
            ),
            field="points",
        )
        if r is None:
            raise ActionFailed(404, "loyalty knows no such member")
        return _json(r)

    async def update_case(
        self,
        customer_id: str,
        case_id: str,
        change: dict[str, Any],
        actor: Actor,
    ) -> dict[str, Any]:
        """A case of this customer: its status, a note, the resolution. A case
        of another customer is a 404 (the audit entry names this one)."""
        md = metadata(actor)
        listed = await _ask(
            "feedback",
            self.feedback.ListCases(
                fpb.ListCasesRequest(customer_id=customer_id, page_size=500),
                timeout=self.deadline_s,
                metadata=md,
            ),
        )
        if listed is None or case_id not in {c.case_id for c in listed.cases}:
            raise ActionFailed(404, "this customer has no open case with that id")
        r = await _ask(
            "feedback",
            self.feedback.UpdateCase(
                fpb.UpdateCaseRequest(
                    case_id=case_id,
                    status=CASE_STATUS.get(change.get("status", ""), 0),
                    note=change.get("note", ""),
                    actor=actor.on_behalf_of,
                    resolution=change.get("resolution", ""),
                    notify_customer=bool(change.get("notifyCustomer", False)),
                ),
                timeout=self.deadline_s,
                metadata=md,
            ),
            not_found=True,
        )
        return _json(r.case)

    # -- Identity: the review queue and why two records are one --------------------

    async def review_items(self, status: str, limit: int, actor: Actor) -> dict[str, Any]:
        r = await _ask(
            "identity",
            self.identity.ListReviewItems(
                ipb.ListReviewItemsRequest(status=REVIEW_STATUS[status], page_size=limit),
                timeout=self.deadline_s,
                metadata=metadata(actor),
            ),
        )
        return {"items": [] if r is None else [_json(i) for i in r.items]}

    async def decide_review(
        self, item_id: str, decision: str, reason: str, actor: Actor
    ) -> dict[str, Any]:
        r = await _ask(
            "identity",
            self.identity.DecideReview(
                ipb.DecideReviewRequest(
                    item_id=item_id,
                    decision=REVIEW_DECISION[decision],
                    actor=actor.on_behalf_of,
                    reason=reason,
                ),
                timeout=self.deadline_s,
                metadata=metadata(actor),
            ),
            field="decision",
            rename=(("item_id", "itemId"),),
            not_found=True,
        )
        return _json(r.item)

    async def explain(self, a: dict[str, str], b: dict[str, str], actor: Actor) -> dict[str, Any]:
        def ident(x: dict[str, str]) -> common.Identifier:
            return common.Identifier(
                type=IDENTIFIER_TYPES[x["type"]], value=x["value"], namespace=x.get("namespace", "")
            )

        r = await _ask(
            "identity",
            self.identity.Explain(
                ipb.ExplainRequest(identifier_a=ident(a), identifier_b=ident(b)),
                timeout=self.deadline_s,
                metadata=metadata(actor),
            ),
            rename=(("identifier_a", "a"), ("identifier_b", "b")),
            not_found=True,
        )
        return _json(r)

    # -- Journeys: paths, retention, alerts ------------------------------------------

    async def paths(
        self, anchor: str, before: bool, depth: int, top: int, days: int, exclude: list[str]
    ) -> dict[str, Any]:
        req = apb.PathsRequest(
            anchor_event=anchor,
            direction=apb.PATH_DIRECTION_BEFORE if before else apb.PATH_DIRECTION_AFTER,
            depth=depth,
            top_n=top,
            exclude_events=exclude,
            range=_range(days),
        )
        r = await _ask(
            "analytics",
            self.analytics.Paths(req, timeout=self.deadline_s),
            field="anchor",
            rename=(("anchor_event", "anchor"), ("top_n", "top"), ("exclude_events", "exclude")),
        )
        return {} if r is None else _json(r)

    async def retention(self, cohort_event: str, return_event: str, weeks: int) -> dict[str, Any]:
        end = datetime.now(UTC)
        start = (end - timedelta(weeks=weeks)).replace(hour=0, minute=0, second=0, microsecond=0)
        rng = apb.TimeRange()
        rng.start.FromDatetime(start)
        rng.end.FromDatetime(end + timedelta(minutes=1))
        req = apb.RetentionRequest(
            cohort_event=cohort_event,
            return_event=return_event,
            period=apb.PERIOD_WEEK,
            periods=weeks,
            range=rng,
        )
        r = await _ask(
            "analytics",
            self.analytics.Retention(req, timeout=self.deadline_s),
            field="cohortEvent",
            rename=(("cohort_event", "cohortEvent"), ("return_event", "returnEvent")),
        )
        return {} if r is None else _json(r)

    async def alerts(self, kpi: str, limit: int) -> dict[str, Any]:
        r = await _ask(
            "analytics",
            self.analytics.ListAlerts(
                apb.ListAlertsRequest(kpi=kpi, limit=limit), timeout=self.deadline_s
            ),
            field="kpi",
        )
        return {"alerts": [] if r is None else [_json(a) for a in r.alerts]}

    # -- Segments: save and list ----------------------------------------------------

    async def define_segment(self, segment_id: str, name: str, rule: str) -> dict[str, Any]:
        r = await _ask(
            "personalization",
            self.intelligence.DefineSegment(
                intel_pb.DefineSegmentRequest(
                    segment=intel_pb.SegmentDefinition(segment_id=segment_id, name=name, rule=rule)
                ),
                timeout=self.deadline_s,
            ),
            field="rule",
            rename=(("segment.segment_id", "segmentId"), ("segment", "")),
        )
        return _json(r.segment)

    async def list_segments(self) -> dict[str, Any]:
        r = await _ask(
            "personalization",
            self.intelligence.ListSegmentDefinitions(
                intel_pb.ListSegmentDefinitionsRequest(), timeout=self.deadline_s
            ),
        )
        return {"segments": [] if r is None else [_json(d) for d in r.segments]}


__all__ = ["ActionFailed", "GrpcConsoleSources", "PartUnavailable"]
