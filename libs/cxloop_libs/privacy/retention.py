"""How a service follows the retention policy: scheduled, batched purges.

The consent service owns the policy: days per data category (``interactions``,
``identity_graph``, ``consent_ledger``, ``privacy_requests``, ``audit_log``)
and per consent purpose. It publishes ``retention policy changed`` (full
policy) through its outbox and keeps the latest policy in the key-value bucket
``RETENTION_POLICY`` (key ``policy``), so a service reads it at start and
follows changes (docs/adr/0019-retention-policy.md).

A service joins with one call in its ``bootstrap.py``::

    from cxloop_libs.privacy.retention import join_retention

    def purge_old_orders(session, cutoff, limit):   # delete at most `limit` rows
        ...                                          # older than `cutoff`
        return rows_deleted

    join_retention(runtime, {"interactions": purge_old_orders})

The component then

- waits for the policy (it never purges on a guess: until the bucket answers,
  nothing is deleted);
- runs every purge once the policy is known, again every
  ``CXLOOP_RETENTION_INTERVAL_S`` (hourly) and at once when the policy changes;
- calls each purge repeatedly, one transaction per call, each deleting at most
  ``CXLOOP_RETENTION_BATCH_SIZE`` rows, until a call deletes nothing, so a
  large purge never holds locks for long;
- purges the service's inbox (processed event ids) under ``interactions``:
  the stream cannot redeliver an event older than its age limit;
- gives the service's own stream ``max_age`` = the ``interactions`` period;
- reports each round as ``retention purge completed`` (counts per category,
  never ids) on the service's own stream, and in the log.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from cxloop.consent.v1 import events_pb2 as pb
from google.protobuf.message import DecodeError
from opentelemetry import metrics
from sqlmodel import Session

from cxloop_libs.db import Database
from cxloop_libs.errors import InvalidArgument
from cxloop_libs.messaging import OutboxWriter, PendingEvent
from cxloop_libs.messaging import catalog as ev
from cxloop_libs.messaging.bus import NatsBus
from cxloop_libs.messaging.publisher import EventPublisher
from cxloop_libs.messaging.streams import DAY_S, KeyValueBucketSpec, set_stream_max_age
from cxloop_libs.messaging.tables import InboxEvent
from cxloop_libs.runtime import ServiceRuntime

log = logging.getLogger(__name__)

# -- the policy ----------------------------------------------------------------
INTERACTIONS = "interactions"
IDENTITY_GRAPH = "identity_graph"
CONSENT_LEDGER = "consent_ledger"
PRIVACY_REQUESTS = "privacy_requests"
AUDIT_LOG = "audit_log"

# Data categories and what their period means.
CATEGORIES: dict[str, str] = {
    INTERACTIONS: "events: each service's stream (max age) and its inbox of processed ids",
    IDENTITY_GRAPH: "profiles with no activity for the period, with their graph",
    CONSENT_LEDGER: "superseded consent records, counted from the decision replacing them",
    PRIVACY_REQUESTS: "closed privacy requests, counted from closing",
    AUDIT_LOG: "audit entries, counted from when they were written",
}
# Seeded by consent's migration; reasons in docs/adr/0019-retention-policy.md.
DEFAULT_CATEGORY_DAYS: dict[str, int] = {
    INTERACTIONS: 30,
    IDENTITY_GRAPH: 3 * 365,
    CONSENT_LEDGER: 5 * 365,
    PRIVACY_REQUESTS: 3 * 365,
    AUDIT_LOG: 2 * 365,
}
DEFAULT_PURPOSE_DAYS: dict[str, int] = {
    "analytics": 395,  # 13 months
    "personalization": 2 * 365,
    "profiling": 2 * 365,
    "marketing_email": 2 * 365,
    "marketing_sms": 2 * 365,
    "marketing_push": 2 * 365,
    "marketing_app": 2 * 365,
}
MIN_DAYS = 1
MAX_DAYS = 36_500
# Registration key of purpose-bound data: "purpose.<purpose key>".
PURPOSE_PREFIX = "purpose."


def purpose_key(purpose: str) -> str:
    return PURPOSE_PREFIX + purpose


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    version: int
    category_days: Mapping[str, int]
    purpose_days: Mapping[str, int] = field(default_factory=dict)
    changed_at: datetime | None = None
    changed_by: str = ""

    def days(self, key: str) -> int | None:
        """Days for a category or a ``purpose.<key>``; None when the policy has none."""
        if key.startswith(PURPOSE_PREFIX):
            return self.purpose_days.get(key[len(PURPOSE_PREFIX) :])
        return self.category_days.get(key)

    def period(self, key: str) -> timedelta | None:
        days = self.days(key)
        return timedelta(days=days) if days else None

    def to_proto(self) -> pb.RetentionPolicy:
        msg = pb.RetentionPolicy(
            version=self.version,
            category_days=dict(self.category_days),
            purpose_days=dict(self.purpose_days),
            changed_by=self.changed_by,
        )
        if self.changed_at is not None:
            msg.changed_at.FromDatetime(self.changed_at.astimezone(UTC))
        return msg

    @classmethod
    def from_proto(cls, msg: pb.RetentionPolicy) -> RetentionPolicy:
        return cls(
            version=msg.version,
            category_days=dict(msg.category_days),
            purpose_days=dict(msg.purpose_days),
            changed_at=msg.changed_at.ToDatetime(UTC) if msg.HasField("changed_at") else None,
            changed_by=msg.changed_by,
        )


def validate_periods(
    category_days: Mapping[str, int],
    purpose_days: Mapping[str, int],
    known_purposes: set[str] | frozenset[str],
) -> None:
    """Raise :class:`InvalidArgument` naming the first bad entry."""
    for name, days, known, what in (
        ("category_days", category_days, set(CATEGORIES), "category"),
        ("purpose_days", purpose_days, set(known_purposes), "purpose"),
    ):
        for key, value in days.items():
            where = f"{name}.{key}" if key else name
            if key not in known:
                raise InvalidArgument(
                    where, f"unknown {what}; known: {', '.join(sorted(known)) or 'none'}"
                )
            if not MIN_DAYS <= value <= MAX_DAYS:
                raise InvalidArgument(
                    where, f"must be between {MIN_DAYS} and {MAX_DAYS} days (got {value})"
                )


# -- where the policy lives on NATS ----------------------------------------------
POLICY_BUCKET = "RETENTION_POLICY"
POLICY_STREAM = f"KV_{POLICY_BUCKET}"
POLICY_KEY = "policy"


def policy_subject() -> str:
    """Subject of the bucket's value (what a KV put publishes on)."""
    return f"$KV.{POLICY_BUCKET}.{POLICY_KEY}"


@dataclass(frozen=True, slots=True)
class PolicyBucketSpec(KeyValueBucketSpec):
    """The bucket's stream: the latest policy only, no age limit."""

    name: str = POLICY_STREAM
    bucket: str = POLICY_BUCKET


# -- purges --------------------------------------------------------------------
# (session or None without a database, cutoff, limit) -> rows deleted. Delete
# at most `limit` rows (or units: identity deletes whole profiles) older than
# `cutoff`; the component calls again, in a new transaction, until it gets 0.
PurgeFn = Callable[[Session | None, datetime, int], int]

_INBOX: sa.Table = InboxEvent.__table__  # type: ignore[attr-defined]


def purge_inbox(session: Session | None, cutoff: datetime, limit: int) -> int:
    """Inbox rows (processed event ids) older than the cutoff: the stream no
    longer holds those events, so they can never be redelivered."""
    assert session is not None
    keys = session.execute(
        sa.select(_INBOX.c.consumer, _INBOX.c.event_id)
        .where(_INBOX.c.processed_at < cutoff)
        .limit(limit)
    ).all()
    if not keys:
        return 0
    deleted = 0
    by_consumer: dict[str, list[str]] = {}
    for consumer, event_id in keys:
        by_consumer.setdefault(consumer, []).append(event_id)
    for consumer, ids in by_consumer.items():
        result: Any = session.execute(
            sa.delete(_INBOX).where(_INBOX.c.consumer == consumer, _INBOX.c.event_id.in_(ids))
        )
        deleted += int(result.rowcount)
    return deleted


# Tables a purge addresses by name, per database: whether they exist (read
# once; migrations run before the schedule starts).
_HAS_TABLE: dict[tuple[str, str], bool] = {}


def _has_table(session: Session, name: str) -> bool:
    key = (session.get_bind().engine.url.render_as_string(hide_password=True), name)
    if key not in _HAS_TABLE:
        _HAS_TABLE[key] = sa.inspect(session.connection()).has_table(name)
    return _HAS_TABLE[key]


_AUDIT = sa.table("audit_event", sa.column("id"), sa.column("occurred_at"))


def purge_audit_log(session: Session | None, cutoff: datetime, limit: int) -> int:
    """Audit entries (cxloop_libs.audit's ``audit_event``) written before the
    cutoff; nothing where the service has no audit table."""
    assert session is not None
    if not _has_table(session, "audit_event"):
        return 0
    ids = list(
        session.execute(
            sa.select(_AUDIT.c.id)
            .where(_AUDIT.c.occurred_at < cutoff)
            .order_by(_AUDIT.c.id)
            .limit(limit)
        ).scalars()
    )
    if not ids:
        return 0
    result: Any = session.execute(sa.delete(_AUDIT).where(_AUDIT.c.id.in_(ids)))
    return int(result.rowcount)


@dataclass
class PurgeReport:
    policy_version: int
    started_at: datetime
    rows: dict[str, int] = field(default_factory=dict)
    batches: dict[str, int] = field(default_factory=dict)
    failed: list[str] = field(default_factory=list)
    stream_max_age_s: float = 0.0
    completed_at: datetime | None = None

    def to_proto(self, service: str) -> pb.RetentionPurgeCompleted:
        msg = pb.RetentionPurgeCompleted(
            service=service,
            policy_version=self.policy_version,
            rows_purged=self.rows,
            batches=self.batches,
            failed_categories=self.failed,
            stream_max_age_seconds=int(self.stream_max_age_s),
        )
        msg.started_at.FromDatetime(self.started_at)
        if self.completed_at is not None:
            msg.completed_at.FromDatetime(self.completed_at)
        return msg


def _utcnow() -> datetime:
    return datetime.now(UTC)


# A purge that still deletes after this many batches stops until the next
# round (a purge function that never reaches 0 must not spin forever).
MAX_BATCHES_PER_ROUND = 10_000


class RetentionSchedule:
    """One service's follower of the retention policy and its purge rounds."""

    def __init__(
        self,
        service: str,
        *,
        bus: NatsBus | None,
        publisher: EventPublisher | None = None,
        db: Database | None = None,
        after_commit: Callable[[], None] | None = None,
        stream: str | None = None,
        interval_s: float = 3600.0,
        batch_size: int = 500,
        clock: Callable[[], datetime] = _utcnow,
        bucket: str = POLICY_BUCKET,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.service = service
        self.kind = ev.RETENTION_PURGE_COMPLETED[service]
        self.bus = bus
        self.publisher = publisher
        self.db = db
        self.after_commit = after_commit
        self.stream = stream
        self.interval_s = interval_s
        self.batch_size = batch_size
        self.bucket = bucket
        self._clock = clock
        self._purges: dict[str, PurgeFn] = {}
        self._policy: RetentionPolicy | None = None
        self._policy_known = asyncio.Event()
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._lock = asyncio.Lock()
        self._watcher: Any = None
        self.reports: list[PurgeReport] = []
        self._rounds_done = asyncio.Condition()
        self._rows_purged = metrics.get_meter("cxloop.retention").create_counter(
            "cxloop_retention_rows_purged",
            unit="{row}",
            description="Rows deleted by scheduled retention purges, by category.",
        )

    # -- registration ------------------------------------------------------
    def register(self, key: str, purge: PurgeFn) -> None:
        """Purge ``key`` (a category or ``purpose.<key>``) on every round."""
        if not key.startswith(PURPOSE_PREFIX) and key not in CATEGORIES:
            raise ValueError(f"unknown retention category {key!r}; known: {', '.join(CATEGORIES)}")
        if key in self._purges:
            raise ValueError(f"a purge is already registered for {key!r}")
        self._purges[key] = purge

    @property
    def categories(self) -> list[str]:
        return list(self._purges)

    # -- the policy ------------------------------------------------------------
    @property
    def policy(self) -> RetentionPolicy | None:
        return self._policy

    def apply_policy(self, policy: RetentionPolicy) -> bool:
        """Hold a newer policy and wake the schedule; False if not newer."""
        if self._policy is not None and policy.version <= self._policy.version:
            return False
        first = self._policy is None
        self._policy = policy
        self._policy_known.set()
        if not first:
            self._wake.set()
        log.info(
            "retention policy applied",
            extra={"service": self.service, "policy_version": policy.version},
        )
        return True

    def apply_entry(self, value: bytes) -> bool:
        changed = pb.RetentionPolicyChanged()
        try:
            changed.ParseFromString(value)
        except DecodeError:
            log.error("undecodable retention policy entry")
            return False
        if not changed.HasField("policy"):
            return False
        return self.apply_policy(RetentionPolicy.from_proto(changed.policy))

    async def wait_policy(self, timeout: float | None = None) -> RetentionPolicy:
        await asyncio.wait_for(self._policy_known.wait(), timeout)
        assert self._policy is not None
        return self._policy

    # -- running ---------------------------------------------------------------
    async def run(self) -> None:
        """Follow the policy bucket and purge on schedule until :meth:`stop`."""
        follower = asyncio.ensure_future(self._follow())
        try:
            await self._schedule()
        finally:
            follower.cancel()
            with contextlib.suppress(BaseException):
                await follower

    async def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        watcher, self._watcher = self._watcher, None
        if watcher is not None:
            with contextlib.suppress(Exception):
                await watcher.stop()

    async def _follow(self) -> None:
        if self.bus is None:
            return
        await self.bus.ready()
        delay = 0.2
        waiting = False
        while not self._stopping.is_set():
            try:
                kv = await self.bus.js.key_value(self.bucket)
                self._watcher = await kv.watch(POLICY_KEY, inactive_threshold=3600.0)
                delay, waiting = 0.2, False
                async for entry in self._watcher:
                    if entry is not None and entry.value:
                        self.apply_entry(entry.value)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self._stopping.is_set():
                    break
                # No bucket yet (consent not started) or NATS away: purge
                # nothing until a policy is known; keep the one held. Said
                # once per outage, not at every retry.
                if not waiting:
                    log.info("retention waiting for the policy bucket: %s", exc)
                waiting = True
                await self._sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    async def _schedule(self) -> None:
        waits = {
            asyncio.ensure_future(self._policy_known.wait()),
            asyncio.ensure_future(self._stopping.wait()),
        }
        _, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        for t in pending:
            t.cancel()
        while not self._stopping.is_set():
            self._wake.clear()
            try:
                await self.purge_now()
            except Exception:  # a round never kills the service; the next retries
                log.exception("retention round failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval_s)

    async def wait_rounds(self, n: int, timeout: float | None = None) -> PurgeReport:
        """Wait until at least ``n`` rounds have completed (for tests/tools)."""

        async def reached() -> None:
            async with self._rounds_done:
                await self._rounds_done.wait_for(lambda: len(self.reports) >= n)

        await asyncio.wait_for(reached(), timeout)
        return self.reports[-1]

    async def purge_now(self) -> PurgeReport:
        """One round: stream age, then every registered purge, then the report."""
        policy = self._policy
        if policy is None:
            raise RuntimeError("no retention policy known yet")
        async with self._lock:
            report = PurgeReport(policy_version=policy.version, started_at=self._clock())
            if self.stream is not None and self.bus is not None:
                await self._apply_stream_age(policy, report)
            for key, purge in self._purges.items():
                if self._stopping.is_set():
                    break
                await self._purge_key(policy, key, purge, report)
            report.completed_at = self._clock()
            await self._report(report)
        async with self._rounds_done:
            self.reports.append(report)
            del self.reports[:-20]
            self._rounds_done.notify_all()
        return report

    async def _apply_stream_age(self, policy: RetentionPolicy, report: PurgeReport) -> None:
        assert self.stream is not None and self.bus is not None
        days = policy.days(INTERACTIONS)
        if not days:
            return
        max_age = days * DAY_S
        try:
            await self.bus.ready()
            await set_stream_max_age(self.bus.js, self.stream, max_age)
            report.stream_max_age_s = max_age
        except Exception as exc:
            log.warning("retention: stream max age not set: %s", exc)
            report.failed.append(f"stream:{self.stream}")

    async def _purge_key(
        self, policy: RetentionPolicy, key: str, purge: PurgeFn, report: PurgeReport
    ) -> None:
        period = policy.period(key)
        if period is None:
            return  # the policy keeps this data as long as it is needed
        cutoff = report.started_at - period
        total = batches = 0
        try:
            while batches < MAX_BATCHES_PER_ROUND and not self._stopping.is_set():
                n = await self._one_batch(purge, cutoff)
                if n <= 0:
                    break
                total += n
                batches += 1
        except Exception as exc:
            log.warning("retention purge of %s failed: %s", key, exc)
            report.failed.append(key)
        report.rows[key] = total
        report.batches[key] = batches
        if total:
            self._rows_purged.add(total, {"service": self.service, "category": key})

    async def _one_batch(self, purge: PurgeFn, cutoff: datetime) -> int:
        limit = self.batch_size
        if self.db is None:
            return await asyncio.to_thread(purge, None, cutoff, limit)
        return await self.db.in_transaction(lambda s: purge(s, cutoff, limit))

    async def _report(self, report: PurgeReport) -> None:
        log.info(
            "retention purge completed",
            extra={
                "service": self.service,
                "policy_version": report.policy_version,
                "rows_purged": dict(report.rows),
                "failed": list(report.failed),
            },
        )
        message = report.to_proto(self.service)
        try:
            if self.db is not None:

                def stage(session: Session) -> None:
                    outbox = OutboxWriter(session)
                    outbox.stage(self.kind, message)
                    outbox.flush()

                await self.db.in_transaction(stage)
                if self.after_commit is not None:
                    self.after_commit()
            elif self.publisher is not None:
                await self.publisher.publish(PendingEvent.of(self.kind, message))
        except Exception as exc:  # the purge happened; only the report is lost
            log.warning("retention report not published: %s", exc)


def join_retention(
    runtime: ServiceRuntime,
    purges: Mapping[str, PurgeFn] | None = None,
    *,
    manage_stream: bool = True,
) -> RetentionSchedule:
    """Follow the retention policy in this service: run ``purges`` (category or
    ``purpose.<key>`` -> purge function) on schedule, purge the inbox when the
    service has a database, and keep its own stream's age at the
    ``interactions`` period."""
    settings = runtime.settings
    name = runtime.name
    stream = None
    if manage_stream:
        stream = name.upper()
        # On restart the stream keeps the age the policy gave it instead of
        # going back to the default until the policy is read again.
        runtime.bus.streams = [
            replace(s, keep_existing_max_age=True) if s.name == stream else s
            for s in runtime.bus.streams
        ]
    relay = runtime.relay
    schedule = RetentionSchedule(
        name,
        bus=runtime.bus,
        publisher=runtime.publisher,
        db=runtime.db,
        after_commit=relay.notify if relay is not None else None,
        stream=stream,
        interval_s=settings.retention_interval_s,
        batch_size=settings.retention_batch_size,
    )
    # Every service with a database has an inbox, and the audit log where it
    # keeps one (cxloop_libs.audit).
    table: dict[str, PurgeFn] = (
        {INTERACTIONS: purge_inbox, AUDIT_LOG: purge_audit_log} if runtime.db is not None else {}
    )
    for key, purge in (purges or {}).items():
        table[key] = _both(table[key], purge) if key in table else purge
    for key, purge in table.items():
        schedule.register(key, purge)

    async def run() -> None:
        if runtime.db is not None:
            await runtime.db_ready.wait()
        await schedule.run()

    runtime.extra_tasks.append(run)
    runtime.on_stop.append(schedule.stop)
    # Reachable for tests and operator tooling (``runtime.retention.purge_now()``).
    runtime.retention = schedule  # type: ignore[attr-defined]
    return schedule


def _both(first: PurgeFn, second: PurgeFn) -> PurgeFn:
    def purge(session: Session | None, cutoff: datetime, limit: int) -> int:
        n = first(session, cutoff, limit)
        return n + second(session, cutoff, max(0, limit - n)) if n < limit else n

    return purge


__all__ = [
    "AUDIT_LOG",
    "CATEGORIES",
    "CONSENT_LEDGER",
    "DEFAULT_CATEGORY_DAYS",
    "DEFAULT_PURPOSE_DAYS",
    "IDENTITY_GRAPH",
    "INTERACTIONS",
    "MAX_DAYS",
    "MIN_DAYS",
    "POLICY_BUCKET",
    "POLICY_KEY",
    "POLICY_STREAM",
    "PRIVACY_REQUESTS",
    "PolicyBucketSpec",
    "PurgeFn",
    "PurgeReport",
    "RetentionPolicy",
    "RetentionSchedule",
    "join_retention",
    "policy_subject",
    "purge_audit_log",
    "purge_inbox",
    "purpose_key",
    "validate_periods",
]
