"""Feedback's part in privacy requests (docs/adr/0014-privacy-request-saga.md).

Erasure deletes the customer's responses, reviews, voice notes, cases (with
their notes), invitations and contact history, and (through the
participant's keyring) shreds the customer's subject key, so every sealed
comment copied onto the bus becomes unreadable. The daily KPI and aspect
tallies stay: they count answers without naming anyone, so NPS over last
quarter does not change when a customer leaves (ADR 0053). Access exports
the same rows, with the free texts opened.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from cxloop_libs.pii.envelope import KeyShredded, SubjectKeyring
from cxloop_libs.privacy import (
    PrivacyAnswer,
    PrivacyParticipant,
    RequestKind,
    join_privacy_requests,
)
from cxloop_libs.runtime import ServiceRuntime
from feedback.adapters import tables as t
from feedback.service_layer.handlers import (
    ANSWER_CONTEXT,
    RESOLUTION_CONTEXT,
    REVIEW_CONTEXT,
    VOICE_CONTEXT,
)

PARTICIPANT = "feedback"
_SEALED = {
    "responses": ("text_sealed", ANSWER_CONTEXT),
    "reviews": ("text_sealed", REVIEW_CONTEXT),
    "voice_notes": ("text_sealed", VOICE_CONTEXT),
    "cases": ("resolution_sealed", RESOLUTION_CONTEXT),
}
_TABLES: tuple[tuple[str, sa.Table], ...] = (
    ("responses", t.response),
    ("reviews", t.review),
    ("voice_notes", t.voice),
    ("invitations", t.invitation),
    ("contact_history", t.contact),
    ("cases", t.case),
)


def _plain(v: Any) -> Any:
    if isinstance(v, datetime):
        return v.isoformat()
    if isinstance(v, bytes | memoryview):
        return None
    return v


def answer(
    session: Session | None, customer_id: str, kind: RequestKind, keyring: SubjectKeyring
) -> PrivacyAnswer:
    assert session is not None
    if kind not in (RequestKind.ERASURE, RequestKind.ACCESS):
        return PrivacyAnswer(["responses"], {}, detail=f"{kind.value}: nothing to change")
    counts: dict[str, int] = {}
    if kind is RequestKind.ERASURE:
        case_ids = [
            r[0]
            for r in session.execute(
                sa.select(t.case.c.case_id).where(t.case.c.customer_id == customer_id)
            )
        ]
        if case_ids:
            res: Any = session.execute(
                sa.delete(t.case_note).where(t.case_note.c.case_id.in_(case_ids))
            )
            counts["case_notes"] = int(res.rowcount)
        for name, table in _TABLES:
            res = session.execute(sa.delete(table).where(table.c.customer_id == customer_id))
            counts[name] = int(res.rowcount)
        return PrivacyAnswer(sorted(counts), counts)
    export: dict[str, list[dict[str, Any]]] = {}
    for name, table in _TABLES:
        rows = []
        for r in session.execute(sa.select(table).where(table.c.customer_id == customer_id)):
            row = {k: _plain(v) for k, v in r._mapping.items() if not k.endswith("_sealed")}
            sealed = _SEALED.get(name)
            if sealed and r._mapping.get(sealed[0]):
                try:
                    row["text"] = keyring.open(
                        session, customer_id, bytes(r._mapping[sealed[0]]), context=sealed[1]
                    ).decode()
                except KeyShredded:
                    row["text"] = None
            rows.append(row)
        export[name] = rows
        counts[name] = len(rows)
    return PrivacyAnswer(
        sorted(counts), counts, export_json=json.dumps(export, sort_keys=True, default=str)
    )


def join(runtime: ServiceRuntime, keyring: SubjectKeyring) -> PrivacyParticipant:
    def handle(session: Session | None, customer_id: str, kind: RequestKind) -> PrivacyAnswer:
        return answer(session, customer_id, kind, keyring)

    return join_privacy_requests(runtime, PARTICIPANT, handle, keyring=keyring)
