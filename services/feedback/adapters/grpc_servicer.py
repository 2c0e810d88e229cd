"""gRPC edge of the feedback service: translate, call a handler, translate back."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from cxloop.feedback.v1 import events_pb2 as epb
from cxloop.feedback.v1 import feedback_service_pb2 as pb
from cxloop.feedback.v1 import feedback_service_pb2_grpc as pb_grpc
from google.protobuf.timestamp_pb2 import Timestamp

from cxloop_libs.batching import RequestBatcher
from cxloop_libs.db import Database
from cxloop_libs.errors import InvalidArgument
from feedback.domain.invitations import TriggerRule
from feedback.domain.surveys import (
    QuestionType,
    RawAnswer,
    ScoreTally,
    SurveyVersion,
    kpi_value,
    survey_json,
)
from feedback.domain.text import SentimentLabel, TextAnalysis
from feedback.service_layer.handlers import (
    CHANNEL_PROTO,
    FeedbackHandlers,
    ResponseInput,
    ResponseResult,
    ts,
)

METRIC_FROM_PROTO = {
    epb.KPI_METRIC_NPS: QuestionType.NPS,
    epb.KPI_METRIC_CSAT: QuestionType.CSAT,
    epb.KPI_METRIC_CES: QuestionType.CES,
}
SENTIMENT_TO_PROTO = {
    SentimentLabel.NEGATIVE: pb.SENTIMENT_LABEL_NEGATIVE,
    SentimentLabel.NEUTRAL: pb.SENTIMENT_LABEL_NEUTRAL,
    SentimentLabel.POSITIVE: pb.SENTIMENT_LABEL_POSITIVE,
}
STATUS_TO_PROTO = {
    "open": pb.CASE_STATUS_OPEN,
    "in_progress": pb.CASE_STATUS_IN_PROGRESS,
    "waiting_on_customer": pb.CASE_STATUS_WAITING_ON_CUSTOMER,
    "resolved": pb.CASE_STATUS_RESOLVED,
    "closed": pb.CASE_STATUS_CLOSED,
}
STATUS_FROM_PROTO = {v: k for k, v in STATUS_TO_PROTO.items()}
PRIORITY_TO_PROTO = {
    "low": pb.CASE_PRIORITY_LOW,
    "normal": pb.CASE_PRIORITY_NORMAL,
    "high": pb.CASE_PRIORITY_HIGH,
    "urgent": pb.CASE_PRIORITY_URGENT,
}
CHANNEL_FROM_PROTO = {v: k for k, v in CHANNEL_PROTO.items()}
GRANULARITY = {
    pb.GRANULARITY_UNSPECIFIED: "day",
    pb.GRANULARITY_DAY: "day",
    pb.GRANULARITY_WEEK: "week",
    pb.GRANULARITY_MONTH: "month",
}


def _dt(t: Timestamp) -> datetime:
    return t.ToDatetime(tzinfo=UTC)


def analysis_proto(a: TextAnalysis | None) -> pb.TextAnalysis | None:
    if a is None:
        return None
    return pb.TextAnalysis(
        language=a.language.value,
        sentiment=SENTIMENT_TO_PROTO[a.sentiment.label],
        sentiment_score=a.sentiment.score,
        confidence=a.sentiment.confidence,
        aspects=[
            pb.AspectMention(
                aspect=m.aspect.value,
                start=m.start,
                end=m.end,
                cue=m.cue,
                sentiment=SENTIMENT_TO_PROTO[m.sentiment]
                if m.sentiment
                else pb.SENTIMENT_LABEL_UNSPECIFIED,
            )
            for m in a.aspects
        ],
        keywords=a.keywords,
    )


def survey_proto(s: SurveyVersion, created_at: datetime) -> pb.Survey:
    return pb.Survey(
        survey_id=s.survey_id,
        version=s.version,
        name=s.name,
        survey_json=survey_json(s),
        created_at=ts(created_at),
    )


def kpi_point(metric: QuestionType, start: datetime | None, tally: ScoreTally) -> pb.KpiPoint:
    value, low, high = kpi_value(metric, tally)
    p = pb.KpiPoint(
        value=value,
        responses=tally.n,
        promoters=tally.promoters,
        passives=tally.passives,
        detractors=tally.detractors,
        ci_low=low,
        ci_high=high,
    )
    if start is not None:
        p.period_start.CopyFrom(ts(start))
    return p


def case_proto(c: dict[str, Any]) -> pb.Case:
    out = pb.Case(
        case_id=c["case_id"],
        customer_id=c["customer_id"],
        status=STATUS_TO_PROTO[c["status"]],
        priority=PRIORITY_TO_PROTO[c["priority"]],
        response_id=c["source_id"] if c["source_kind"] == "response" else "",
        assignee=c["assignee"],
        subject=c["subject"],
        notes=[
            pb.CaseNote(author=n["author"], text=n["text"], added_at=ts(n["added_at"]))
            for n in c["notes"]
        ],
        opened_at=ts(c["opened_at"]),
        updated_at=ts(c["updated_at"]),
        due_at=ts(c["due_at"]),
        source_kind=c["source_kind"],
        source_id=c["source_id"],
        escalation_level=c["escalation_level"],
        resolution=c["resolution"],
        follow_up_invitation_id=c["follow_up_invitation_id"],
    )
    if c.get("resolved_at") is not None:
        out.resolved_at.CopyFrom(ts(c["resolved_at"]))
    return out


def response_input(r: pb.SubmitResponseRequest) -> ResponseInput:
    answers = []
    for a in r.answers:
        kind = a.WhichOneof("value")
        answers.append(
            RawAnswer(
                a.question_id,
                score=a.score if kind == "score" else None,
                text=a.text if kind == "text" else None,
                choice_id=a.choice_id if kind == "choice_id" else None,
            )
        )
    return ResponseInput(
        answers=tuple(answers),
        token=r.token,
        survey_id=r.survey_id,
        survey_version=r.survey_version,
        customer_id=r.customer_id,
        partial=r.partial,
        submitted_at=_dt(r.submitted_at) if r.HasField("submitted_at") else None,
        idempotency_key=r.idempotency_key,
        channel=r.channel,
        touchpoint=r.touchpoint,
        segment=r.segment,
        journey_stage=r.journey_stage,
    )


class FeedbackServicer(pb_grpc.FeedbackServiceServicer):
    def __init__(
        self,
        db: Database,
        handlers: FeedbackHandlers,
        *,
        after_commit: Callable[[], None] = lambda: None,
        response_batch_max: int = 200,
    ) -> None:
        self.db = db
        self.h = handlers
        self.after_commit = after_commit
        self.responses: RequestBatcher[ResponseInput, ResponseResult] = RequestBatcher(
            self._apply_responses, max_batch=response_batch_max
        )

    async def _write(self, fn: Callable[..., Any]) -> Any:
        out = await self.db.in_transaction(fn)
        self.after_commit()
        return out

    async def _apply_responses(
        self, items: Sequence[ResponseInput]
    ) -> Sequence[ResponseResult | BaseException]:
        return await self._write(lambda s: self.h.submit_responses(s, items))  # type: ignore[no-any-return]

    # -- surveys and triggers ----------------------------------------------
    async def PutSurvey(self, request: pb.PutSurveyRequest, context: Any) -> pb.PutSurveyResponse:
        survey, created = await self._write(lambda s: self.h.put_survey(s, request.survey_json))
        return pb.PutSurveyResponse(survey=survey_proto(survey, created))

    async def GetSurvey(self, request: pb.GetSurveyRequest, context: Any) -> pb.GetSurveyResponse:
        survey, created = await self.db.in_transaction(
            lambda s: self.h.get_survey(s, request.survey_id, request.version, field_prefix="")
        )
        return pb.GetSurveyResponse(survey=survey_proto(survey, created))

    async def ListSurveys(
        self, request: pb.ListSurveysRequest, context: Any
    ) -> pb.ListSurveysResponse:
        rows = await self.db.in_transaction(self.h.list_surveys)
        return pb.ListSurveysResponse(surveys=[survey_proto(s, c) for s, c in rows])

    async def PutTrigger(
        self, request: pb.PutTriggerRequest, context: Any
    ) -> pb.PutTriggerResponse:
        tr = request.trigger
        channel = CHANNEL_FROM_PROTO.get(tr.channel, "email")
        rule = TriggerRule(
            survey_id=tr.survey_id,
            event=tr.event,
            delay=timedelta(seconds=tr.delay_seconds),
            sample_rate=tr.sample_rate or 1.0,  # 0 (unset) means everyone
            segments=tuple(tr.segments),
            channel=channel,
            touchpoint=tr.touchpoint,
            journey_stage=tr.journey_stage or "post_purchase",
            expires_after=timedelta(seconds=tr.expires_after_seconds or 14 * 86400),
        )
        await self._write(lambda s: self.h.put_trigger(s, tr.trigger_id, rule, tr.active))
        return pb.PutTriggerResponse(trigger=tr)

    async def ListTriggers(
        self, request: pb.ListTriggersRequest, context: Any
    ) -> pb.ListTriggersResponse:
        rows = await self.db.in_transaction(self.h.list_triggers)
        return pb.ListTriggersResponse(
            triggers=[
                pb.Trigger(
                    trigger_id=tid,
                    survey_id=r.survey_id,
                    event=r.event,
                    delay_seconds=int(r.delay.total_seconds()),
                    sample_rate=r.sample_rate,
                    segments=r.segments,
                    channel=CHANNEL_PROTO.get(r.channel, epb.INVITATION_CHANNEL_UNSPECIFIED),
                    touchpoint=r.touchpoint,
                    journey_stage=r.journey_stage,
                    expires_after_seconds=int(r.expires_after.total_seconds()),
                    active=active,
                )
                for tid, r, active in rows
            ]
        )

    # -- responses, reviews, voice -------------------------------------------
    async def SubmitResponse(
        self, request: pb.SubmitResponseRequest, context: Any
    ) -> pb.SubmitResponseResponse:
        result = await self.responses.submit(response_input(request))
        return pb.SubmitResponseResponse(
            response_id=result.response_id,
            detractor=result.detractor,
            case_id=result.case_id,
            complete=result.complete,
            analysis=analysis_proto(result.analysis),
        )

    async def SubmitReview(
        self, request: pb.SubmitReviewRequest, context: Any
    ) -> pb.SubmitReviewResponse:
        r = await self._write(
            lambda s: self.h.submit_review(
                s,
                customer_id=request.customer_id,
                product_id=request.product_id,
                rating=request.rating,
                text=request.text,
                idempotency_key=request.idempotency_key,
                submitted_at=_dt(request.submitted_at)
                if request.HasField("submitted_at")
                else None,
                channel=request.channel,
                token=request.token,
            )
        )
        return pb.SubmitReviewResponse(
            review_id=r.item_id, analysis=analysis_proto(r.analysis), case_id=r.case_id
        )

    async def RecordVoice(
        self, request: pb.RecordVoiceRequest, context: Any
    ) -> pb.RecordVoiceResponse:
        r = await self._write(
            lambda s: self.h.record_voice(
                s,
                customer_id=request.customer_id,
                source=request.source,
                text=request.text,
                recorded_at=_dt(request.recorded_at) if request.HasField("recorded_at") else None,
                idempotency_key=request.idempotency_key,
                channel=request.channel,
            )
        )
        return pb.RecordVoiceResponse(
            voice_id=r.item_id, analysis=analysis_proto(r.analysis), case_id=r.case_id
        )

    async def AnalyzeText(
        self, request: pb.AnalyzeTextRequest, context: Any
    ) -> pb.AnalyzeTextResponse:
        from feedback.domain.text import text_problem

        if not request.text.strip():
            raise InvalidArgument("text", "required")
        problem = text_problem(request.text)
        if problem:
            raise InvalidArgument("text", problem)
        result = await self.db.run(lambda: self.h.analyze([request.text])[0])
        return pb.AnalyzeTextResponse(analysis=analysis_proto(result))

    # -- KPIs ----------------------------------------------------------------
    def _range(
        self, start: Timestamp, end: Timestamp, has_start: bool, has_end: bool
    ) -> tuple[datetime, datetime]:
        now = datetime.now(UTC)
        return (_dt(start) if has_start else now - timedelta(days=30), _dt(end) if has_end else now)

    async def GetKpis(self, request: pb.GetKpisRequest, context: Any) -> pb.GetKpisResponse:
        metric = METRIC_FROM_PROTO.get(request.metric)
        if metric is None:
            raise InvalidArgument("metric", "KPI_METRIC_NPS, _CSAT or _CES")
        if request.time_zone and request.time_zone != self.h.config.kpi_time_zone:
            raise InvalidArgument("time_zone", f"KPIs are kept in {self.h.config.kpi_time_zone}")
        if request.granularity not in GRANULARITY:
            raise InvalidArgument("granularity", "DAY, WEEK or MONTH")
        start, end = self._range(
            request.start_time,
            request.end_time,
            request.HasField("start_time"),
            request.HasField("end_time"),
        )
        filters = {
            "survey_id": request.survey_id,
            "segment": request.segment,
            "channel": request.channel,
            "touchpoint": request.touchpoint,
            "journey_stage": request.journey_stage,
        }
        series, total = await self.db.in_transaction(
            lambda s: self.h.kpi_series(
                s, metric, start, end, filters, GRANULARITY[request.granularity]
            )
        )
        return pb.GetKpisResponse(
            metric=request.metric,
            series=[kpi_point(metric, p, tl) for p, tl in series],
            total=kpi_point(metric, None, total),
        )

    async def GetDrivers(
        self, request: pb.GetDriversRequest, context: Any
    ) -> pb.GetDriversResponse:
        metric = METRIC_FROM_PROTO.get(request.metric)
        if metric is None:
            raise InvalidArgument("metric", "KPI_METRIC_NPS, _CSAT or _CES")
        start, end = self._range(
            request.start_time,
            request.end_time,
            request.HasField("start_time"),
            request.HasField("end_time"),
        )
        rows = await self.db.in_transaction(lambda s: self.h.drivers(s, metric, start, end))
        return pb.GetDriversResponse(drivers=[pb.Driver(**r) for r in rows])  # type: ignore[arg-type]

    async def ScanAnomalies(
        self, request: pb.ScanAnomaliesRequest, context: Any
    ) -> pb.ScanAnomaliesResponse:
        until = _dt(request.until) if request.HasField("until") else None
        alerts = await self._write(lambda s: self.h.scan_anomalies(s, until))
        return pb.ScanAnomaliesResponse(alerts=alerts)

    # -- cases ---------------------------------------------------------------
    async def ListCases(self, request: pb.ListCasesRequest, context: Any) -> pb.ListCasesResponse:
        size = request.page_size or 50
        if not 1 <= size <= 500:
            raise InvalidArgument("page_size", "1-500")
        try:
            offset = int(request.page_token) if request.page_token else 0
        except ValueError:
            raise InvalidArgument("page_token", "not a token from a previous page") from None
        if offset < 0:
            raise InvalidArgument("page_token", "not a token from a previous page")
        if request.status and request.status not in STATUS_FROM_PROTO:
            raise InvalidArgument("status", "unknown status")
        cases, nxt = await self.db.in_transaction(
            lambda s: self.h.list_cases(
                s,
                status=STATUS_FROM_PROTO.get(request.status, ""),
                customer_id=request.customer_id,
                offset=offset,
                limit=size,
            )
        )
        return pb.ListCasesResponse(
            cases=[case_proto(c) for c in cases],
            next_page_token=str(nxt) if nxt is not None else "",
        )

    async def UpdateCase(
        self, request: pb.UpdateCaseRequest, context: Any
    ) -> pb.UpdateCaseResponse:
        if not request.case_id:
            raise InvalidArgument("case_id", "required")
        if request.status and request.status not in STATUS_FROM_PROTO:
            raise InvalidArgument("status", "unknown status")
        c = await self._write(
            lambda s: self.h.update_case(
                s,
                case_id=request.case_id,
                status=STATUS_FROM_PROTO.get(request.status, ""),
                note=request.note,
                actor=request.actor,
                assignee=request.assignee or None,
                resolution=request.resolution,
                notify_customer=request.notify_customer,
            )
        )
        return pb.UpdateCaseResponse(case=case_proto(c))
