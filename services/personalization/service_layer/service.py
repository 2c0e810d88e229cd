"""Personalization's use cases: learning from events (durable consumers that
persist, then announce on the service's own stream), every replica applying
its own stream to memory, answering Recommend / SimilarItems, experiments."""

from __future__ import annotations

import logging
import random
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, tzinfo
from typing import Any

import numpy as np
from cxloop.personalization.v1 import events_pb2 as ev_pb
from cxloop.personalization.v1 import resources_pb2 as res
from sqlmodel import Session

from cxloop_libs.errors import FailedPrecondition, InvalidArgument, NotFound
from cxloop_libs.messaging import OutboxWriter, ReceivedEvent
from cxloop_libs.messaging import catalog as ev
from cxloop_libs.structs import struct_dict
from personalization.adapters import repository as repo
from personalization.domain import experiments as ex
from personalization.domain.engine import Engine
from personalization.domain.interactions import from_tracked_event
from personalization.domain.recommender import STRATEGIES, Query, Recommended, Rules
from personalization.domain.tuning import Tuned
from personalization.service_layer import messages as msg

log = logging.getLogger(__name__)
PURPOSE = "personalization"
_NS = uuid.UUID("0b7c9a52-3f1e-4d8a-9a57-1c2e3f4a5b6d")
_STATUS_RANK = {ex.Status.DRAFT: 0, ex.Status.RUNNING: 1, ex.Status.STOPPED: 2}


class Personalization:
    def __init__(
        self,
        engine: Engine,
        *,
        may_use: Callable[[str, str], bool],
        tz: tzinfo = UTC,
        max_limit: int = 100,
        rules: Mapping[str, Rules] | None = None,
    ) -> None:
        self.engine = engine
        self._may_use = may_use
        self.tz = tz
        self.max_limit = max_limit
        self.rules = dict(rules or {})
        self.experiments: dict[str, ex.Experiment] = {}
        self.tracker = ex.Tracker()
        self.lock = threading.RLock()
        self.rng = np.random.default_rng()
        self.loaded = threading.Event()
        self.applied = 0
        self._clock_cache: tuple[int, int, int] = (-1, 0, 0)
        self._ids = random.Random(uuid.uuid4().int)

    def consented(self, customer_id: str) -> bool:
        return bool(customer_id) and self._may_use(customer_id, PURPOSE)

    def _clock(self, at: float) -> tuple[int, int]:
        """(hour, weekday) of ``at`` in the service's time zone; the minute's
        answer is reused (time-zone offsets are whole minutes, so the local
        hour never changes inside a minute)."""
        minute = int(at // 60)
        got = self._clock_cache
        if got[0] == minute:
            return got[1], got[2]
        d = datetime.fromtimestamp(at, self.tz)
        self._clock_cache = (minute, d.hour, d.weekday())
        return d.hour, d.weekday()

    # -- durable consumers (one replica each, inside the consumer transaction) ----
    def on_resolved(self, session: Session, events: list[ReceivedEvent]) -> None:
        """Tracked product events of consenting customers become learned
        interactions: stored, then announced to every replica."""
        outbox = OutboxWriter(session)
        rows: list[dict[str, Any]] = []
        for e in events:
            m = e.message()
            it = m.interaction
            if not m.customer_id or not self.consented(m.customer_id):
                continue  # no consent: not used for modelling at all
            at = msg.epoch(it.occurred_at) if it.HasField("occurred_at") else time.time()
            inters = from_tracked_event(
                it.message_id or e.id,
                m.customer_id,
                it.name,
                struct_dict(it.properties),
                at,
                channel=it.channel,
            )
            if not inters:
                continue
            learned = ev_pb.InteractionsLearned()
            for i in inters:
                hour, _ = self._clock(i.at)
                learned.interactions.append(msg.learned(i, hour))
                rows.append(
                    {
                        "event_id": i.event_id[:160],
                        "customer_id": i.customer_id,
                        "item_id": i.item_id[:128],
                        "kind": i.kind.value,
                        "weight": i.weight,
                        "occurred_at": datetime.fromtimestamp(i.at, UTC),
                        "channel": i.channel[:32],
                        "store": i.store[:64],
                        "revenue": i.revenue,
                        "hour": hour,
                    }
                )
            outbox.stage(
                ev.INTERACTIONS_LEARNED,
                learned,
                subject=m.customer_id,
                event_id=str(uuid.uuid5(_NS, f"learned:{e.id}")),
            )
        repo.insert_ignoring_duplicates(session, repo.interactions, rows)
        outbox.flush()

    def on_catalog(self, session: Session, events: list[ReceivedEvent]) -> None:
        """Catalogue changes from any publisher (UpsertItems or a feed) are kept."""
        rows = []
        for e in events:
            for it in e.message().items:
                if msg.item_problems(it):
                    continue
                rows.append(
                    {
                        "item_id": it.item_id.strip(),
                        "data": it.SerializeToString(),
                        "updated_at": repo.now(),
                    }
                )
        latest = {r["item_id"]: r for r in rows}
        repo.upsert(session, repo.items, "item_id", list(latest.values()))

    @staticmethod
    def exposure_rows(served: Sequence[ev_pb.RecommendationServed]) -> list[dict[str, Any]]:
        """Rows of ``pers_exposure`` for the served lists an experiment chose
        (the first per experiment and customer is kept: duplicates ignored)."""
        return [
            {
                "experiment_id": m.experiment_id,
                "customer_id": m.customer_id,
                "variant_id": m.variant_id,
                "recommendation_id": m.recommendation_id,
                "first_served_at": datetime.fromtimestamp(msg.epoch(m.served_at), UTC),
            }
            for m in served
            if m.experiment_id and m.customer_id
        ]

    def store_exposures(self, session: Session, rows: Sequence[dict[str, Any]]) -> None:
        """Experiment exposures, written by the replica that served them, in
        batches (ADR 0190): no database work for lists no experiment chose."""
        repo.insert_ignoring_duplicates(session, repo.exposures, rows)

    # -- replica memory ---------------------------------------------------------
    def load(self, session: Session) -> dict[str, int]:
        """Rebuilds memory from the database (at start)."""
        counts = {"items": 0, "interactions": 0, "experiments": 0, "exposures": 0}
        for data in repo.load_items(session):
            m = res.Item()
            m.ParseFromString(data)
            self.engine.upsert_item(msg.item_from(m))
            counts["items"] += 1
        for data in repo.load_experiments(session):
            m2 = res.Experiment()
            m2.ParseFromString(data)
            self._keep_experiment(msg.experiment_from(m2))
            counts["experiments"] += 1
        for r in repo.load_exposures(session):
            at = r.first_served_at
            at = at.replace(tzinfo=UTC) if at.tzinfo is None else at
            with self.lock:
                self.tracker.exposed(r.experiment_id, r.variant_id, r.customer_id, at.timestamp())
            counts["exposures"] += 1
        for r in repo.load_interactions(session):
            at = r.occurred_at
            at = at.replace(tzinfo=UTC) if at.tzinfo is None else at
            lm = ev_pb.LearnedInteraction(
                event_id=r.event_id,
                customer_id=r.customer_id,
                item_id=r.item_id,
                kind=r.kind,
                weight=r.weight,
                occurred_at=msg.ts(at.timestamp()),
                channel=r.channel,
                store=r.store,
                revenue=r.revenue,
                hour=r.hour,
            )
            counts["interactions"] += self._learn(lm)
        self.loaded.set()
        return counts

    def _learn(self, m: ev_pb.LearnedInteraction) -> int:
        inter, hour = msg.interaction_of(m)
        if not self.consented(inter.customer_id):
            return 0
        if not self.engine.learn(inter, hour, self._clock(inter.at)[1]):
            return 0
        with self.lock:
            self.tracker.converted(inter, self.experiments)
        return 1

    def resync_experiments(self, session: Session) -> int:
        """Experiments as stored: a safety net beside the replica stream, so a
        replica that missed a status change (started, stopped on another
        replica) catches up within one resync. Status only moves forward."""
        n = 0
        for data in repo.load_experiments(session):
            m = res.Experiment()
            m.ParseFromString(data)
            self._keep_experiment(msg.experiment_from(m))
            n += 1
        return n

    def _keep_experiment(self, e: ex.Experiment) -> None:
        with self.lock:
            old = self.experiments.get(e.experiment_id)
            if old is None or _STATUS_RANK[e.status] >= _STATUS_RANK[old.status]:
                self.experiments[e.experiment_id] = e

    def apply(self, message: Any) -> None:
        """One event of the service's own stream, on every replica."""
        if isinstance(message, ev_pb.InteractionsLearned):
            for m in message.interactions:
                self._learn(m)
        elif isinstance(message, ev_pb.CatalogChanged):
            for it in message.items:
                if not msg.item_problems(it):
                    self.engine.upsert_item(msg.item_from(it))
        elif isinstance(message, ev_pb.ExperimentChanged):
            self._keep_experiment(msg.experiment_from(message.experiment))
        elif isinstance(message, ev_pb.ModelTuned):
            tuned = msg.tuned_from(message)
            if tuned is not None:
                self.engine.adopt(tuned)
        elif isinstance(message, ev_pb.RecommendationServed):
            if message.experiment_id and message.customer_id:
                with self.lock:
                    self.tracker.exposed(
                        message.experiment_id,
                        message.variant_id,
                        message.customer_id,
                        msg.epoch(message.served_at),
                    )
        else:
            return
        self.applied += 1

    def take_tuned(self) -> list[Tuned]:
        """This replica's tuning results not yet published."""
        with self.engine.lock:
            results, self.engine.tuned_here = self.engine.tuned_here, []
        return results

    def untake_tuned(self, results: list[Tuned]) -> None:
        """Publishing failed: they go out with the next retrain."""
        with self.engine.lock:
            self.engine.tuned_here[:0] = results

    def publish_tuned(self, session: Session, results: list[Tuned]) -> None:
        """Tuning results onto the service's stream (through the outbox),
        where every replica, this one too, adopts the latest (docs/adr/0315)."""
        outbox = OutboxWriter(session)
        for t in results:
            outbox.stage(ev.MODEL_TUNED, msg.tuned_pb(t))
        outbox.flush()

    def forget(self, customer_id: str) -> int:
        """Erasure or consent withdrawn: out of every model in memory."""
        n = self.engine.forget(customer_id)
        with self.lock:
            self.tracker.forget(customer_id)
        return n

    # -- catalogue -------------------------------------------------------------
    def stage_items(self, session: Session, good: Sequence[res.Item]) -> None:
        rows = {m.item_id.strip(): m for m in good}
        repo.upsert(
            session,
            repo.items,
            "item_id",
            [
                {"item_id": k, "data": m.SerializeToString(), "updated_at": repo.now()}
                for k, m in rows.items()
            ],
        )
        outbox = OutboxWriter(session)
        chunk: list[res.Item] = list(rows.values())
        for start in range(0, len(chunk), 500):
            outbox.stage(ev.CATALOG_CHANGED, ev_pb.CatalogChanged(items=chunk[start : start + 500]))
        outbox.flush()

    # -- answering -------------------------------------------------------------
    def query(self, req: Any, now: float) -> Query:
        if not 1 <= req.limit <= self.max_limit:
            raise InvalidArgument("limit", f"must be between 1 and {self.max_limit}")
        strategy = req.strategy or "hybrid"
        if strategy not in STRATEGIES:
            raise InvalidArgument("strategy", f"unknown strategy; known: {', '.join(STRATEGIES)}")
        ctx = dict(req.context)
        problems = ex.check_context(ctx)
        if problems:
            raise InvalidArgument(*problems[0])
        if len(req.customer_id) > 128:
            raise InvalidArgument("customer_id", "at most 128 characters")
        hour_now, weekday_now = self._clock(now)
        return Query(
            customer_id=req.customer_id,
            n=req.limit,
            personalized=self.consented(req.customer_id),
            strategy=strategy,
            channel=ctx.get("channel", ""),
            store=ctx.get("store", ""),
            hour=int(ctx["hour"]) if "hour" in ctx else hour_now,
            weekday=int(ctx["weekday"]) if "weekday" in ctx else weekday_now,
            current_item=ctx.get("current_item", ""),
            cart=tuple(x.strip() for x in ctx.get("cart", "").split(",") if x.strip()),
            category=ctx.get("category", ""),
            price_min=float(ctx["price_min"]) if "price_min" in ctx else None,
            price_max=float(ctx["price_max"]) if "price_max" in ctx else None,
            exclude=frozenset(req.exclude_item_ids),
            exclude_seen=req.exclude_interacted,
            rules=self.rules.get(req.placement, Rules()),
        )

    def experiment_for(self, q: Query, placement: str) -> tuple[ex.Experiment, ex.Variant] | None:
        if not q.personalized:
            return None
        with self.lock:
            for e in self.experiments.values():
                if e.status is ex.Status.RUNNING and e.placement in ("", placement):
                    known = self.tracker.of_customer.get(q.customer_id, {}).get(e.experiment_id)
                    if e.bandit:
                        v = next((x for x in e.variants if x.variant_id == known), None)
                        v = v or ex.thompson(e, self.tracker, self.rng)
                    else:
                        v = ex.assign(e, q.customer_id)
                    return e, v
        return None

    def recommend(
        self, req: Any, now: float | None = None
    ) -> tuple[list[Recommended], bool, ev_pb.RecommendationServed, str]:
        now = time.time() if now is None else now
        q = self.query(req, now)
        chosen = self.experiment_for(q, req.placement)
        blend = None
        if chosen is not None:
            from dataclasses import replace

            q = replace(q, strategy=chosen[1].strategy)
            blend = dict(chosen[1].blend) or None
        recs, fallback = self.engine.recommend(q, blend)
        served = ev_pb.RecommendationServed(
            # A random (version 4) id without a system call per request.
            recommendation_id=str(uuid.UUID(int=self._ids.getrandbits(128), version=4)),
            customer_id=req.customer_id,
            placement=req.placement,
            item_ids=[r.item_id for r in recs],
            model_version=self.engine.model.version,
            fallback=fallback,
            served_at=msg.ts(now),
            strategies=[r.strategy for r in recs],
        )
        if chosen is not None:
            served.experiment_id = chosen[0].experiment_id
            served.variant_id = chosen[1].variant_id
            with self.lock:
                self.tracker.exposed(served.experiment_id, served.variant_id, req.customer_id, now)
        return recs, fallback, served, q.strategy

    # -- experiments -------------------------------------------------------------
    def new_experiment(self, m: res.Experiment, now: float) -> ex.Experiment:
        if not m.experiment_id:
            m.experiment_id = str(uuid.uuid4())
        if len(m.experiment_id) > 64:
            raise InvalidArgument("experiment.experiment_id", "at most 64 characters")
        if m.attribution_window_hours < 0:
            raise InvalidArgument("experiment.attribution_window_hours", "must be > 0")
        e = msg.experiment_from(m)
        from dataclasses import replace

        e = replace(e, status=ex.Status.DRAFT, created_at=now, started_at=0.0, stopped_at=0.0)
        problems = ex.validate(e)
        if problems:
            raise InvalidArgument(*problems[0])
        return e

    def save_experiment(self, session: Session, e: ex.Experiment, *, create: bool) -> None:
        data = msg.experiment_pb(e).SerializeToString()
        if create:
            if repo.get_experiment(session, e.experiment_id) is not None:
                from cxloop_libs.errors import AlreadyExists

                raise AlreadyExists(f"experiment {e.experiment_id} exists")
            session.execute(
                repo.experiments.insert().values(
                    experiment_id=e.experiment_id, data=data, updated_at=repo.now()
                )
            )
        else:
            session.execute(
                repo.experiments.update()
                .where(repo.experiments.c.experiment_id == e.experiment_id)
                .values(data=data, updated_at=repo.now())
            )
        outbox = OutboxWriter(session)
        outbox.stage(
            ev.EXPERIMENT_CHANGED, ev_pb.ExperimentChanged(experiment=msg.experiment_pb(e))
        )
        outbox.flush()

    def transition(
        self, session: Session, experiment_id: str, to: ex.Status, now: float
    ) -> ex.Experiment:
        data = repo.get_experiment(session, experiment_id)
        if data is None:
            raise NotFound(f"experiment {experiment_id} not found")
        m = res.Experiment()
        m.ParseFromString(data)
        e = msg.experiment_from(m)
        allowed = {ex.Status.RUNNING: ex.Status.DRAFT, ex.Status.STOPPED: ex.Status.RUNNING}
        if e.status is not allowed[to]:
            raise FailedPrecondition(f"experiment is {e.status.value}; cannot become {to.value}")
        e = e.with_status(to, now)
        self.save_experiment(session, e, create=False)
        if to is ex.Status.STOPPED:
            outbox = OutboxWriter(session)
            outbox.stage(
                ev.EXPERIMENT_RESULTS_PUBLISHED,
                ev_pb.ExperimentResultsPublished(results=self.results_of(e, now)),
            )
            outbox.flush()
        return e

    def results_of(self, e: ex.Experiment, now: float) -> res.ExperimentResults:
        with self.lock:
            r = ex.results(e, self.tracker)
        return msg.results_pb(r, now)

    def results(self, experiment_id: str, now: float) -> res.ExperimentResults:
        with self.lock:
            e = self.experiments.get(experiment_id)
        if e is None:
            raise NotFound(f"experiment {experiment_id} not found")
        return self.results_of(e, now)
