"""The NATS connection of a process.

A service must start, and pass its health check, while NATS is down: the bus
connects in the background with jittered back-off, and everything that needs
JetStream awaits :meth:`NatsBus.ready`.
"""

from __future__ import annotations

import asyncio
import logging

from nats.aio.client import Client
from nats.js import JetStreamContext
from tenacity import AsyncRetrying, retry_if_exception_type, wait_exponential_jitter

from cxloop_libs.messaging.connection import NatsConnectionSettings
from cxloop_libs.messaging.natsclient import Client as FastClient
from cxloop_libs.messaging.streams import DEAD_LETTER, StreamSpec, ensure_stream

log = logging.getLogger(__name__)


class NatsBus:
    def __init__(
        self,
        url: str,
        *,
        name: str,
        streams: list[StreamSpec] | None = None,
        connection: NatsConnectionSettings | None = None,
    ) -> None:
        self.url = url
        self.name = name
        # Credentials, TLS and stream replicas: CXLOOP_NATS_* (connection.py).
        self.connection = connection or NatsConnectionSettings.from_env(who=name)
        self.streams = [*(streams or []), DEAD_LETTER]
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None
        self._ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def is_connected(self) -> bool:
        return self._nc is not None and self._nc.is_connected

    @property
    def nc(self) -> Client:
        if self._nc is None:
            raise RuntimeError("NATS is not connected yet")
        return self._nc

    @property
    def js(self) -> JetStreamContext:
        if self._js is None:
            raise RuntimeError("NATS is not connected yet")
        return self._js

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(
                self._connect_forever(), name=f"nats-connect-{self.name}"
            )

    async def ready(self) -> None:
        self.start()
        await self._ready.wait()

    async def connect(self, timeout: float | None = None) -> None:
        """Start connecting and wait until connected and streams exist."""
        self.start()
        await asyncio.wait_for(self._ready.wait(), timeout)

    async def _connect_forever(self) -> None:
        async for attempt in AsyncRetrying(
            wait=wait_exponential_jitter(multiplier=0.2, max=5.0),
            retry=retry_if_exception_type(Exception),
            reraise=True,
        ):
            with attempt:
                try:
                    await self._connect_once()
                except Exception as exc:
                    # Not only "unreachable": refused credentials, TLS, a
                    # stream the server will not create (R3 on one node).
                    log.warning(
                        "NATS not ready yet, retrying: %s",
                        f"{type(exc).__name__}: {exc}",
                        extra={"url": self.url},
                    )
                    raise
        self._ready.set()

    async def _connect_once(self) -> None:
        if self._nc is None or self._nc.is_closed:
            servers = [u.strip() for u in self.url.split(",") if u.strip()]
            # nats.connect() is Client() + connect(): ours parses headers
            # for less CPU (natsclient.py, docs/adr/0205).
            nc = FastClient()
            await nc.connect(
                servers=servers,
                name=self.name,
                **self.connection.connect_options(servers),
                connect_timeout=2,
                # Once connected, never give up: NATS outages are ridden out
                # with reconnects, and pending publishes are retried by callers.
                allow_reconnect=True,
                max_reconnect_attempts=-1,
                # nats-py annotates int, sleeps any number of seconds.
                reconnect_time_wait=0.5,  # type: ignore[arg-type]
                # Shutdown must not hang on a pull request the server still holds.
                drain_timeout=2,
                error_cb=self._on_error,
                disconnected_cb=self._on_disconnect,
                reconnected_cb=self._on_reconnect,
            )
            self._nc = nc
        self._js = self._nc.jetstream(timeout=5)
        for spec in self.streams:
            await ensure_stream(self._js, spec, self.connection.stream_replicas)

    async def _on_error(self, e: Exception) -> None:
        log.warning("NATS error: %s", e)

    async def _on_disconnect(self) -> None:
        log.warning("NATS disconnected")

    async def _on_reconnect(self) -> None:
        log.info("NATS reconnected")

    async def close(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
        if self._nc is not None and not self._nc.is_closed:
            try:
                await self._nc.drain()
            except Exception:  # closing anyway; a failed drain must not block shutdown
                await self._nc.close()
