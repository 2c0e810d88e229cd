"""The one place that wires the loyalty service together."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from cxloop.loyalty.v1 import loyalty_service_pb2 as pb
from cxloop.loyalty.v1 import loyalty_service_pb2_grpc as pb_grpc
from sqlmodel import Session

from cxloop_libs.audit import audit_log_for
from cxloop_libs.consent.projection import ConsentProjection
from cxloop_libs.db import Database
from cxloop_libs.grpcx import grpc_server_from_settings
from cxloop_libs.messaging import BatchConsumer, ConsumerSpec
from cxloop_libs.messaging import catalog as ev
from cxloop_libs.privacy import PrivacyAnswer, RequestKind, join_privacy_requests
from cxloop_libs.privacy.retention import join_retention
from cxloop_libs.runtime import ServiceRuntime, base_runtime
from loyalty.adapters.store import Tx
from loyalty.config import LoyaltySettings
from loyalty.entrypoints.consumers import (
    ACTIONS_CONSUMER,
    FEEDBACK_CONSUMER,
    INTERACTIONS_CONSUMER,
    PROFILES_CONSUMER,
    LoyaltyConsumers,
)
from loyalty.entrypoints.grpc_api import LoyaltyServicer
from loyalty.service_layer import membership
from loyalty.service_layer.handlers import LoyaltyHandlers
from loyalty.service_layer.rulebook import RuleBook
from loyalty.service_layer.schedule import LedgerSchedule

log = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).parent / "adapters" / "migrations"


class GatedConsumer(BatchConsumer):
    """Starts consuming once ``gate`` is set (the consent view is loaded), so
    an offer is never refused for want of a consent view still loading."""

    def __init__(self, gate: asyncio.Event, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.gate = gate

    async def run(self) -> None:
        waits = {
            asyncio.ensure_future(self.gate.wait()),
            asyncio.ensure_future(self._stopped.wait()),
        }
        _, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        for w in pending:
            w.cancel()
        if not self._stopping:
            await super().run()


async def bootstrap(settings: LoyaltySettings | None = None) -> ServiceRuntime:
    settings = settings or LoyaltySettings.from_env()
    if not settings.database_url:
        settings = settings.model_copy(update=LoyaltySettings.defaults_for("loyalty"))
    db = Database(settings.database_url)
    runtime = base_runtime(settings, db=db, migrations=MIGRATIONS)
    assert runtime.relay is not None
    relay = runtime.relay
    audit = audit_log_for(runtime)
    rules = RuleBook(settings.rules)
    handlers = LoyaltyHandlers(
        rules,
        hold_seconds=settings.redemption_hold_s,
        goodwill_points=settings.goodwill_points,
        offer_max_points=settings.offer_max_points,
        coupon_valid_days=settings.coupon_valid_days,
        birthday_zone=ZoneInfo(settings.birthday_timezone),
    )
    # Offers (goodwill, personalised) need marketing consent: the local view.
    consent = ConsentProjection(runtime.bus)
    consent_ready = asyncio.Event()
    rules_ready = asyncio.Event()
    consumers = LoyaltyConsumers(
        handlers,
        default_currency=settings.default_currency,
        consent=consent,
        offer_purposes=settings.offer_purpose_list,
    )

    def spec(stream: str, durable: str, subject: str) -> ConsumerSpec:
        return ConsumerSpec(
            stream=stream,
            durable=durable,
            filter_subject=subject,
            batch_size=settings.consumer_batch_size,
            max_deliver=settings.consumer_max_deliver,
        )

    for stream, durable, subject, handler, gate in (
        (
            "IDENTITY",
            INTERACTIONS_CONSUMER,
            ev.INTERACTION_RESOLVED.subject,
            consumers.on_interactions,
            rules_ready,
        ),
        (
            "IDENTITY",
            PROFILES_CONSUMER,
            "cx.identity.profile.>",
            consumers.on_profiles,
            rules_ready,
        ),
        ("FEEDBACK", FEEDBACK_CONSUMER, "cx.feedback.>", consumers.on_feedback, consent_ready),
        (
            "PERSONALIZATION",
            ACTIONS_CONSUMER,
            ev.ACTION_TRIGGERED.subject,
            consumers.on_actions,
            consent_ready,
        ),
    ):
        runtime.consumers.append(
            GatedConsumer(
                gate,
                runtime.bus,
                db,
                spec(stream, durable, subject),
                handler,
                on_commit=relay.notify,
            )
        )

    def answer(session: Session | None, customer_id: str, kind: RequestKind) -> PrivacyAnswer:
        assert session is not None
        tx = Tx(session)
        out = membership.answer_privacy(tx, customer_id, kind)
        tx.flush()
        return out

    join_privacy_requests(runtime, "loyalty", answer, audit=audit)
    # Retention (docs/adr/0019): the inbox and audit log by the policy, and
    # the stream's age. Safe for exactly-once: postings keep their unique keys.
    join_retention(runtime)

    schedule = LedgerSchedule(
        db,
        handlers,
        notice_days=settings.expiring_notice_days,
        idempotency_ttl=timedelta(hours=settings.idempotency_ttl_h),
        after_commit=relay.notify,
    )
    stopping = asyncio.Event()

    async def load_rules() -> None:
        await runtime.db_ready.wait()
        while not stopping.is_set():
            try:
                await db.in_transaction(rules.load)
                rules_ready.set()
            except Exception as exc:  # database away: keep the rules held
                log.warning("rule set not loaded: %r", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), min(settings.schedule_interval_s, 5.0))

    async def follow_consent() -> None:
        task = asyncio.ensure_future(consent.run())
        with contextlib.suppress(Exception):
            waiter = asyncio.ensure_future(consent.wait_ready())
            await asyncio.wait(
                {waiter, task, asyncio.ensure_future(stopping.wait())},
                return_when=asyncio.FIRST_COMPLETED,
            )
        if consent.is_ready:
            consent_ready.set()
        await task

    async def run_schedule() -> None:
        await schedule.run(rules_ready, settings.schedule_interval_s)

    async def stop_tasks() -> None:
        stopping.set()
        await schedule.stop()
        await consent.stop()

    runtime.extra_tasks.extend([load_rules, follow_consent, run_schedule])
    runtime.on_stop.append(stop_tasks)
    servicer = LoyaltyServicer(
        db,
        handlers,
        is_ready=rules_ready.is_set,
        after_commit=relay.notify,
        audit=audit,
        admin_callers=settings.admin_caller_set,
        auth_required=not settings.is_development or bool(settings.accepted_grpc_tokens),
    )
    runtime.grpc_server = grpc_server_from_settings(
        settings,
        [(pb_grpc.add_LoyaltyServiceServicer_to_server, servicer)],
        [pb.DESCRIPTOR.services_by_name["LoyaltyService"].full_name],
    )
    runtime.handlers = handlers  # type: ignore[attr-defined]
    runtime.redeems = servicer.redeems  # type: ignore[attr-defined]
    runtime.rules_ready = rules_ready  # type: ignore[attr-defined]
    runtime.consumers_api = consumers  # type: ignore[attr-defined]
    runtime.schedule = schedule  # type: ignore[attr-defined]
    runtime.consent = consent  # type: ignore[attr-defined]
    runtime.audit = audit  # type: ignore[attr-defined]
    return runtime
