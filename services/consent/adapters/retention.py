"""Consent's retention: where the policy is stored, and what consent purges.

The policy (``retention_policy``: one row with the version;
``retention_period``: days per category and per purpose) is seeded by
migration 0007 and changed only through SetRetentionPolicy
(docs/adr/0019-retention-policy.md).

Purges (called by cxloop_libs.privacy.retention, at most ``limit`` rows per
transaction):

- ``consent_ledger``: a record that no longer decides anything — another
  decision of the same customer and purpose replaced it — is kept as proof
  for the ledger period counted from that replacing decision, then deleted
  with its receipt. The record behind each current state is never purged
  here: it is the proof of what is in force (a withdrawal or objection must
  keep standing); only erasure removes it.
- ``privacy_requests``: requests closed (completed or rejected) longer than
  the period, with their per-participant answers. Open and escalated ones
  stay until they close.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from consent.adapters.tables import PrivacyAnswerRow, PrivacyRequestRow, RecordRow, StateRow
from cxloop_libs.privacy.retention import RetentionPolicy

CATEGORY = "category"
PURPOSE = "purpose"

_meta = sa.MetaData()
POLICY = sa.Table(
    "retention_policy",
    _meta,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("version", sa.BigInteger, nullable=False),
    sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("changed_by", sa.String(100), nullable=False),
)
PERIOD = sa.Table(
    "retention_period",
    _meta,
    sa.Column("scope", sa.String(16), primary_key=True),
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("days", sa.Integer, nullable=False),
)

_RECORD: sa.Table = RecordRow.__table__  # type: ignore[attr-defined]
_STATE: sa.Table = StateRow.__table__  # type: ignore[attr-defined]
_REQUEST: sa.Table = PrivacyRequestRow.__table__  # type: ignore[attr-defined]
_ANSWER: sa.Table = PrivacyAnswerRow.__table__  # type: ignore[attr-defined]


def _aware(ts: datetime) -> datetime:
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def load_policy(session: Session) -> RetentionPolicy:
    head = session.execute(sa.select(POLICY).where(POLICY.c.id == 1)).one()
    categories: dict[str, int] = {}
    purposes: dict[str, int] = {}
    for scope, key, days in session.execute(sa.select(PERIOD.c.scope, PERIOD.c.key, PERIOD.c.days)):
        (categories if scope == CATEGORY else purposes)[key] = int(days)
    return RetentionPolicy(
        version=int(head.version),
        category_days=categories,
        purpose_days=purposes,
        changed_at=_aware(head.changed_at),
        changed_by=head.changed_by,
    )


def save_periods(
    session: Session,
    category_days: dict[str, int],
    purpose_days: dict[str, int],
    *,
    changed_at: datetime,
    changed_by: str,
) -> int:
    """Write the given periods and bump the version; returns the new version.
    The version UPDATE takes the row lock, so concurrent changes serialise."""
    version = session.execute(
        sa.update(POLICY)
        .where(POLICY.c.id == 1)
        .values(version=POLICY.c.version + 1, changed_at=changed_at, changed_by=changed_by)
        .returning(POLICY.c.version)
    ).scalar_one()
    for scope, days in ((CATEGORY, category_days), (PURPOSE, purpose_days)):
        for key, value in days.items():
            updated: Any = session.execute(
                sa.update(PERIOD)
                .where(PERIOD.c.scope == scope, PERIOD.c.key == key)
                .values(days=value)
            )
            if not updated.rowcount:
                session.execute(sa.insert(PERIOD).values(scope=scope, key=key, days=value))
    return int(version)


def purge_superseded_records(session: Session | None, cutoff: datetime, limit: int) -> int:
    """Ledger records replaced by a later decision made before ``cutoff``."""
    assert session is not None
    r, n, s = _RECORD.alias("r"), _RECORD.alias("n"), _STATE
    deciding = sa.exists().where(
        s.c.customer_id == r.c.customer_id,
        s.c.purpose == r.c.purpose,
        s.c.record_id == r.c.record_id,
    )
    replaced = sa.exists().where(
        n.c.customer_id == r.c.customer_id,
        n.c.purpose == r.c.purpose,
        n.c.decided_at > r.c.decided_at,
        n.c.decided_at < cutoff,
    )
    ids = list(
        session.execute(
            sa.select(r.c.record_id)
            .where(r.c.recorded_at < cutoff, ~deciding, replaced)
            .limit(limit)
        ).scalars()
    )
    if not ids:
        return 0
    result: Any = session.execute(sa.delete(_RECORD).where(_RECORD.c.record_id.in_(ids)))
    return int(result.rowcount)


def purge_closed_privacy_requests(session: Session | None, cutoff: datetime, limit: int) -> int:
    """Requests closed before ``cutoff`` and their answers (answers count too)."""
    assert session is not None
    per_request = max(1, limit // 8)  # a request has one answer per participant
    ids = list(
        session.execute(
            sa.select(_REQUEST.c.request_id)
            .where(_REQUEST.c.closed_at.is_not(None), _REQUEST.c.closed_at < cutoff)
            .limit(per_request)
        ).scalars()
    )
    if not ids:
        return 0
    answers: Any = session.execute(sa.delete(_ANSWER).where(_ANSWER.c.request_id.in_(ids)))
    requests: Any = session.execute(sa.delete(_REQUEST).where(_REQUEST.c.request_id.in_(ids)))
    return int(answers.rowcount) + int(requests.rowcount)
