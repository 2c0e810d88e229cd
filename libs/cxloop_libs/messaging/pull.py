"""A JetStream pull fetch without a task per message.

nats-py's ``PullSubscription.fetch`` waits for every message of a batch with
``Subscription.next_msg``, which makes a UUID, a task and an
``asyncio.wait_for`` per message: two event-loop turns and a timer for each
one, even when the message is already in the subscription's queue. For a
consumer of thousands of events a second that is most of its CPU
(docs/adr/0205-analytics-ingest-cpu-per-event.md).

:func:`fetch` sends the same pull requests in the same order (a ``no_wait``
request first; a lingering one with the time left when nothing was there)
and applies the same rules to status messages as nats-py 2.16's ``_fetch_n``,
but takes messages that are already queued directly and waits (with one
``asyncio.timeout``) only when the queue is empty.

It reads four private attributes of nats-py's pull subscription (``_sub``,
``_nc``, ``_nms``, ``_deliver``) and two of its subscription
(``_pending_queue``, ``_pending_size``). Without them it falls back to
``psub.fetch`` (correct, only slower), and a unit test fails if a nats-py
upgrade renames them, so the slow path cannot come back silently.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from nats.aio.msg import Msg
from nats.errors import ConnectionClosedError, ConnectionDrainingError, OutboundBufferLimitError
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.errors import APIError, FetchTimeoutError

# Status headers of JetStream's pull responses (nats.js.api.StatusCode).
_STATUS = "Status"
_HEARTBEAT = "100"
_NO_MESSAGES = "404"
_REQUEST_TIMEOUT = "408"
_CONFLICT = "409"
_TEMPORARY = (_NO_MESSAGES, _REQUEST_TIMEOUT, _CONFLICT)


def fast_path_available(psub: Any) -> bool:
    """True when the nats-py internals :func:`fetch` reads are there."""
    sub = getattr(psub, "_sub", None)
    return (
        sub is not None
        and all(hasattr(psub, a) for a in ("_nc", "_nms", "_deliver"))
        and isinstance(getattr(sub, "_pending_queue", None), asyncio.Queue)
        and isinstance(getattr(sub, "_pending_size", None), int)
    )


async def fetch(psub: JetStreamContext.PullSubscription, batch: int, timeout: float) -> list[Msg]:
    """``psub.fetch(batch, timeout=timeout)`` (batch > 1) at a fraction of its
    CPU per message. Raises ``TimeoutError`` when nothing arrived in time."""
    if batch < 2 or not fast_path_available(psub):
        return await psub.fetch(batch, timeout=timeout)
    return await _Fetch(psub, timeout).run(batch)


def _status(msg: Msg) -> str | None:
    h = msg.headers
    return h.get(_STATUS) if h else None


class _Fetch:
    __slots__ = ("psub", "queue", "start", "sub", "timeout")

    def __init__(self, psub: Any, timeout: float) -> None:
        self.psub = psub
        self.sub = psub._sub
        self.queue: asyncio.Queue[Msg] = psub._sub._pending_queue
        self.timeout = timeout
        self.start = time.monotonic()

    def _left(self) -> float:
        return self.timeout - (time.monotonic() - self.start)

    def _take(self) -> Msg:
        msg = self.queue.get_nowait()
        self.sub._pending_size -= len(msg.data)
        self.queue.task_done()
        return msg

    async def _next(self, wait: float) -> Msg:
        """The next message: at once when queued, else waiting up to
        ``wait`` seconds (raises TimeoutError)."""
        if self.queue.empty():
            if self.psub._nc.is_closed:
                # As next_msg: a closed connection is not a timeout to retry.
                raise ConnectionClosedError
            if wait <= 0:
                raise NatsTimeoutError
            try:
                async with asyncio.timeout(wait):
                    msg = await self.queue.get()
            except TimeoutError:
                raise NatsTimeoutError from None
            self.sub._pending_size -= len(msg.data)
            self.queue.task_done()
            return msg
        return self._take()

    async def _request(self, req: dict[str, Any]) -> None:
        await self.psub._nc.publish(self.psub._nms, json.dumps(req).encode(), self.psub._deliver)
        await asyncio.sleep(0)

    async def run(self, batch: int) -> list[Msg]:
        msgs: list[Msg] = []
        # Left over from earlier requests: data messages count, statuses
        # were meant for those requests.
        while not self.queue.empty():
            msg = self._take()
            if not _status(msg):
                msgs.append(msg)
        needed = batch - len(msgs)
        if needed <= 0:
            return msgs
        expires = int(self.timeout * 1_000_000_000) - 100_000
        # First request: no_wait gets what is there now and a 404 after it.
        # Without expires when messages were already drained (the server
        # ignores no_wait when expires is present).
        req: dict[str, Any] = {"batch": needed}
        if not msgs:
            req["expires"] = expires
        req["no_wait"] = True
        await self._request(req)
        try:
            msg = await self._next(self.timeout)
        except TimeoutError:
            if msgs:
                return msgs
            raise
        got_any_response = False
        status = _status(msg)
        if status == _HEARTBEAT:
            got_any_response = True
        elif self._processable(status, msg):
            msgs.append(msg)
            needed -= 1
            try:
                for _ in range(needed):
                    msg = await self._next(self._left())
                    status = _status(msg)
                    if status in (_NO_MESSAGES, _REQUEST_TIMEOUT):
                        break
                    if status == _HEARTBEAT:
                        got_any_response = True
                        continue
                    if self._processable(status, msg):
                        needed -= 1
                        msgs.append(msg)
            except TimeoutError:
                pass
        if msgs:
            return msgs

        # Second request: lingering, for the time left.
        left = self._left()
        if left <= 0:
            raise NatsTimeoutError
        remaining_expires = int(left * 1_000_000_000) - 100_000
        if remaining_expires <= 0:
            raise NatsTimeoutError
        await self._request({"batch": needed, "expires": remaining_expires})
        while True:
            if needed == 0:
                return msgs
            try:
                msg = await self._next(self._left())
            except TimeoutError:
                if not msgs:
                    if got_any_response:
                        raise FetchTimeoutError from None
                    raise
                break
            status = _status(msg)
            if status == _HEARTBEAT:
                got_any_response = True
                continue
            if not status:
                needed -= 1
                msgs.append(msg)
                break
            # A 404/408 (or any status): this request is over.
            break
        # The rest of the lingering request, until it is full or expires.
        try:
            for _ in range(needed):
                left = self._left()
                if left < 0:
                    return msgs
                msg = await self._next(left)
                status = _status(msg)
                if status == _HEARTBEAT:
                    got_any_response = True
                    continue
                if status in (_NO_MESSAGES, _REQUEST_TIMEOUT):
                    break
                if self._processable(status, msg):
                    needed -= 1
                    msgs.append(msg)
        except TimeoutError:
            pass
        if not msgs and got_any_response:
            raise FetchTimeoutError
        return msgs

    @staticmethod
    def _processable(status: str | None, msg: Msg) -> bool:
        if not status:
            return True
        if status in _TEMPORARY:
            return False
        raise APIError.from_msg(msg)


async def ack_many(msgs: list[Msg]) -> None:
    """Acknowledge every message (explicit acks: each message is acked by
    itself, exactly as ``await m.ack()`` for each would) with one write into
    nats-py's outgoing buffer instead of a ``publish`` call per message.

    Falls back to ``m.ack()`` per message when the client lacks the internals
    (``_send_command``, ``_flush_queue``, ``_flush_pending``) or a message
    has no reply subject or was acked already (``m.ack()`` then raises as it
    always did)."""
    if not msgs:
        return
    nc: Any = msgs[0]._client
    send = getattr(nc, "_send_command", None)
    flush = getattr(nc, "_flush_pending", None)
    if (
        send is None
        or flush is None
        or not hasattr(nc, "_flush_queue")
        or any(not m.reply or m._ackd or m._client is not nc for m in msgs)
    ):
        for m in msgs:
            await m.ack()
        return
    if nc.is_closed:
        raise ConnectionClosedError
    if nc.is_draining_pubs:
        raise ConnectionDrainingError
    # An ack is an empty message to the reply subject: "PUB <reply> 0".
    cmd = b"".join([b"PUB %s 0\r\n\r\n" % m.reply.encode() for m in msgs])
    if not nc.is_connected:
        # As publish(): while reconnecting, acks are buffered up to the limit.
        limit = getattr(nc, "_max_pending_size", 0)
        if limit <= 0 or len(cmd) + getattr(nc, "_pending_data_size", 0) > limit:
            raise OutboundBufferLimitError
    await send(cmd)
    for m in msgs:
        m._ackd = True
    nc.stats["out_msgs"] += len(msgs)
    if nc._flush_queue is not None and nc._flush_queue.empty():
        await flush()
