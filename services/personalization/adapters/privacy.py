"""Personalization's part in privacy requests (docs/adr/0014): erasure
deletes the customer's learned interactions and experiment exposures in the
participant's transaction and drops the customer from every model in this
replica's memory (other replicas follow the erasure request themselves);
access exports the same rows."""

from __future__ import annotations

import json
from collections.abc import Callable

from sqlmodel import Session

from cxloop_libs.privacy import PrivacyAnswer, RequestKind
from personalization.adapters import repository as repo

PARTICIPANT = "personalization"


def answerer(
    forget: Callable[[str], int],
) -> Callable[[Session | None, str, RequestKind], PrivacyAnswer]:
    def answer(session: Session | None, customer_id: str, kind: RequestKind) -> PrivacyAnswer:
        assert session is not None
        if kind is RequestKind.ERASURE:
            counts = repo.erase_customer(session, customer_id)
            counts["model_items"] = forget(customer_id)
            return PrivacyAnswer(sorted(counts), counts)
        if kind is RequestKind.ACCESS:
            export = repo.export_customer(session, customer_id)
            return PrivacyAnswer(
                sorted(export),
                {k: len(v) for k, v in export.items()},
                export_json=json.dumps(export, sort_keys=True, default=str),
            )
        return PrivacyAnswer(
            ["interactions"], {}, detail=f"{kind.value}: withdraw personalization consent"
        )

    return answer
