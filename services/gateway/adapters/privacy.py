"""The gateway's part in privacy requests.

The gateway keeps nothing about customers (no database; interactions leave
for the GATEWAY stream at once, PII hashed), so it answers every request at
once with no rows, category "none" — but it must answer: a request completes
only when every registered participant has (docs/adr/0014).
"""

from __future__ import annotations

from sqlmodel import Session

from cxloop_libs.privacy import (
    PrivacyAnswer,
    PrivacyParticipant,
    RequestKind,
    join_privacy_requests,
)
from cxloop_libs.runtime import ServiceRuntime

PARTICIPANT = "gateway"


def answer(session: Session | None, customer_id: str, kind: RequestKind) -> PrivacyAnswer:
    return PrivacyAnswer(["none"], {}, detail="the gateway stores no customer data")


def join(runtime: ServiceRuntime) -> PrivacyParticipant:
    return join_privacy_requests(runtime, PARTICIPANT, answer)
