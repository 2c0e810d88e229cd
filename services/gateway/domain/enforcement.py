"""Which incoming calls the gateway withholds for consent, and whose they are.

Pure: no I/O. The gateway knows identifiers (hashed), consent is per customer
id. :class:`ObjectorIdentifiers` holds the identifiers of the customers who
objected to a purpose (today: ``analytics``), as the identity graph knows them
(loaded by ``service_layer.enforcement``), so attributing a call is a dict
lookup per identifier and nothing is held about anyone else
(docs/adr/0021-consent-enforcement-at-the-edge.md).
"""

from __future__ import annotations

from collections.abc import Iterable

from cxloop.common.v1 import identifier_pb2
from cxloop.gateway.v1 import events_pb2

from gateway.domain.segment import CallType

ANALYTICS = "analytics"
# Calls that report what a customer did: analytics data. identify and alias
# say who someone is (identity needs them to keep the graph, and consent to
# attribute signals: essential service); group names a membership, not an action.
ANALYTICS_CALLS: frozenset[CallType] = frozenset({CallType.TRACK, CallType.PAGE, CallType.SCREEN})

# Identity's priority (identity/domain/policy.py DEFAULT_PRIORITY): a call is
# attributed through its strongest identifier, as identity would resolve it.
_PRIORITY: tuple[int, ...] = (
    identifier_pb2.IDENTIFIER_TYPE_USER_ID,
    identifier_pb2.IDENTIFIER_TYPE_LOYALTY_CARD,
    identifier_pb2.IDENTIFIER_TYPE_EMAIL,
    identifier_pb2.IDENTIFIER_TYPE_PHONE,
    identifier_pb2.IDENTIFIER_TYPE_EXTERNAL,
    identifier_pb2.IDENTIFIER_TYPE_ANONYMOUS_ID,
)
_RANK = {t: n for n, t in enumerate(_PRIORITY)}


class CapacityExceeded(Exception):
    """Loading a customer would hold more identifiers than allowed."""


class ObjectorIdentifiers:
    """identifier hash -> customer id, only for customers who objected.

    Bounded by ``max_identifiers``: loading beyond it raises
    :class:`CapacityExceeded` (the caller counts and logs it) instead of
    growing without limit.
    """

    def __init__(self, max_identifiers: int = 1_000_000) -> None:
        self.max_identifiers = max_identifiers
        self._owner: dict[str, str] = {}
        self._hashes: dict[str, frozenset[str]] = {}

    def __len__(self) -> int:
        return len(self._owner)

    def __contains__(self, customer_id: object) -> bool:
        return customer_id in self._hashes

    @property
    def customers(self) -> int:
        return len(self._hashes)

    def load(self, customer_id: str, hashes: Iterable[str]) -> None:
        """Replace what is held for the customer with ``hashes``."""
        new = frozenset(hashes)
        old = self._hashes.get(customer_id, frozenset())
        if len(self._owner) - len(old) + len(new) > self.max_identifiers:
            raise CapacityExceeded(f"more than {self.max_identifiers} identifiers")
        for h in old - new:
            if self._owner.get(h) == customer_id:
                del self._owner[h]
        for h in new:
            previous = self._owner.get(h)
            if previous is not None and previous != customer_id:
                # The graph moved the identifier (merge, split): it is held
                # once, by its current owner.
                self._hashes[previous] = self._hashes[previous] - {h}
            self._owner[h] = customer_id
        self._hashes[customer_id] = new

    def drop(self, customer_id: str) -> int:
        """Forget the customer; how many identifiers were held."""
        hashes = self._hashes.pop(customer_id, frozenset())
        for h in hashes:
            if self._owner.get(h) == customer_id:
                del self._owner[h]
        return len(hashes)

    def hashes_of(self, customer_id: str) -> frozenset[str]:
        return self._hashes.get(customer_id, frozenset())

    def customer_of(self, identifiers: Iterable[identifier_pb2.HashedIdentifier]) -> str | None:
        """The objecting customer a call belongs to, through its
        highest-priority identifier held here; None when none is."""
        if not self._owner:
            return None
        best: tuple[int, str] | None = None
        for i in identifiers:
            cid = self._owner.get(i.hash)
            if cid is None:
                continue
            rank = _RANK.get(i.type, len(_RANK))
            if best is None or rank < best[0]:
                best = (rank, cid)
        return best[1] if best is not None else None


def signal_only(event: events_pb2.InteractionRecorded) -> events_pb2.InteractionRecorded:
    """What is left of a withheld call that carried ``Sec-GPC: 1``: its
    identifiers and the signal, so consent still records the opt-out, and no
    analytics (no name, properties, channel, or the sender's timestamp)."""
    signal = events_pb2.InteractionRecorded(
        message_id=event.message_id,
        kind=events_pb2.INTERACTION_KIND_PRIVACY_SIGNAL,
        identifiers=list(event.identifiers),
        source=event.source,
        global_privacy_control=True,
    )
    signal.received_at.CopyFrom(event.received_at)
    signal.occurred_at.CopyFrom(event.received_at)
    return signal
