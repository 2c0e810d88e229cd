"""Merge protection: the rules that stop one bad identifier from gluing
different people together (ADR 0012)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from identity.domain.model import HashedId

# (customer id, identifiers about to be newly linked to it) -> hash -> reason
# for those that must not be (e.g. consent, docs/adr/0021); they are refused
# like any blocked link, recorded as `blocked:<reason>`.
LinkGate = Callable[[str, "Sequence[HashedId]"], Mapping[str, str]]

USER_ID = "user_id"
ANONYMOUS_ID = "anonymous_id"

# Which side of a conflicting link wins: the one holding the event's
# identifier of the earliest type here. A login beats a card, a card beats a
# contact detail, anything beats a cookie.
DEFAULT_PRIORITY: tuple[str, ...] = (
    "user_id",
    "loyalty_card",
    "email",
    "phone",
    "external",
    "anonymous_id",
)


def _default_limits() -> dict[str, int]:
    return {"user_id": 1, "email": 5, "phone": 5}


@dataclass(frozen=True, slots=True)
class MergePolicy:
    """Per-type limits, shared-device threshold and identifier priority."""

    # id type -> most identifiers of that type one customer may hold; types
    # not listed are unlimited.
    limits: Mapping[str, int] = field(default_factory=_default_limits)
    # An anonymous id seen with more distinct user ids than this is a shared
    # device and stops linking; None turns detection off.
    shared_device_max_user_ids: int | None = 1
    priority: tuple[str, ...] = DEFAULT_PRIORITY
    # Hashes of values an operator declared junk on top of the built-in
    # placeholders (a shop's own phone typed in for walk-ins ...): they are
    # dropped before linking, so they never join or create anyone.
    ignored_hashes: frozenset[str] = frozenset()
    # Asked before new identifiers join an existing customer; None: no gate.
    link_gate: LinkGate | None = None

    def rank(self, id_type: str) -> int:
        try:
            return self.priority.index(id_type)
        except ValueError:
            return len(self.priority)

    def exceeded(self, held: Mapping[str, int], adding: Mapping[str, int]) -> str | None:
        """The first limit that `held + adding` breaks, as a reason; else None."""
        for id_type, n in adding.items():
            limit = self.limits.get(id_type)
            if limit is not None and n > 0 and held.get(id_type, 0) + n > limit:
                return f"limit:{id_type}"
        return None


# No protection at all: what the first slice did (tests, manual operations).
PERMISSIVE = MergePolicy(limits={}, shared_device_max_user_ids=None)
DEFAULT_POLICY = MergePolicy()
