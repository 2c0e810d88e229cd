"""Every service's local answer to "may I use this customer's data for X?".

``ConsentProjection`` holds the latest consent of every customer in memory and
answers :meth:`ConsentProjection.may_use` from two dict lookups, so checking
costs well under a microsecond and needs no call to the consent service. It is
kept current from the consent service's ``CONSENT_STATE`` key-value bucket
(the last ``ConsentChanged`` per customer, the last ``NoticePublished`` per
purpose; see :mod:`cxloop_libs.consent.state_bucket`): at start it reads every
key, then follows updates as they are written. Events carry a per-customer
``version``; an update not above the version held is dropped, so a late or
replayed event can never bring back an older decision.

Use::

    projection = ConsentProjection(runtime.bus)
    runtime.extra_tasks.append(projection.run)
    runtime.on_stop.append(projection.stop)
    ...
    if projection.may_use(customer_id, "marketing_email"):
        send(...)

Until the first full read is done, every check answers False (deny): a
service that must not stall can await :meth:`wait_ready`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from cxloop.consent.v1 import events_pb2 as pb
from google.protobuf.message import DecodeError

from cxloop_libs.consent.rules import (
    CurrentDecision,
    Decision,
    LegalBasis,
    PurposeRule,
    Reason,
    evaluate,
    parse_notice_version,
)
from cxloop_libs.consent.state_bucket import CUSTOMER_PREFIX, PURPOSE_PREFIX, STATE_BUCKET
from cxloop_libs.messaging.bus import NatsBus

log = logging.getLogger(__name__)

# Per customer: purpose -> (decision, notice version, expires epoch s or 0).
# Plain tuples: the hot path unpacks them without attribute lookups.
_Entry = tuple[Decision, int, float]
_GRANTED = Decision.GRANTED
_CONSENT = LegalBasis.CONSENT
_CONTRACT = LegalBasis.CONTRACT
_LEGITIMATE_INTEREST = LegalBasis.LEGITIMATE_INTEREST


class ConsentProjection:
    def __init__(
        self,
        bus: NatsBus | None = None,
        *,
        bucket: str = STATE_BUCKET,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.bus = bus
        self.bucket = bucket
        self._clock = clock
        self._subjects: dict[str, dict[str, _Entry]] = {}
        self._versions: dict[str, int] = {}
        self._rules: dict[str, PurposeRule] = {}
        self._ready = asyncio.Event()
        self._stopping = False
        self._watcher: Any = None
        self.applied = 0
        self.dropped_stale = 0
        # Called with the customer id after each applied change (e.g. to
        # cancel queued sends of a customer who withdrew).
        self.on_change: list[Callable[[str], None]] = []

    # -- answering --------------------------------------------------------
    @property
    def is_ready(self) -> bool:
        return self._ready.is_set()

    async def wait_ready(self, timeout: float | None = None) -> None:
        await asyncio.wait_for(self._ready.wait(), timeout)

    def may_use(self, customer_id: str, purpose: str) -> bool:
        """True iff the customer's data may be used for ``purpose`` now.

        The same outcome as ``evaluate(...).allows`` (a unit test proves it
        for every combination), written out flat because it runs per record.
        """
        rule = self._rules.get(purpose)
        if rule is None:
            return False
        entries = self._subjects.get(customer_id)
        entry = entries.get(purpose) if entries is not None else None
        basis = rule.basis
        if entry is None:
            return basis is not _CONSENT
        decision, version, expires = entry
        if basis is _CONTRACT:
            return True
        if decision is not _GRANTED:
            return False
        if basis is _LEGITIMATE_INTEREST:
            return True
        if version < rule.reconsent_from:
            return False
        return not expires or expires > self._clock()

    def verdict(self, customer_id: str, purpose: str) -> Reason:
        """Why :meth:`may_use` answers as it does (slower; for logs and APIs)."""
        entries = self._subjects.get(customer_id)
        entry = entries.get(purpose) if entries is not None else None
        current = CurrentDecision(*entry) if entry is not None else None
        return evaluate(self._rules.get(purpose), current, self._clock())

    def version_of(self, customer_id: str) -> int:
        return self._versions.get(customer_id, 0)

    def __len__(self) -> int:
        return len(self._subjects)

    # -- applying ---------------------------------------------------------
    def apply_consent_changed(self, msg: pb.ConsentChanged) -> bool:
        """Replace what is held for the customer; False if the event is stale."""
        cid = msg.customer_id
        if not cid:
            return False
        if msg.version <= self._versions.get(cid, 0):
            self.dropped_stale += 1
            return False
        entries: dict[str, _Entry] = {}
        for s in msg.purposes:
            decision = Decision.from_proto(s.decision)
            if decision is None:
                continue
            try:
                version = parse_notice_version(s.notice_version)
            except ValueError:
                version = 0  # unreadable version: never counts as current
            expires = (
                s.expires_at.seconds + s.expires_at.nanos / 1e9 if s.HasField("expires_at") else 0.0
            )
            entries[s.purpose] = (decision, version, expires)
        self._subjects[cid] = entries
        self._versions[cid] = msg.version
        self.applied += 1
        for callback in self.on_change:
            try:
                callback(cid)
            except Exception:
                log.exception("consent on_change callback failed")
        return True

    def apply_notice(self, msg: pb.NoticePublished) -> bool:
        basis = LegalBasis.from_proto(msg.legal_basis)
        if not msg.purpose or basis is None:
            return False
        try:
            reconsent_from = parse_notice_version(msg.reconsent_from_version or "1")
        except ValueError:
            return False
        held = self._rules.get(msg.purpose)
        # Re-consent baselines only move forward (a late announcement of an
        # older catalogue must not revive outdated grants).
        if held is not None and held.basis is basis and held.reconsent_from > reconsent_from:
            return False
        self._rules[msg.purpose] = PurposeRule(basis, reconsent_from)
        return True

    def apply_entry(self, key: str, value: bytes) -> bool:
        """Apply one bucket entry (``customer.<id>`` or ``purpose.<key>``)."""
        try:
            if key.startswith(CUSTOMER_PREFIX):
                changed = pb.ConsentChanged()
                changed.ParseFromString(value)
                return self.apply_consent_changed(changed)
            if key.startswith(PURPOSE_PREFIX):
                notice = pb.NoticePublished()
                notice.ParseFromString(value)
                return self.apply_notice(notice)
        except DecodeError:
            log.error("undecodable consent state entry", extra={"key": key[:80]})
        return False

    # -- following the bucket ---------------------------------------------
    async def run(self) -> None:
        """Read the whole bucket, then follow it until :meth:`stop`."""
        if self.bus is None:
            raise RuntimeError("ConsentProjection.run needs a NatsBus")
        await self.bus.ready()
        delay = 0.2
        while not self._stopping:
            try:
                kv = await self.bus.js.key_value(self.bucket)
                self._watcher = await kv.watch(">", inactive_threshold=3600.0)
                delay = 0.2
                async for entry in self._watcher:
                    if entry is None:  # everything stored so far has been read
                        if not self._ready.is_set():
                            log.info("consent projection ready", extra={"customers": len(self)})
                        self._ready.set()
                        continue
                    if entry.value:
                        self.apply_entry(entry.key, entry.value)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self._stopping:
                    break
                # Bucket not created yet (consent not started) or NATS away:
                # keep what we hold and try again.
                log.warning("consent projection waiting for its bucket: %s", exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def stop(self) -> None:
        self._stopping = True
        watcher, self._watcher = self._watcher, None
        if watcher is not None:
            try:
                await watcher.stop()
            except Exception:
                pass
