"""The gateway's part in privacy requests.

The gateway stores nothing about customers (no database; interactions leave
for the GATEWAY stream at once, PII hashed). In memory it holds, for consent
enforcement, the hashed identifiers of customers who objected to analytics
(docs/adr/0021): erasure drops them and reports how many. It must answer
either way: a request completes only when every registered participant has
(docs/adr/0014).
"""

from __future__ import annotations

import asyncio

from sqlmodel import Session

from cxloop_libs.privacy import (
    PrivacyAnswer,
    PrivacyParticipant,
    RequestKind,
    join_privacy_requests,
)
from cxloop_libs.runtime import ServiceRuntime
from gateway.service_layer.enforcement import AnalyticsEnforcement

PARTICIPANT = "gateway"
CATEGORY = "consent_enforcement_identifiers"
FORGET_TIMEOUT_S = 5.0


def answer(session: Session | None, customer_id: str, kind: RequestKind) -> PrivacyAnswer:
    return PrivacyAnswer(["none"], {}, detail="the gateway stores no customer data")


def join(
    runtime: ServiceRuntime, enforcement: AnalyticsEnforcement | None = None
) -> PrivacyParticipant:
    if enforcement is None:
        return join_privacy_requests(runtime, PARTICIPANT, answer)
    loop = asyncio.get_running_loop()

    async def forget(customer_id: str) -> int:
        return enforcement.forget(customer_id)

    def answer_with_enforcement(
        session: Session | None, customer_id: str, kind: RequestKind
    ) -> PrivacyAnswer:
        if kind is not RequestKind.ERASURE:
            return answer(session, customer_id, kind)
        # Runs in a worker thread; the identifiers belong to the event loop.
        dropped = asyncio.run_coroutine_threadsafe(forget(customer_id), loop).result(
            FORGET_TIMEOUT_S
        )
        if not dropped:
            return answer(session, customer_id, kind)
        return PrivacyAnswer(
            [CATEGORY],
            {CATEGORY: dropped},
            detail="in-memory hashed identifiers held for consent enforcement",
        )

    return join_privacy_requests(runtime, PARTICIPANT, answer_with_enforcement)
