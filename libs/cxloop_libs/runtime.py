"""The life of a service process: the one place that starts and stops its parts
in the right order, so every service behaves the same.

Start: telemetry → gRPC server (health SERVING at once, so orchestrators see a
live process even while NATS or the database are still down; other calls
answer UNAVAILABLE until the database is migrated) → NATS connection
and streams in the background → database migrations with retry → outbox relay
and consumers. Stop (SIGTERM/SIGINT): health NOT_SERVING → consumers finish
their batch → relay drains → gRPC drains → connections close.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import sys
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tenacity import AsyncRetrying, retry_if_exception, wait_exponential_jitter

from cxloop_libs.config import ConfigError, ServiceSettings
from cxloop_libs.db import Database, is_transient_db_error, run_migrations
from cxloop_libs.grpcx import GrpcServer
from cxloop_libs.messaging import BatchConsumer, EventPublisher, NatsBus, OutboxRelay
from cxloop_libs.messaging.relay_process import RelayProcess, RelayProcessConfig
from cxloop_libs.telemetry import Telemetry, instrument_sqlalchemy

log = logging.getLogger(__name__)


@dataclass
class ServiceRuntime:
    settings: ServiceSettings
    telemetry: Telemetry
    bus: NatsBus
    publisher: EventPublisher
    db: Database | None = None
    migrations: Path | None = None
    relay: OutboxRelay | None = None
    consumers: list[BatchConsumer] = field(default_factory=list)
    grpc_server: GrpcServer | None = None
    # Extra long-running work (e.g. the gateway's HTTP server).
    extra_tasks: list[Callable[[], Awaitable[Any]]] = field(default_factory=list)
    on_stop: list[Callable[[], Awaitable[Any]]] = field(default_factory=list)

    # Set at start when the relay runs as a child process (outbox_relay=process).
    relay_process: RelayProcess | None = field(default=None, init=False)
    _tasks: list[asyncio.Task[Any]] = field(default_factory=list, init=False)
    # Set when a background task died: the process exits non-zero so a
    # supervisor (k8s, cxloop up) restarts it instead of it idling broken.
    failed: bool = field(default=False, init=False)
    _stop_event: asyncio.Event = field(default_factory=asyncio.Event, init=False)
    db_ready: asyncio.Event = field(default_factory=asyncio.Event, init=False)

    def follow_live(
        self, subjects: Iterable[str], on_message: Callable[[Any], Awaitable[None]]
    ) -> None:
        """Plain NATS subscriptions to ``subjects`` from when the bus is ready
        until the process stops: how a replica keeps in-memory state (caches,
        indexes) current from the other replicas' events. No consumer state: an
        event missed while disconnected is not redelivered, so the caller bounds
        that (a TTL, a reload at start)."""
        wanted = tuple(subjects)
        stopping = asyncio.Event()

        async def run() -> None:
            ready = asyncio.ensure_future(self.bus.ready())
            await asyncio.wait(
                [ready, asyncio.ensure_future(stopping.wait())],
                return_when=asyncio.FIRST_COMPLETED,
            )
            if not ready.done():
                ready.cancel()
                return
            subs = [await self.bus.nc.subscribe(s, cb=on_message) for s in wanted]
            try:
                await stopping.wait()
            finally:
                for sub in subs:
                    with contextlib.suppress(Exception):
                        await sub.unsubscribe()

        async def stop() -> None:
            stopping.set()

        self.extra_tasks.append(run)
        self.on_stop.append(stop)

    @property
    def name(self) -> str:
        return self.settings.service_name

    async def start(self) -> None:
        if self.db is not None:
            instrument_sqlalchemy(self.db.engine)
        if self.grpc_server is not None:
            if self.db is not None and self.grpc_server.ready is None:
                # Listening at once, answering once the tables exist.
                self.grpc_server.ready = self.db_ready.is_set
            port = await self.grpc_server.start()
            log.info("gRPC serving", extra={"port": port})
        self.bus.start()
        self._spawn(self._prepare_and_consume(), "prepare")
        for make in self.extra_tasks:
            self._spawn(make(), "extra")

    def _spawn(self, coro: Awaitable[Any], name: str) -> None:
        task = asyncio.ensure_future(coro)
        task.set_name(f"{self.name}-{name}")
        task.add_done_callback(self._task_done)
        self._tasks.append(task)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        if task.cancelled() or self._stop_event.is_set():
            return
        exc = task.exception()
        if exc is not None:
            log.error("background task %s died: %r", task.get_name(), exc, exc_info=exc)
            self.failed = True
            self._stop_event.set()

    async def _prepare_and_consume(self) -> None:
        if self.db is not None:
            if self.migrations is not None:
                await self._migrate()
            self.db_ready.set()
        if self.relay is not None:
            child = self._relay_child()
            if child is not None:
                # Writers keep calling relay.notify(); it now wakes the child.
                self.relay.forward_notifications(child.notify)
                self.relay_process = child
                self._spawn(child.run(), "outbox-relay-process")
            else:
                self._spawn(self.relay.run(), "outbox-relay")
        for c in self.consumers:
            self._spawn(c.run(), f"consumer-{c.spec.durable}")

    def _relay_child(self) -> RelayProcess | None:
        if self.settings.outbox_relay != "process" or self.db is None:
            return None
        if self.db.is_sqlite:
            log.info("outbox_relay=process needs PostgreSQL; relaying in-process")
            return None
        return RelayProcess(
            RelayProcessConfig(
                service=self.name,
                database_url=self.db.url,
                nats_url=self.settings.nats_url,
                source=self.publisher.source,
                poll_interval_s=self.settings.outbox_poll_interval_s,
                min_round_interval_s=self.settings.outbox_min_round_interval_s,
                log_level=self.settings.log_level,
                streams=tuple(self.bus.streams),
            )
        )

    async def _migrate(self) -> None:
        assert self.db is not None and self.migrations is not None
        db, path = self.db, self.migrations
        async for attempt in AsyncRetrying(
            wait=wait_exponential_jitter(multiplier=0.2, max=5.0),
            retry=retry_if_exception(is_transient_db_error),
            reraise=True,
        ):
            with attempt:
                if attempt.retry_state.attempt_number > 1:
                    log.warning("database not reachable yet, retrying migrations")
                await asyncio.to_thread(run_migrations, db.engine, path)

    def request_stop(self) -> None:
        self._stop_event.set()

    async def wait(self) -> None:
        await self._stop_event.wait()

    async def stop(self) -> None:
        self._stop_event.set()
        if self.grpc_server is not None:
            self.grpc_server.set_serving(False)
        for c in self.consumers:
            c.stop()
        if self.relay is not None:
            self.relay.stop()
        if self.relay_process is not None:
            self.relay_process.stop()
            await self.relay_process.wait_stopped()
        for hook in self.on_stop:
            try:
                await hook()
            except Exception:
                log.exception("stop hook failed")
        pending = [t for t in self._tasks if not t.done()]
        if pending:
            _, still = await asyncio.wait(pending, timeout=5.0)
            for t in still:
                t.cancel()
            await asyncio.gather(*still, return_exceptions=True)
        if self.grpc_server is not None:
            await self.grpc_server.stop(grace=2.0)
        await self.bus.close()
        if self.db is not None:
            self.db.dispose()
        # Flush only: the global providers cannot be replaced, so shutting them
        # down here would silence any later runtime in the same process (tests).
        self.telemetry.tracer_provider.force_flush()


def settle_heap() -> None:
    """Move everything alive after start (modules, models, what was loaded)
    out of the garbage collector's sight. A service holds ~140,000 objects
    after its imports (numpy, SQLAlchemy, protobuf, OpenTelemetry); a full
    collection walks all of them, ~60 ms on this 2-core machine, a pause
    every request in flight waits out. Frozen, a full collection walks only
    what was made since; during identity's 1,000 req/s benchmark no
    collection took over 3 ms (docs/adr/0024). Objects made later are
    collected as usual; a frozen object that becomes garbage is kept (a
    bounded, one-off cost)."""
    gc.collect()
    gc.freeze()


def collect_young_less_often(objects: int) -> None:
    """Run the collector's youngest generation only after ``objects`` net
    allocations (CPython's default is 700). For a process that keeps whole
    fetches of thousands of events alive for a moment (each message, its
    headers, its decoded event), the default collected dozens of times per
    fetch and promoted every fetch into the older generations, whose
    collections then walked it again: ~4 µs per event, a tenth of analytics'
    ingest (docs/adr/0245). Garbage without cycles is still freed at once;
    only cycles wait for the larger threshold."""
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(objects, older, oldest)


def run_service(build: Callable[[], Awaitable[ServiceRuntime]]) -> None:
    """Entry point of every service: build, start, run until a signal, stop."""

    async def main() -> None:
        runtime = await build()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, runtime.request_stop)
        await runtime.start()
        settle_heap()
        log.info("%s started", runtime.name)
        await runtime.wait()
        log.info("%s stopping", runtime.name)
        await runtime.stop()
        runtime.telemetry.shutdown()
        if runtime.failed:
            sys.exit(1)

    try:
        asyncio.run(main())
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        sys.exit(2)


def base_runtime(
    settings: ServiceSettings,
    *,
    db: Database | None = None,
    migrations: Path | None = None,
    extra_streams: list[str] | None = None,
) -> ServiceRuntime:
    """Telemetry, NATS bus (provisioning the service's own stream) and a
    publisher, plus the outbox relay when the service has a database."""
    from cxloop_libs.messaging import stream_for
    from cxloop_libs.telemetry import setup_telemetry

    name = settings.service_name
    telemetry = setup_telemetry(
        name, log_level=settings.log_level, metrics_port=settings.metrics_port
    )
    streams = [stream_for(name), *(stream_for(d) for d in extra_streams or [])]
    bus = NatsBus(settings.nats_url, name=name, streams=streams)
    publisher = EventPublisher(bus, source=f"/cxloop/{name}")
    relay = (
        OutboxRelay(
            db,
            publisher,
            poll_interval_s=settings.outbox_poll_interval_s,
            min_round_interval_s=settings.outbox_min_round_interval_s,
        )
        if db is not None
        else None
    )
    return ServiceRuntime(
        settings=settings,
        telemetry=telemetry,
        bus=bus,
        publisher=publisher,
        db=db,
        migrations=migrations,
        relay=relay,
    )
