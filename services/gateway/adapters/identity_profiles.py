"""What consent enforcement reads from identity: a customer's identifiers
(``GetProfile`` over gRPC) and which customers' identifiers changed (the
``cx.identity.profile.>`` events)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import grpc
import grpc.aio
from cxloop.identity.v1 import events_pb2 as identity_events
from cxloop.identity.v1 import identity_service_pb2 as pb
from cxloop.identity.v1 import identity_service_pb2_grpc as pb_grpc
from google.protobuf.message import DecodeError
from nats.aio.msg import Msg
from nats.js.api import DeliverPolicy

from cxloop_libs.errors import Unavailable
from cxloop_libs.messaging import NatsBus
from cxloop_libs.messaging import catalog as ev
from gateway.service_layer.enforcement import AnalyticsEnforcement

log = logging.getLogger(__name__)

PROFILE_SUBJECTS = "cx.identity.profile.>"


class GrpcProfileSource:
    """``ProfileSource`` over identity's ``GetProfile``, with a deadline."""

    def __init__(self, channel: grpc.aio.Channel, *, deadline_s: float) -> None:
        self._stub = pb_grpc.IdentityServiceStub(channel)
        self._deadline = deadline_s

    async def identifiers_of(self, customer_id: str) -> tuple[str, list[str]] | None:
        try:
            r = await self._stub.GetProfile(
                pb.GetProfileRequest(customer_id=customer_id), timeout=self._deadline
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT):
                return None
            raise Unavailable(f"identity GetProfile: {exc.code().name}") from None
        profile = r.profile
        return profile.customer_id, [i.hash for i in profile.identifiers]


def customers_in(subject: str, data: bytes) -> list[str]:
    """Customer ids a profile event names; [] for anything else."""
    try:
        if subject == ev.PROFILE_CREATED.subject:
            created = identity_events.ProfileCreated.FromString(data)
            return [created.customer_id]
        if subject == ev.PROFILE_UPDATED.subject:
            updated = identity_events.ProfileUpdated.FromString(data)
            return [updated.customer_id]
        if subject == ev.PROFILE_MERGED.subject:
            merged = identity_events.ProfileMerged.FromString(data)
            return [merged.surviving_customer_id, *merged.merged_customer_ids]
        if subject == ev.PROFILE_SPLIT.subject:
            split = identity_events.ProfileSplit.FromString(data)
            return [split.original_customer_id, *split.resulting_customer_ids]
    except DecodeError:
        log.error("undecodable profile event", extra={"subject": subject})
    return []


class ProfileEventFollower:
    """Marks every customer a profile event names for enforcement to settle.

    An ordered consumer from *now* (what came before is loaded from
    ``GetProfile`` when the customer is settled); NATS reconnects resume it.
    """

    def __init__(self, bus: NatsBus, enforcement: AnalyticsEnforcement) -> None:
        self.bus = bus
        self.enforcement = enforcement
        self._sub: Any = None
        self._stopped = asyncio.Event()
        self.subscribed = asyncio.Event()

    async def _on_message(self, msg: Msg) -> None:
        self.enforcement.mark_all(customers_in(msg.subject, msg.data))

    async def run(self) -> None:
        await self.bus.ready()
        delay = 0.1
        while not self._stopped.is_set():
            try:
                self._sub = await self.bus.js.subscribe(
                    PROFILE_SUBJECTS,
                    ordered_consumer=True,
                    deliver_policy=DeliverPolicy.NEW,
                    cb=self._on_message,
                )
                break
            except Exception as exc:  # IDENTITY stream not created yet, NATS away
                log.info("waiting for identity's profile events: %s", exc)
                try:
                    await asyncio.wait_for(self._stopped.wait(), delay)
                except TimeoutError:
                    pass
                delay = min(delay * 2, 5.0)
        self.subscribed.set()
        await self._stopped.wait()

    async def stop(self) -> None:
        self._stopped.set()
        sub, self._sub = self._sub, None
        if sub is not None:
            try:
                await sub.unsubscribe()
            except Exception:
                pass
