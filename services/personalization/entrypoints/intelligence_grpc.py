"""IntelligenceService over gRPC (thin: validation and translation; the use
cases live in service_layer/intelligence.py)."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import grpc
from cxloop.personalization.v1 import intelligence_pb2 as pb
from cxloop.personalization.v1 import intelligence_pb2_grpc as pb_grpc
from google.protobuf.json_format import MessageToDict
from google.protobuf.struct_pb2 import Struct

from cxloop_libs.db import Database
from cxloop_libs.errors import CxError, InvalidArgument, NotFound
from personalization.adapters import intelligence_store as st
from personalization.domain import triggers as tg
from personalization.service_layer.intelligence import Intelligence
from personalization.service_layer.messages import ts


def _struct(d: dict[str, Any]) -> Struct:
    s = Struct()
    s.update(d)
    return s


def _token(after: str) -> str:
    return base64.urlsafe_b64encode(after.encode()).decode() if after else ""


def _after(token: str) -> str:
    if not token:
        return ""
    try:
        return base64.b64decode(token.encode(), altchars=b"-_", validate=True).decode()
    except Exception as exc:
        raise InvalidArgument("page_token", "not a token this service returned") from exc


def _member_pb(r: Any) -> pb.SegmentMember:
    return pb.SegmentMember(
        segment_id=r.segment_id,
        customer_id=r.customer_id,
        entered_at=ts(st.epoch(r.entered_at)),
    )


def _segments_pb(rows: list[Any]) -> pb.GetSegmentsResponse:
    return pb.GetSegmentsResponse(segments=[_member_pb(r) for r in rows])


def _predictions_pb(customer_id: str, p: dict[str, Any]) -> pb.GetPredictionsResponse:
    return pb.GetPredictionsResponse(
        predictions=pb.CustomerPredictions(
            customer_id=customer_id,
            predicted_clv=p["predicted_clv"],
            expected_purchases=p["expected_purchases"],
            probability_alive=p["probability_alive"],
            churn_probability=p["churn_probability"],
            clv_model_version=p["clv_model_version"],
            churn_model_version=p["churn_model_version"],
            computed_at=ts(p["computed_at"]),
            clv_horizon_days=int(p["clv_horizon_days"]),
            churn_horizon_days=int(p["churn_horizon_days"]),
        )
    )


@dataclass
class CustomerIntelligence:
    """One customer's segments, traits and predictions as their RPCs answer
    them; a part in ``problems`` is the error its RPC would have raised."""

    segments: pb.GetSegmentsResponse
    traits: pb.GetTraitsResponse | None = None
    predictions: pb.GetPredictionsResponse | None = None
    problems: dict[str, CxError] = field(default_factory=dict)


class IntelligenceServicer(pb_grpc.IntelligenceServiceServicer):
    def __init__(
        self, db: Database, intel: Intelligence, *, after_commit: Callable[[], None]
    ) -> None:
        self.db = db
        self.intel = intel
        self.after_commit = after_commit

    async def GetTraits(
        self, request: pb.GetTraitsRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetTraitsResponse:
        t = await self.db.run(
            lambda: self._in(lambda s: self.intel.get_traits(s, request.customer_id))
        )
        return self._traits_pb(request.customer_id, t)

    def _traits_pb(self, customer_id: str, t: dict[str, Any]) -> pb.GetTraitsResponse:
        stage, rule = t.pop("lifecycle"), t.pop("lifecycle_rule")
        return pb.GetTraitsResponse(
            customer_id=customer_id,
            traits=_struct(t),
            lifecycle_stage=stage,
            lifecycle_rule=rule,
            computed_at=ts(self.intel.clock()),
        )

    async def read_customer_view(self, customer_id: str) -> CustomerIntelligence:
        return await self.db.run(lambda: self._in(lambda s: self.customer_view(s, customer_id)))

    def customer_view(self, session: Any, customer_id: str) -> CustomerIntelligence:
        """GetSegments, GetTraits and GetPredictions of one customer in one
        session (PersonalizationService.GetCustomerView, the customer 360):
        each part its answer, None for NOT_FOUND, or the error its own RPC
        would have raised."""
        view = CustomerIntelligence(
            segments=_segments_pb(st.customer_segments(session, customer_id))
        )
        try:
            view.traits = self._traits_pb(customer_id, self.intel.get_traits(session, customer_id))
        except NotFound:
            pass
        except CxError as exc:
            view.problems["traits"] = exc
        try:
            view.predictions = _predictions_pb(
                customer_id, self.intel.get_predictions(session, customer_id)
            )
        except NotFound:
            pass
        except CxError as exc:
            view.problems["predictions"] = exc
        return view

    def _in(self, fn: Callable[[Any], Any]) -> Any:
        with self.db.session() as s:
            return fn(s)

    async def DefineSegment(
        self, request: pb.DefineSegmentRequest, context: grpc.aio.ServicerContext
    ) -> pb.DefineSegmentResponse:
        seg = request.segment
        size = await self.db.in_transaction(
            lambda s: self.intel.define_segment(s, seg.segment_id, seg.name, seg.rule)
        )
        return pb.DefineSegmentResponse(
            segment=pb.SegmentDefinition(
                segment_id=seg.segment_id.strip(),
                name=seg.name or seg.segment_id.strip(),
                rule=seg.rule,
                size=size,
            )
        )

    async def ListSegmentDefinitions(
        self, request: pb.ListSegmentDefinitionsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListSegmentDefinitionsResponse:
        def q(s: Any) -> tuple[list[Any], dict[str, int]]:
            return st.all_segments(s), st.segment_sizes(s)

        rows, sizes = await self.db.run(lambda: self._in(q))
        return pb.ListSegmentDefinitionsResponse(
            segments=[
                pb.SegmentDefinition(
                    segment_id=r.segment_id,
                    name=r.name,
                    rule=r.rule,
                    size=sizes.get(r.segment_id, 0),
                )
                for r in rows
            ]
        )

    async def PreviewSegment(
        self, request: pb.PreviewSegmentRequest, context: grpc.aio.ServicerContext
    ) -> pb.PreviewSegmentResponse:
        if request.sample_size < 0 or request.sample_size > 100:
            raise InvalidArgument("sample_size", "between 0 and 100")
        self.intel.parse_rule(request.rule, "rule")
        size, ids, n = await self.db.run(
            lambda: self._in(
                lambda s: self.intel.preview(s, request.rule, request.sample_size or 10)
            )
        )
        return pb.PreviewSegmentResponse(size=size, sample_customer_ids=ids, evaluated=n)

    async def GetSegments(
        self, request: pb.GetSegmentsRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetSegmentsResponse:
        if not request.customer_id:
            raise InvalidArgument("customer_id", "required")
        rows = await self.db.run(
            lambda: self._in(lambda s: st.customer_segments(s, request.customer_id))
        )
        return _segments_pb(rows)

    async def ListSegmentMembers(
        self, request: pb.ListSegmentMembersRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListSegmentMembersResponse:
        if not request.segment_id:
            raise InvalidArgument("segment_id", "required")
        if not 0 <= request.page_size <= 1000:
            raise InvalidArgument("page_size", "between 1 and 1000 (0: 100)")
        size = request.page_size or 100
        after = _after(request.page_token)

        def q(s: Any) -> tuple[list[Any], int]:
            return st.page_members(s, request.segment_id, after, size), st.segment_size(
                s, request.segment_id
            )

        rows, total = await self.db.run(lambda: self._in(q))
        return pb.ListSegmentMembersResponse(
            members=[_member_pb(r) for r in rows],
            next_page_token=_token(rows[-1].customer_id) if len(rows) == size else "",
            total=total,
        )

    async def ExportSegmentMembers(
        self, request: pb.ExportSegmentMembersRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.ExportSegmentMembersResponse]:
        if not request.segment_id:
            raise InvalidArgument("segment_id", "required")
        after = ""
        while True:
            rows = await self.db.run(
                lambda a=after: self._in(lambda s: st.page_members(s, request.segment_id, a, 1000))
            )
            for r in rows:
                yield pb.ExportSegmentMembersResponse(
                    member=pb.SegmentMember(
                        segment_id=r.segment_id,
                        customer_id=r.customer_id,
                        entered_at=ts(st.epoch(r.entered_at)),
                    )
                )
            if len(rows) < 1000:
                return
            after = rows[-1].customer_id

    async def GetPredictions(
        self, request: pb.GetPredictionsRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetPredictionsResponse:
        p = await self.db.run(
            lambda: self._in(lambda s: self.intel.get_predictions(s, request.customer_id))
        )
        return _predictions_pb(request.customer_id, p)

    async def RefreshPredictions(
        self, request: pb.RefreshPredictionsRequest, context: grpc.aio.ServicerContext
    ) -> pb.RefreshPredictionsResponse:
        models, n = await self.db.in_transaction(self.intel.refresh_predictions)
        return pb.RefreshPredictionsResponse(
            models=[
                pb.ModelVersion(
                    version=m["version"],
                    model=m["model"],
                    metrics=_struct(json.loads(json.dumps(m["metrics"]))),
                    trained_at=ts(m["trained_at"]),
                )
                for m in models
            ],
            customers=n,
        )

    async def DefineTrigger(
        self, request: pb.DefineTriggerRequest, context: grpc.aio.ServicerContext
    ) -> pb.DefineTriggerResponse:
        m = request.trigger
        t = tg.Trigger(
            trigger_id=m.trigger_id.strip(),
            on=m.on.strip(),
            action=m.action.strip(),
            unless=m.unless.strip(),
            delay_s=float(m.delay_seconds),
            channels=tuple(c.strip() for c in m.channels),
            parameters=MessageToDict(m.parameters) if m.HasField("parameters") else {},
            max_per_customer=m.max_per_customer if m.HasField("max_per_customer") else 1,
            cap_window_s=float(m.cap_window_seconds or 86_400),
            enabled=not m.disabled,
        )
        await self.db.in_transaction(lambda s: self.intel.define_trigger(s, t))
        return pb.DefineTriggerResponse(trigger=m)
