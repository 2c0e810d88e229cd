"""One customer across the suite: every service's part fetched at once, each
within a deadline. A part whose service is down, slow or not built answers
``missing`` with the reason; the rest still comes back (never a 500 for all).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from cxloop_libs.audit import Actor


class PartUnavailable(Exception):
    """A part could not be fetched; ``reason`` is safe to show a caller."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class CustomerNotFound(Exception):
    pass


# A service's call: (customer id, actor) -> the JSON of each part it answers
# (None when the service knows nothing of the customer there), or the
# PartUnavailable saying why a part could not be had; raising PartUnavailable
# says it for all of its parts.
Answer = dict[str, Any] | None | PartUnavailable
Fetch = Callable[[str, Actor], Awaitable[Mapping[str, Answer]]]


@dataclass(frozen=True)
class Part:
    """One call to one service answering one or more of the 360's parts (one
    query RPC per service: personalization's four parts come in one call)."""

    names: tuple[str, ...]  # keys in the answer: "profile", "consent", ...
    service: str  # who answers them
    fetch: Fetch


@dataclass
class Customer360:
    parts: tuple[Part, ...]
    deadline_s: float = 1.0
    # Finds the customer id behind an email, phone or user id (identity).
    lookup: Callable[[str, str, Actor], Awaitable[str | None]] | None = None

    async def get(self, customer_id: str, actor: Actor) -> dict[str, Any]:
        started = time.perf_counter()

        async def one(p: Part) -> tuple[Part, Mapping[str, Answer]]:
            try:
                # A timeout scope, not wait_for: no task of its own per part
                # (gather already runs each part as one).
                async with asyncio.timeout(self.deadline_s):
                    return p, await p.fetch(customer_id, actor)
            except TimeoutError:
                late = PartUnavailable(f"{p.service} did not answer within {self.deadline_s:g} s")
                return p, dict.fromkeys(p.names, late)
            except PartUnavailable as exc:
                return p, dict.fromkeys(p.names, exc)

        results = await asyncio.gather(*(one(p) for p in self.parts))
        answer: dict[str, Any] = {"customerId": customer_id}
        missing: list[dict[str, str]] = []
        for p, values in results:
            for name in p.names:
                value = values.get(name)
                if isinstance(value, PartUnavailable):
                    missing.append({"part": name, "service": p.service, "reason": value.reason})
                    value = None
                answer[name] = value
        profile = answer.get("profile")
        if profile is None and not any(m["part"] == "profile" for m in missing):
            raise CustomerNotFound(customer_id)
        if isinstance(profile, Mapping) and profile.get("customerId"):
            # A merged-away id answers as the surviving customer.
            answer["customerId"] = profile["customerId"]
        answer["missing"] = missing
        answer["complete"] = not missing
        answer["tookMs"] = round((time.perf_counter() - started) * 1000, 1)
        return answer

    async def find(self, kind: str, value: str, actor: Actor) -> str | None:
        if self.lookup is None:
            raise PartUnavailable("identity lookup is not configured")
        return await asyncio.wait_for(self.lookup(kind, value, actor), self.deadline_s)
