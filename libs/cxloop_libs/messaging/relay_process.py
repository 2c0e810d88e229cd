"""The outbox relay in a child process of its own.

A service is one asyncio process, so everything it does shares one GIL: while
identity drains a backlog, publishing the events it staged (fetch, one
JetStream publish and PubAck per event, delete) took ~40 % of the GIL, beside
the consumer and its handler. With ``CXLOOP_OUTBOX_RELAY=process`` (PostgreSQL
only) the service starts the relay as a child process, so it runs on another
core (docs/adr/0023-relay-process.md).

The parent keeps an `OutboxRelay` object for its `notify()` calls; each
writes one byte (non-blocking, dropped when the pipe is full) to a pipe
whose only write end the parent holds, and that wakes the child, which
otherwise polls at ``outbox_poll_interval_s``. End of file on that pipe -
the parent closed it to stop the child, or the parent died - makes the child
drain and exit. No lock is shared, so a child killed at any moment cannot
block the parent. The parent supervises the child (a new one, with a new
pipe, when it dies). Nothing is lost either way: the rows stay in the outbox
until a relay has published them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing as mp
import os
import threading
from dataclasses import dataclass
from typing import Any

from cxloop_libs.messaging.streams import StreamSpec

log = logging.getLogger(__name__)

_CTX = mp.get_context("spawn")


@dataclass(frozen=True)
class RelayProcessConfig:
    service: str
    database_url: str
    nats_url: str
    source: str
    poll_interval_s: float
    min_round_interval_s: float
    log_level: str
    streams: tuple[StreamSpec, ...]


def _child(config: RelayProcessConfig, wake_reader: Any) -> None:
    from cxloop_libs.db import Database
    from cxloop_libs.messaging.bus import NatsBus
    from cxloop_libs.messaging.outbox import OutboxRelay
    from cxloop_libs.messaging.publisher import EventPublisher
    from cxloop_libs.telemetry import setup_telemetry

    setup_telemetry(config.service, log_level=config.log_level)
    fd = wake_reader.fileno()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        db = Database(config.database_url)
        bus = NatsBus(config.nats_url, name=f"{config.service}-relay", streams=list(config.streams))
        relay = OutboxRelay(
            db,
            EventPublisher(bus, source=config.source),
            poll_interval_s=config.poll_interval_s,
            min_round_interval_s=config.min_round_interval_s,
        )

        def bridge() -> None:
            # Bytes from the parent wake the relay; end of file (stopped, or
            # the parent is gone) makes it drain and return.
            while True:
                try:
                    data = os.read(fd, 4096)
                except OSError:
                    data = b""
                if not data:
                    loop.call_soon_threadsafe(relay.stop)
                    return
                loop.call_soon_threadsafe(relay.notify)

        bus.start()
        threading.Thread(target=bridge, name="relay-wake", daemon=True).start()
        try:
            await relay.run()
        finally:
            await bus.close()
            db.dispose()

    asyncio.run(main())


class RelayProcess:
    """Starts, supervises and stops the child; `notify` is what the parent's
    writers call after a commit that staged events."""

    def __init__(self, config: RelayProcessConfig) -> None:
        self.config = config
        self._stopping = False
        self._wake_fd: int | None = None
        self._proc: Any = None
        self.restarts = 0

    def notify(self) -> None:
        fd = self._wake_fd
        if fd is None:
            return
        try:
            os.write(fd, b"\x01")
        except (BlockingIOError, BrokenPipeError, OSError):
            pass  # already woken (pipe full), or the child is being replaced

    def _close_wake(self) -> None:
        fd, self._wake_fd = self._wake_fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)

    def _start_child(self) -> None:
        self._close_wake()
        reader, writer = _CTX.Pipe(duplex=False)
        self._proc = _CTX.Process(
            target=_child,
            args=(self.config, reader),
            name=f"{self.config.service}-outbox-relay",
            daemon=True,
        )
        self._proc.start()
        reader.close()  # only the child reads; our copy would hide its EOF
        fd = os.dup(writer.fileno())
        writer.close()
        os.set_blocking(fd, False)
        self._wake_fd = fd
        log.info("outbox relay process started", extra={"relay_pid": self._proc.pid})

    async def run(self) -> None:
        """Runs until `stop`: keeps one child alive."""
        loop = asyncio.get_running_loop()
        self._start_child()
        try:
            while not self._stopping:
                proc = self._proc
                await loop.run_in_executor(None, proc.join, 1.0)
                if proc.exitcode is not None and not self._stopping:
                    self.restarts += 1
                    log.warning(
                        "outbox relay process exited (code %s); restarting",
                        proc.exitcode,
                        extra={"restarts": self.restarts},
                    )
                    await asyncio.sleep(min(5.0, 0.5 * self.restarts))
                    self._start_child()
        except asyncio.CancelledError:
            self._terminate()
            raise

    def stop(self) -> None:
        """The child sees end of file, publishes what is staged, and exits."""
        self._stopping = True
        self._close_wake()

    async def wait_stopped(self, timeout: float = 5.0) -> None:
        proc = self._proc
        if proc is None:
            return
        await asyncio.get_running_loop().run_in_executor(None, proc.join, timeout)
        self._terminate()

    def _terminate(self) -> None:
        proc = self._proc
        if proc is not None and proc.is_alive():
            with contextlib.suppress(Exception):
                proc.terminate()
                proc.join(2.0)

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid
