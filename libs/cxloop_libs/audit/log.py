"""The audit log: who read or changed consent or personal data, when and why.

One component every service uses (docs/adr/0020-audit-log.md):

    audit = audit_log_for(runtime)                        # bootstrap.py
    actor = audit.actor(context)                          # in the servicer
    profile = await db.in_transaction(
        audit.audited(actor, Action.READ, "identity.profile", lambda s: load(s, cid), subject=cid)
    )

Each entry is a row of ``audit_event`` in the service's own database, written
in the caller's transaction (a change and its audit row commit or fail
together), plus an ``audit recorded`` event staged in the same transaction
through the outbox on the service's own stream (``cx.<service>.audit.recorded``)
so the whole suite's log can be read across streams (``cxloop audit export``).

Reads answered from memory (a batch consent check) have no transaction: they
go through :meth:`AuditLog.record_later`, a buffer written in batches.

Reads of one customer at request rates (the customer 360 asks identity,
consent... for every page an agent opens) go through :meth:`AuditLog.read`:
the read runs in a read-only transaction, and its entry joins the entries of
the reads that arrived together, written in one transaction (group commit);
the answer still leaves only once its entry is committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, TypeVar

import psycopg
import sqlalchemy as sa
from cxloop.audit.v1 import audit_pb2 as apb
from cxloop.audit.v1 import events_pb2 as aepb
from google.protobuf.timestamp_pb2 import Timestamp
from opentelemetry import trace
from sqlmodel import Session

from cxloop_libs.audit.actor import Actor, actor_from_grpc
from cxloop_libs.audit.tables import AUDIT_TABLE
from cxloop_libs.batching import RequestBatcher
from cxloop_libs.db import Database, bulk_insert, is_transient_db_error
from cxloop_libs.db.aio import AsyncStatements
from cxloop_libs.errors import InvalidArgument
from cxloop_libs.messaging import OutboxWriter
from cxloop_libs.messaging import catalog as ev

log = logging.getLogger(__name__)
T = TypeVar("T")

MAX_PAGE = 5000
DEFAULT_PAGE = 500


class Action(StrEnum):
    READ = "read"
    CHANGE = "change"
    EXPORT = "export"
    ERASE = "erase"

    def to_proto(self) -> apb.AuditAction.ValueType:
        return _ACTION_TO_PROTO[self]

    @classmethod
    def from_proto(cls, value: int) -> Action | None:
        return _ACTION_FROM_PROTO.get(value)


class Outcome(StrEnum):
    OK = "ok"
    NOT_FOUND = "not_found"


_ACTION_TO_PROTO = {
    Action.READ: apb.AUDIT_ACTION_READ,
    Action.CHANGE: apb.AUDIT_ACTION_CHANGE,
    Action.EXPORT: apb.AUDIT_ACTION_EXPORT,
    Action.ERASE: apb.AUDIT_ACTION_ERASE,
}
_ACTION_FROM_PROTO = {int(v): k for k, v in _ACTION_TO_PROTO.items()}
_OUTCOME_TO_PROTO = {
    Outcome.OK: apb.AUDIT_OUTCOME_OK,
    Outcome.NOT_FOUND: apb.AUDIT_OUTCOME_NOT_FOUND,
}
_OUTCOME_FROM_PROTO = {int(v): k for k, v in _OUTCOME_TO_PROTO.items()}


def utcnow() -> datetime:
    return datetime.now(UTC)


def _aware(ts: datetime) -> datetime:
    return ts if ts.tzinfo is not None else ts.replace(tzinfo=UTC)


def current_trace_id() -> str:
    ctx = trace.get_current_span().get_span_context()
    return format(ctx.trace_id, "032x") if ctx.is_valid else ""


@dataclass(frozen=True, slots=True)
class AuditEntry:
    audit_id: str
    service: str
    occurred_at: datetime
    actor: str
    action: Action
    resource: str
    subject: str = ""
    on_behalf_of: str = ""
    reason: str = ""
    outcome: Outcome = Outcome.OK
    trace_id: str = ""
    fields: tuple[str, ...] = ()
    operation: str = ""
    subject_count: int = 0

    def to_proto(self) -> apb.AuditEntry:
        ts = Timestamp()
        ts.FromDatetime(_aware(self.occurred_at))
        return apb.AuditEntry(
            audit_id=self.audit_id,
            service=self.service,
            occurred_at=ts,
            actor=self.actor,
            on_behalf_of=self.on_behalf_of,
            action=self.action.to_proto(),
            resource=self.resource,
            subject=self.subject,
            reason=self.reason,
            outcome=_OUTCOME_TO_PROTO[self.outcome],
            trace_id=self.trace_id,
            fields=list(self.fields),
            operation=self.operation,
            subject_count=self.subject_count,
        )

    @classmethod
    def from_proto(cls, m: apb.AuditEntry) -> AuditEntry:
        return cls(
            audit_id=m.audit_id,
            service=m.service,
            occurred_at=m.occurred_at.ToDatetime(UTC),
            actor=m.actor,
            action=Action.from_proto(m.action) or Action.READ,
            resource=m.resource,
            subject=m.subject,
            on_behalf_of=m.on_behalf_of,
            reason=m.reason,
            outcome=_OUTCOME_FROM_PROTO.get(m.outcome, Outcome.OK),
            trace_id=m.trace_id,
            fields=tuple(m.fields),
            operation=m.operation,
            subject_count=m.subject_count,
        )

    def to_json(self) -> dict[str, Any]:
        """One JSON object (an export line, an access bundle entry)."""
        return {
            "audit_id": self.audit_id,
            "service": self.service,
            "occurred_at": _aware(self.occurred_at).isoformat(),
            "actor": self.actor,
            "on_behalf_of": self.on_behalf_of,
            "action": self.action.value,
            "resource": self.resource,
            "subject": self.subject,
            "subject_count": self.subject_count,
            "reason": self.reason,
            "outcome": self.outcome.value,
            "trace_id": self.trace_id,
            "operation": self.operation,
            "fields": list(self.fields),
        }

    def row(self) -> dict[str, Any]:
        return {
            "audit_id": self.audit_id,
            "occurred_at": self.occurred_at,
            "actor": self.actor[:100],
            "on_behalf_of": self.on_behalf_of[:100],
            "action": self.action.value,
            "resource": self.resource[:64],
            "subject": self.subject[:64],
            "subject_count": self.subject_count,
            "reason": self.reason[:500],
            "outcome": self.outcome.value,
            "trace_id": self.trace_id[:32],
            "operation": self.operation[:64],
            "fields": json.dumps(list(self.fields)),
        }


@dataclass(frozen=True, slots=True)
class AuditQuery:
    """Filters of an export; empty ones match everything."""

    subject: str = ""
    actor: str = ""
    since: datetime | None = None
    until: datetime | None = None
    action: Action | None = None


def _from_row(service: str, r: Any) -> AuditEntry:
    return AuditEntry(
        audit_id=r.audit_id,
        service=service,
        occurred_at=_aware(r.occurred_at),
        actor=r.actor,
        action=Action(r.action),
        resource=r.resource,
        subject=r.subject,
        on_behalf_of=r.on_behalf_of,
        reason=r.reason,
        outcome=Outcome(r.outcome),
        trace_id=r.trace_id,
        fields=tuple(json.loads(r.fields or "[]")),
        operation=r.operation,
        subject_count=r.subject_count,
    )


def parse_page_token(token: str) -> int:
    """The id after which the next page starts; INVALID_ARGUMENT if garbled."""
    if not token:
        return 0
    if not token.startswith("a") or not token[1:].isdigit():
        raise InvalidArgument("page_token", "not a token this service returned")
    return int(token[1:])


def page_token(after_id: int) -> str:
    return f"a{after_id}"


class AuditLog:
    """A service's audit log (rows in its own database + events on its stream)."""

    def __init__(
        self,
        service: str,
        *,
        token_names: Mapping[str, str] | None = None,
        db: Database | None = None,
        on_commit: Callable[[], None] | None = None,
        clock: Callable[[], datetime] = utcnow,
        flush_interval_s: float = 0.2,
        max_buffered: int = 50_000,
        ready: Callable[[], Awaitable[Any]] | None = None,
    ) -> None:
        self._ready = ready
        self.service = service
        self.kind = ev.AUDIT_RECORDED[service]
        self.token_names = dict(token_names or {})
        self.db = db
        self.on_commit = on_commit
        self.clock = clock
        self.flush_interval_s = flush_interval_s
        self.max_buffered = max_buffered
        self._buffer: list[AuditEntry] = []
        # Entries whose callers wait for their commit (:meth:`read`).
        self._commits: RequestBatcher[AuditEntry, None] = RequestBatcher(
            self._commit_entries, max_batch=500, max_wait_s=0.0
        )
        self._wake = asyncio.Event()
        self._stopping = False
        self.dropped = 0
        self._aio: AsyncStatements | None = None

    # -- who --------------------------------------------------------------------
    def actor(self, context: Any) -> Actor:
        """The caller of a gRPC call (token name, x-cxloop-actor, x-cxloop-reason)."""
        return actor_from_grpc(context, self.token_names)

    # -- writing ----------------------------------------------------------------
    def entry(
        self,
        actor: Actor,
        action: Action,
        resource: str,
        *,
        subject: str = "",
        fields: Sequence[str] = (),
        outcome: Outcome = Outcome.OK,
        operation: str = "",
        subject_count: int | None = None,
        reason: str | None = None,
    ) -> AuditEntry:
        return AuditEntry(
            audit_id=str(uuid.uuid4()),
            service=self.service,
            occurred_at=self.clock(),
            actor=actor.name,
            on_behalf_of=actor.on_behalf_of,
            reason=actor.reason if reason is None else reason,
            action=action,
            resource=resource,
            subject=subject,
            outcome=outcome,
            trace_id=current_trace_id(),
            fields=tuple(fields),
            operation=operation,
            subject_count=(1 if subject else 0) if subject_count is None else subject_count,
        )

    def record(
        self,
        session: Session,
        actor: Actor,
        action: Action,
        resource: str,
        **details: Any,
    ) -> AuditEntry:
        """Write one entry in the caller's transaction (see :meth:`entry`)."""
        entry = self.entry(actor, action, resource, **details)
        self.write(session, [entry])
        return entry

    def write(self, session: Session, entries: Sequence[AuditEntry]) -> int:
        """Rows and their ``audit recorded`` events, in ``session``'s transaction."""
        if not entries:
            return 0
        rows = [e.row() for e in entries]
        if len(rows) == 1:
            session.execute(sa.insert(AUDIT_TABLE).values(**rows[0]))
        else:
            bulk_insert(session, AUDIT_TABLE, rows)
        outbox = OutboxWriter(session)
        self._stage(outbox, entries)
        outbox.flush()
        return len(entries)

    def _stage(self, outbox: OutboxWriter, entries: Sequence[AuditEntry]) -> None:
        for e in entries:
            outbox.stage(
                self.kind,
                aepb.AuditRecorded(entry=e.to_proto()),
                subject=e.subject,
                # The entry's id: a replayed outbox row is dropped by JetStream.
                event_id=e.audit_id,
            )

    def audited(
        self,
        actor: Actor,
        action: Action,
        resource: str,
        fn: Callable[[Session], T],
        *,
        subject: str | Callable[[T], str] = "",
        fields: Sequence[str] = (),
        operation: str = "",
    ) -> Callable[[Session], T]:
        """``fn`` wrapped so that its transaction also writes the audit entry.
        A ``None`` result (nothing found) is recorded as NOT_FOUND: the caller
        still learned something about the subject."""

        def run(session: Session) -> T:
            result = fn(session)
            self.write(
                session,
                [self._entry_of(result, actor, action, resource, subject, fields, operation)],
            )
            return result

        return run

    def _entry_of(
        self,
        result: T,
        actor: Actor,
        action: Action,
        resource: str,
        subject: str | Callable[[T], str],
        fields: Sequence[str],
        operation: str,
    ) -> AuditEntry:
        """The entry of a read that returned ``result`` (None: not found)."""
        return self.entry(
            actor,
            action,
            resource,
            subject=subject(result) if callable(subject) else subject,
            fields=fields,
            operation=operation,
            outcome=Outcome.NOT_FOUND if result is None else Outcome.OK,
        )

    # -- group-committed (reads at request rates) -------------------------------
    async def read(
        self,
        actor: Actor,
        action: Action,
        resource: str,
        fn: Callable[[Session], T],
        *,
        subject: str | Callable[[T], str] = "",
        fields: Sequence[str] = (),
        operation: str = "",
    ) -> T:
        """``fn`` in its own read transaction, then its entry committed with
        those of the reads that arrived together; returns once the entry is
        stored (as :meth:`audited`, a failed write fails the read). A read
        per transaction with its entry cost identity's `GetProfile` an insert,
        an outbox row and a commit each."""
        if self.db is None:
            raise RuntimeError("AuditLog.read needs the service's database")
        result = await self.db.in_transaction(fn)
        await self.commit(
            self._entry_of(result, actor, action, resource, subject, fields, operation)
        )
        return result

    async def commit(self, entry: AuditEntry) -> None:
        """Store ``entry`` with others submitted meanwhile; returns once committed."""
        await self._commits.submit(entry)

    async def _commit_entries(self, entries: Sequence[AuditEntry]) -> Sequence[None]:
        assert self.db is not None
        batch = list(entries)
        statements = self._statements()
        if statements is None:
            await self.db.in_transaction(lambda s: self.write(s, batch))
        else:
            await self._insert(statements, batch)
        if self.on_commit is not None:
            self.on_commit()
        return [None] * len(batch)

    def _statements(self) -> AsyncStatements | None:
        """PostgreSQL's statements on the event loop, opened on first use
        (None on SQLite: entries go through a session in a worker thread)."""
        if self._aio is None and self.db is not None and not self.db.is_sqlite:
            self._aio = AsyncStatements.for_database(self.db)
        return self._aio

    async def _insert(self, statements: AsyncStatements, batch: list[AuditEntry]) -> None:
        """The entries' rows and outbox rows as one statement on the event
        loop: atomic like a transaction, without a worker thread, a session
        and three round trips (identity's `GetProfile` paid them per call:
        docs/adr/0295). Errors surface as SQLAlchemy's, as from a session."""
        outbox = OutboxWriter(None)
        self._stage(outbox, batch)
        try:
            await statements.insert_rows(
                [(AUDIT_TABLE, [e.row() for e in batch]), (OutboxWriter.TABLE, outbox.drain())]
            )
        except psycopg.Error as err:
            raise _as_sqlalchemy(err) from err

    # -- buffered (reads answered without a transaction) ------------------------
    def record_later(self, entry: AuditEntry) -> None:
        """Queue an entry for the background writer (:meth:`run`)."""
        if len(self._buffer) >= self.max_buffered:
            # The database is gone for long: keep the newest, say so loudly.
            self._buffer.pop(0)
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                log.error("audit buffer full, oldest entries dropped", extra={"n": self.dropped})
        self._buffer.append(entry)
        if len(self._buffer) >= 500:
            self._wake.set()

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    async def flush(self) -> int:
        """Write what is buffered in one transaction; entries stay queued if it fails."""
        if not self._buffer or self.db is None:
            return 0
        batch, self._buffer = self._buffer, []
        try:
            n = await self.db.in_transaction(lambda s: self.write(s, batch))
        except BaseException:
            self._buffer[:0] = batch
            raise
        if self.on_commit is not None:
            self.on_commit()
        return n

    async def run(self) -> None:
        if self._ready is not None:
            await self._ready()
        backoff = self.flush_interval_s
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), backoff)
            self._wake.clear()
            try:
                await self.flush()
                backoff = self.flush_interval_s
            except Exception as exc:
                if not is_transient_db_error(exc):
                    log.exception("audit flush failed")
                else:
                    log.warning("audit flush: database unavailable, retrying")
                backoff = min(max(backoff * 2, 0.2), 5.0)

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        with contextlib.suppress(Exception):
            await self.flush()
        if self._aio is not None:
            await self._aio.close()

    # -- reading ----------------------------------------------------------------
    def page(
        self, session: Session, query: AuditQuery, *, after_id: int = 0, limit: int = DEFAULT_PAGE
    ) -> list[tuple[int, AuditEntry]]:
        """Entries matching ``query`` after row ``after_id``, oldest first."""
        t = AUDIT_TABLE
        stmt = sa.select(t).where(t.c.id > after_id)
        if query.subject:
            stmt = stmt.where(t.c.subject == query.subject)
        if query.actor:
            stmt = stmt.where(t.c.actor == query.actor)
        if query.since is not None:
            stmt = stmt.where(t.c.occurred_at >= query.since)
        if query.until is not None:
            stmt = stmt.where(t.c.occurred_at < query.until)
        if query.action is not None:
            stmt = stmt.where(t.c.action == query.action.value)
        rows = session.execute(stmt.order_by(t.c.id).limit(limit)).all()
        return [(r.id, _from_row(self.service, r)) for r in rows]

    def about(self, session: Session, subject: str, *, limit: int = 10_000) -> list[AuditEntry]:
        """Everything recorded about one customer (for an access bundle)."""
        return [e for _, e in self.page(session, AuditQuery(subject=subject), limit=limit)]


def _as_sqlalchemy(err: psycopg.Error) -> sa.exc.DBAPIError:
    """A driver error as SQLAlchemy wraps it (callers tell a lost database
    from a bad statement by those classes: is_transient_db_error)."""
    kind: type[sa.exc.DBAPIError] = sa.exc.DBAPIError
    if isinstance(err, psycopg.IntegrityError):
        kind = sa.exc.IntegrityError
    elif isinstance(err, psycopg.OperationalError):
        kind = sa.exc.OperationalError
    elif isinstance(err, psycopg.ProgrammingError):
        kind = sa.exc.ProgrammingError
    return kind("audit entries", None, err)


def audit_log_for(runtime: Any) -> AuditLog:
    """The service's audit log, its background writer run by ``runtime``
    (a cxloop_libs.runtime.ServiceRuntime with a database)."""
    if runtime.db is None:
        raise ValueError("an audit log lives in the service's database; this one has none")
    settings = runtime.settings
    relay = runtime.relay
    audit = AuditLog(
        settings.service_name,
        token_names=settings.grpc_token_names,
        db=runtime.db,
        on_commit=relay.notify if relay is not None else None,
        ready=runtime.db_ready.wait,
    )
    runtime.extra_tasks.append(audit.run)
    runtime.on_stop.append(audit.stop)
    return audit
