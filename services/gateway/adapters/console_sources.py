"""The console views' numbers over each service's gRPC API: identity's
stats, loyalty's programme totals and manual adjustments, feedback's
NPS/CSAT/CES series, consent's purposes, analytics' funnels and KPI alerts,
personalization's experiment results and segment previews.

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


async def _ask(service: str, call: Any, *, field: str = "body") -> Any:
    """The answer; None for NOT_FOUND; InvalidRequest naming the field for
    INVALID_ARGUMENT; PartUnavailable when the service cannot answer."""
    try:
        return await call
    except grpc.aio.AioRpcError as err:
        code = err.code()
        if code == grpc.StatusCode.NOT_FOUND:
            return None
        if code == grpc.StatusCode.INVALID_ARGUMENT:
            name, reason = _field_of(err, field)
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


__all__ = ["ActionFailed", "GrpcConsoleSources", "PartUnavailable"]
