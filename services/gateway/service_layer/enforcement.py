"""Consent enforcement at the gateway: analytics calls of a customer who
objected to ``analytics`` are not published (docs/adr/0021).

Two local views, both in memory:

* the suite's :class:`~cxloop_libs.consent.ConsentProjection` (every
  customer's consent, from the consent service's state bucket);
* :class:`~gateway.domain.enforcement.ObjectorIdentifiers`: the hashed
  identifiers of the customers who objected, as identity's graph holds them
  (``GetProfile``), and nobody else's.

The projection reports every changed customer (``on_change``) and identity's
profile events report every customer whose identifiers changed; both mark
the customer *dirty*. One worker settles dirty customers: an objector's
identifiers are (re)loaded from identity, anyone else is dropped. Checking a
call is then one dict lookup per identifier and, for a held customer, one
consent check, so a re-grant lets calls through at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Protocol

from cxloop.gateway.v1 import events_pb2

from cxloop_libs.consent import ConsentProjection, Reason
from cxloop_libs.errors import Unavailable
from gateway.domain.enforcement import ANALYTICS, CapacityExceeded, ObjectorIdentifiers
from gateway.service_layer.metrics import GatewayMetrics, gateway_metrics

log = logging.getLogger(__name__)

OBJECTIONS = (Reason.DENIED, Reason.WITHDRAWN)
RETRY_MAX_S = 5.0


class ProfileSource(Protocol):
    """What enforcement needs of identity: a customer's hashed identifiers."""

    async def identifiers_of(self, customer_id: str) -> tuple[str, list[str]] | None:
        """(customer id the graph answers with, identifier hashes); None when
        identity does not know the customer. A customer merged away answers
        with the survivor's id. Raises Unavailable when identity cannot answer."""
        ...


class AnalyticsEnforcement:
    def __init__(
        self,
        projection: ConsentProjection,
        profiles: ProfileSource,
        *,
        identifiers: ObjectorIdentifiers | None = None,
        purpose: str = ANALYTICS,
        concurrency: int = 16,
        metrics: GatewayMetrics | None = None,
    ) -> None:
        self.projection = projection
        self.profiles = profiles
        self.identifiers = identifiers or ObjectorIdentifiers()
        self.purpose = purpose
        self._concurrency = concurrency
        self._metrics = metrics or gateway_metrics()
        self._dirty: set[str] = set()
        self._wake = asyncio.Event()
        self._busy = 0
        self._stopping = False
        self.loads = 0
        projection.on_change.append(self.mark)

    # -- the hot path ---------------------------------------------------------
    def objects(self, customer_id: str) -> bool:
        """True iff the customer refused or withdrew the purpose. Not
        ``not may_use``: before the purpose's rule is known that would deny
        everyone, and holding everyone's identifiers is what this avoids."""
        return self.projection.verdict(customer_id, self.purpose) in OBJECTIONS

    def withholding(self, event: events_pb2.InteractionRecorded) -> str | None:
        """The objecting customer an event belongs to, or None to publish it."""
        cid = self.identifiers.customer_of(event.identifiers)
        if cid is None or not self.objects(cid):
            return None
        return cid

    @property
    def settled(self) -> bool:
        """The projection is loaded and every objector's identifiers too."""
        return self.projection.is_ready and not self._dirty and self._busy == 0

    # -- keeping the identifiers current --------------------------------------
    def mark(self, customer_id: str) -> None:
        if customer_id:
            self._dirty.add(customer_id)
            self._wake.set()

    def mark_all(self, customer_ids: Iterable[str]) -> None:
        """Mark the customers a profile event names that can matter: an
        objector, or one whose identifiers are held. Anyone else has nothing
        to load or drop (a later objection marks them through consent); at
        ingest rates identity names thousands of customers a second."""
        held = self.identifiers
        for cid in customer_ids:
            if cid in held or self.objects(cid):
                self.mark(cid)

    def forget(self, customer_id: str) -> int:
        """Drop what is held about a customer (erasure); identifiers dropped."""
        self._dirty.discard(customer_id)
        return self.identifiers.drop(customer_id)

    async def settle(self, customer_id: str) -> None:
        """Load an objector's identifiers from identity, or drop a customer
        who does not (or no longer) object. Raises Unavailable."""
        if not self.objects(customer_id):
            self.identifiers.drop(customer_id)
            return
        found = await self.profiles.identifiers_of(customer_id)
        if found is None:  # identity does not know (or erased) the customer
            self.identifiers.drop(customer_id)
            return
        live, hashes = found
        if live != customer_id:
            # Merged away: its identifiers are the survivor's now, and the
            # survivor's consent decides (consent gives it every refusal).
            self.identifiers.drop(customer_id)
            self.mark(live)
            return
        if not self.objects(customer_id):  # re-granted while we asked
            self.identifiers.drop(customer_id)
            return
        try:
            self.identifiers.load(customer_id, hashes)
        except CapacityExceeded:
            self._metrics.enforcement_overflow.add(1)
            log.error(
                "consent enforcement holds too many identifiers; a customer's calls are "
                "not withheld (raise CXLOOP_GATEWAY_ENFORCE_MAX_IDENTIFIERS)",
                extra={"customer_id": customer_id},
            )
            return
        self.loads += 1

    async def run(self) -> None:
        """Settle dirty customers until stopped (a runtime extra task)."""
        await self.projection.wait_ready()
        delay = 0.1
        while not self._stopping:
            if not self._dirty:
                self._wake.clear()
                await self._wake.wait()
                continue
            batch, self._dirty = self._dirty, set()
            self._busy += 1
            try:
                failed = await self._settle_all(batch)
            finally:
                self._busy -= 1
            if failed:
                self._dirty |= failed
                log.warning("identity unavailable; %d customer(s) to load later", len(failed))
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX_S)
            else:
                delay = 0.1

    async def _settle_all(self, batch: set[str]) -> set[str]:
        failed: set[str] = set()
        gate = asyncio.Semaphore(self._concurrency)

        async def one(cid: str) -> None:
            async with gate:
                try:
                    await self.settle(cid)
                except Unavailable:
                    failed.add(cid)
                except Exception:
                    log.exception("loading a customer for consent enforcement failed")
                    failed.add(cid)

        await asyncio.gather(*(one(c) for c in batch))
        return failed

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()
