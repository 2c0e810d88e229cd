"""Identity's part in privacy requests (docs/adr/0014-privacy-request-saga.md).

Erasure deletes everything the graph holds about the customer and the
profiles merged into it: its identifiers (hashes), customer rows, the links
and history that name them, and — where this database has them — match
evidence, review items, cannot-link pairs and trait observations (the golden
record), shreds the customer's subject key (so a sealed value copied anywhere
can no longer be opened) and takes its records out of the real-time
candidate index. Access exports the same rows as one JSON document (trait
observations without their sealed values). Both run in the participant's
transaction, which also stages the answer, so "answered" proves "deleted".

Tables are addressed by name and skipped when this database does not have
them yet, so the participant keeps working while identity's schema grows.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from cxloop_libs.pii.envelope import SubjectKeyring
from cxloop_libs.privacy import (
    PrivacyAnswer,
    PrivacyParticipant,
    RequestKind,
    join_privacy_requests,
)
from cxloop_libs.runtime import ServiceRuntime
from identity.adapters.owner_cache import note_moved
from identity.service_layer.realtime import CandidateIndex

PARTICIPANT = "identity"

# category, table, columns naming a customer id, columns naming an identifier hash
_SUBJECT_TABLES: tuple[tuple[str, str, tuple[str, ...], tuple[str, ...]], ...] = (
    ("identity_links", "identity_link", ("customer_id",), ("hash",)),
    ("identity_history", "identity_history", ("customer_id",), ()),
    ("match_evidence", "identity_match", (), ("hash_a", "hash_b")),
    ("review_items", "identity_review_item", (), ("hash_a", "hash_b")),
    ("cannot_link_pairs", "identity_cannot_link", ("customer_id", "other_customer_id"), ()),
    ("trait_observations", "identity_trait_observation", ("customer_id",), ("record_ref",)),
)
# Never exported: ciphertext says nothing to the subject.
_NOT_EXPORTED = frozenset({"sealed"})


# Columns per table, per database: read once (migrations run before the
# participant starts consuming, so the schema does not change under it).
_SCHEMA: dict[str, dict[str, set[str]]] = {}


def _columns(session: Session, table: str) -> set[str]:
    key = session.get_bind().url.render_as_string(hide_password=True)
    known = _SCHEMA.setdefault(key, {})
    if table not in known:
        inspector = sa.inspect(session.connection())
        known[table] = (
            {c["name"] for c in inspector.get_columns(table)}
            if inspector.has_table(table)
            else set()
        )
    return known[table]


def _customers(session: Session, customer_id: str) -> list[str]:
    """The customer and every profile merged into it (transitively)."""
    customer = sa.table("customer", sa.column("customer_id"), sa.column("merged_into"))
    found, frontier = {customer_id}, [customer_id]
    while frontier:
        rows = session.execute(
            sa.select(customer.c.customer_id).where(customer.c.merged_into.in_(frontier))
        )
        frontier = [r[0] for r in rows if r[0] not in found]
        found.update(frontier)
    return sorted(found)


def _hashes(session: Session, customers: list[str]) -> list[str]:
    identifier = sa.table("identifier", sa.column("hash"), sa.column("customer_id"))
    rows = session.execute(
        sa.select(identifier.c.hash).where(identifier.c.customer_id.in_(customers))
    )
    return [r[0] for r in rows]


def _where(
    t: sa.TableClause,
    id_cols: Iterable[str],
    hash_cols: Iterable[str],
    ids: list[str],
    hashes: list[str],
) -> sa.ColumnElement[bool] | None:
    conds = [t.c[c].in_(ids) for c in id_cols if ids] + [
        t.c[c].in_(hashes) for c in hash_cols if hashes
    ]
    return sa.or_(*conds) if conds else None


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def answer(
    session: Session | None,
    customer_id: str,
    kind: RequestKind,
    *,
    index: CandidateIndex | None = None,
) -> PrivacyAnswer:
    assert session is not None
    if kind not in (RequestKind.ERASURE, RequestKind.ACCESS):
        # Identity keeps only hashes of identifiers: nothing to rectify, and
        # restricting its processing is the other services' consent check.
        return PrivacyAnswer(["identifiers"], {}, detail=f"{kind.value}: nothing to change")
    erase = kind is RequestKind.ERASURE
    customers = _customers(session, customer_id)
    hashes = _hashes(session, customers)
    counts: dict[str, int] = {}
    export: dict[str, list[dict[str, Any]]] = {}
    plan = [
        *_SUBJECT_TABLES,
        ("identifiers", "identifier", ("customer_id",), ()),
        ("customers", "customer", ("customer_id",), ()),
    ]
    for category, name, id_cols, hash_cols in plan:
        columns = _columns(session, name)
        if not columns:
            continue
        t = sa.table(name, *(sa.column(c) for c in sorted(columns)))
        ids_, hs = [c for c in id_cols if c in columns], [c for c in hash_cols if c in columns]
        cond = _where(t, ids_, hs, customers, hashes)
        if cond is None:
            continue
        if erase:
            note_moved(session, customers=customers, hashes=hashes)
            result: Any = session.execute(sa.delete(t).where(cond))
            n = int(result.rowcount)
        else:
            rows = [
                {k: _plain(v) for k, v in r._mapping.items() if k not in _NOT_EXPORTED}
                for r in session.execute(sa.select(t).where(cond))
            ]
            export[category] = rows
            n = len(rows)
        counts[category] = n
    if erase and index is not None:
        # Raw values held in memory for real-time matching go too.
        counts["realtime_index_entries"] = index.remove(hashes)
    return PrivacyAnswer(
        sorted(counts),
        counts,
        export_json="" if erase else json.dumps(export, sort_keys=True, default=str),
    )


def join(
    runtime: ServiceRuntime,
    *,
    keyring: SubjectKeyring | None = None,
    index: CandidateIndex | None = None,
) -> PrivacyParticipant:
    """With the keyring, erasure also shreds the customer's subject key;
    with the index, takes the customer's records out of it."""

    def handle(session: Session | None, customer_id: str, kind: RequestKind) -> PrivacyAnswer:
        return answer(session, customer_id, kind, index=index)

    return join_privacy_requests(runtime, PARTICIPANT, handle, keyring=keyring)
