"""SQL for privacy requests and their answers."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from consent.adapters.repository import _aware, _insert
from consent.adapters.tables import PrivacyAnswerRow, PrivacyRequestRow
from consent.domain.privacy import (
    Answer,
    AnswerState,
    Escalation,
    Jurisdiction,
    PrivacyRequest,
    RequestStatus,
    Verification,
)
from cxloop_libs.privacy import RequestKind

_REQ: sa.Table = PrivacyRequestRow.__table__  # type: ignore[attr-defined]
_ANS: sa.Table = PrivacyAnswerRow.__table__  # type: ignore[attr-defined]
OPEN = [s.value for s in RequestStatus if s.is_open]


def _when(ts: datetime | None) -> datetime:
    aware = _aware(ts)
    assert aware is not None
    return aware


def _answer(row: Any) -> Answer:
    return Answer(
        participant=row.participant,
        state=AnswerState(row.state),
        answered_at=_aware(row.answered_at),
        categories=tuple(json.loads(row.categories or "[]")),
        row_counts={k: int(v) for k, v in json.loads(row.row_counts or "{}").items()},
        detail=row.detail or "",
        export_json=row.export_json or "",
    )


def _request(row: Any, answers: dict[str, Answer]) -> PrivacyRequest:
    return PrivacyRequest(
        request_id=row.request_id,
        customer_id=row.customer_id,
        kind=RequestKind(row.kind),
        jurisdiction=Jurisdiction(row.jurisdiction),
        status=RequestStatus(row.status),
        verification=Verification(row.verification),
        verification_method=row.verification_method or "",
        actor=row.actor or "",
        opened_at=_when(row.opened_at),
        due_at=_when(row.due_at),
        answers=answers,
        sent_at=_aware(row.sent_at),
        closed_at=_aware(row.closed_at),
        extended=bool(row.extended),
        extension_reason=row.extension_reason or "",
        escalation=Escalation(row.escalation) if row.escalation else None,
        escalated_at=_aware(row.escalated_at),
        overdue_at=_aware(row.overdue_at),
        bundle_json=row.bundle_json or "",
    )


def _request_values(r: PrivacyRequest) -> dict[str, Any]:
    return {
        "customer_id": r.customer_id,
        "kind": r.kind.value,
        "jurisdiction": r.jurisdiction.value,
        "status": r.status.value,
        "verification": r.verification.value,
        "verification_method": r.verification_method,
        "actor": r.actor,
        "opened_at": r.opened_at,
        "due_at": r.due_at,
        "sent_at": r.sent_at,
        "closed_at": r.closed_at,
        "extended": r.extended,
        "extension_reason": r.extension_reason,
        "escalation": r.escalation.value if r.escalation else None,
        "escalated_at": r.escalated_at,
        "overdue_at": r.overdue_at,
        "bundle_json": r.bundle_json or None,
    }


def _answer_values(a: Answer) -> dict[str, Any]:
    return {
        "state": a.state.value,
        "answered_at": a.answered_at,
        "categories": json.dumps(list(a.categories)),
        "row_counts": json.dumps(a.row_counts, sort_keys=True),
        "detail": a.detail,
        "export_json": a.export_json or None,
    }


class PrivacyRepository:
    def __init__(self, session: Session) -> None:
        self.s = session

    def insert(self, r: PrivacyRequest) -> None:
        self.s.execute(sa.insert(_REQ).values(request_id=r.request_id, **_request_values(r)))
        # A new request's answers are all PENDING: one multi-row insert.
        self.s.execute(
            sa.insert(_ANS),
            [
                {"request_id": r.request_id, "participant": a.participant, **_answer_values(a)}
                for a in r.answers.values()
            ],
        )

    def save(self, r: PrivacyRequest, *, only_answer: str | None = None) -> None:
        """Write the request row and its answers; ``only_answer``: just that
        participant's answer (the request row is left as it is)."""
        if only_answer is None:
            self.s.execute(
                sa.update(_REQ)
                .where(_REQ.c.request_id == r.request_id)
                .values(**_request_values(r))
            )
        self._save_answers(r, only_answer)

    def _save_answers(self, r: PrivacyRequest, only: str | None = None) -> None:
        for a in r.answers.values():
            if only is not None and a.participant != only:
                continue
            values = _answer_values(a)
            self.s.execute(
                _insert(self.s, _ANS)
                .values(request_id=r.request_id, participant=a.participant, **values)
                .on_conflict_do_update(index_elements=["request_id", "participant"], set_=values)
            )

    def get(self, request_id: str, *, lock: bool = False) -> PrivacyRequest | None:
        if lock:
            # Answers arrive on several consumers at once: a no-op write takes
            # the row lock (PostgreSQL) or the write lock (SQLite) before the
            # read, so each sees the answers committed before it.
            self.s.execute(
                sa.update(_REQ)
                .where(_REQ.c.request_id == request_id)
                .values(request_id=_REQ.c.request_id)
            )
        row = self.s.execute(sa.select(_REQ).where(_REQ.c.request_id == request_id)).first()
        if row is None:
            return None
        return _request(row, self._answers([request_id]).get(request_id, {}))

    def _answers(self, request_ids: list[str]) -> dict[str, dict[str, Answer]]:
        out: dict[str, dict[str, Answer]] = {}
        for i in range(0, len(request_ids), 900):
            chunk = request_ids[i : i + 900]
            for row in self.s.execute(sa.select(_ANS).where(_ANS.c.request_id.in_(chunk))):
                out.setdefault(row.request_id, {})[row.participant] = _answer(row)
        return out

    def find_open(self, customer_id: str, kind: RequestKind) -> PrivacyRequest | None:
        row = self.s.execute(
            sa.select(_REQ.c.request_id).where(
                _REQ.c.customer_id == customer_id,
                _REQ.c.kind == kind.value,
                _REQ.c.status.in_(OPEN),
            )
        ).first()
        return self.get(row[0]) if row else None

    def open_requests(self, *, limit: int = 1000) -> list[PrivacyRequest]:
        rows = list(
            self.s.execute(
                sa.select(_REQ).where(_REQ.c.status.in_(OPEN)).order_by(_REQ.c.due_at).limit(limit)
            )
        )
        answers = self._answers([r.request_id for r in rows])
        return [_request(r, answers.get(r.request_id, {})) for r in rows]

    def drop_bundles_of(self, customer_id: str) -> int:
        """An erased subject's earlier access bundles and exports go too."""
        ids = sa.select(_REQ.c.request_id).where(_REQ.c.customer_id == customer_id)
        self.s.execute(
            sa.update(_ANS)
            .where(_ANS.c.request_id.in_(ids), _ANS.c.export_json.is_not(None))
            .values(export_json=None)
        )
        result: Any = self.s.execute(
            sa.update(_REQ)
            .where(_REQ.c.customer_id == customer_id, _REQ.c.bundle_json.is_not(None))
            .values(bundle_json=None)
        )
        return int(result.rowcount)
