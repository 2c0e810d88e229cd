"""The one place that wires the consent service together."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta
from pathlib import Path

from cxloop.consent.v1 import consent_service_pb2 as pb
from cxloop.consent.v1 import consent_service_pb2_grpc as pb_grpc
from cxloop.consent.v1 import retention_service_pb2 as retention_pb
from cxloop.consent.v1 import retention_service_pb2_grpc as retention_grpc

from consent.adapters import retention as retention_store
from consent.adapters.grpc_servicer import ConsentServicer
from consent.adapters.retention_grpc import RetentionServicer
from consent.config import ConsentSettings
from consent.domain.receipt import Controller
from consent.service_layer.following import GPC_CONSUMER, PROFILES_CONSUMER, ConsentFollower
from consent.service_layer.handlers import ConsentHandlers
from consent.service_layer.messages import notice_published
from consent.service_layer.preferences import ConsentView
from consent.service_layer.privacy import ANSWERS_CONSUMER, PARTICIPANT, PrivacyRequests
from consent.service_layer.receipt_keys import ReceiptKeys
from consent.service_layer.retention import RetentionPolicies
from cxloop_libs.audit import audit_log_for
from cxloop_libs.consent.projection import ConsentProjection
from cxloop_libs.consent.proof import ProofHasher
from cxloop_libs.consent.receipts import ReceiptSigner
from cxloop_libs.consent.state_bucket import StateBucketSpec
from cxloop_libs.db import Database
from cxloop_libs.grpcx import grpc_server_from_settings
from cxloop_libs.messaging import BatchConsumer, ConsumerSpec
from cxloop_libs.messaging import catalog as ev
from cxloop_libs.pii.envelope import SubjectKeyring, master_key_from_settings
from cxloop_libs.privacy import join_privacy_requests
from cxloop_libs.privacy.retention import (
    CONSENT_LEDGER,
    PRIVACY_REQUESTS,
    PolicyBucketSpec,
    join_retention,
)
from cxloop_libs.runtime import ServiceRuntime, base_runtime

log = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).parent / "adapters" / "migrations"
CATALOGUE_REFRESH_S = 30.0


async def bootstrap(settings: ConsentSettings | None = None) -> ServiceRuntime:
    settings = settings or ConsentSettings.from_env()
    db = Database(settings.database_url)
    runtime = base_runtime(settings, db=db, migrations=MIGRATIONS)
    assert runtime.relay is not None
    relay = runtime.relay
    # The latest state per customer and per purpose, kept without age limit,
    # which every ConsentProjection rebuilds from (docs/adr/0011-consent-model.md).
    runtime.bus.streams.insert(1, StateBucketSpec())
    # Consent's subject keys (envelope encryption): erasure shreds them
    # (docs/adr/0015-per-service-subject-keyrings.md); they also seal
    # generated receipt signing keys.
    keyring = SubjectKeyring(master_key_from_settings(settings))
    # Every receipt key stays published after a rotation (RotateReceiptKey).
    receipt_keys = ReceiptKeys(ReceiptSigner(settings.signing_key_pem()), keyring)
    # Who read or changed consent data, when and why (docs/adr/0020-audit-log.md).
    audit = audit_log_for(runtime)
    handlers = ConsentHandlers(
        receipt_keys,
        controller=Controller(
            name=settings.controller_name,
            contact=settings.controller_contact,
            email=settings.controller_email,
            url=settings.controller_url,
            policy_url=settings.privacy_policy_url,
        ),
        jurisdiction=settings.jurisdiction,
        issuer=settings.receipt_issuer,
        gpc_purposes=settings.gpc_purpose_list,
    )
    # Consent follows identity: GPC on resolved interactions, merges, splits
    # (docs/adr/0013-consent-signals-merge-split.md).
    follower = ConsentFollower(handlers)
    for durable, subject, handler in (
        (GPC_CONSUMER, ev.INTERACTION_RESOLVED.subject, follower.on_resolved_interactions),
        (PROFILES_CONSUMER, "cx.identity.profile.>", follower.on_profile_changes),
    ):
        runtime.consumers.append(
            BatchConsumer(
                runtime.bus,
                db,
                ConsumerSpec(
                    stream="IDENTITY",
                    durable=durable,
                    filter_subject=subject,
                    batch_size=settings.consumer_batch_size,
                    max_deliver=settings.consumer_max_deliver,
                ),
                handler,
                on_commit=relay.notify,
            )
        )

    # Privacy requests as a saga (docs/adr/0014-privacy-request-saga.md):
    # consent answers as a participant like every other service, collects
    # the answers from each participant's stream and sweeps for silence.
    privacy = PrivacyRequests(
        handlers,
        settings.privacy_participant_list,
        answer_timeout=timedelta(seconds=settings.privacy_answer_timeout_s),
        default_jurisdiction=settings.jurisdiction,
        require_known_subject=settings.privacy_require_known_subject,
    )
    join_privacy_requests(
        runtime, PARTICIPANT, privacy.answer_as_participant, keyring=keyring, audit=audit
    )
    for name in settings.privacy_participant_list:
        runtime.consumers.append(
            BatchConsumer(
                runtime.bus,
                db,
                ConsumerSpec(
                    stream=name.upper(),
                    durable=ANSWERS_CONSUMER,
                    filter_subject=ev.PRIVACY_REQUEST_ANSWERED[name].subject,
                    batch_size=settings.consumer_batch_size,
                    max_deliver=settings.consumer_max_deliver,
                ),
                privacy.on_answers,
                on_commit=relay.notify,
            )
        )

    stopping = asyncio.Event()
    # The service's own in-memory view for CheckBatch: loaded from the ledger
    # projection, then kept current by its own writes and the state bucket
    # (which also carries other replicas' writes).
    view: ConsentProjection
    if settings.preferences_in_memory:
        view = ConsentView(runtime.bus)
        # What this process's transactions stage for the state bucket reaches
        # the view as they commit (GetPreferences reads after writes; ADR 0310).
        db.after_commit.append(view.after_commit(asyncio.get_running_loop()))
    else:
        view = ConsentProjection(runtime.bus)
    view_loaded = asyncio.Event()

    async def load_catalogue() -> None:
        await runtime.db_ready.wait()
        kid = await db.in_transaction(receipt_keys.sync)
        log.info("receipt signing key in use", extra={"kid": kid})
        staged = await db.in_transaction(handlers.announce_catalogue)
        relay.notify()
        log.info("consent catalogue loaded", extra={"purposes": staged})
        customers = await db.in_transaction(lambda s: handlers.load_view(s, view))
        view_loaded.set()
        log.info("consent view loaded", extra={"customers": customers})
        while not stopping.is_set():
            # Another replica (or an operator's tool) may publish a notice.
            try:
                await asyncio.wait_for(stopping.wait(), CATALOGUE_REFRESH_S)
                return
            except TimeoutError:
                pass
            try:
                for p in await db.in_transaction(handlers.load_catalogue):
                    view.apply_notice(notice_published(p))
                # Another replica may have rotated the receipt key.
                await db.in_transaction(receipt_keys.sync)
            except Exception as exc:  # keep the catalogue held; retry next round
                log.warning("catalogue refresh failed: %s", exc)

    async def follow_bucket() -> None:
        waits = {asyncio.ensure_future(view_loaded.wait()), asyncio.ensure_future(stopping.wait())}
        _, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        for t in pending:
            t.cancel()
        if not stopping.is_set():
            await view.run()

    async def sweep_privacy_requests() -> None:
        await runtime.db_ready.wait()
        while not stopping.is_set():
            try:
                await asyncio.wait_for(stopping.wait(), settings.privacy_check_interval_s)
                return
            except TimeoutError:
                pass
            try:
                if await db.in_transaction(privacy.sweep):
                    relay.notify()
            except Exception as exc:  # the next round tries again
                log.warning("privacy request sweep failed: %s", exc)

    async def stop_refreshing() -> None:
        stopping.set()
        await view.stop()

    runtime.extra_tasks.extend([load_catalogue, follow_bucket, sweep_privacy_requests])

    # Retention (docs/adr/0019-retention-policy.md): consent owns the policy,
    # puts it into the RETENTION_POLICY bucket, and purges its own data by it.
    runtime.bus.streams.insert(1, PolicyBucketSpec())
    policies = RetentionPolicies()
    join_retention(
        runtime,
        {
            CONSENT_LEDGER: retention_store.purge_superseded_records,
            PRIVACY_REQUESTS: retention_store.purge_closed_privacy_requests,
        },
    )

    async def announce_retention_policy() -> None:
        await runtime.db_ready.wait()
        while not stopping.is_set():
            try:
                await db.in_transaction(policies.announce)
                relay.notify()
                return
            except Exception as exc:  # database away: try again shortly
                log.warning("retention policy not announced yet: %s", exc)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stopping.wait(), 2.0)

    runtime.extra_tasks.append(announce_retention_policy)
    runtime.on_stop.append(stop_refreshing)
    servicer = ConsentServicer(
        db,
        handlers,
        ProofHasher(settings.hash_key),
        is_ready=runtime.db_ready.is_set,
        after_commit=relay.notify,
        view=view,
        view_ready=view_loaded.is_set,
        privacy=privacy,
        audit=audit,
        receipt_keys=receipt_keys,
        admin_callers=settings.admin_caller_set,
        auth_required=not settings.is_development or bool(settings.accepted_grpc_tokens),
    )
    runtime.grpc_server = grpc_server_from_settings(
        settings,
        [
            (pb_grpc.add_ConsentServiceServicer_to_server, servicer),
            (
                retention_grpc.add_RetentionServiceServicer_to_server,
                RetentionServicer(
                    db,
                    policies,
                    handlers,
                    is_ready=runtime.db_ready.is_set,
                    after_commit=relay.notify,
                    token_names=settings.grpc_token_names,
                ),
            ),
        ],
        [
            pb.DESCRIPTOR.services_by_name["ConsentService"].full_name,
            retention_pb.DESCRIPTOR.services_by_name["RetentionService"].full_name,
        ],
    )
    # Reachable for tests and operator tooling (publish_notice) in-process.
    runtime.handlers = handlers  # type: ignore[attr-defined]
    runtime.privacy = privacy  # type: ignore[attr-defined]
    runtime.keyring = keyring  # type: ignore[attr-defined]
    runtime.audit = audit  # type: ignore[attr-defined]
    runtime.receipt_keys = receipt_keys  # type: ignore[attr-defined]
    return runtime
