"""Group concurrent requests into one unit of work.

A gRPC command that writes costs one transaction and one commit per call; at
hundreds of calls a second the commits and the per-call thread hops dominate.
A `RequestBatcher` lets each call await its own answer while the calls that
arrive together are applied in one batch (one thread hop, one transaction):
the same idea as the consumers' micro-batches, for request/response paths.

Each item gets its own result or its own exception: a batch function reports
per-item failures by returning an exception instance in that item's place; if
it raises, every item of the batch gets that exception.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

Req = TypeVar("Req")
Res = TypeVar("Res")


class RequestBatcher(Generic[Req, Res]):
    def __init__(
        self,
        apply: Callable[[Sequence[Req]], Awaitable[Sequence[Res | BaseException]]],
        *,
        max_batch: int = 200,
        max_wait_s: float = 0.002,
    ) -> None:
        self._apply = apply
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self._pending: list[tuple[Req, asyncio.Future[Res]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._running = asyncio.Lock()  # one batch at a time keeps writes ordered
        self.batches = 0

    async def submit(self, request: Req) -> Res:
        fut: asyncio.Future[Res] = asyncio.get_running_loop().create_future()
        self._pending.append((request, fut))
        if len(self._pending) >= self.max_batch:
            self._start_flush(immediately=True)
        elif self._flusher is None or self._flusher.done():
            self._start_flush(immediately=False)
        return await fut

    def _start_flush(self, *, immediately: bool) -> None:
        self._flusher = asyncio.ensure_future(self._flush(0.0 if immediately else self.max_wait_s))

    async def _flush(self, wait: float) -> None:
        if wait:
            await asyncio.sleep(wait)
        async with self._running:
            while self._pending:
                batch, self._pending = (
                    self._pending[: self.max_batch],
                    self._pending[self.max_batch :],
                )
                await self._run(batch)

    async def _run(self, batch: list[tuple[Req, asyncio.Future[Res]]]) -> None:
        self.batches += 1
        try:
            results = await self._apply([req for req, _ in batch])
        except BaseException as exc:  # every caller learns why, none hangs
            for _, fut in batch:
                if not fut.done():
                    fut.set_exception(exc)
            if isinstance(exc, asyncio.CancelledError):
                raise
            return
        if len(results) != len(batch):
            err = RuntimeError(f"batch returned {len(results)} results for {len(batch)} requests")
            for _, fut in batch:
                if not fut.done():
                    fut.set_exception(err)
            return
        for (_, fut), res in zip(batch, results, strict=True):
            if fut.done():  # the caller went away (deadline, cancel)
                continue
            if isinstance(res, BaseException):
                fut.set_exception(res)
            else:
                fut.set_result(res)


Key = TypeVar("Key")


class KeyedRequestBatcher(Generic[Key, Req, Res]):
    """One `RequestBatcher` per key (a member, an account): calls for one key
    are applied together, a batch at a time, while calls for other keys run
    in parallel. The batch function gets the key with the batch. A key's
    batcher lives while calls for it are outstanding, so memory follows the
    keys in use, not every key ever seen.

    With ``max_wait_s=0`` this is group commit: the first call of a key starts
    at once; calls arriving while its batch is applied form the next batch.
    """

    def __init__(
        self,
        apply: Callable[[Key, Sequence[Req]], Awaitable[Sequence[Res | BaseException]]],
        *,
        max_batch: int = 200,
        max_wait_s: float = 0.0,
    ) -> None:
        self._apply = apply
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self._batchers: dict[Key, tuple[RequestBatcher[Req, Res], list[int]]] = {}
        self.batches = 0

    def __len__(self) -> int:
        """Keys with calls outstanding."""
        return len(self._batchers)

    async def submit(self, key: Key, request: Req) -> Res:
        entry = self._batchers.get(key)
        if entry is None:

            async def apply(batch: Sequence[Req]) -> Sequence[Res | BaseException]:
                self.batches += 1
                return await self._apply(key, batch)

            entry = (
                RequestBatcher(apply, max_batch=self.max_batch, max_wait_s=self.max_wait_s),
                [0],
            )
            self._batchers[key] = entry
        batcher, outstanding = entry
        outstanding[0] += 1
        try:
            return await batcher.submit(request)
        finally:
            outstanding[0] -= 1
            # Every call of this batcher has its answer: its batches are done.
            if outstanding[0] == 0 and self._batchers.get(key) is entry:
                del self._batchers[key]
