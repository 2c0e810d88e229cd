"""Identity's part in the retention policy (docs/adr/0019-retention-policy.md).

``identity_graph``: a profile with no activity for the period — no resolved
interaction (``last_seen_at``) and no change (``updated_at``: imports,
merges, splits) — is deleted with everything the graph holds about it and
the profiles merged into it, by the same deletion as a privacy erasure (the
handler of identity's privacy participant, ``identity.adapters.privacy``,
plus its key shredding), so the two can never disagree on what "delete a
customer" means. The inbox of processed events is purged by
the libs component under ``interactions``; the ``IDENTITY`` stream's max age
follows the same period.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session

from cxloop_libs.privacy import PrivacyParticipant, RequestKind
from cxloop_libs.privacy.retention import IDENTITY_GRAPH, PurgeFn

_CUSTOMER = sa.table(
    "customer",
    sa.column("customer_id"),
    sa.column("merged_into"),
    sa.column("updated_at"),
    sa.column("last_seen_at"),
)
# Deleting a profile touches ~10 rows in several tables; a batch of `limit`
# rows is about this many profiles.
ROWS_PER_PROFILE = 10


def purge_inactive_profiles(
    session: Session | None,
    cutoff: datetime,
    limit: int,
    participant: PrivacyParticipant,
) -> int:
    """Profiles inactive since before ``cutoff``, each deleted as the privacy
    participant erases a customer (its handler, and its keyring's shred when
    it has one); returns rows deleted across all tables."""
    assert session is not None
    c = _CUSTOMER
    inactive = list(
        session.execute(
            sa.select(c.c.customer_id)
            .where(
                c.c.merged_into.is_(None),
                c.c.updated_at < cutoff,
                sa.or_(c.c.last_seen_at.is_(None), c.c.last_seen_at < cutoff),
            )
            .order_by(c.c.updated_at)
            .limit(max(1, limit // ROWS_PER_PROFILE))
        ).scalars()
    )
    rows = 0
    for customer_id in inactive:
        rows += participant.handler(session, customer_id, RequestKind.ERASURE).records_affected
        if participant.keyring is not None:
            rows += participant.keyring.shred(session, customer_id)
    return rows


def purges(participant: PrivacyParticipant) -> dict[str, PurgeFn]:
    """What identity registers with ``join_retention``: the erasure path of
    its privacy participant, applied to inactive profiles."""

    def inactive_profiles(session: Session | None, cutoff: datetime, limit: int) -> int:
        return purge_inactive_profiles(session, cutoff, limit, participant)

    return {IDENTITY_GRAPH: inactive_profiles}
