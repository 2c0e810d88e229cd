"""Consent following what other services report: GPC signals on resolved
interactions, and profile merges and splits from identity.

Both run inside a BatchConsumer's transaction (the inbox makes a redelivered
event a no-op); every change goes through ``ConsentHandlers.append``, so it
is a ledger record with a receipt and a ``consent changed`` event like any
decision a customer makes themselves.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from sqlmodel import Session

from consent.adapters.known_subjects import mark_known
from consent.adapters.repository import ConsentRepository
from consent.domain.signals import (
    gpc_opt_outs,
    merge_refusals,
    split_inheritance,
    split_restores,
)
from consent.service_layer.handlers import ConsentHandlers
from cxloop_libs.consent.state_bucket import KEY_TOKEN
from cxloop_libs.messaging import ReceivedEvent
from cxloop_libs.messaging import catalog as ev

log = logging.getLogger(__name__)

GPC_CONSUMER = "consent-gpc"
PROFILES_CONSUMER = "consent-profiles"


def _valid(customer_id: str) -> bool:
    return bool(KEY_TOKEN.match(customer_id))


class ConsentFollower:
    def __init__(self, handlers: ConsentHandlers) -> None:
        self.handlers = handlers

    def on_resolved_interactions(self, session: Session, events: list[ReceivedEvent]) -> None:
        """``Sec-GPC: 1`` on an interaction: opt the customer out of sale/share
        and targeted marketing (once; later signals change nothing more)."""
        signalled: dict[str, tuple[datetime, str]] = {}
        for e in events:
            if e.type != ev.INTERACTION_RESOLVED.ce_type:
                continue
            msg = e.message()
            if not msg.interaction.global_privacy_control:
                continue
            if not _valid(msg.customer_id):
                log.warning("GPC signal for a malformed customer id ignored", extra={"ce_id": e.id})
                continue
            at = (
                msg.interaction.received_at.ToDatetime(UTC)
                if msg.interaction.HasField("received_at")
                else self.handlers.clock()
            )
            signalled.setdefault(msg.customer_id, (at, e.id))
        if not signalled:
            return
        catalogue = self.handlers.catalogue_in(session)
        repo = ConsentRepository(session)
        now = self.handlers.clock()
        for cid, (at, event_id) in signalled.items():
            repo.mark_gpc(cid, now, event_id)
            records = gpc_opt_outs(
                repo.subject(cid),
                catalogue,
                self.handlers.gpc_purposes,
                signalled_at=at,
                now=now,
            )
            if records:
                self.handlers.append(session, cid, records, now=now)

    def on_profile_changes(self, session: Session, events: list[ReceivedEvent]) -> None:
        """Merges: the stricter decision wins for the survivor. Splits: each
        profile keeps its own history. Events of one batch apply in order.
        Every customer id named is remembered as known (privacy requests for
        ids no service ever knew are refused)."""
        announced: list[str] = []
        for e in events:
            if e.type == ev.PROFILE_CREATED.ce_type:
                announced.append(e.message().customer_id)
            elif e.type == ev.PROFILE_MERGED.ce_type:
                merged = e.message()
                self._merged(
                    session, merged.surviving_customer_id, list(merged.merged_customer_ids)
                )
                announced.extend([merged.surviving_customer_id, *merged.merged_customer_ids])
            elif e.type == ev.PROFILE_SPLIT.ce_type:
                split = e.message()
                self._split(session, split.original_customer_id, list(split.resulting_customer_ids))
                announced.extend([split.original_customer_id, *split.resulting_customer_ids])
        mark_known(session, [c for c in announced if _valid(c)], self.handlers.clock())

    def _merged(self, session: Session, survivor: str, merged: list[str]) -> None:
        merged = [m for m in merged if _valid(m) and m != survivor]
        if not _valid(survivor) or not merged:
            return
        repo = ConsentRepository(session)
        now = self.handlers.clock()
        # The survivor's lock first: a decision recorded at the same moment
        # waits, then sees the merged refusals.
        repo.lock_subject_row(survivor, now)
        subjects = repo.subjects([survivor, *merged])
        records = merge_refusals(subjects[survivor], [subjects[m] for m in merged], now=now)
        if any(repo.has_gpc(m) for m in merged):
            repo.mark_gpc(survivor, now, f"merge:{merged[0]}")
        if records:
            self.handlers.append(session, survivor, records, now=now)

    def _split(self, session: Session, original: str, resulting: list[str]) -> None:
        split_off = [c for c in resulting if _valid(c) and c != original]
        if not _valid(original) or not split_off:
            return
        repo = ConsentRepository(session)
        now = self.handlers.clock()
        repo.lock_subject_row(original, now)
        before = repo.subject(original)
        restores, clears = split_restores(before, split_off, repo.history(original), now=now)
        # A profile consent has never seen (identity minted it for the moved
        # identifiers) takes the original's refusals, as it was part of it.
        for cid, subject in repo.subjects(split_off).items():
            if subject.version == 0:
                inherited = split_inheritance(subject, before, now=now)
                if inherited:
                    self.handlers.append(session, cid, inherited, now=now)
        if restores or clears:
            self.handlers.append(session, original, restores, now=now, clear=clears)
