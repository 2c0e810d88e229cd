"""The one place that wires the analytics service together."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from datetime import UTC, datetime
from pathlib import Path

from cxloop.analytics.v1 import analytics_service_pb2 as pb
from cxloop.analytics.v1 import analytics_service_pb2_grpc as pb_grpc
from cxloop.analytics.v1 import events_pb2 as events_pb
from sqlmodel import Session

from analytics.adapters import clickhouse_store
from analytics.adapters.clickhouse_store import ClickHouseEventStore
from analytics.adapters.decoder import ProcessDecoder
from analytics.adapters.event_store import EventStore
from analytics.adapters.grpc_servicer import AnalyticsServicer
from analytics.adapters.webhook import WebhookNotifier
from analytics.config import AnalyticsSettings
from analytics.entrypoints.consumers import EventStoreConsumer
from analytics.service_layer import kpis
from analytics.service_layer.clickhouse_journeys import ClickHouseJourneys
from analytics.service_layer.ingest import Ingest
from analytics.service_layer.journeys import JourneyAnalytics
from cxloop_libs.consent.projection import ConsentProjection
from cxloop_libs.db import Database
from cxloop_libs.grpcx import grpc_server_from_settings
from cxloop_libs.messaging import BatchConsumer, ConsumerSpec
from cxloop_libs.messaging import catalog as ev
from cxloop_libs.privacy import PrivacyAnswer, RequestKind
from cxloop_libs.privacy.participant import PrivacyParticipant
from cxloop_libs.privacy.retention import join_retention, purpose_key
from cxloop_libs.runtime import ServiceRuntime, base_runtime

log = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).parent / "adapters" / "migrations"
PARTICIPANT = "analytics"


async def bootstrap(settings: AnalyticsSettings | None = None) -> ServiceRuntime:
    settings = settings or AnalyticsSettings.from_env()
    db = Database(settings.database_url)
    runtime = base_runtime(settings, db=db, migrations=MIGRATIONS)
    assert runtime.relay is not None
    relay = runtime.relay
    store: EventStore | ClickHouseEventStore
    journeys: JourneyAnalytics | ClickHouseJourneys
    if settings.store == "clickhouse":
        # One ClickHouse server shared by the replicas (docs/adr/0270): they
        # share durables too, each event stored by one of them.
        ch = ClickHouseEventStore(
            clickhouse_store.connect(settings.clickhouse_url, settings.clickhouse_password),
            settings.clickhouse_database,
        )
        await asyncio.to_thread(ch.ensure_schema)
        store, journeys = ch, ClickHouseJourneys(ch)
        prefix = "analytics-clickhouse"
    else:
        # One writer per DuckDB file: each replica owns its file and reads the
        # whole stream through durables of its own (docs/adr/0061).
        duck = EventStore(settings.duckdb_path)
        store, journeys = duck, JourneyAnalytics(duck, threads=settings.query_threads)
        prefix = f"analytics-{settings.replica}"
    runtime.store = store  # type: ignore[attr-defined]
    runtime.on_stop.append(lambda: asyncio.to_thread(store.close))
    runtime.on_stop.append(lambda: asyncio.to_thread(journeys.close))

    def durable(purpose: str) -> str:
        return f"{prefix}-{purpose}"

    # Consent: nothing of a customer who objected to analytics is stored; an
    # objection arriving later erases what was stored before it.
    projection = ConsentProjection(runtime.bus)
    ingest = Ingest(
        store, lambda cid: projection.may_use(cid, settings.purpose), purpose=settings.purpose
    )
    runtime.ingest = ingest  # type: ignore[attr-defined]
    objectors: set[str] = set()
    stopping = asyncio.Event()

    def on_consent_change(customer_id: str) -> None:
        if not projection.may_use(customer_id, settings.purpose):
            objectors.add(customer_id)

    projection.on_change.append(on_consent_change)

    async def erase_objectors() -> None:
        while not stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), 1.0)
            if objectors:
                batch = list(objectors)
                objectors.difference_update(batch)
                try:
                    await asyncio.to_thread(store.erase_many, batch)
                except Exception as exc:
                    objectors.update(batch)
                    log.warning("erasing objectors' events failed, retrying: %s", exc)

    async def stop_background() -> None:
        stopping.set()
        await projection.stop()

    runtime.extra_tasks.extend([projection.run, erase_objectors])
    runtime.on_stop.append(stop_background)

    # Interactions decoded in a child process (docs/adr/0245), started in
    # the background so boot does not wait for its imports.
    decoder = ProcessDecoder() if settings.ingest_decode_process else None
    if decoder is not None:
        runtime.extra_tasks.append(decoder.start)
        runtime.on_stop.append(lambda: asyncio.to_thread(decoder.close))
    interactions = EventStoreConsumer(
        runtime.bus,
        db,
        ConsumerSpec(
            stream="IDENTITY",
            durable=durable("interactions"),
            filter_subject=ev.INTERACTION_RESOLVED.subject,
            batch_size=settings.ingest_batch_size,
            max_deliver=settings.consumer_max_deliver,
        ),
        ingest.on_interactions,
        # Until consent's state is read, every check would deny: wait for it.
        gate=projection.wait_ready,
        decoder=decoder,
        store_decoded=ingest.store_decoded if decoder is not None else None,
    )
    profiles = EventStoreConsumer(
        runtime.bus,
        db,
        ConsumerSpec(
            stream="IDENTITY",
            durable=durable("profiles"),
            filter_subject=ev.PROFILE_MERGED.subject,
            batch_size=settings.consumer_batch_size,
            max_deliver=settings.consumer_max_deliver,
        ),
        ingest.on_profiles,
    )
    # Personalization's segment membership, for funnels by segment and
    # cohorts of a segment (docs/adr/0275); the ClickHouse store has no
    # segment table yet (it refuses those two questions, naming the field).
    segments = EventStoreConsumer(
        runtime.bus,
        db,
        ConsumerSpec(
            stream="PERSONALIZATION",
            durable=durable("segments"),
            filter_subject="cx.personalization.segment.*",
            batch_size=settings.consumer_batch_size,
            max_deliver=settings.consumer_max_deliver,
        ),
        ingest.on_segments,
        gate=projection.wait_ready,
    )
    # Feedback's and loyalty's events about a customer are journey steps too
    # (a survey answered, a support case opened, points earned: ADR 0280).
    touchpoints = [
        EventStoreConsumer(
            runtime.bus,
            db,
            ConsumerSpec(
                stream=domain.upper(),
                durable=durable(f"{domain}-touchpoints"),
                filter_subject=f"cx.{domain}.>",
                batch_size=settings.consumer_batch_size,
                max_deliver=settings.consumer_max_deliver,
            ),
            ingest.on_touchpoints,
            gate=projection.wait_ready,
        )
        for domain in ("feedback", "loyalty")
    ]
    runtime.consumers.extend([interactions, profiles, *touchpoints])
    if isinstance(store, EventStore):
        runtime.consumers.append(segments)

    # Privacy requests: every replica erases its own file, so each has its
    # own durable; all answer with the same derived event id (published once).
    def answer(session: Session | None, customer_id: str, kind: RequestKind) -> PrivacyAnswer:
        if kind is RequestKind.ERASURE:
            n = store.erase(customer_id)
            return PrivacyAnswer(["behavioural_events"], {"behavioural_events": n})
        if kind is RequestKind.ACCESS:
            held = {"behavioural_events": store.export(customer_id)}
            if isinstance(store, EventStore):
                held["segment_memberships"] = store.export_segments(customer_id)
            held = {k: v for k, v in held.items() if v}
            if not held:
                return PrivacyAnswer()
            return PrivacyAnswer(
                sorted(held),
                {k: len(v) for k, v in held.items()},
                json.dumps(held, sort_keys=True, default=str),
            )
        return PrivacyAnswer()

    participant = PrivacyParticipant(PARTICIPANT, answer)
    spec = participant.spec(max_deliver=settings.consumer_max_deliver)
    runtime.consumers.append(
        BatchConsumer(
            runtime.bus,
            db,
            ConsumerSpec(
                stream=spec.stream,
                durable=durable("privacy"),
                filter_subject=spec.filter_subject,
                batch_size=spec.batch_size,
                max_deliver=spec.max_deliver,
            ),
            participant.on_requests,
            on_commit=relay.notify,
        )
    )

    # Retention: events are kept as long as consent's policy allows for the
    # analytics purpose.
    join_retention(
        runtime,
        {
            purpose_key(settings.purpose): lambda _s, cutoff, limit: store.purge_before(
                cutoff, limit
            )
        },
    )

    notifier = WebhookNotifier(settings.alert_webhook_url) if settings.alert_webhook_url else None
    watch = kpis.AlertWatch(store)

    async def watch_kpis_once() -> list[events_pb.AlertRaised]:
        now = datetime.now(UTC)

        def check(session: Session) -> list[events_pb.AlertRaised]:
            raised = []
            for d in kpis.all_definitions(session):
                if d.alerting:
                    raised.extend(watch.check(session, d, now))
            return raised

        raised = await db.in_transaction(check)
        if raised:
            relay.notify()
        if notifier is not None:
            for alert in raised:
                if await db.in_transaction(
                    lambda s, a=alert: kpis.claim_notification(s, a.alert_id)
                ):
                    try:
                        await notifier.notify(alert)
                    except Exception as exc:  # the alert stays listed and published
                        log.warning("alert webhook failed: %s", exc)
        return raised

    async def watch_kpis() -> None:
        await runtime.db_ready.wait()
        while not stopping.is_set():
            try:
                await watch_kpis_once()
            except Exception as exc:
                log.warning("KPI watch failed: %s", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), settings.alert_interval_s)

    async def warm_layout() -> None:
        # Build the sorted layout before the first funnel asks for it.
        await asyncio.to_thread(store.ensure_layout)

    runtime.extra_tasks.extend([watch_kpis, warm_layout])
    runtime.watch_kpis_once = watch_kpis_once  # type: ignore[attr-defined]

    runtime.grpc_server = grpc_server_from_settings(
        settings,
        [
            (
                pb_grpc.add_AnalyticsServiceServicer_to_server,
                AnalyticsServicer(journeys, db, is_ready=runtime.db_ready.is_set),
            )
        ],
        [pb.DESCRIPTOR.services_by_name["AnalyticsService"].full_name],
    )
    return runtime
