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

# Per customer: purpose -> (granted, notice version, expires epoch s or 0,
# decision). Plain tuples: the hot path unpacks them without attribute lookups.
_Entry = tuple[bool, int, float, Decision]
# Per purpose, precomputed from its rule: (always allowed, allowed without a
# record, needs a current grant, re-consent baseline, the purpose's entries by
# customer). One lookup finds both the rule and the entries; entries are kept
# per purpose, not per customer, because a check then touches one large hash
# table instead of two (random access into memory is what a check costs).
_FastRule = tuple[bool, bool, bool, int, dict[str, _Entry]]


def _fast(rule: PurposeRule, entries: dict[str, _Entry]) -> _FastRule:
    return (
        rule.basis is LegalBasis.CONTRACT,
        rule.basis is not LegalBasis.CONSENT,
        rule.basis is LegalBasis.CONSENT,
        rule.reconsent_from,
        entries,
    )


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
        self._by_purpose: dict[str, dict[str, _Entry]] = {}
        # Purposes held per customer, to replace them all on a new state.
        self._held: dict[str, tuple[str, ...]] = {}
        self._versions: dict[str, int] = {}
        self._rules: dict[str, PurposeRule] = {}
        self._fast_rules: dict[str, _FastRule] = {}
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
        rule = self._fast_rules.get(purpose)
        if rule is None:
            return False
        always, by_default, needs_grant, baseline, entries = rule
        if always:
            return True
        entry = entries.get(customer_id)
        if entry is None:
            return by_default
        granted, version, expires, _ = entry
        if not granted:
            return False
        if not needs_grant:
            return True
        if version < baseline:
            return False
        return not expires or expires > self._clock()

    def _entry(self, customer_id: str, purpose: str) -> _Entry | None:
        entries = self._by_purpose.get(purpose)
        return entries.get(customer_id) if entries is not None else None

    def verdict(self, customer_id: str, purpose: str) -> Reason:
        """Why :meth:`may_use` answers as it does (slower; for logs and APIs)."""
        entry = self._entry(customer_id, purpose)
        current = CurrentDecision(entry[3], entry[1], entry[2]) if entry is not None else None
        return evaluate(self._rules.get(purpose), current, self._clock())

    def notice_version_of(self, customer_id: str, purpose: str) -> int:
        """Notice version of the customer's decision for the purpose; 0 if none."""
        entry = self._entry(customer_id, purpose)
        return entry[1] if entry is not None else 0

    def version_of(self, customer_id: str) -> int:
        return self._versions.get(customer_id, 0)

    def __len__(self) -> int:
        return len(self._versions)

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
            entries[s.purpose] = (decision is Decision.GRANTED, version, expires, decision)
        for purpose in self._held.get(cid, ()):
            if purpose not in entries:
                self._entries_of(purpose).pop(cid, None)
        for purpose, entry in entries.items():
            self._entries_of(purpose)[cid] = entry
        self._held[cid] = tuple(entries)
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
        self.set_rule(msg.purpose, PurposeRule(basis, reconsent_from))
        return True

    def set_rule(self, purpose: str, rule: PurposeRule) -> None:
        self._rules[purpose] = rule
        self._fast_rules[purpose] = _fast(rule, self._entries_of(purpose))

    def _entries_of(self, purpose: str) -> dict[str, _Entry]:
        entries = self._by_purpose.get(purpose)
        if entries is None:
            entries = self._by_purpose[purpose] = {}
        return entries

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
