"""Interactions decoded in a process of their own.

Per event, ingest's largest cost in Python is the protobuf decode, the field
reads and the properties' JSON (``decode_interactions``). In the service's
process that work shares one GIL with the NATS client's parsing and the
DuckDB transaction; in a child process it runs on another core while the
event loop takes the next fetch (docs/adr/0245). The child holds no state:
it is given (ce-type, ce-id, body) per event and returns the columns.

Until the child has started (its imports take a second, more on a busy
machine) batches are decoded in the service's process, so boot never waits
for it. A child that dies (OOM killer, a crash) breaks the pool: the batch
is then decoded in the service's process and a new child is started for
the next one, so a decoder failure costs speed, never events. The child
imports only ``analytics.domain.batch`` (protobuf, numpy, orjson).
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from analytics.domain.batch import DecodedBatch, decode_interactions
from cxloop_libs.messaging import ReceivedEvent
from cxloop_libs.messaging import catalog as ev

log = logging.getLogger(__name__)
_WANTED = ev.INTERACTION_RESOLVED.ce_type


def _cpu_seconds() -> float:
    return time.process_time()


class ProcessDecoder:
    def __init__(self) -> None:
        self._pool: ProcessPoolExecutor | None = None
        self._ready = False  # until the child answers, batches are decoded here
        self._disabled = False  # the child could not start: decode here
        self.inline_batches = 0  # decoded in the service's process
        self._restart: asyncio.Future[None] | None = None

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            # spawn: a fresh interpreter, not a fork of a process with
            # threads (DuckDB, gRPC, the event loop's workers).
            self._pool = ProcessPoolExecutor(
                max_workers=1, mp_context=multiprocessing.get_context("spawn")
            )
        return self._pool

    async def start(self) -> None:
        """Start the child now (imports take a second), not on the first
        batch. A child that cannot start is not fatal: batches are then
        decoded in the service's process."""
        try:
            await self.cpu_seconds()
            self._ready = True
        except Exception as exc:
            log.warning("decoder process did not start, decoding in the service: %r", exc)
            self._drop()
            self._disabled = True

    async def cpu_seconds(self) -> float:
        """CPU time the child has used (benchmarks add it to the service's)."""
        return await asyncio.get_running_loop().run_in_executor(self._executor(), _cpu_seconds)

    async def decode(self, events: Sequence[ReceivedEvent]) -> DecodedBatch:
        items = [(e.type, e.id, e.data) for e in events]
        if self._ready and not self._disabled:
            try:
                return await asyncio.get_running_loop().run_in_executor(
                    self._executor(), decode_interactions, items, _WANTED
                )
            except BrokenProcessPool:
                log.warning("decoder process died; this batch is decoded in the service")
                self._drop()
                self._ready = False
                self._restart = asyncio.ensure_future(self.start())
        self.inline_batches += 1
        # Off the event loop, as the in-process path decodes in the worker thread.
        return await asyncio.to_thread(decode_interactions, items, _WANTED)

    def _drop(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        self._drop()
