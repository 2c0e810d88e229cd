"""Wires customer intelligence into the personalization runtime: the durable
consumer of `interaction resolved`, the sweeps (due actions, time-based
segment exits, scheduled predictions), the consent reaction and the privacy
answer. bootstrap.py calls :func:`wire` once."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import threading
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import Session

from cxloop_libs.consent import ConsentProjection
from cxloop_libs.db import Database
from cxloop_libs.errors import FailedPrecondition
from cxloop_libs.messaging import BatchConsumer, ConsumerSpec
from cxloop_libs.messaging import catalog as ev
from cxloop_libs.privacy import PrivacyAnswer, RequestKind
from cxloop_libs.runtime import ServiceRuntime
from personalization.adapters import intelligence_store as st
from personalization.config import PersonalizationSettings
from personalization.domain.traits import TraitConfig
from personalization.domain.triggers import QuietHours
from personalization.entrypoints.intelligence_grpc import IntelligenceServicer
from personalization.service_layer.intelligence import PROFILING, IntelConfig, Intelligence

log = logging.getLogger(__name__)
INTELLIGENCE_CONSUMER = "personalization-intelligence"


def config_of(settings: PersonalizationSettings) -> IntelConfig:
    windows = tuple(sorted({int(w) for w in settings.intel_windows_days.split(",") if w.strip()}))
    return IntelConfig(
        traits=TraitConfig(windows_days=windows or (7, 30, 90)),
        quiet=QuietHours.parse(settings.intel_quiet_hours),
        max_actions_per_window=settings.intel_max_actions_per_day,
        clv_horizon_days=settings.intel_clv_horizon_days,
        churn_horizon_days=settings.intel_churn_horizon_days,
    )


#: (the previous batch's "locked" event, this batch's) for the handler of
#: the batch the current task applies (carried into the worker thread).
_GATE: contextvars.ContextVar[tuple[threading.Event, threading.Event]] = contextvars.ContextVar(
    "intel_batch_gate"
)


class PipelinedBatchConsumer(BatchConsumer):
    """A :class:`BatchConsumer` with up to ``depth`` batches in flight: while
    one batch's transaction waits on PostgreSQL (COPY, commit), the next
    one's Python runs (ADR 0260). Every batch is still acked after its own
    commit. Order per customer: a batch's handler takes its customers'
    advisory locks only after the batch before it took its own
    (:func:`gated`), so two batches holding events of one customer apply
    them in delivery order, the later one reading what the earlier committed.
    A batch that fails and is replayed (one by one, after ``ack_wait``)
    applies after the batches that overtook it, as with two replicas."""

    def __init__(self, *args: Any, depth: int = 2, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.depth = max(1, depth)
        self._inflight: set[asyncio.Task[None]] = set()
        self._last_locked = threading.Event()
        self._last_locked.set()

    async def process(self, msgs: list[Any]) -> None:
        if self.depth == 1:
            await super().process(msgs)
            return
        while len(self._inflight) >= self.depth:
            await asyncio.wait(self._inflight, return_when=asyncio.FIRST_COMPLETED)
        prev, mine = self._last_locked, threading.Event()
        self._last_locked = mine
        task = asyncio.get_running_loop().create_task(self._gated(msgs, prev, mine))
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)

    async def _gated(self, msgs: list[Any], prev: threading.Event, mine: threading.Event) -> None:
        _GATE.set((prev, mine))
        try:
            await BatchConsumer.process(self, msgs)
        except Exception:
            # Unacked messages come back after ack_wait (as in BatchConsumer).
            log.exception("batch processing failed", extra={"consumer": self.spec.durable})
        finally:
            mine.set()

    async def run(self) -> None:
        try:
            await super().run()
        finally:
            # Batches started before stop() finish (and ack) before the
            # consumer is done.
            while self._inflight:
                await asyncio.wait(set(self._inflight))


def gated(
    handler: Callable[..., None],
) -> Callable[[Session, list[Any]], None]:
    """The intelligence handler behind a pipelined consumer's gate: waits
    until the previous batch holds its locks, then runs with ``after_lock``
    opening the gate for the next (a plain consumer: no gate)."""

    def run(session: Session, events: list[Any]) -> None:
        gate = _GATE.get(None)
        if gate is None:
            handler(session, events)
            return
        prev, mine = gate
        prev.wait()
        handler(session, events, after_lock=mine.set)

    return run


def wire(
    runtime: ServiceRuntime,
    db: Database,
    consent: ConsentProjection,
    settings: PersonalizationSettings,
    after_commit: Callable[[], None],
    *,
    ready: Callable[[], Any],
) -> IntelligenceServicer:
    """``ready`` is awaited before the sweeps start (schema migrated, memory loaded)."""
    intel = Intelligence(
        may_use=consent.may_use, tz=ZoneInfo(settings.time_zone), config=config_of(settings)
    )
    runtime.consumers.append(
        PipelinedBatchConsumer(
            runtime.bus,
            db,
            ConsumerSpec(
                stream="IDENTITY",
                durable=INTELLIGENCE_CONSUMER,
                filter_subject=ev.INTERACTION_RESOLVED.subject,
                batch_size=settings.consumer_batch_size,
                max_deliver=settings.consumer_max_deliver,
            ),
            gated(intel.on_resolved),
            on_commit=after_commit,
            # SQLite (development, tests) has one writer and no customer
            # locks to order batches by: one batch at a time there.
            depth=1 if db.is_sqlite else settings.intel_pipeline_depth,
        )
    )
    stopping = asyncio.Event()
    pending: set[asyncio.Task[Any]] = set()

    async def withdraw(cid: str) -> None:
        try:
            counts = await db.in_transaction(lambda s: intel.withdraw(s, cid))
            after_commit()
            log.info("profiling withdrawn: computed data removed", extra=counts)
        except Exception:
            log.exception("removing a withdrawn customer's intelligence failed")

    granted: set[str] = set()

    def on_consent_change(cid: str) -> None:
        # Every replica reacts; deletes are idempotent and exit events carry
        # deterministic ids, so JetStream keeps one of each. Only a customer
        # seen with profiling granted is cleaned here (one transaction per
        # change of anyone's consent would crowd the worker threads); the
        # segment sweep removes any other non-consenting customer's rows.
        if consent.may_use(cid, PROFILING):
            granted.add(cid)
            return
        if cid in granted:
            granted.discard(cid)
            task = asyncio.get_running_loop().create_task(withdraw(cid))
            pending.add(task)
            task.add_done_callback(pending.discard)

    consent.on_change.append(on_consent_change)

    async def every(interval: float, fn: Callable[[], Any], what: str) -> None:
        await ready()
        while not stopping.is_set():
            try:
                await fn()
            except FailedPrecondition as exc:
                log.info("%s skipped: %s", what, exc)
            except Exception:
                log.exception("%s failed", what)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), interval)

    async def fire() -> None:
        while await db.in_transaction(intel.fire_due):
            after_commit()
        after_commit()

    async def sweep() -> None:
        after = ""
        while True:
            after = await db.in_transaction(lambda s, a=after: intel.sweep_segments(s, a))
            after_commit()
            if not after:
                return

    async def predict() -> None:
        models, n = await db.in_transaction(intel.refresh_predictions)
        log.info(
            "predictions refreshed",
            extra={"customers": n, "models": [m["version"] for m in models]},
        )

    async def actions_loop() -> None:
        await every(settings.intel_action_interval_s, fire, "firing due actions")

    async def sweep_loop() -> None:
        await every(settings.intel_sweep_interval_s, sweep, "segment sweep")

    async def predict_loop() -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), settings.intel_predictions_interval_s)
        await every(settings.intel_predictions_interval_s, predict, "prediction refresh")

    async def stop() -> None:
        stopping.set()

    runtime.extra_tasks.extend([actions_loop, sweep_loop, predict_loop])
    runtime.on_stop.append(stop)
    runtime.intelligence = intel  # type: ignore[attr-defined]
    return IntelligenceServicer(db, intel, after_commit=after_commit)


def with_intelligence(
    answer: Callable[[Session | None, str, RequestKind], PrivacyAnswer],
) -> Callable[[Session | None, str, RequestKind], PrivacyAnswer]:
    """The personalization privacy answer plus traits, memberships,
    waiting actions and predictions (erasure deletes, access exports)."""
    import json

    def both(session: Session | None, cid: str, kind: RequestKind) -> PrivacyAnswer:
        a = answer(session, cid, kind)
        if session is None or kind not in (RequestKind.ERASURE, RequestKind.ACCESS):
            return a
        if kind is RequestKind.ERASURE:
            counts = st.erase(session, cid)
            return PrivacyAnswer(
                sorted({*a.categories, *counts}), {**a.row_counts, **counts}, detail=a.detail
            )
        export = st.export(session, cid)
        merged = {**json.loads(a.export_json or "{}"), **export}
        return PrivacyAnswer(
            sorted(merged),
            {**a.row_counts, **{k: len(v) for k, v in export.items()}},
            export_json=json.dumps(merged, sort_keys=True, default=str),
        )

    return both
