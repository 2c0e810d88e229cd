"""Transactional outbox: an event is written in the same transaction as the
state change it reports, and a relay publishes it afterwards.

So a crash between "commit" and "publish" can delay an event but never lose
it, and a crash after publishing but before deleting the row only re-sends an
event JetStream de-duplicates by ``Nats-Msg-Id``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, NamedTuple

import sqlalchemy as sa
from google.protobuf.message import Message
from sqlmodel import Session

from cxloop_libs.db import Database, bulk_insert, is_transient_db_error
from cxloop_libs.db.aio import AsyncStatements
from cxloop_libs.messaging.catalog import EventKind, kind_for_type
from cxloop_libs.messaging.cloudevents import new_event_id
from cxloop_libs.messaging.publisher import EventPublisher, PendingEvent
from cxloop_libs.messaging.tables import OutboxEvent, utcnow
from cxloop_libs.telemetry import current_traceparent

_OUTBOX: sa.Table = OutboxEvent.__table__  # type: ignore[attr-defined]

log = logging.getLogger(__name__)


class OutboxWriter:
    """Stages events inside the caller's transaction; :meth:`flush` writes them
    all with one multi-row insert (call it before the transaction commits)."""

    TABLE = _OUTBOX

    def __init__(self, session: Session | None, *, binary_copy: bool = False) -> None:
        """Without a session the rows are only staged, for a caller that
        writes them itself in its own transaction (`drain`). ``binary_copy``:
        a flush of many rows uses PostgreSQL's binary COPY (`bulk_insert`;
        the rows staged here have the outbox's column types)."""
        self.session = session
        self.binary_copy = binary_copy
        self._rows: list[dict[str, object]] = []

    def stage(
        self,
        kind: EventKind,
        message: Message,
        *,
        subject: str = "",
        event_id: str | None = None,
        traceparent: str | None = None,
        nats_subject: str | None = None,
    ) -> str:
        """Stage one event. ``nats_subject`` overrides the kind's subject, for
        events that must land elsewhere (e.g. a key-value bucket's ``$KV.…``)."""
        return self.stage_serialized(
            kind,
            message.SerializeToString(),
            subject=subject,
            event_id=event_id,
            traceparent=traceparent,
            nats_subject=nats_subject,
        )

    def stage_serialized(
        self,
        kind: EventKind,
        data: bytes,
        *,
        subject: str = "",
        event_id: str | None = None,
        traceparent: str | None = None,
        nats_subject: str | None = None,
    ) -> str:
        """:meth:`stage` for a message the caller serialized (``kind``'s
        message type), e.g. from parts shared by many events of a batch."""
        event_id = event_id or new_event_id()
        self._rows.append(
            {
                "event_id": event_id,
                "ce_type": kind.ce_type,
                "nats_subject": nats_subject or kind.subject,
                "ce_subject": subject,
                "data": data,
                "traceparent": current_traceparent() if traceparent is None else traceparent,
                "created_at": utcnow(),
            }
        )
        return event_id

    def __len__(self) -> int:
        return len(self._rows)

    def drain(self) -> list[dict[str, object]]:
        """The staged rows (of `TABLE`), handed over instead of flushed."""
        rows, self._rows = self._rows, []
        return rows

    def flush(self) -> int:
        n = len(self._rows)
        if n:
            if self.session is None:
                raise RuntimeError("an outbox writer without a session cannot flush; drain it")
            bulk_insert(self.session, _OUTBOX, self._rows, binary=self.binary_copy)
            self._rows = []
        return n


# Deleted outbox rows between two VACUUMs of the outbox by its relay.
VACUUM_AFTER_ROWS = 5000


def next_poll_interval(current: float, sent: int, base: float, idle: float) -> float:
    """How long the relay waits for a wake-up before polling again: ``base``
    after a round that sent something, else twice as long as last time, up
    to ``idle``."""
    return base if sent else min(max(current, base) * 2, idle)


class OutboxRelay:
    """Publishes staged events in batches, oldest first."""

    def __init__(
        self,
        db: Database,
        publisher: EventPublisher,
        *,
        batch_size: int = 500,
        poll_interval_s: float = 0.05,
        min_round_interval_s: float = 0.0,
        idle_poll_interval_s: float = 0.25,
        vacuum_after_rows: int = VACUUM_AFTER_ROWS,
    ) -> None:
        self.db = db
        self.publisher = publisher
        self.batch_size = batch_size
        self.poll_interval_s = poll_interval_s
        # Polling is the safety net for rows no wake-up announced (another
        # process's commit, a relay that died before sending). At 20 polls a
        # second it cost each idle service ~3 % of a core (a thread hop and a
        # query each), so while polls find nothing the interval doubles up to
        # this; a wake-up or a found row brings it back to poll_interval_s.
        self.idle_poll_interval_s = max(idle_poll_interval_s, poll_interval_s)
        self._interval = poll_interval_s
        self.min_round_interval_s = min_round_interval_s
        self.rounds = 0
        self._wake = asyncio.Event()
        self._stopping = False
        self.published = 0
        self._forward: Callable[[], None] | None = None
        # On PostgreSQL the fetch and delete run on the event loop: two single
        # statements per round, no thread hop (docs/adr/0022-hot-path-cpu.md).
        self._aio = AsyncStatements.for_database(db)
        table = _OUTBOX.name
        self._fetch_sql = (
            "SELECT id, event_id, ce_type, nats_subject, ce_subject, data, traceparent,"
            f" created_at FROM {table} ORDER BY id LIMIT %s"
        )
        self._delete_sql = f"DELETE FROM {table} WHERE id = ANY(%s)"
        # The outbox is a queue: every relayed row leaves a dead tuple, and
        # the fetch (`ORDER BY id LIMIT n`) walks all of them until a VACUUM.
        # After a 50,000-event backlog that was ~7.4 ms of PostgreSQL CPU per
        # round instead of ~0.1 (a round per 10 ms: most of a core), and
        # autovacuum, where it runs at all, comes a minute or more later. So
        # the relay vacuums its own table every `vacuum_after_rows` deleted
        # rows (PostgreSQL only; 0 turns it off; docs/adr/0265).
        self.vacuum_after_rows = vacuum_after_rows
        self._vacuum_sql = f"VACUUM (SKIP_LOCKED) {table}"
        self._deleted_since_vacuum = 0
        self._vacuum_aio: AsyncStatements | None = None
        self._vacuum_task: asyncio.Future[None] | None = None
        self.vacuums = 0

    def notify(self) -> None:
        """Called after a commit that staged events, so they leave at once."""
        self._wake.set()
        if self._forward is not None:
            self._forward()

    def forward_notifications(self, fn: Callable[[], None]) -> None:
        """Also call ``fn`` on every notify (a relay in another process)."""
        self._forward = fn

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    async def run(self) -> None:
        try:
            await self._run()
        finally:
            if self._vacuum_task is not None:
                await asyncio.gather(self._vacuum_task, return_exceptions=True)
            for statements in (self._aio, self._vacuum_aio):
                if statements is not None:
                    await statements.close()

    async def _run(self) -> None:
        await self.publisher.bus.ready()
        backoff = 0.2
        loop = asyncio.get_running_loop()
        while not self._stopping:
            started = loop.time()
            try:
                sent = await self.relay_once()
                backoff = 0.2
            except Exception as exc:
                if not (is_transient_db_error(exc) or AsyncStatements.is_transient(exc)):
                    log.exception("outbox relay failed")
                else:
                    log.warning("outbox relay: database unavailable, retrying")
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            if sent >= self.batch_size:
                continue  # more waiting: no sleep
            self._interval = next_poll_interval(
                self._interval, sent, self.poll_interval_s, self.idle_poll_interval_s
            )
            try:
                await asyncio.wait_for(self._wake.wait(), self._interval)
                self._interval = self.poll_interval_s  # woken: activity
            except TimeoutError:
                pass
            # Commits arriving close together leave in one round.
            gap = self.min_round_interval_s - (loop.time() - started)
            if gap > 0 and not self._stopping:
                await asyncio.sleep(gap)
            self._wake.clear()

    async def relay_once(self) -> int:
        self.rounds += 1
        if self._aio is not None:
            rows: list[Any] = [
                _Staged(*r) for r in await self._aio.fetch(self._fetch_sql, (self.batch_size,))
            ]
        else:
            rows = await self.db.run(self._fetch)
        if not rows:
            return 0
        events = []
        sent_rows = []
        for row in rows:
            kind = kind_for_type(row.ce_type)
            if kind is None:  # a newer writer's event type: leave it for a newer relay
                log.error("outbox row with unknown type", extra={"ce_type": row.ce_type})
                continue
            events.append(
                PendingEvent(
                    kind=kind,
                    data=row.data,
                    event_id=row.event_id,
                    subject=row.ce_subject,
                    time=_as_aware(row.created_at),
                    # As stored: no span per relayed event (ADR 0022).
                    traceparent=row.traceparent or "",
                    nats_subject=row.nats_subject,
                )
            )
            sent_rows.append(row)
        results = await self.publisher.publish_many(events)
        done_ids = [
            row.id
            for row, res in zip(sent_rows, results, strict=True)
            if not isinstance(res, BaseException) and row.id is not None
        ]
        failed = len(events) - len(done_ids)
        if done_ids:
            if self._aio is not None:
                await self._aio.execute(self._delete_sql, (done_ids,))
                await self._vacuum_now_and_then(len(done_ids))
            else:
                await self.db.run(self._delete, done_ids)
            self.published += len(done_ids)
        if failed:
            # Keep order guarantees simple: stop this round, retry the rest soon.
            raise _PublishFailed(f"{failed} outbox events not acknowledged by JetStream")
        return len(done_ids)

    async def _vacuum_now_and_then(self, deleted: int) -> None:
        if self._aio is None or self.vacuum_after_rows <= 0:
            return
        self._deleted_since_vacuum += deleted
        busy = self._vacuum_task is not None and not self._vacuum_task.done()
        if self._deleted_since_vacuum < self.vacuum_after_rows or busy:
            return
        self._deleted_since_vacuum = 0
        # On a connection of its own, not awaited: a VACUUM waits for its
        # writes to reach the disk (0.1-0.5 s on a busy machine), rounds go on.
        self._vacuum_task = asyncio.ensure_future(self._vacuum())

    async def _vacuum(self) -> None:
        if self._vacuum_aio is None:
            self._vacuum_aio = AsyncStatements.for_database(self.db)
        if self._vacuum_aio is None:
            return
        try:
            # Skips (does not wait) when autovacuum or another relay holds it.
            await self._vacuum_aio.utility(self._vacuum_sql)
            self.vacuums += 1
        except Exception as exc:  # housekeeping: never fails the relay
            if not AsyncStatements.is_transient(exc):
                log.warning("outbox vacuum failed: %r", exc)

    def _fetch(self) -> list[sa.Row[Any]]:
        # Core, not ORM: the relay reads thousands of rows a second.
        t = _OUTBOX
        with self.db.session() as s:
            return list(
                s.execute(
                    sa.select(
                        t.c.id,
                        t.c.event_id,
                        t.c.ce_type,
                        t.c.nats_subject,
                        t.c.ce_subject,
                        t.c.data,
                        t.c.traceparent,
                        t.c.created_at,
                    )
                    .order_by(t.c.id)
                    .limit(self.batch_size)
                )
            )

    def _delete(self, ids: list[int]) -> None:
        with self.db.session() as s:
            s.execute(sa.delete(_OUTBOX).where(_OUTBOX.c.id.in_(ids)))

    def pending(self) -> int:
        with self.db.session() as s:
            return int(s.execute(sa.select(sa.func.count()).select_from(OutboxEvent)).scalar_one())


class _Staged(NamedTuple):
    id: int
    event_id: str
    ce_type: str
    nats_subject: str | None
    ce_subject: str
    data: bytes
    traceparent: str | None
    created_at: datetime


class _PublishFailed(Exception):
    pass


def _as_aware(ts: datetime) -> datetime:
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)
