"""PersonalizationService over gRPC (thin: validation and translation; the
use cases live in service_layer)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import grpc
from cxloop.personalization.v1 import personalization_service_pb2 as pb
from cxloop.personalization.v1 import personalization_service_pb2_grpc as pb_grpc

from cxloop_libs.db import Database
from cxloop_libs.errors import InvalidArgument, Unavailable
from cxloop_libs.grpcx import status_of
from cxloop_libs.messaging import EventPublisher, PendingEvent
from cxloop_libs.messaging import catalog as ev
from personalization.domain import experiments as ex
from personalization.domain.recommender import Reason, Recommended
from personalization.service_layer import messages as msg
from personalization.service_layer.service import Personalization

log = logging.getLogger(__name__)

REASONS = {
    Reason.SIMILAR_TO_HISTORY: pb.RECOMMENDATION_REASON_SIMILAR_TO_HISTORY,
    Reason.BOUGHT_TOGETHER: pb.RECOMMENDATION_REASON_BOUGHT_TOGETHER,
    Reason.POPULAR: pb.RECOMMENDATION_REASON_POPULAR,
    Reason.TRENDING: pb.RECOMMENDATION_REASON_TRENDING,
    Reason.NEW_ARRIVAL: pb.RECOMMENDATION_REASON_NEW_ARRIVAL,
    Reason.VIEWING_NOW: pb.RECOMMENDATION_REASON_VIEWING_NOW,
    Reason.POPULAR_IN_CONTEXT: pb.RECOMMENDATION_REASON_POPULAR_IN_CONTEXT,
    Reason.CONTENT_MATCH: pb.RECOMMENDATION_REASON_CONTENT_MATCH,
    Reason.PINNED: pb.RECOMMENDATION_REASON_PINNED,
}
MAX_UPSERT_BATCH = 1000


def served_event(served: Any, customer_id: str) -> PendingEvent:
    return PendingEvent.of(
        ev.RECOMMENDATION_SERVED,
        served,
        subject=customer_id,
        event_id=served.recommendation_id,
    )


def response_of(
    recs: Sequence[Recommended], fallback: bool, served: Any, strategy: str
) -> pb.RecommendResponse:
    resp = pb.RecommendResponse(
        recommendation_id=served.recommendation_id,
        model_version=served.model_version,
        fallback=fallback,
        experiment_id=served.experiment_id,
        variant_id=served.variant_id,
        strategy=strategy,
    )
    add = resp.items.add
    for r in recs:
        add(
            item_id=r.item_id,
            score=r.score,
            reason=REASONS[r.reason],
            related_item_id=r.related_item_id,
            strategy=r.strategy,
            explanation=r.explanation,
        )
    return resp


class PersonalizationServicer(pb_grpc.PersonalizationServiceServicer):
    def __init__(
        self,
        db: Database,
        service: Personalization,
        publisher: EventPublisher,
        *,
        is_ready: Callable[[], bool],
        after_commit: Callable[[], None],
        intelligence: Callable[[str], Awaitable[Any]] | None = None,
    ) -> None:
        self.db = db
        # A customer's segments, traits and predictions as IntelligenceService
        # answers them (its servicer's customer_view), for GetCustomerView.
        self.intelligence = intelligence
        self.service = service
        self.publisher = publisher
        self.is_ready = is_ready
        self.after_commit = after_commit
        self._pending: set[asyncio.Task[Any]] = set()
        self._served_buf: list[tuple[Any, str]] = []
        self._unstored: list[dict[str, Any]] = []

    def _require_ready(self) -> None:
        if not self.is_ready():
            raise Unavailable("personalization is still loading")

    # Served events wait this long to go out together (one publish_many, no
    # round trip per event): the per-request cost of the log stays small.
    PUBLISH_EVERY_S = 0.005
    # Exposures not yet stored when the database failed are retried with the
    # next batch; beyond this many the oldest are dropped (and logged).
    MAX_UNSTORED_EXPOSURES = 100_000

    def _publish(self, served: Any, customer_id: str) -> None:
        self._served_buf.append((served, customer_id))
        if len(self._served_buf) == 1:
            task = asyncio.ensure_future(self._send_served())
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)

    async def _send_served(self) -> None:
        await asyncio.sleep(self.PUBLISH_EVERY_S)
        batch, self._served_buf = self._served_buf, []
        # Experiment exposures are stored here, by the serving replica, in one
        # transaction per batch (ADR 0190); lists no experiment chose cost no
        # database work. Other replicas count them from the served events.
        rows = self._unstored + self.service.exposure_rows([m for m, _ in batch])
        self._unstored = []
        if rows:
            try:
                await self.db.in_transaction(lambda s: self.service.store_exposures(s, rows))
            except Exception as exc:  # kept for the next batch: not lost
                log.warning("experiment exposures not stored yet (%d): %s", len(rows), exc)
                self._unstored = rows[-self.MAX_UNSTORED_EXPOSURES :]
        try:
            results = await self.publisher.publish_many([served_event(m, c) for m, c in batch])
        except Exception as exc:  # serving never waits on, nor fails for, the log
            log.warning("recommendation served events not published: %s", exc)
            return
        lost = sum(isinstance(r, BaseException) for r in results)
        if lost:
            log.warning("%d recommendation served events not published", lost)

    async def Recommend(
        self, request: pb.RecommendRequest, context: grpc.aio.ServicerContext
    ) -> pb.RecommendResponse:
        self._require_ready()
        recs, fallback, served, strategy = self.service.recommend(request)
        self._publish(served, request.customer_id)
        return response_of(recs, fallback, served, strategy)

    async def GetCustomerView(
        self, request: pb.GetCustomerViewRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetCustomerViewResponse:
        if not request.customer_id:
            raise InvalidArgument("customer_id", "required")
        if self.intelligence is None:
            raise NotImplementedError  # UNIMPLEMENTED: this process serves no intelligence
        cid = request.customer_id
        view = pb.GetCustomerViewResponse()
        # Four RPCs' work in one call (the customer 360): the list from the
        # recommender's memory, the rest in one database session.
        if self.is_ready():
            rec = pb.RecommendRequest(
                customer_id=cid, placement=request.placement, limit=request.limit
            )
            recs, fallback, served, strategy = self.service.recommend(rec)
            self._publish(served, cid)
            view.recommendations.CopyFrom(response_of(recs, fallback, served, strategy))
        else:
            view.unanswered.add(
                part="recommendations",
                code=grpc.StatusCode.UNAVAILABLE.value[0],
                message="personalization is still loading",
            )
        parts = await self.intelligence(cid)
        view.segments.CopyFrom(parts.segments)
        if parts.traits is not None:
            view.traits.CopyFrom(parts.traits)
        if parts.predictions is not None:
            view.predictions.CopyFrom(parts.predictions)
        for part, exc in parts.problems.items():
            view.unanswered.add(part=part, code=status_of(exc).value[0], message=str(exc))
        return view

    async def SimilarItems(
        self, request: pb.SimilarItemsRequest, context: grpc.aio.ServicerContext
    ) -> pb.SimilarItemsResponse:
        self._require_ready()
        if not request.item_id:
            raise InvalidArgument("item_id", "required")
        if not 1 <= request.limit <= self.service.max_limit:
            raise InvalidArgument("limit", f"must be between 1 and {self.service.max_limit}")
        resp = pb.SimilarItemsResponse()
        for item_id, sim, strategy in self.service.engine.similar_items(
            request.item_id, request.limit
        ):
            resp.items.add(item_id=item_id, similarity=min(1.0, sim), strategy=strategy)
        return resp

    async def UpsertItems(
        self,
        request_iterator: AsyncIterator[pb.UpsertItemsRequest],
        context: grpc.aio.ServicerContext,
    ) -> pb.UpsertItemsResponse:
        self._require_ready()
        resp = pb.UpsertItemsResponse()
        good: list[Any] = []

        async def flush() -> None:
            if not good:
                return
            batch = list(good)
            good.clear()
            await self.db.in_transaction(lambda s: self.service.stage_items(s, batch))
            self.after_commit()
            # This replica answers with them from the next request on; the
            # others apply the catalogue event.
            for m in batch:
                self.service.engine.upsert_item(msg.item_from(m))
            resp.accepted += len(batch)

        n = 0
        async for req in request_iterator:
            problems = msg.item_problems(req.item)
            if problems:
                field, why = problems[0]
                resp.rejected.add(index=n, item_id=req.item.item_id[:128], field=field, message=why)
            else:
                good.append(req.item)
                if len(good) >= MAX_UPSERT_BATCH:
                    await flush()
            n += 1
        await flush()
        return resp

    async def CreateExperiment(
        self, request: pb.CreateExperimentRequest, context: grpc.aio.ServicerContext
    ) -> pb.CreateExperimentResponse:
        self._require_ready()
        e = self.service.new_experiment(request.experiment, time.time())
        await self.db.in_transaction(lambda s: self.service.save_experiment(s, e, create=True))
        self.after_commit()
        self.service._keep_experiment(e)
        return pb.CreateExperimentResponse(experiment=msg.experiment_pb(e))

    async def StartExperiment(
        self, request: pb.StartExperimentRequest, context: grpc.aio.ServicerContext
    ) -> pb.StartExperimentResponse:
        self._require_ready()
        if not request.experiment_id:
            raise InvalidArgument("experiment_id", "required")
        e = await self.db.in_transaction(
            lambda s: self.service.transition(
                s, request.experiment_id, ex.Status.RUNNING, time.time()
            )
        )
        self.after_commit()
        self.service._keep_experiment(e)
        return pb.StartExperimentResponse(experiment=msg.experiment_pb(e))

    async def StopExperiment(
        self, request: pb.StopExperimentRequest, context: grpc.aio.ServicerContext
    ) -> pb.StopExperimentResponse:
        self._require_ready()
        if not request.experiment_id:
            raise InvalidArgument("experiment_id", "required")
        now = time.time()
        e = await self.db.in_transaction(
            lambda s: self.service.transition(s, request.experiment_id, ex.Status.STOPPED, now)
        )
        self.after_commit()
        self.service._keep_experiment(e)
        return pb.StopExperimentResponse(
            experiment=msg.experiment_pb(e), results=self.service.results_of(e, now)
        )

    async def GetExperimentResults(
        self, request: pb.GetExperimentResultsRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetExperimentResultsResponse:
        self._require_ready()
        if not request.experiment_id:
            raise InvalidArgument("experiment_id", "required")
        return pb.GetExperimentResultsResponse(
            results=self.service.results(request.experiment_id, time.time())
        )
