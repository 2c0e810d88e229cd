"""The one place that wires the personalization service together.

Segments, predictions and triggers (ListSegments, GetPrediction) are a later
issue: those RPCs still answer UNIMPLEMENTED."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import math
import time
from collections.abc import Callable
from pathlib import Path
from zoneinfo import ZoneInfo

from cxloop.personalization.v1 import intelligence_pb2 as ipb
from cxloop.personalization.v1 import intelligence_pb2_grpc as ipb_grpc
from cxloop.personalization.v1 import personalization_service_pb2 as pb
from cxloop.personalization.v1 import personalization_service_pb2_grpc as pb_grpc

from cxloop_libs.consent import ConsentProjection
from cxloop_libs.db import Database
from cxloop_libs.grpcx import grpc_server_from_settings
from cxloop_libs.messaging import BatchConsumer, ConsumerSpec
from cxloop_libs.messaging import catalog as ev
from cxloop_libs.privacy import join_privacy_requests
from cxloop_libs.runtime import ServiceRuntime, base_runtime
from personalization.adapters import privacy, replica
from personalization.adapters.grpc_servicer import PersonalizationServicer
from personalization.config import PersonalizationSettings
from personalization.domain.engine import Engine, EngineConfig
from personalization.domain.recommender import Rules
from personalization.entrypoints import intelligence_consumer
from personalization.service_layer.service import PURPOSE, Personalization

log = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).parent / "adapters" / "migrations"
INTERACTIONS_CONSUMER = "personalization-interactions"
CATALOG_CONSUMER = "personalization-catalog"
# Experiment exposures are written by the serving replica (ADR 0190); the
# durable consumer that stored them from every served event is gone.


def _rules(raw: str) -> dict[str, Rules]:
    if not raw.strip():
        return {}
    out = {}
    for placement, r in json.loads(raw).items():
        out[placement] = Rules(
            boosts={k: float(v) for k, v in r.get("boosts", {}).items()},
            pins={k: int(v) for k, v in r.get("pins", {}).items()},
            max_per_category=int(r.get("max_per_category", 0)),
        )
    return out


async def bootstrap(settings: PersonalizationSettings | None = None) -> ServiceRuntime:
    settings = settings or PersonalizationSettings.from_env()
    # One BLAS thread: per-request products are small, and BLAS threads
    # spinning against gRPC and the consumers cost more than they give.
    # Load every BLAS first: threadpool_limits only reaches libraries already
    # loaded, and scipy's own OpenBLAS (scipy.linalg, implicit) came later at
    # two threads, which on a busy machine made a 10,000 x 64 product cost
    # ~1.9 ms of CPU instead of ~0.05 ms.
    import implicit.cpu.als  # noqa: F401
    import scipy.linalg  # noqa: F401
    from threadpoolctl import threadpool_limits

    threadpool_limits(1, "blas")
    on_gc = _watch_full_collections()
    db = Database(settings.database_url)
    runtime = base_runtime(settings, db=db, migrations=MIGRATIONS)

    async def unwatch_collections() -> None:
        with contextlib.suppress(ValueError):
            gc.callbacks.remove(on_gc)

    runtime.on_stop.append(unwatch_collections)
    assert runtime.relay is not None
    relay = runtime.relay
    # Consent decides locally, no call per request (docs/adr/0011).
    consent = ConsentProjection(runtime.bus)
    engine = Engine(
        EngineConfig(
            half_life_days=settings.history_half_life_days,
            popularity_half_life_days=settings.popularity_half_life_days,
            trending_half_life_days=settings.trending_half_life_days,
            ease_lambda=settings.ease_lambda,
            ease_max_items=settings.ease_max_items,
            use_als=settings.use_als,
            als_factors=settings.als_factors,
            korean_tokenizer=settings.korean_tokenizer,
            blend=_blend(settings.blend),
            auto_tune=settings.auto_tune,
            tune_interval_s=settings.tune_interval_s,
            tune_growth=settings.tune_growth,
            tune_max_customers=settings.tune_max_customers,
        ),
        may_use=lambda c: consent.may_use(c, PURPOSE),
    )
    service = Personalization(
        engine,
        may_use=consent.may_use,
        tz=ZoneInfo(settings.time_zone),
        max_limit=settings.max_limit,
        rules=_rules(settings.placement_rules),
    )

    def on_consent_change(customer_id: str) -> None:
        # Withdrawal takes effect at once: out of the models in memory.
        if not consent.may_use(customer_id, PURPOSE):
            service.forget(customer_id)

    consent.on_change.append(on_consent_change)
    runtime.extra_tasks.append(consent.run)
    runtime.on_stop.append(consent.stop)

    for stream, durable, kind, handler in (
        ("IDENTITY", INTERACTIONS_CONSUMER, ev.INTERACTION_RESOLVED, service.on_resolved),
        ("PERSONALIZATION", CATALOG_CONSUMER, ev.CATALOG_CHANGED, service.on_catalog),
    ):
        runtime.consumers.append(
            BatchConsumer(
                runtime.bus,
                db,
                ConsumerSpec(
                    stream=stream,
                    durable=durable,
                    filter_subject=kind.subject,
                    batch_size=settings.consumer_batch_size,
                    max_deliver=settings.consumer_max_deliver,
                ),
                handler,
                on_commit=relay.notify,
            )
        )

    async def load() -> None:
        # Consent first: whose interactions may be used is decided by it.
        with contextlib.suppress(TimeoutError):
            await consent.wait_ready(timeout=30)
        # Kiwi's model loads holding the GIL: before serving, not during.
        await asyncio.to_thread(engine.content.tokenize, "워밍업")
        counts = await db.run(lambda: _load(db, service))
        # What is loaded stays for the process's life: out of the collector's
        # full passes, which otherwise walk every loaded object with the GIL
        # held, every request waiting (0.49 s for 10,000 items and 5,000
        # customers' histories on the busy 2-core machine; ADR 0255).
        gc.freeze()
        log.info("personalization memory loaded", extra={**counts, "frozen": gc.get_freeze_count()})

    live = replica.follow(runtime, load, service.apply, service.forget)
    intel_servicer = intelligence_consumer.wire(
        runtime, db, consent, settings, relay.notify, ready=live.wait
    )
    join_privacy_requests(
        runtime,
        privacy.PARTICIPANT,
        intelligence_consumer.with_intelligence(privacy.answerer(service.forget)),
    )

    stopping = asyncio.Event()

    async def retrain() -> None:
        await live.wait()
        loop = asyncio.get_running_loop()
        # The first fit is due at once: loop.time() is a monotonic clock whose
        # zero is arbitrary (the machine's boot), so 0.0 as "never" delayed it
        # by up to RETRAIN_INTERVAL_S on a freshly booted machine.
        last = -math.inf
        while not stopping.is_set():
            # An erasure or withdrawal refits at once (within a second): the
            # item-item weights must stop carrying that customer's share.
            due = loop.time() - last >= settings.retrain_interval_s or engine.erased.is_set()
            try:
                if due and engine.stale:
                    last = loop.time()
                    info = await asyncio.to_thread(engine.retrain)
                    # A new λ and blend go to the other replicas (ADR 0315).
                    if engine.tuned_here and await db.run(lambda: _publish_tuned(db, service)):
                        relay.notify()
                    log.info(
                        "models retrained",
                        extra={
                            "version": info.version,
                            "s": info.seconds,
                            "ease_lambda": info.ease_lambda,
                            "blend": json.dumps(info.tuned.blend) if info.tuned else "",
                            "validation": json.dumps(info.tuned.validation) if info.tuned else "",
                        },
                    )
                    # The recently active customers' lists for the new models,
                    # in batches off the request path (ADR 0190).
                    t0 = loop.time()
                    warmed = await asyncio.to_thread(engine.warm)
                    # The new models and warmed lists live until the next
                    # swap: out of the full passes too, or the requests'
                    # allocations trigger passes that walk them all (seen
                    # during the bench's runs, 70-430 ms each on the busy
                    # machine). Replaced models are still freed (by reference
                    # count; a test freed a frozen model after a retrain).
                    gc.freeze()
                    log.info("lists warmed", extra={"lists": warmed, "s": loop.time() - t0})
            except Exception:  # keep serving the last models
                log.exception("retraining failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), min(settings.retrain_interval_s, 0.5))

    async def stop_retraining() -> None:
        stopping.set()

    async def refresh_content() -> None:
        # Korean morphology loads for seconds: never on the request path.
        await live.wait()
        while not stopping.is_set():
            try:
                await asyncio.to_thread(engine.refresh_content)
            except Exception:
                log.exception("content index refresh failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), 0.25)

    async def resync_experiments() -> None:
        # Experiment status changes reach replicas on the stream; this reads
        # the few stored experiments every couple of seconds in case one was
        # missed (a replica that never learned "running" would not assign).
        await live.wait()
        while not stopping.is_set():
            try:
                await db.run(lambda: _experiments(db, service))
            except Exception:
                log.warning("experiment resync failed", exc_info=True)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), 2.0)

    runtime.extra_tasks.extend([retrain, refresh_content, resync_experiments])
    runtime.on_stop.append(stop_retraining)
    servicer = PersonalizationServicer(
        db,
        service,
        runtime.publisher,
        is_ready=live.is_set,
        after_commit=relay.notify,
        intelligence=intel_servicer.read_customer_view,
    )
    runtime.grpc_server = grpc_server_from_settings(
        settings,
        [
            (pb_grpc.add_PersonalizationServiceServicer_to_server, servicer),
            (ipb_grpc.add_IntelligenceServiceServicer_to_server, intel_servicer),
        ],
        [
            pb.DESCRIPTOR.services_by_name["PersonalizationService"].full_name,
            ipb.DESCRIPTOR.services_by_name["IntelligenceService"].full_name,
        ],
    )
    runtime.service = service  # type: ignore[attr-defined]
    runtime.engine = engine  # type: ignore[attr-defined]
    runtime.consent = consent  # type: ignore[attr-defined]
    runtime.live = live  # type: ignore[attr-defined]
    return runtime


SLOW_COLLECTION_S = 0.02


def _watch_full_collections() -> Callable[[str, dict[str, int]], None]:
    """Logs every full garbage collection that held the GIL longer than
    SLOW_COLLECTION_S (each one stalls every request in flight): what the
    freezes after loading and after each model swap are for, seen in
    production logs. Returns the callback, removed when the service stops."""
    started = [0.0]

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if info.get("generation") != 2:
            return
        if phase == "start":
            started[0] = time.perf_counter()
            return
        took = time.perf_counter() - started[0]
        if took > SLOW_COLLECTION_S:
            log.warning(
                "slow full garbage collection",
                extra={"ms": round(took * 1000, 1), "collected": info.get("collected", 0)},
            )

    gc.callbacks.append(on_gc)
    return on_gc


def _experiments(db: Database, service: Personalization) -> int:
    with db.session() as s:
        return service.resync_experiments(s)


def _publish_tuned(db: Database, service: Personalization) -> int:
    results = service.take_tuned()
    if not results:
        return 0
    try:
        with db.session() as s:
            service.publish_tuned(s, results)
    except Exception:
        service.untake_tuned(results)
        raise
    return len(results)


def _load(db: Database, service: Personalization) -> dict[str, int]:
    with db.session() as s:
        return service.load(s)


def _blend(text: str) -> dict[str, float] | None:
    """CXLOOP_PERSONALIZATION_BLEND: JSON weights over the default blend."""
    if not text.strip():
        return None
    import json

    from personalization.domain.recommender import DEFAULT_BLEND

    raw = json.loads(text)
    if not isinstance(raw, dict) or not all(
        k in DEFAULT_BLEND and isinstance(v, int | float) and v >= 0 for k, v in raw.items()
    ):
        raise ValueError(
            "CXLOOP_PERSONALIZATION_BLEND: a JSON object of non-negative weights over "
            + ", ".join(DEFAULT_BLEND)
        )
    return {**DEFAULT_BLEND, **{k: float(v) for k, v in raw.items()}}
