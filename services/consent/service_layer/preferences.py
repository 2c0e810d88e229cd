"""Every customer's preferences in memory, so ``GetPreferences`` (one part of
the customer 360) answers without a database transaction (docs/adr/0310).

:class:`ConsentView` is the service's own :class:`ConsentProjection` (what
``CheckBatch`` answers from) that also keeps each customer's last
``ConsentChanged``: the same message the ledger stages for the state bucket,
with every purpose's full state. It is kept by the same three feeds as the
projection: the ledger read at start, the state bucket (other replicas'
writes), and this process's own transactions — a transaction that stages a
customer's new state leaves it in ``session.info`` and the database's
after-commit hook applies it on the event loop before the awaiting handler
resumes, so a read after a write in this process (a decision, a GPC signal
from a consumer, an erasure) sees it, as the database read did.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from cxloop.consent.v1 import events_pb2 as epb
from sqlmodel import Session

from consent.domain.purposes import Catalogue
from cxloop_libs.consent.projection import ConsentProjection
from cxloop_libs.consent.rules import Decision, LegalBasis, parse_notice_version

# session.info key: ConsentChanged messages staged in the transaction.
STAGED_STATES = "consent.staged_states"
_GRANTED = Decision.GRANTED.to_proto()


def stage_committed_state(session: Session, message: epb.ConsentChanged) -> None:
    """Remember a customer's new state for the view once ``session`` commits."""
    session.info.setdefault(STAGED_STATES, []).append(message)


class ConsentView(ConsentProjection):
    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        # Customer id -> the last applied ConsentChanged, serialized: ~460
        # bytes for six purposes with uuid ids, ~590 with the dict entry, on
        # top of the projection's ~1,150 (a parsed message would cost more).
        self._changed: dict[str, bytes] = {}

    def apply_consent_changed(self, msg: epb.ConsentChanged) -> bool:
        if not super().apply_consent_changed(msg):
            return False
        if msg.purposes:
            self._changed[msg.customer_id] = msg.SerializeToString()
        else:  # erased (an empty state one version up)
            self._changed.pop(msg.customer_id, None)
        return True

    def apply_all(self, messages: Sequence[epb.ConsentChanged]) -> None:
        for m in messages:
            self.apply_consent_changed(m)

    def after_commit(self, loop: asyncio.AbstractEventLoop) -> Callable[[Session], None]:
        """A ``Database.after_commit`` hook: the states a committed
        transaction staged, applied on ``loop`` (queued before the
        transaction's own result, so before its caller resumes)."""

        def hook(session: Session) -> None:
            staged = session.info.pop(STAGED_STATES, None)
            if staged and not loop.is_closed():
                loop.call_soon_threadsafe(self.apply_all, staged)

        return hook

    def preferences(
        self, customer_id: str, catalogue: Catalogue
    ) -> tuple[int, list[epb.PurposeState]]:
        """The customer's version (0: never decided anything) and the state
        of every purpose decided, with re-consent judged against today's
        catalogue (as the ledger read does)."""
        raw = self._changed.get(customer_id)
        if raw is None:
            return self.version_of(customer_id), []
        msg = epb.ConsentChanged()
        msg.ParseFromString(raw)
        states = list(msg.purposes)
        for s in states:
            s.needs_reconsent = _needs_reconsent(catalogue, s)
        return msg.version, states


def _needs_reconsent(catalogue: Catalogue, s: epb.PurposeState) -> bool:
    """``SubjectConsent.needs_reconsent`` on a state as the event carries it."""
    p = catalogue.get(s.purpose)
    if p is None or p.legal_basis is not LegalBasis.CONSENT or s.decision != _GRANTED:
        return False
    try:
        return parse_notice_version(s.notice_version) < p.reconsent_from
    except ValueError:
        return False
