"""Wires customer intelligence into the personalization runtime: the durable
consumer of `interaction resolved`, the sweeps (due actions, time-based
segment exits, scheduled predictions), the consent reaction and the privacy
answer. bootstrap.py calls :func:`wire` once."""

from __future__ import annotations

import asyncio
import contextlib
import logging
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
        BatchConsumer(
            runtime.bus,
            db,
            ConsumerSpec(
                stream="IDENTITY",
                durable=INTELLIGENCE_CONSUMER,
                filter_subject=ev.INTERACTION_RESOLVED.subject,
                batch_size=settings.consumer_batch_size,
                max_deliver=settings.consumer_max_deliver,
            ),
            intel.on_resolved,
            on_commit=after_commit,
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
