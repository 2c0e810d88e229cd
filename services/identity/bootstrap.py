"""The one place that wires the identity service together."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from cxloop.identity.v1 import identity_service_pb2 as pb
from cxloop.identity.v1 import identity_service_pb2_grpc as pb_grpc
from tenacity import AsyncRetrying, retry_if_exception, wait_exponential_jitter

from cxloop_libs.audit import audit_log_for
from cxloop_libs.db import Database, is_transient_db_error
from cxloop_libs.db.aio import AsyncStatements
from cxloop_libs.grpcx import grpc_server_from_settings
from cxloop_libs.messaging import BatchConsumer, ConsumerSpec
from cxloop_libs.messaging import catalog as ev
from cxloop_libs.pii import IdentifierHasher
from cxloop_libs.pii.envelope import SubjectKeyring, master_key_from_settings
from cxloop_libs.privacy.retention import join_retention
from cxloop_libs.runtime import ServiceRuntime, base_runtime
from identity.adapters import privacy, retention
from identity.adapters.grpc_servicer import IdentityServicer
from identity.adapters.index_sync import join_index_sync
from identity.adapters.match_model import load_match_model
from identity.adapters.owner_cache import OwnerCache, follow_commits, join_invalidation
from identity.adapters.planner import join_statistics_upkeep, use_index_costs
from identity.adapters.trait_store import TraitStore
from identity.config import IdentitySettings
from identity.service_layer import consent_gate
from identity.service_layer.handlers import IdentityHandlers
from identity.service_layer.imports import RecordImporter
from identity.service_layer.operations import GraphOperations
from identity.service_layer.realtime import CandidateIndex, index_stored_records
from identity.service_layer.resolver import BatchedResolver, IdentifierOwners

log = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).parent / "adapters" / "migrations"
INTERACTIONS_CONSUMER = "identity-interactions"


async def bootstrap(settings: IdentitySettings | None = None) -> ServiceRuntime:
    settings = settings or IdentitySettings.from_env()
    db = Database(settings.database_url)
    use_index_costs(db.engine)  # batches of keys probe indexes (ADR 0265)
    runtime = base_runtime(settings, db=db, migrations=MIGRATIONS)
    join_statistics_upkeep(runtime)  # ... also where autovacuum is off
    assert runtime.relay is not None
    relay = runtime.relay
    hasher = IdentifierHasher(settings.hash_key, default_region=settings.default_phone_region)
    policy = consent_gate.wire(
        runtime, settings.link_requires_marketing_consent, settings.merge_policy(hasher)
    )
    # Traits are kept sealed per customer (ADR 0015, 0017); the real-time
    # index holds earlier records' match features, opened at start.
    keyring = SubjectKeyring(master_key_from_settings(settings))
    traits = TraitStore(keyring)
    index = CandidateIndex(
        max_block_size=settings.realtime_max_block_size,
        max_candidates=settings.realtime_max_candidates,
    )
    model = load_match_model(settings.match_model)
    handlers = IdentityHandlers(
        policy=policy,
        traits=traits,
        survivorship=settings.survivorship_policy(),
        index=index,
        model=model,
    )
    operations = GraphOperations(traits=traits)
    runtime.consumers.append(
        BatchConsumer(
            runtime.bus,
            db,
            ConsumerSpec(
                stream="GATEWAY",
                durable=INTERACTIONS_CONSUMER,
                filter_subject=ev.INTERACTION_RECORDED.subject,
                batch_size=settings.consumer_batch_size,
                max_deliver=settings.consumer_max_deliver,
            ),
            handlers.on_interactions,
            on_commit=relay.notify,
        )
    )
    # Who read or changed a profile, when and why (docs/adr/0020-audit-log.md).
    audit = audit_log_for(runtime)
    servicer = IdentityServicer(
        db,
        handlers,
        hasher,
        is_ready=runtime.db_ready.is_set,
        after_commit=relay.notify,
        default_region=settings.default_phone_region,
        operations=operations,
        ignored_hashes=policy.ignored_hashes,
        resolver=_resolver(runtime, settings, db, handlers, relay.notify),
        importer=RecordImporter(model=model, policy=policy, traits=traits, index=index),
        audit=audit,
    )

    async def load_index() -> None:
        await runtime.db_ready.wait()
        async for attempt in AsyncRetrying(
            wait=wait_exponential_jitter(multiplier=0.2, max=5.0),
            retry=retry_if_exception(is_transient_db_error),
            reraise=True,
        ):
            with attempt:
                n = await db.in_transaction(
                    lambda s: index_stored_records(s, traits, index, hasher)
                )
        index.loaded.set()
        log.info("real-time index loaded", extra={"records": n})

    runtime.extra_tasks.append(load_index)
    # Other replicas' records and erasures reach this index by event (ADR 0056).
    join_index_sync(runtime, db, traits, index, hasher)
    runtime.candidate_index = index  # type: ignore[attr-defined]  # for tests
    runtime.grpc_server = grpc_server_from_settings(
        settings,
        [(pb_grpc.add_IdentityServiceServicer_to_server, servicer)],
        [pb.DESCRIPTOR.services_by_name["IdentityService"].full_name],
    )
    # Answers privacy requests: erasure deletes the customer's graph rows
    # (docs/adr/0014-privacy-request-saga.md).
    participant = privacy.join(runtime, keyring=keyring, index=index)
    participant.audit = audit  # erasure/export on record; access bundles carry the log
    # Retention (docs/adr/0019-retention-policy.md): profiles inactive past the
    # identity_graph period go by the erasure path; inbox and stream age too.
    join_retention(runtime, retention.purges(participant))
    return runtime


def _resolver(
    runtime: ServiceRuntime,
    settings: IdentitySettings,
    db: Database,
    handlers: IdentityHandlers,
    notify: Callable[[], None],
) -> BatchedResolver:
    """Resolve's batcher; on PostgreSQL with the event-loop paths for
    returning customers (docs/adr/0022-hot-path-cpu.md) and new ones
    (docs/adr/0024-resolve-at-1000-per-second.md), each on its own
    connection."""
    reads, writes = AsyncStatements.for_database(db), AsyncStatements.for_database(db)
    if reads is None or writes is None:
        return BatchedResolver(db, handlers, after_commit=notify)
    runtime.on_stop += [reads.close, writes.close]
    cache = None
    if settings.owner_cache_size:
        cache = OwnerCache(settings.owner_cache_size, settings.owner_cache_ttl_s)
        follow_commits(cache, db.engine)  # this process's merges, splits, erasures
        join_invalidation(runtime, cache)  # other replicas'
    return BatchedResolver(
        db, handlers, after_commit=notify, owners=IdentifierOwners(reads, cache), writer=writes
    )
