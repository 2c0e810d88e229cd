"""Consent following signals and identity, as ledger records.

* **Global Privacy Control** (``Sec-GPC: 1``) is an opt-out of sale/share and
  targeted marketing: each covered purpose is refused (denied, or withdrawn
  where a grant stood). A grant given *after* GPC was on record is an explicit
  choice that stands, flagged ``gpc_conflict``; later GPC signals leave it.
* **Merge**: the survivor takes the stricter decision per purpose: a refusal
  on any merged profile beats a grant (or no decision) on the survivor.
  Grants never travel: the survivor is not given a consent it did not give.
* **Split**: each profile keeps its own history: what the survivor took from
  a profile now split off is replaced by the survivor's own latest decision
  for that purpose, or removed when it had none. A profile the split creates
  (a customer id consent has never seen, as identity's Split mints) has no
  history to keep: it starts with the original's refusals, never its grants.

docs/adr/0013-consent-signals-merge-split.md has the reasoning.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from consent.domain.ledger import (
    Channel,
    ConsentRecord,
    Proof,
    RecordRequest,
    SubjectConsent,
    decide,
    new_record_id,
)
from consent.domain.purposes import Catalogue
from cxloop_libs.consent.rules import Decision, LegalBasis

# Sale/share (third-party provision) and targeted marketing, per CCPA
# regulations s. 7025 as applied to cxloop's purposes.
GPC_PURPOSES: tuple[str, ...] = (
    "third_party_provision",
    "marketing_email",
    "marketing_sms",
    "marketing_push",
    "marketing_app",
)
GPC_ACTOR = "gpc_signal"
MERGE = "merge:"
SPLIT = "split:"


def gpc_opt_outs(
    subject: SubjectConsent,
    catalogue: Catalogue,
    purposes: Sequence[str],
    *,
    signalled_at: datetime,
    now: datetime,
) -> list[ConsentRecord]:
    """The records a GPC signal adds for the customer (none when every covered
    purpose is already refused or was granted knowingly against GPC)."""
    out: list[ConsentRecord] = []
    for key in purposes:
        purpose = catalogue.get(key)
        if purpose is None or purpose.legal_basis is LegalBasis.CONTRACT:
            continue
        state = subject.states.get(key)
        if state is not None and (state.refuses or state.gpc_conflict):
            continue
        req = RecordRequest(
            customer_id=subject.customer_id,
            purpose=key,
            decision=Decision.DENIED if state is None else Decision.WITHDRAWN,
            notice_version="",
            channel=Channel.GPC_SIGNAL,
            proof=Proof(actor=GPC_ACTOR),
            decided_at=min(signalled_at, now),
        )
        out.append(decide(catalogue, req, now=now))
    return out


def merge_refusals(
    survivor: SubjectConsent, merged: Sequence[SubjectConsent], *, now: datetime
) -> list[ConsentRecord]:
    """Records that give the survivor every refusal of the merged profiles."""
    out: list[ConsentRecord] = []
    for key in sorted({p for m in merged for p in m.states}):
        mine = survivor.states.get(key)
        if mine is not None and mine.refuses:
            continue
        refusals = [
            (m.customer_id, m.states[key])
            for m in merged
            if key in m.states and m.states[key].refuses and m.customer_id != survivor.customer_id
        ]
        if not refusals:
            continue
        source_id, source = max(refusals, key=lambda r: (r[1].decided_at, r[0]))
        tag = MERGE + source_id
        out.append(
            ConsentRecord(
                record_id=new_record_id(),
                customer_id=survivor.customer_id,
                purpose=key,
                notice_version=source.notice_version,
                decision=Decision.WITHDRAWN if mine is not None else source.decision,
                channel=source.channel,
                decided_at=source.decided_at,
                recorded_at=now,
                expires_at=None,
                proof=Proof(actor=tag),
                derived_from=tag,
            )
        )
    return out


def split_restores(
    original: SubjectConsent,
    split_off: Sequence[str],
    history: Sequence[ConsentRecord],
    *,
    now: datetime,
) -> tuple[list[ConsentRecord], list[str]]:
    """After a split: records restoring the original's own decisions, and the
    purposes to clear (it had none of its own). ``history`` is the original's
    ledger, oldest first."""
    taken = {MERGE + c for c in split_off if c != original.customer_id}
    by_id = {r.record_id: r for r in history}
    restores: list[ConsentRecord] = []
    clears: list[str] = []
    for key, state in sorted(original.states.items()):
        current = by_id.get(state.record_id)
        if current is None or current.derived_from not in taken:
            continue
        own = [
            r
            for r in history
            if r.purpose == key
            and r.derived_from not in taken
            and r.recorded_at <= current.recorded_at
            and r.record_id != current.record_id
        ]
        if not own:
            clears.append(key)
            continue
        tag = SPLIT + current.derived_from.removeprefix(MERGE)
        restores.append(
            replace(
                own[-1],
                record_id=new_record_id(),
                recorded_at=now,
                proof=replace(own[-1].proof, actor=tag),
                idempotency_key="",
                derived_from=tag,
            )
        )
    return restores, clears


def split_inheritance(
    new: SubjectConsent, original: SubjectConsent, *, now: datetime
) -> list[ConsentRecord]:
    """Records giving a profile new from a split the original's refusals."""
    tag = SPLIT + original.customer_id
    return [
        replace(r, proof=Proof(actor=tag), derived_from=tag)
        for r in merge_refusals(new, [original], now=now)
    ]
