"""gRPC edge of the analytics service: translate, call, translate back.
Queries run in worker threads (DuckDB and numpy release the GIL)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime

import grpc
from cxloop.analytics.v1 import analytics_service_pb2 as pb
from cxloop.analytics.v1 import analytics_service_pb2_grpc as pb_grpc
from google.protobuf.timestamp_pb2 import Timestamp

from analytics.domain.funnel import StepResult
from analytics.domain.queries import (
    FunnelQuery,
    KpiDefinition,
    PathsQuery,
    Period,
    PropertyFilter,
    RetentionQuery,
    StagesQuery,
    Step,
    TimeRange,
    check_range,
    kpi_kind,
)
from analytics.service_layer import kpis
from analytics.service_layer.clickhouse_journeys import ClickHouseJourneys
from analytics.service_layer.journeys import MAX_JOURNEY_EVENTS, JourneyAnalytics, WouldBlock
from cxloop_libs.db import Database
from cxloop_libs.errors import InvalidArgument, NotFound, Unavailable

PERIOD_FROM_PROTO = {
    pb.PERIOD_UNSPECIFIED: None,
    pb.PERIOD_DAY: Period.DAY,
    pb.PERIOD_WEEK: Period.WEEK,
    pb.PERIOD_MONTH: Period.MONTH,
}
PERIOD_TO_PROTO = {v: k for k, v in PERIOD_FROM_PROTO.items() if v is not None}


def _dt(ts: Timestamp) -> datetime:
    return ts.ToDatetime(tzinfo=UTC)


def _ts(dt: datetime) -> Timestamp:
    out = Timestamp()
    out.FromDatetime(dt)
    return out


def time_range(
    msg: pb.FunnelRequest
    | pb.PathsRequest
    | pb.RetentionRequest
    | pb.GetKpiRequest
    | pb.StagesRequest,
) -> TimeRange:
    if not msg.HasField("range"):
        return check_range(None)
    r = msg.range
    if not r.HasField("start") or not r.HasField("end"):
        raise InvalidArgument("range", "start and end are both required")
    return check_range(TimeRange(_dt(r.start), _dt(r.end)))


def _filters(step: pb.FunnelStep) -> tuple[PropertyFilter, ...]:
    out = []
    for f in step.filters:
        if f.operator == pb.FILTER_OPERATOR_UNSPECIFIED:
            raise InvalidArgument("steps.filters.operator", "IN or NOT_IN")
        out.append(
            PropertyFilter(
                f.property, tuple(f.values), negate=f.operator == pb.FILTER_OPERATOR_NOT_IN
            )
        )
    return tuple(out)


def _steps(steps: list[StepResult]) -> list[pb.FunnelStepResult]:
    return [
        pb.FunnelStepResult(
            event=s.event,
            customers=s.customers,
            conversion_from_previous=s.conversion_from_previous,
            conversion_from_start=s.conversion_from_start,
            dropped=s.dropped,
            median_seconds_to_convert=s.median_seconds_to_convert,
            p90_seconds_to_convert=s.p90_seconds_to_convert,
        )
        for s in steps
    ]


def kpi_from_proto(k: pb.KpiDefinition) -> KpiDefinition:
    window = PERIOD_FROM_PROTO.get(k.window, None) or Period.DAY
    return KpiDefinition(
        name=k.name,
        kind=kpi_kind(k.kind),
        event=k.event,
        target_event=k.target_event,
        property=k.property,
        invert=k.invert,
        window=window,
        breakdown=k.breakdown,
        alerting=k.alerting,
    )


def kpi_to_proto(d: KpiDefinition) -> pb.KpiDefinition:
    return pb.KpiDefinition(
        name=d.name,
        kind=d.kind.value,
        event=d.event,
        target_event=d.target_event,
        property=d.property,
        invert=d.invert,
        window=PERIOD_TO_PROTO[d.window],
        breakdown=d.breakdown,
        alerting=d.alerting,
    )


class AnalyticsServicer(pb_grpc.AnalyticsServiceServicer):
    def __init__(
        self,
        journeys: JourneyAnalytics | ClickHouseJourneys,
        db: Database,
        *,
        is_ready: Callable[[], bool],
    ) -> None:
        self.journeys = journeys
        self.db = db
        self.is_ready = is_ready

    async def Funnel(
        self, request: pb.FunnelRequest, context: grpc.aio.ServicerContext
    ) -> pb.FunnelResponse:  # type: ignore[override]
        q = FunnelQuery(
            steps=tuple(Step(s.event, _filters(s)) for s in request.steps),
            window_s=request.conversion_window_seconds or 86_400,
            range=time_range(request),
            strict=request.order == pb.STEP_ORDER_STRICT,
            breakdown=request.breakdown,
            breakdown_limit=request.breakdown_limit or 10,
        )
        answer = await asyncio.to_thread(self.journeys.funnel, q)
        r = answer.result
        return pb.FunnelResponse(
            steps=_steps(r.steps),
            breakdowns=[pb.FunnelBreakdown(value=v, steps=_steps(s)) for v, s in r.breakdowns],
            breakdown_values_total=r.breakdown_values_total,
            breakdown_capped=r.breakdown_capped,
            note=answer.note,
        )

    async def Paths(
        self, request: pb.PathsRequest, context: grpc.aio.ServicerContext
    ) -> pb.PathsResponse:  # type: ignore[override]
        q = PathsQuery(
            anchor=request.anchor_event,
            range=time_range(request),
            depth=request.depth or 3,
            top_n=request.top_n or 10,
            before=request.direction == pb.PATH_DIRECTION_BEFORE,
            exclude=tuple(request.exclude_events),
        )
        r = await asyncio.to_thread(self.journeys.paths, q)
        return pb.PathsResponse(
            paths=[pb.PathCount(events=p, count=c) for p, c in r.paths],
            links=[pb.PathLink(step=s, source=a, target=b, count=c) for s, a, b, c in r.links],
            anchors=r.anchors,
        )

    async def Retention(
        self, request: pb.RetentionRequest, context: grpc.aio.ServicerContext
    ) -> pb.RetentionResponse:  # type: ignore[override]
        q = RetentionQuery(
            range=time_range(request),
            period=PERIOD_FROM_PROTO.get(request.period) or Period.WEEK,
            periods=request.periods or 12,
            cohort_event=request.cohort_event,
            return_event=request.return_event,
            cohort_segment=request.cohort_segment,
        )
        r = await asyncio.to_thread(self.journeys.retention, q)
        return pb.RetentionResponse(
            cohorts=[
                pb.CohortRow(
                    cohort_start=_ts(c.start),
                    customers=c.customers,
                    retained=c.retained,
                    rate=c.rates,
                )
                for c in r.cohorts
            ],
            stickiness=r.stickiness,
            average_dau=r.average_dau,
            mau=r.mau,
        )

    def _ready(self) -> None:
        if not self.is_ready():
            raise Unavailable("analytics database not ready yet")

    async def DefineKpi(
        self, request: pb.DefineKpiRequest, context: grpc.aio.ServicerContext
    ) -> pb.DefineKpiResponse:  # type: ignore[override]
        self._ready()
        if not request.HasField("kpi"):
            raise InvalidArgument("kpi", "required")
        d = kpi_from_proto(request.kpi)
        d.validate()
        replaced = await self.db.in_transaction(lambda s: kpis.save_definition(s, d))
        return pb.DefineKpiResponse(kpi=kpi_to_proto(d), replaced=replaced)

    async def GetKpi(
        self, request: pb.GetKpiRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetKpiResponse:  # type: ignore[override]
        self._ready()
        if not request.name:
            raise InvalidArgument("name", "required")
        r = time_range(request)
        d = await self.db.in_transaction(lambda s: kpis.load_definition(s, request.name))
        points, capped = await asyncio.to_thread(kpis.kpi_series, self.journeys.store, d, r)
        return pb.GetKpiResponse(
            kpi=kpi_to_proto(d),
            values=[
                pb.KpiValue(
                    window_start=_ts(p.window_start),
                    breakdown_value=p.breakdown_value,
                    value=p.value,
                    sample=p.sample,
                )
                for p in points
            ],
            breakdown_capped=capped,
        )

    async def Stages(
        self, request: pb.StagesRequest, context: grpc.aio.ServicerContext
    ) -> pb.StagesResponse:  # type: ignore[override]
        q = StagesQuery(
            stages=tuple((m.stage, tuple(m.events)) for m in request.stages),
            range=time_range(request),
            period=PERIOD_FROM_PROTO.get(request.period) or Period.WEEK,
        )
        periods = await asyncio.to_thread(self.journeys.stages, q)
        return pb.StagesResponse(
            periods=[
                pb.StagePeriod(
                    period_start=_ts(start),
                    stages=[
                        pb.StageCount(stage=n, customers=c, conversion_from_previous=r)
                        for n, c, r in rows
                    ],
                )
                for start, rows in periods
            ]
        )

    async def RecentJourney(
        self, request: pb.RecentJourneyRequest, context: grpc.aio.ServicerContext
    ) -> pb.RecentJourneyResponse:  # type: ignore[override]
        if not request.customer_id:
            raise InvalidArgument("customer_id", "must not be empty")
        if not 0 <= request.limit <= MAX_JOURNEY_EVENTS:
            raise InvalidArgument("limit", f"from 1 to {MAX_JOURNEY_EVENTS} (0 means 20)")
        self._ready()
        cid, limit = request.customer_id, request.limit or 20
        try:
            # From memory on the event loop: no thread hop (docs/adr/0310).
            j = self.journeys.recent(cid, limit, wait=False)
        except WouldBlock:
            j = await asyncio.to_thread(self.journeys.recent, cid, limit)
        if j is None:
            raise NotFound(f"no events of customer {request.customer_id}")
        return pb.RecentJourneyResponse(
            events=[
                pb.JourneyEvent(
                    occurred_at=_ts(e.occurred_at),
                    event=e.event,
                    kind=e.kind,
                    channel=e.channel,
                    source=e.source,
                )
                for e in j.events
            ],
            total_events=j.total,
            first_seen=_ts(j.first_seen),
            last_seen=_ts(j.last_seen),
            channels=[pb.ChannelCount(channel=c, events=n) for c, n in j.channels],
        )

    async def ListAlerts(
        self, request: pb.ListAlertsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListAlertsResponse:  # type: ignore[override]
        self._ready()
        limit = request.limit or 50
        alerts = await self.db.in_transaction(lambda s: kpis.list_alerts(s, request.kpi, limit))
        return pb.ListAlertsResponse(alerts=alerts)
