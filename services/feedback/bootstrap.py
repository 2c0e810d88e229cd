"""The one place that wires the feedback service together."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import hmac
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from cxloop.feedback.v1 import feedback_service_pb2 as pb
from cxloop.feedback.v1 import feedback_service_pb2_grpc as pb_grpc

from cxloop_libs.consent import ConsentProjection
from cxloop_libs.db import Database
from cxloop_libs.grpcx import grpc_server_from_settings
from cxloop_libs.messaging import BatchConsumer, ConsumerSpec
from cxloop_libs.messaging import catalog as ev
from cxloop_libs.pii.envelope import SubjectKeyring, master_key_from_settings
from cxloop_libs.runtime import ServiceRuntime, base_runtime
from feedback.adapters import privacy
from feedback.adapters.grpc_servicer import FeedbackServicer
from feedback.adapters.sentiment_model import load_or_train
from feedback.config import FeedbackSettings
from feedback.domain.invitations import ContactPolicy, ResponseTokens
from feedback.service_layer.analysis import TextAnalyzer
from feedback.service_layer.handlers import FeedbackConfig, FeedbackHandlers

log = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).parent / "adapters" / "migrations"
TRIGGERS_CONSUMER = "feedback-survey-triggers"


class AnalyzerSlot:
    """The text analyzer once its model is loaded (None before)."""

    def __init__(self) -> None:
        self.analyzer: TextAnalyzer | None = None
        self.ready = asyncio.Event()

    def __call__(self) -> TextAnalyzer | None:
        return self.analyzer


def token_key(master_key: bytes) -> bytes:
    """Response tokens are signed with a key derived from the master key:
    one secret fewer to deploy, and a different key than any subject key."""
    return hmac.new(master_key, b"cxloop.feedback.response-token.v1", hashlib.sha256).digest()


async def bootstrap(settings: FeedbackSettings | None = None) -> ServiceRuntime:
    settings = settings or FeedbackSettings.from_env()
    db = Database(settings.database_url)
    runtime = base_runtime(settings, db=db, migrations=MIGRATIONS)
    assert runtime.relay is not None
    relay = runtime.relay
    master = master_key_from_settings(settings)
    keyring = SubjectKeyring(master)
    # Survey contact needs consent (purpose `survey_purpose`), read from the
    # local projection of consent's state bucket (no call per check).
    projection = ConsentProjection(runtime.bus)
    runtime.extra_tasks.append(projection.run)
    runtime.on_stop.append(projection.stop)
    slot = AnalyzerSlot()
    handlers = FeedbackHandlers(
        keyring=keyring,
        tokens=ResponseTokens(token_key(master)),
        consent=projection,
        analyzer=slot,
        config=FeedbackConfig(
            survey_purpose=settings.survey_purpose,
            contact_policy=ContactPolicy(
                global_wait=timedelta(days=settings.contact_global_wait_days),
                cooldown_after_invite=timedelta(days=settings.contact_cooldown_after_invite_days),
                cooldown_after_response=timedelta(
                    days=settings.contact_cooldown_after_response_days
                ),
            ),
            kpi_time_zone=settings.kpi_time_zone,
            follow_up_survey_id=settings.follow_up_survey_id,
        ),
    )
    runtime.feedback_handlers = handlers  # type: ignore[attr-defined]
    runtime.consent_projection = projection  # type: ignore[attr-defined]
    runtime.analyzer_slot = slot  # type: ignore[attr-defined]

    async def load_model() -> None:
        cache = Path(settings.model_cache_dir) if settings.model_cache_dir else None
        model = await asyncio.to_thread(
            functools.partial(
                load_or_train,
                cache,
                settings.sentiment_train_limit,
                korean_morphemes=settings.sentiment_korean_morphemes,
            )
        )
        analyzer = TextAnalyzer(model)
        # Loads kiwipiepy's model and VADER's lexicon now, not in a request.
        await asyncio.to_thread(analyzer.analyze, ["배송이 빨라요", "fast delivery"])
        slot.analyzer = analyzer
        slot.ready.set()
        log.info("text analytics ready")

    runtime.extra_tasks.append(load_model)
    runtime.consumers.append(
        BatchConsumer(
            runtime.bus,
            db,
            ConsumerSpec(
                stream="IDENTITY",
                durable=TRIGGERS_CONSUMER,
                filter_subject=ev.INTERACTION_RESOLVED.subject,
                batch_size=settings.consumer_batch_size,
                max_deliver=settings.consumer_max_deliver,
            ),
            handlers.on_interactions,
            on_commit=relay.notify,
        )
    )
    servicer = FeedbackServicer(
        db, handlers, after_commit=relay.notify, response_batch_max=settings.response_batch_max
    )
    runtime.grpc_server = grpc_server_from_settings(
        settings,
        [(pb_grpc.add_FeedbackServiceServicer_to_server, servicer)],
        [pb.DESCRIPTOR.services_by_name["FeedbackService"].full_name],
    )
    # Erasure removes the customer's rows and shreds its key; KPI tallies stay.
    privacy.join(runtime, keyring)

    # The rounds end when the service stops, rather than sleeping on until
    # the runtime's stop gives up waiting for them (5 s) and cancels them.
    stopping = asyncio.Event()

    async def stop_rounds() -> None:
        stopping.set()

    runtime.on_stop.append(stop_rounds)

    def every(
        interval: float, work: Callable[[Any], Any], name: str
    ) -> Callable[[], Awaitable[None]]:
        async def loop() -> None:
            await runtime.db_ready.wait()
            while not stopping.is_set():
                try:
                    await db.in_transaction(work)
                    relay.notify()
                except Exception:  # a bad round must not stop the loop
                    log.exception("%s round failed", name)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stopping.wait(), interval)

        return loop

    runtime.extra_tasks += [
        every(settings.dispatch_interval_s, handlers.dispatch_due, "invitation dispatch"),
        every(settings.escalation_interval_s, handlers.escalate_overdue, "case escalation"),
        every(settings.anomaly_interval_s, handlers.scan_anomalies, "anomaly scan"),
    ]
    return runtime
